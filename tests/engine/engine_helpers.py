"""Helpers shared by the engine tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
Script = Callable[[list[object]], str]


def code(text: str) -> str:
    return f"```python\n{text}\n```"
