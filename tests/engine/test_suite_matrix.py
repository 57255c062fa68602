"""The suite as a matrix: every task on each model, N repeats; a task's own model wins; a
model's concurrency cap holds. Two scripted models with different reply files stand in for a
model that gets the task right and one that does not. The tools' call log is the oracle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from counting import fast_retry, make_workspace, real_calls

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine
from codeact_lsp.engine.suite import SuiteError, SuiteTask, TaskResult, plan_runs, run_suite
from codeact_lsp.tools import ToolHost
from codeact_lsp.trajectory import Trajectory


def _model(ws: Path, name: str, code: str, delay: float = 0.0) -> str:
    reply: Any = f"```python\n{code}\n```"
    (ws / name).write_text(json.dumps([{"reply": reply, "delay": delay} if delay else reply]))
    return f"scripted:{ws / name}"


def _suite(ws: Path, pinned: str) -> None:
    (ws / "tasks.toml").write_text(
        '[[task]]\nname = "price"\ntask = "the price of 1A"\nexpect = 12\n\n'
        '[[task]]\nname = "price-again"\ntask = "the price of 1A"\nexpect = 12\n\n'
        f'[[task]]\nname = "pinned"\ntask = "the price of 1A"\nmodel = "{pinned}"\nexpect = 12\n'
    )


async def _run(ws: Path, tmp_path: Path, **kw: Any) -> list[TaskResult]:
    config = load_config(ws).config
    host = await ToolHost.astart(ws, config)
    eng = Engine(config, host, workspace=ws, runs_dir=tmp_path / "runs", retry=fast_retry())
    try:
        return await run_suite(eng, ws / "tasks.toml", **kw)
    finally:
        await eng.close()
        await host.close()


async def test_every_task_runs_on_every_model_n_times(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    good = _model(ws, "good.json", "final_answer(price('1A'))")
    bad = _model(ws, "bad.json", "final_answer(price('1A') + 1)")
    _suite(ws, pinned=good)
    results = await _run(ws, tmp_path, models=[good, bad], repeat=2, jobs=3)
    cells = [(r.name, r.model, r.repeat, r.passed) for r in results]
    assert cells == [
        ("price", good, 1, True),
        ("price", good, 2, True),
        ("price", bad, 1, False),
        ("price", bad, 2, False),
        ("price-again", good, 1, True),
        ("price-again", good, 2, True),
        ("price-again", bad, 1, False),
        ("price-again", bad, 2, False),
        ("pinned", good, 1, True),  # the task's own model: not run on `bad`
        ("pinned", good, 2, True),
    ], [r.message for r in results]
    assert real_calls(ws) == [["price", "1A"]] * 10  # each run really ran, once
    failed = results[2]
    assert failed.label == "price[r1]" and "expected 12, got 13" in failed.message
    for r in results:
        assert r.prompt_tokens > 0 and r.completion_tokens > 0 and r.cost_usd is None
        assert r.trajectory is not None
        saved = Trajectory.model_validate_json(Path(r.trajectory).read_text())
        assert saved.id == r.run_id and saved.model == r.model
        assert saved.usage.prompt_tokens == r.prompt_tokens
    assert len({r.tool_host_pid for r in results}) == 10  # fresh tool state per run


def test_plan_keeps_a_pinned_task_and_refuses_zero_repeats() -> None:
    free = SuiteTask(name="a", task="t", expect=1)
    pinned = SuiteTask(name="b", task="t", expect=1, model="m0")
    plan = plan_runs([free, pinned], ["m1", "m2"], 1)
    assert [(r.task.name, r.pinned().model) for r in plan] == [
        ("a", "m1"),
        ("a", "m2"),
        ("b", "m0"),
    ]
    assert [r.pinned().model for r in plan_runs([free], [], 2)] == [None, None]
    with pytest.raises(SuiteError, match="repeat"):
        plan_runs([free], ["m1"], 0)


@pytest.mark.parametrize("cap", [1, None])
async def test_a_models_concurrency_cap_holds_across_the_suite(
    tmp_path: Path, cap: int | None
) -> None:
    ws = make_workspace(tmp_path / "ws")
    slow = _model(ws, "slow.json", "final_answer(price('1A'))", delay=0.3)
    if cap is not None:
        config = (ws / "codeact.toml").read_text()
        (ws / "codeact.toml").write_text(config + f'\n[suite.model_jobs]\n"{slow}" = {cap}\n')
    _suite(ws, pinned=slow)
    running: set[str] = set()
    most = 0

    def started(task: SuiteTask, handle: Any) -> None:
        nonlocal most
        running.add(handle.id)
        most = max(most, len(running))

    def finished(result: TaskResult) -> None:
        running.discard(result.run_id or "")

    results = await _run(
        ws, tmp_path, models=[slow], repeat=2, jobs=4, on_start=started, on_result=finished
    )
    assert all(r.passed for r in results) and len(results) == 6
    if cap is None:
        assert most > 1  # the control: without a cap, runs of one model do overlap
    else:
        assert most == cap


async def test_a_plain_suite_keeps_one_model_also_on_a_run_that_could_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codeact_lsp.engine.suite import is_matrix, junit_xml

    ws = make_workspace(tmp_path / "ws")
    slow = _model(ws, "slow.json", "final_answer(price('1A'))", delay=0.3)
    monkeypatch.setenv("CODEACT_MODEL", slow)  # no model in the config: the environment's
    config = (ws / "codeact.toml").read_text()
    (ws / "codeact.toml").write_text(config + f'\n[suite.model_jobs]\n"{slow}" = 1\n')
    (ws / "tasks.toml").write_text(
        "".join(f'[[task]]\nname = "t{i}"\ntask = "price of 1A"\nexpect = 12\n\n' for i in range(4))
    )
    loaded = load_config(ws).config
    made = 0

    async def fresh() -> Any:  # a real tool host each time, but the third one cannot start
        nonlocal made
        made += 1
        if made == 3:
            raise OSError("no more processes")
        return await ToolHost.astart(ws, loaded)

    running: set[str] = set()
    most = 0

    def started(task: SuiteTask, handle: Any) -> None:
        nonlocal most
        running.add(handle.id)
        most = max(most, len(running))

    def finished(result: TaskResult) -> None:
        running.discard(result.run_id or "")

    results = await _run(
        ws, tmp_path, jobs=4, fresh_tools=fresh, on_start=started, on_result=finished
    )
    assert sorted(r.status for r in results) == ["error", "finished", "finished", "finished"]
    assert {r.model for r in results} == {slow}  # the failed start too: no "" model row
    assert not is_matrix(results)
    assert 'classname="codeact" name="t0"' in junit_xml(results)
    assert most == 1  # the cap keyed by the model from $CODEACT_MODEL held
