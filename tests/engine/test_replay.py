"""Re-runs and follow-ups rebuild earlier state without side effects (docs/contracts.md "Re-runs and
follow-ups"). The oracle is the tools' own log of real calls (see counting.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from counting import fast_retry, make_workspace, real_calls, reset_calls
from engine_helpers import Script, code

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.engine import Decision, Engine, EngineError, RunHandle, RunRequest, make_model
from codeact_lsp.tools import ToolHost
from codeact_lsp.trajectory import Step, Trajectory

# four steps, three of them with real side effects; each later step uses earlier variables
FOUR_STEPS = [
    "a = price('1A')",
    "b = reserve('12A')",
    "c = price('2B') + a",
    "n = reserve('14C')\nfinal_answer(len(n) * 100 + c)",
]
FOUR_CALLS = [["price", "1A"], ["reserve", "12A"], ["price", "2B"], ["reserve", "14C"]]
STATE = "final_answer([globals().get(v) for v in ('a', 'b', 'c', 'n')])"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest.fixture
async def tools(ws: Path) -> AsyncIterator[ToolHost]:
    host = await ToolHost.astart(ws, load_config(ws).config)
    assert host.problem is None, host.problem
    yield host
    await host.close()


def _engine(ws: Path, host: ToolHost, tmp_path: Path, **kw: object) -> Engine:
    config = kw.pop("config", None) or load_config(ws).config
    assert isinstance(config, CodeActConfig)
    return Engine(config, host, workspace=ws, runs_dir=tmp_path / "runs", retry=fast_retry(), **kw)  # type: ignore[arg-type]


async def _wait(handle: RunHandle) -> Trajectory:
    return await asyncio.wait_for(handle.wait(), timeout=60)


async def _four_step_run(eng: Engine, script: Script, ws: Path) -> Trajectory:
    model = script([code(c) for c in FOUR_STEPS])
    first = await _wait(await eng.start(RunRequest(task="book", model=model)))
    assert first.status == "finished", first.error
    assert first.outputs == {"answer": 2 * 100 + 12 + 12}
    assert real_calls(ws) == FOUR_CALLS
    return first


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
async def test_rerun_from_every_step_calls_no_tool_again(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script, k: int
) -> None:
    eng = _engine(ws, tools, tmp_path)
    try:
        first = await _four_step_run(eng, script, ws)
        reset_calls(ws)
        rerun = await _wait(await eng.rerun(first.id, k, STATE))
    finally:
        await eng.close()
    assert rerun.status == "finished", rerun.error
    assert real_calls(ws) == []  # not one real call: every earlier call came from the record
    # the variables the steps before k left behind, with the recorded results (not re-booked)
    full = [12, ["12A"], 24, ["12A", "14C"]]
    assert rerun.outputs == {"answer": full[: k - 1] + [None] * (4 - (k - 1))}
    assert [s.replayed for s in rerun.steps] == [True] * (k - 1) + [False]
    assert [s.tool_calls for s in rerun.steps[: k - 1]] == [
        s.tool_calls for s in first.steps[: k - 1]
    ]
    assert rerun.rebuild is not None and rerun.rebuild.mode == "recorded"
    assert rerun.rebuild.session == ("rebuilt" if k > 1 else "fresh")
    assert [(e.index, e.status, e.calls) for e in rerun.rebuild.steps] == [
        (i + 1, "matched", 2 if i == 3 else 1) for i in range(k - 1)
    ]
    assert rerun.rebuild.divergence is None
    saved = Trajectory.model_validate_json((tmp_path / "runs" / f"{rerun.id}.json").read_text())
    assert [s.replayed for s in saved.steps] == [s.replayed for s in rerun.steps]


async def test_rerun_with_real_replay_asks_again_for_confirm_tools(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    """replay="real" is the explicit choice: the earlier steps run for real, and each step
    calling a confirm tool waits for a fresh approval first."""
    config = load_config(ws, {"confirm": ["reserve"]}).config
    asked: list[tuple[str, int, str]] = []

    def approver(handle: RunHandle, step: Step, confirm: list[str]) -> Decision:
        asked.append((handle.id, step.index, ",".join(confirm)))
        return Decision(action="approve")

    eng = _engine(ws, tools, tmp_path, config=config, approver=approver)
    try:
        first = await _four_step_run(eng, script, ws)
        assert [(i, c) for _, i, c in asked] == [(2, "reserve"), (4, "reserve")]
        asked.clear()
        reset_calls(ws)
        # recorded (the default): no real call and nobody asked, though step 2 calls reserve
        recorded = await _wait(await eng.rerun(first.id, 4, STATE))
        assert recorded.outputs == {"answer": [12, ["12A"], 24, None]}
        assert real_calls(ws) == [] and asked == []
        # real: the booking tool is called again (and refuses a seat booked twice), after asking
        real = await _wait(await eng.rerun(first.id, 3, "final_answer(b)", replay="real"))
    finally:
        await eng.close()
    assert asked == [(real.id, 2, "reserve")]
    assert real_calls(ws) == [["price", "1A"], ["reserve", "12A"]]
    assert real.status == "failed" and "already booked" in (real.error or "")
    assert real.rebuild is not None and real.rebuild.mode == "real"
    assert [s.reexecuted for s in real.steps] == [True, True]
    assert real.steps[1].tool_calls[0].error == "ValueError: seat 12A is already booked"


async def test_real_replay_rejected_runs_nothing(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    config = load_config(ws, {"confirm": ["reserve"]}).config

    def approver(handle: RunHandle, step: Step, confirm: list[str]) -> Decision:
        ok = handle.trajectory.relation is None
        return Decision(action="approve" if ok else "reject")

    eng = _engine(ws, tools, tmp_path, config=config, approver=approver)
    try:
        first = await _four_step_run(eng, script, ws)
        reset_calls(ws)
        real = await _wait(await eng.rerun(first.id, 4, STATE, replay="real"))
    finally:
        await eng.close()
    assert real_calls(ws) == [["price", "1A"]]  # step 1 ran for real; step 2 was refused
    assert real.status == "failed" and "not approved" in (real.error or "")


def _diverging(script: Script) -> str:
    """Step 1 asks for a different call every time it runs (the clock is in its argument)."""
    return script(
        [
            code("import time\nstamp = price(str(time.time_ns()))"),
            code("seat = price('3C')"),
            code("final_answer(seat)"),
        ]
    )


@pytest.mark.parametrize("choice", ["stop", "real"])
async def test_divergence_stops_replay_and_asks(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script, choice: str
) -> None:
    prompts: list[str] = []

    def recording(name: str, **kw: Any) -> Any:
        model = make_model(name, **kw)
        inner = model.complete

        async def complete(messages: Any, **more: Any) -> Any:
            prompts.append(messages[1]["content"])
            return await inner(messages, **more)

        model.complete = complete  # type: ignore[method-assign]
        return model

    eng = _engine(ws, tools, tmp_path, model_factory=recording)
    try:
        first = await _wait(await eng.start(RunRequest(task="t", model=_diverging(script))))
        assert first.status == "finished" and len(real_calls(ws)) == 2
        reset_calls(ws)
        prompts.clear()
        handle = await eng.rerun(first.id, 3)
        event = None
        async for ev in handle.subscribe():
            if ev.kind == "awaiting_approval":
                event = ev
                break
        assert event is not None and event.data["wait"] == "replay_diverged"
        assert event.step == 1
        pending = handle.pending_step
        assert pending is not None and pending is handle.trajectory.steps[0]
        assert "call 1 asked for price(seat=" in handle.pending_reason
        rebuild = handle.trajectory.rebuild
        assert rebuild is not None and rebuild.divergence is not None
        assert rebuild.divergence.step == 1 and rebuild.divergence.call == 1
        assert rebuild.choice == "pending"
        assert real_calls(ws) == []  # nothing ran for real while it waits
        if choice == "stop":
            assert handle.reject("no")
        else:
            assert handle.approve()
        traj = await _wait(handle)
    finally:
        await eng.close()
    if choice == "stop":
        assert traj.status == "failed"
        assert "stopped" in (traj.error or "") and "call 1" in (traj.error or "")
        assert real_calls(ws) == []
        assert traj.rebuild is not None and traj.rebuild.choice == "stop"
    else:
        # from the divergent step on, the earlier steps ran for real: step 1 and step 2
        assert [c[0] for c in real_calls(ws)] == ["price", "price"]
        assert real_calls(ws)[1] == ["price", "3C"]
        assert traj.status == "finished" and traj.outputs == {"answer": 12}
        # the model is told where the rebuild diverged and that the rest ran for real
        assert len(prompts) == 1 and "call 1 asked for price(seat=" in prompts[0]
        assert "run again for real" in prompts[0]
        assert traj.rebuild is not None and traj.rebuild.choice == "real"
        assert [(e.index, e.mode, e.status) for e in traj.rebuild.steps] == [
            (1, "real", "ran"),
            (2, "real", "ran"),
        ]
        assert traj.steps[0].status == "ok" and traj.steps[0].reexecuted


async def test_follow_up_live_then_after_forced_eviction(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    eng = _engine(ws, tools, tmp_path)
    try:
        model = script(
            [
                code("seats = reserve('7A')\nfinal_answer(len(seats))"),
                code("final_answer(len(seats) * 10)"),
                code("final_answer(len(seats) * 100)"),
            ]
        )
        first = await _wait(await eng.start(RunRequest(task="book", model=model)))
        assert first.outputs == {"answer": 1} and real_calls(ws) == [["reserve", "7A"]]
        live = await _wait(await eng.follow_up(first.id, "times ten"))
        assert live.outputs == {"answer": 10}
        assert live.rebuild is not None and live.rebuild.session == "live"
        assert eng.evict(live.id)
        assert not eng.evict(live.id)  # nothing left to evict
        rebuilt = await _wait(await eng.follow_up(live.id, "times a hundred"))
    finally:
        await eng.close()
    assert rebuilt.outputs == {"answer": 100}  # not 200: the booking was not made again
    assert real_calls(ws) == [["reserve", "7A"]]
    assert rebuilt.rebuild is not None and rebuilt.rebuild.session == "rebuilt"
    assert "evicted" in rebuilt.rebuild.reason
    assert [(e.run_id, e.index, e.calls) for e in rebuilt.rebuild.steps] == [
        (first.id, 1, 2),  # reserve + final_answer answered from the record
        (live.id, 1, 1),
    ]


async def test_idle_limit_setting_evicts_and_the_follow_up_says_so(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    config = load_config(ws, {"sessions": {"idle_limit": 1}}).config
    eng = _engine(ws, tools, tmp_path, config=config)
    assert eng.max_idle_sessions == 1 and eng.idle_seconds == 900
    try:
        model = script([code("x = reserve('1A')\nfinal_answer(1)"), code("final_answer(x)")])
        one = await _wait(await eng.start(RunRequest(task="a", model=model)))
        await _wait(await eng.start(RunRequest(task="b", model=script([code("final_answer(2)")]))))
        follow = await _wait(await eng.follow_up(one.id, "again"))
    finally:
        await eng.close()
    assert follow.rebuild is not None and follow.rebuild.session == "rebuilt"
    assert "more than 1 idle" in follow.rebuild.reason
    assert follow.outputs == {"answer": ["1A"]}  # the recorded booking, not a second one
    assert real_calls(ws) == [["reserve", "1A"]]


async def test_idle_seconds_zero_never_evicts_and_bad_replay_mode_is_refused(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    eng = _engine(ws, tools, tmp_path, idle_seconds=0)
    try:
        first = await _wait(
            await eng.start(RunRequest(task="a", model=script([code("final_answer(1)")])))
        )
        with pytest.raises(EngineError, match="replay must be one of recorded, real"):
            await eng.rerun(first.id, 1, replay="again")  # type: ignore[arg-type]
    finally:
        await eng.close()


async def test_idle_time_eviction_is_reported(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    """The idle timer's check, driven by the session's clock instead of a sleep."""
    eng = _engine(ws, tools, tmp_path, idle_seconds=60)
    try:
        model = script([code("x = reserve('2D')\nfinal_answer(1)"), code("final_answer(x)")])
        first = await _wait(await eng.start(RunRequest(task="a", model=model)))
        session = eng._sessions[first.id]
        eng._evict_idle()
        assert eng._sessions.get(first.id) is session  # not idle long enough yet
        session.last_used -= 120
        eng._evict_idle()
        assert first.id not in eng._sessions
        follow = await _wait(await eng.follow_up(first.id, "again"))
    finally:
        await eng.close()
    assert follow.rebuild is not None and follow.rebuild.session == "rebuilt"
    assert follow.rebuild.reason == "evicted: idle for more than 60s"
    assert follow.outputs == {"answer": ["2D"]} and real_calls(ws) == [["reserve", "2D"]]


async def test_rerun_with_edited_code_calling_a_confirm_tool_asks(
    ws: Path, tools: ToolHost, tmp_path: Path, script: Script
) -> None:
    config = load_config(ws, {"confirm": ["reserve"]}).config
    asked: list[tuple[str, int]] = []

    def approver(handle: RunHandle, step: Step, confirm: list[str]) -> Decision:
        asked.append((handle.id, step.index))
        return Decision(action="approve")

    eng = _engine(ws, tools, tmp_path, config=config, approver=approver)
    try:
        first = await _four_step_run(eng, script, ws)
        asked.clear()
        reset_calls(ws)
        rerun = await _wait(await eng.rerun(first.id, 2, "b = reserve('13B')\nfinal_answer(b)"))
    finally:
        await eng.close()
    assert asked == [(rerun.id, 2)]  # the edited step calls reserve: a fresh approval first
    assert real_calls(ws) == [["reserve", "13B"]]
    assert rerun.outputs == {"answer": ["12A", "14C", "13B"]}  # the host's own state goes on
