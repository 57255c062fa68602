"""Tools DSPy's CodeAct refuses: callable objects and tools built on third-party libraries.

Here they run in the caller's process, so any callable and any installed library works; the
sandboxed code only ever sees stubs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import pytest
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]  # third-party

from codeact_lsp.api import CodeAct


class Add:
    """A callable object (rejected by DSPy's CodeAct)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, a: int, b: int) -> int:
        """Sum of two integers."""
        self.calls += 1
        return a + b


def days_between(start: str, end: str) -> int:
    """Whole days from `start` to `end` (ISO dates), computed with python-dateutil."""
    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    span = relativedelta(b, a)
    assert a + span == b
    return (b - a).days


def test_callable_object_tool_keeps_its_state(make_act: Callable[..., CodeAct]) -> None:
    add = Add()
    act = make_act("a: int, b: int -> total: int", {"add": add}, "add_callable")
    result = act(a=2, b=40)
    assert result.ok, result.error
    assert result.total == 42
    assert add.calls == 1, "the caller's own object ran the call"
    assert result.steps[0].tool_calls[0].name == "add"


def test_third_party_library_tool(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("start: str, end: str -> days: int, weeks: int", [days_between], "days_between")
    result = act(start="2024-01-01", end="2024-03-01")
    assert result.ok, result.error
    assert (result.days, result.weeks) == (60, 8)
    assert len(result.steps) == 2, "variables carry over between steps of a run"


def test_mixed_tool_kinds(make_act: Callable[..., CodeAct]) -> None:
    """Async function, bound methods, and a C builtin side by side (the quickstart shop)."""
    import asyncio

    class Catalogue:
        def price_of(self, sku: str) -> dict[str, float]:
            """Unit price in USD and weight in kg."""
            return {"usd": 25.0, "kg": 0.8}

    async def shipping_quote(weight_kg: float, country: str) -> float:
        """Shipping price in EUR."""
        await asyncio.sleep(0)
        return round(4.9 + 1.25 * weight_kg, 2)

    def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
        """Convert between USD and EUR."""
        return round(amount * (0.92 if from_currency == "USD" else 1 / 0.92), 2)

    tools = {
        "price_of": Catalogue().price_of,
        "shipping_quote": shipping_quote,
        "convert_currency": convert_currency,
        "gcd": math.gcd,
    }
    act = make_act("task -> total: float", tools, "shop")
    result = act(task="Two SKU-42 shipped to Germany, total in EUR?")
    assert result.ok, result.error
    assert result.total == round(46.0 + 6.9, 2)
    assert isinstance(result.total, float)
    names = [c.name for c in result.steps[0].tool_calls if c.name != "final_answer"]
    assert names == ["price_of", "shipping_quote", "convert_currency"]


def test_tool_errors_are_validated_and_located(make_act: Callable[..., CodeAct]) -> None:
    """Same registry as the tool host: bad arguments are refused before the tool runs, and an
    exception inside the tool points at the raising line of the tool's own source."""
    import inspect

    from . import conftest
    from .conftest import factorial

    act = make_act("task -> answer: int", [factorial], "tool_errors", max_iters=3)
    result = act(task="exercise the errors")
    assert result.ok, result.error
    assert result.answer == 6
    bad_arg, raised, final = result.steps
    assert bad_arg.error is not None and bad_arg.error.line == 1
    (call,) = bad_arg.tool_calls
    assert call.error is not None and "n" in call.error
    assert raised.error is not None and raised.error.line == 2
    assert raised.error.type == "ValueError" and "negative" in raised.error.message
    detail = raised.tool_calls[0].error_detail
    assert detail is not None
    source, first = inspect.getsourcelines(conftest.factorial)
    raise_line = first + next(i for i, text in enumerate(source) if "raise ValueError" in text)
    assert detail.file == conftest.__file__
    assert detail.line == raise_line
    assert final.status == "ok" and final.final


def test_quickstart_tools_from_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example workspace's tools (bound methods, an async tool) driven from the API with the
    same scripted replies as its task suite, reaching the suite's expected answer."""
    import importlib.util
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
    spec = importlib.util.spec_from_file_location("quickstart_tools", example / "tools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "quickstart_tools", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    tools = {name: getattr(module, name) for name in module.__all__}
    model = f"scripted:{example / 'replies' / 'quote.json'}"
    with CodeAct(tools=tools, model=model) as act:
        result = act(
            task="What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany?"
        )
    assert result.ok, result.error
    assert result.answer == 76.9
    used = {c.name for s in result.steps for c in s.tool_calls}
    assert {"price_of", "stock_level", "convert_currency", "shipping_quote"} <= used
