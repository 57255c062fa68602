"""Multi-turn: a follow-up runs in the same sandbox, so earlier variables are still there."""

from __future__ import annotations

from collections.abc import Callable

from codeact_lsp.api import CodeAct

from .conftest import factorial


def test_session_follow_up_reuses_a_variable(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> answer: int", [factorial], "follow_up")
    with act.session() as chat:
        first = chat(n=5)
        assert first.answer == 120
        second = chat("Now multiply that by 3.")
    assert second.ok, second.error
    assert second.answer == 360
    assert second.trajectory.parent == first.run_id
    assert second.trajectory.task == "Now multiply that by 3."
    assert "x * 3" in second.steps[-1].code
    assert chat.results == [first, second]


def test_follow_up_on_a_result(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> answer: int", [factorial], "follow_up")
    first = act(n=4)
    second = act.follow_up(first, "Triple it.")
    assert (first.answer, second.answer) == (24, 72)


async def test_async_session_and_turn_rules(make_act: Callable[..., CodeAct]) -> None:
    import pytest

    act = make_act("n: int -> answer: int", [factorial], "follow_up")
    chat = act.session()
    assert (await chat.acall(n=3)).answer == 6
    with pytest.raises(TypeError, match="later turns"):
        await chat.acall("again", n=4)
    assert (await chat.acall("Triple it.")).answer == 18
    assert [r.answer for r in chat.results] == [6, 18]


def test_rerun_from_a_step_with_edited_code(make_act: Callable[..., CodeAct]) -> None:
    """Replays step 1 into a fresh sandbox (its variables come back), then runs the edit."""
    from .test_tool_kinds import days_between

    act = make_act("start: str, end: str -> days: int, weeks: int", [days_between], "days_between")
    first = act(start="2024-01-01", end="2024-03-01")
    assert (first.days, first.weeks) == (60, 8)
    second = act.rerun(first, step=2, code="final_answer(days=days, weeks=round(days / 7))")
    assert second.ok, second.error
    assert (second.days, second.weeks) == (60, 9)
    assert second.run_id != first.run_id and second.trajectory.parent == first.run_id
    assert second.steps[0].code == first.steps[0].code
