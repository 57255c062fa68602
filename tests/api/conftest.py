"""Shared helpers: scripted replies live beside the tests as JSON files, one per scenario."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeact_lsp.api import CodeAct

REPLIES = Path(__file__).parent / "replies"


def scripted_model(name: str) -> str:
    """The engine's stand-in model replaying `replies/<name>.json` (tests and demos only)."""
    path = REPLIES / f"{name}.json"
    assert path.is_file(), path
    return f"scripted:{path}"


def factorial(n: int) -> int:
    """n! for n >= 0; raises ValueError for negative n."""
    if n < 0:
        raise ValueError(f"factorial is undefined for negative n={n}")
    return 1 if n <= 1 else n * factorial(n - 1)


@pytest.fixture
def make_act(tmp_path: Path) -> Iterator[Callable[..., CodeAct]]:
    """Build CodeActs that are always closed, with runs persisted under the test's tmp dir."""
    made: list[CodeAct] = []

    def make(signature: str, tools: Any, replies: str, **kwargs: Any) -> CodeAct:
        kwargs.setdefault("runs_dir", tmp_path / "runs")
        act = CodeAct(signature, tools=tools, model=scripted_model(replies), **kwargs)
        made.append(act)
        return act

    yield make
    for act in made:
        act.close()
