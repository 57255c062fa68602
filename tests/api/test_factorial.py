"""The seeds' first example: a recursive factorial tool, answered with a typed output."""

from __future__ import annotations

import json
from collections.abc import Callable

from codeact_lsp.api import CodeAct, Result
from codeact_lsp.trajectory import Trajectory

from .conftest import factorial


def test_factorial_typed_output(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    result = act(n=5)
    assert isinstance(result, Result)
    assert result.ok, result.error
    assert result.status == "finished"
    assert result.factorial == 120
    assert type(result.factorial) is int
    assert result["factorial"] == 120
    assert result.outputs == {"factorial": 120}
    assert "factorial=120" in repr(result) and "scripted" in repr(result)


def test_trajectory_records_the_tool_call_and_serialises(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    result = act(n=5)
    traj = result.trajectory
    assert isinstance(traj, Trajectory)
    assert traj.scripted, "runs on the stand-in model must say so"
    assert traj.inputs == {"n": 5}
    (step,) = traj.steps
    assert step.index == 1
    assert "factorial(n)" in step.code
    assert step.stdout.strip() == "120"
    assert step.error is None
    # the recursion happens inside the tool, in this process: one call crosses the boundary
    calls = [(c.name, c.args, c.result) for c in step.tool_calls if c.name != "final_answer"]
    assert calls == [("factorial", {"n": 5}, 120)]
    doc = json.loads(result.to_json())
    for key in ("id", "task", "signature", "model", "status", "outputs", "error", "steps"):
        assert key in doc
    assert doc["outputs"] == {"factorial": 120}
    for key in ("index", "code", "stdout", "stderr", "value", "error", "tool_calls"):
        assert key in doc["steps"][0]
    assert set(doc["usage"]) >= {"prompt_tokens", "completion_tokens", "cost_usd"}
    assert set(doc["sandbox"]) >= {"backend", "isolation"}
    assert Trajectory.model_validate_json(result.to_json()) == traj


def test_usage_totals_and_history(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    first = act(n=3)
    second = act(n=4)
    assert (first.factorial, second.factorial) == (6, 24)
    assert first.run_id != second.run_id
    assert [r.run_id for r in act.history] == [first.run_id, second.run_id]
    total = first.usage.add(second.usage)
    assert act.usage.prompt_tokens == total.prompt_tokens
    assert act.usage.completion_tokens == total.completion_tokens
    text = act.inspect_history(n=2)
    assert first.run_id in text and second.run_id in text
    assert "scripted" in text
    assert "factorial(n)" in text


def test_program_replays_the_successful_steps(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    result = act(n=5)
    assert result.program is not None
    assert "factorial(n)" in result.program


def test_bad_inputs_fail_before_any_run(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    for bad in ({}, {"n": 5, "m": 1}, {"n": "five"}):
        try:
            act(**bad)
        except ValueError as exc:
            assert "n" in str(exc) or "m" in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    assert not act.history


def test_history_is_bounded(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial", keep_history=2)
    results = act.batch([{"n": n} for n in (1, 2, 3)], concurrency=1)
    assert [r.run_id for r in act.history] == [r.run_id for r in results[1:]]
    assert act.usage.prompt_tokens == sum(r.usage.prompt_tokens for r in results)
