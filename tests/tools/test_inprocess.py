"""Tools served from the caller's process go through the same registry as the host."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from pathlib import Path
from typing import Any

from codeact_lsp.tools import InProcessTools, ToolProvider

HERE = Path(__file__)


def convert(amount: float, rate: float = 1.0) -> float:
    """Multiply `amount` by `rate`."""
    if rate < 0:
        raise ValueError("negative rate")
    return amount * rate


async def later(x: int) -> int:
    """Return x after yielding to the loop."""
    await asyncio.sleep(0)
    return x + 1


class Box:
    def __init__(self) -> None:
        self.items: list[str] = []

    def put(self, item: str) -> int:
        """Put an item in the box; returns how many it holds."""
        self.items.append(item)
        print("put", item)
        logging.getLogger("box").warning("box holds %d", len(self.items))
        return len(self.items)


def vague(x, *rest):  # type: ignore[no-untyped-def]
    return x


def test_schemas_calls_and_state() -> None:
    box = Box()
    tools = InProcessTools(
        {
            "convert": convert,
            "later": later,
            "put": box.put,
            "gcd": math.gcd,
            "double": functools.partial(convert, rate=2.0),
        },
        confirm=["pu*"],
    )
    assert isinstance(tools, ToolProvider)
    schemas = {s.name: s for s in tools.schemas()}
    assert schemas["convert"].signature == "def convert(amount: float, rate: float = 1.0) -> float"
    assert schemas["put"].signature == "def put(item: str) -> int"
    assert schemas["put"].confirm and schemas["put"].kind == "method"
    assert schemas["later"].is_async and schemas["gcd"].kind == "builtin"
    assert schemas["double"].signature == "def double(amount: float, *, rate: float = 2.0) -> float"
    assert tools.call_sync("double", [3], {}).result == 6.0
    assert tools.call_sync("later", [1], {}).result == 2
    assert tools.call_sync("gcd", [4, 6], {}).result == 2
    first = tools.call_sync("put", ["a"], {})
    assert first.result == 1 and "put a" in first.stdout and "box holds 1" in first.stdout
    assert tools.call_sync("put", ["b"], {}).result == 2 and box.items == ["a", "b"]


def test_duplicate_names_refused() -> None:
    try:
        InProcessTools([convert, functools.partial(convert, rate=2.0)])
    except ValueError as exc:
        assert "two tools are named 'convert'" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_validation_and_error_location() -> None:
    tools = InProcessTools({"conv": convert})
    bad = tools.call_sync("conv", ["x"], {})
    assert (
        bad.error is not None and bad.error.type == "TypeError" and "'amount'" in bad.error.message
    )
    assert bad.bound_args == {"amount": "x"}
    err = tools.call_sync("conv", [1], {"rate": -1})
    assert err.error is not None and err.error.type == "ValueError"
    assert err.error.file == str(HERE)
    assert err.error.line is not None
    assert (
        HERE.read_text().splitlines()[err.error.line - 1].strip()
        == 'raise ValueError("negative rate")'
    )
    assert err.bound_args == {"amount": 1, "rate": -1}


def test_quality_diagnostics_and_timeout() -> None:
    def slow(seconds: float) -> str:
        """Sleep."""
        import time

        time.sleep(seconds)
        return "done"

    tools = InProcessTools([vague, slow], timeout=5)
    codes = {(d.code, d.tool) for d in tools.diagnostics}
    assert ("tool-no-docstring", "vague") in codes
    assert ("tool-no-annotation", "vague") in codes
    assert ("tool-varargs", "vague") in codes
    out = tools.call_sync("slow", [5], {}, timeout=0.05)
    assert out.error is not None and out.error.type == "TimeoutError"
    assert tools.call_sync("slow", [0], {}).result == "done"


def test_results_that_are_not_json() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    def make() -> Any:
        """Make a thing."""
        return Thing()

    out = InProcessTools([make]).call_sync("make", [], {})
    assert out.ok and out.result_is_repr and out.shown == "<Thing>"
    assert out.result["$"] == "opaque" and out.result["type"].endswith("<locals>.Thing")
