"""Typed outputs, results of runs that did not finish, and the scripted-model helper."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from codeact_lsp.api import CodeAct, Result, RunError, scripted
from codeact_lsp.trajectory import Trajectory

from .conftest import factorial


def test_outputs_come_back_as_the_signature_types(make_act: Callable[..., CodeAct]) -> None:
    act = make_act(
        "task -> pair: tuple[int, int], scores: dict[str, float], label", [factorial], "typed"
    )
    result = act(task="typed outputs")
    assert result.ok, result.error
    assert result.pair == (2, 3)
    assert result.scores == {"a": 1.5}
    assert result.label == "big"
    # the trajectory keeps docs/protocol.md's JSON form
    assert result.trajectory.outputs == {"pair": [2, 3], "scores": {"a": 1.5}, "label": "big"}


def test_unfinished_result_raises_on_output_access() -> None:
    traj = Trajectory(
        id="r1", task="t", signature="n -> f", status="max_iters", error="out of steps"
    )
    result = Result(traj, None)
    assert not result.ok and result.status == "max_iters"
    with pytest.raises(RunError, match="out of steps") as info:
        _ = result.f
    assert info.value.result is result
    assert getattr(result, "f", "default") == "default"
    with pytest.raises(AttributeError, match="no output"):
        _ = result.nope
    with pytest.raises(RunError):
        result.raise_for_status()
    assert "max_iters" in repr(result)


def test_scripted_helper_writes_a_replay_file(make_act: Callable[..., CodeAct]) -> None:
    model = scripted(["```python\nfinal_answer(factorial(n) * 2)\n```"])
    assert model.startswith("scripted:")
    path = Path(model.removeprefix("scripted:"))
    assert json.loads(path.read_text()) == ["```python\nfinal_answer(factorial(n) * 2)\n```"]
    with CodeAct("n: int -> doubled: int", tools=[factorial], model=model) as act:
        assert act(n=3).doubled == 12
    bad: list[Any] = [1]
    with pytest.raises(TypeError):
        scripted(bad)


def test_scripted_replies_run_out_with_a_clear_error(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "batch_factorial", max_iters=3)
    result = act(n=-2)
    assert not result.ok
    assert result.error


def test_constructor_errors_are_actionable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEACT_MODEL", raising=False)
    with pytest.raises(ValueError, match="model"):
        CodeAct("n -> f", tools=[factorial], model=None, config=None)
    with pytest.raises(TypeError, match="not callable"):
        CodeAct("n -> f", tools=[42], model="scripted:/x.json")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="->"):
        CodeAct("n, f", tools=[factorial], model="scripted:/x.json")


def test_runs_persist_like_the_editors(make_act: Callable[..., CodeAct], tmp_path: Path) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial", runs_dir=tmp_path / "r")
    result = act(n=4)
    saved = Trajectory.model_validate_json((tmp_path / "r" / f"{result.run_id}.json").read_text())
    assert saved.status == "finished" and saved.outputs == {"factorial": 24}
    assert saved.steps[0].code == result.steps[0].code


def test_workspace_configuration_applies_and_arguments_win(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.codeact]\nmax_iters = 7\nmodel = 'scripted:nowhere.json'\n"
        "[tool.codeact.sandbox]\ntimeout = 12\n"
    )
    with CodeAct("n -> f", tools=[factorial], workspace=tmp_path) as act:
        assert act.config.max_iters == 7
        assert act.config.sandbox.timeout == 12
        assert act.model == "scripted:nowhere.json"
    with CodeAct("n -> f", tools=[factorial], workspace=tmp_path, max_iters=2, timeout=3) as act:
        assert (act.config.max_iters, act.config.sandbox.timeout) == (2, 3)
    (tmp_path / "codeact.toml").write_text("max_iters = 'many'\n")
    with pytest.raises(ValueError, match="max_iters"):
        CodeAct("n -> f", tools=[factorial], workspace=tmp_path)


class Line(BaseModel):
    sku: str
    units: int


class Order(BaseModel):
    """Build the order the customer asked for."""

    lines: list[Line]
    total: float


def test_pydantic_output_model_gives_model_instances() -> None:
    reply = "```python\nfinal_answer(lines=[{'sku': 'A', 'units': 2}], total=3)\n```"
    with CodeAct(Order, tools=[factorial], model=scripted([reply])) as act:
        result = act(task="two of A")
    assert result.ok, result.error
    assert result.lines == [Line(sku="A", units=2)]
    assert isinstance(result.total, float)
    assert result.trajectory.outputs == {"lines": [{"sku": "A", "units": 2}], "total": 3.0}
    assert result.trajectory.task == "two of A"


def test_task_text_from_instructions_task_input_or_fields(make_act: Callable[..., CodeAct]) -> None:
    plain = make_act("n: int -> factorial: int", [factorial], "factorial")
    assert plain(n=3).trajectory.task == "Given `n`, produce `factorial`."
    told = make_act(
        "n: int -> factorial: int", [factorial], "factorial", instructions="Use the tool."
    )
    assert told(n=3).trajectory.task == "Use the tool."
    both = make_act(
        "task, n: int -> answer: int", [factorial], "batch_factorial", instructions="Be brief."
    )
    assert both(task="n factorial", n=3).trajectory.task == "Be brief.\n\nn factorial"


def test_outputs_named_like_result_fields_stay_reachable() -> None:
    traj = Trajectory(id="r", task="t", signature="q -> error, status", status="finished")
    result = Result(traj, {"error": "none found", "status": "green"})
    assert result.error is None and result.status == "finished"
    assert result["error"] == "none found" and result["status"] == "green"
    with pytest.raises(KeyError):
        result["missing"]
