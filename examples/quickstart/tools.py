"""Tools for a small online shop: the agent answers questions about stock, prices and shipping.

Each tool is ordinary Python with type hints and a docstring: the docstring and the signature are
what the model sees, so say what the tool returns and in which unit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["convert_currency", "shipping_quote", "stock_level", "reserve", "price_of"]  # noqa: RUF022 (the order the model sees them)

# Module globals are fine: tools run in your own interpreter, not in the sandbox.
_RATES_TO_EUR = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}


def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert an amount of money between EUR, USD and GBP; returns the amount rounded to cents."""
    try:
        eur = amount * _RATES_TO_EUR[from_currency.upper()]
        return round(eur / _RATES_TO_EUR[to_currency.upper()], 2)
    except KeyError as exc:
        raise ValueError(f"unknown currency {exc.args[0]!r}; use EUR, USD or GBP") from None


async def shipping_quote(weight_kg: float, country: str) -> float:
    """Price in EUR to ship a parcel of `weight_kg` to `country` (ISO code like "DE" or "FR")."""
    await asyncio.sleep(0)  # stands in for a call to a carrier's API
    zones = {"DE": 4.9, "FR": 6.5, "NL": 5.2, "US": 19.0}
    if country.upper() not in zones:
        raise ValueError(f"no shipping to {country!r}")
    return round(zones[country.upper()] + 1.25 * weight_kg, 2)


@dataclass
class Inventory:
    """A stateful object: its bound methods are tools, and they share its state."""

    stock: dict[str, int] = field(default_factory=dict)
    prices_usd: dict[str, float] = field(default_factory=dict)
    weights_kg: dict[str, float] = field(default_factory=dict)

    def stock_level(self, sku: str) -> int:
        """Units of `sku` currently in stock (0 if the SKU is unknown)."""
        return self.stock.get(sku, 0)

    def price_of(self, sku: str) -> dict[str, float]:
        """Unit price in USD and unit weight in kg of `sku`, as {"usd": ..., "kg": ...}."""
        if sku not in self.prices_usd:
            raise KeyError(f"unknown SKU {sku!r}")
        return {"usd": self.prices_usd[sku], "kg": self.weights_kg[sku]}

    def reserve(self, sku: str, units: int) -> int:
        """Reserve `units` of `sku` for an order; returns the units left. Fails if not enough stock."""
        left = self.stock.get(sku, 0) - units
        if left < 0:
            raise ValueError(f"only {self.stock.get(sku, 0)} units of {sku} left")
        self.stock[sku] = left
        return left


_inventory = Inventory(
    stock={"SKU-42": 12, "SKU-7": 0},
    prices_usd={"SKU-42": 25.0, "SKU-7": 99.0},
    weights_kg={"SKU-42": 0.8, "SKU-7": 2.5},
)
stock_level = _inventory.stock_level
price_of = _inventory.price_of
reserve = _inventory.reserve
