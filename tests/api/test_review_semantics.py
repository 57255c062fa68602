"""The README's review semantics, with a tool that logs its real calls to a file as the oracle:
`confirm=[...], reviewer=fn` reviews only steps calling flagged tools; `approval="review"` (or
`approval=fn`) reviews every step."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from codeact_lsp.api import CodeAct, PendingStep

STEPS = [
    "p = price('1A')",
    "seats = reserve('12A')",
    "q = price('2B')",
    "final_answer(len(seats) + p + q)",
]


def _tools(log: Path) -> dict[str, Callable[[str], object]]:
    booked: list[str] = []

    def _note(name: str, seat: str) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(json.dumps([name, seat]) + "\n")

    def reserve(seat: str) -> list[str]:
        """Book a seat; returns all seats booked."""
        _note("reserve", seat)
        booked.append(seat)
        return list(booked)

    def price(seat: str) -> int:
        """The price of a seat."""
        _note("price", seat)
        return 10

    return {"reserve": reserve, "price": price}


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize(
    ("kwargs", "asked_steps"),
    [
        ({"confirm": ["reserve"]}, [2]),  # reviewer= with confirm: only the flagged step
        ({"confirm": ["res*"], "approval": "confirm-tools"}, [2]),
        ({"approval": "review"}, [1, 2, 3, 4]),  # every step
        ({"approval": "review", "confirm": ["reserve"]}, [1, 2, 3, 4]),
        ({}, [1, 2, 3, 4]),  # reviewer= and nothing flagged: it reviews every step
    ],
)
def test_which_steps_the_reviewer_sees(
    tmp_path: Path, kwargs: dict[str, object], asked_steps: list[int]
) -> None:
    log = tmp_path / "calls.log"
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([f"```python\n{c}\n```" for c in STEPS]))
    asked: list[tuple[int, list[str]]] = []
    real_at_ask: list[int] = []

    def review(step: PendingStep) -> bool:
        asked.append((step.index, step.confirm_tools))
        real_at_ask.append(len(_calls(log)))
        return True

    with CodeAct(
        "task -> answer: int",
        tools=_tools(log),
        model=f"scripted:{replies}",
        reviewer=review,
        runs_dir=tmp_path / "runs",
        **kwargs,  # type: ignore[arg-type]
    ) as act:
        result = act(task="book and price")
    assert result.ok, result.error
    assert result.answer == 21
    assert [i for i, _ in asked] == asked_steps
    flagged = bool(kwargs.get("confirm"))
    assert [c for i, c in asked if i == 2] == [["reserve"] if flagged else []]
    # exactly the four real calls, each once; a step's call happens after its review
    assert _calls(log) == [["price", "1A"], ["reserve", "12A"], ["price", "2B"]]
    assert real_at_ask == [{1: 0, 2: 1, 3: 2, 4: 3}[i] for i in asked_steps]


def test_reviewer_rejecting_the_flagged_step_keeps_the_tool_uncalled(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    replies = tmp_path / "replies.json"
    steps = [*STEPS[:2], "seats = []", *STEPS[2:]]
    replies.write_text(json.dumps([f"```python\n{c}\n```" for c in steps]))
    with CodeAct(
        "task -> answer: int",
        tools=_tools(log),
        model=f"scripted:{replies}",
        confirm=["reserve"],
        reviewer=lambda step: False,
    ) as act:
        result = act(task="book and price")
    assert result.answer == 20
    assert [s.status for s in result.steps] == ["ok", "rejected", "ok", "ok", "ok"]
    assert _calls(log) == [["price", "1A"], ["price", "2B"]]


def test_api_rerun_replays_recorded_and_real_replay_is_reviewed(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([f"```python\n{c}\n```" for c in STEPS]))
    asked: list[tuple[str, int]] = []

    def review(step: PendingStep) -> bool:
        asked.append((step.run_id, step.index))
        return True

    with CodeAct(
        "task -> answer: int",
        tools=_tools(log),
        model=f"scripted:{replies}",
        confirm=["reserve"],
        reviewer=review,
    ) as act:
        first = act(task="book")
        assert len(_calls(log)) == 3 and asked == [(first.run_id, 2)]
        again = act.rerun(first, 4, "final_answer(len(seats) * 100 + p + q)")
        assert again.answer == 120
        assert len(_calls(log)) == 3 and len(asked) == 1  # nothing called, nobody asked
        real = act.rerun(first, 4, "final_answer(len(seats))", replay="real")
    assert real.answer == 2  # the real booking tool ran again: two seats now
    assert len(_calls(log)) == 6
    assert asked[1:] == [(real.run_id, 2)]  # the confirm tool asked again before it ran
