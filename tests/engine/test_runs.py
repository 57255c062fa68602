"""End-to-end runs: scripted model, real tool host on the example workspace, real sandboxes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from engine_helpers import EXAMPLE, Script, code

from codeact_lsp.engine import Decision, Engine, RunEvent, RunHandle, RunRequest
from codeact_lsp.trajectory import Trajectory

QUOTE_TASK = "What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?"


async def _until(handle: RunHandle, kind: str) -> RunEvent:
    async for event in handle.subscribe():
        if event.kind == kind:
            return event
    raise AssertionError(f"run ended ({handle.trajectory.status}) without a {kind} event")


async def _wait(handle: RunHandle) -> Trajectory:
    return await asyncio.wait_for(handle.wait(), timeout=30)


async def test_example_quote_finishes_with_76_9(engine: Engine, tmp_path: Path) -> None:
    model = f"scripted:{EXAMPLE / 'replies' / 'quote.json'}"
    handle = await engine.start(RunRequest(task=QUOTE_TASK, model=model))
    traj = await _wait(handle)
    assert traj.status == "finished", traj.error
    assert traj.outputs == {"answer": 76.9}
    assert traj.scripted is True
    assert [s.status for s in traj.steps] == ["ok", "ok"]
    assert [c.name for c in traj.steps[0].tool_calls] == ["price_of", "stock_level"]
    call = traj.steps[0].tool_calls[0]
    assert call.args == {"sku": "SKU-42"} and call.result == {"usd": 25.0, "kg": 0.8}
    assert call.line == 1
    assert traj.steps[1].final and traj.steps[1].tool_calls[-1].name == "final_answer"
    assert traj.sandbox.backend
    # the run file is the same trajectory
    saved = Trajectory.model_validate_json((tmp_path / "runs" / f"{traj.id}.json").read_text())
    assert saved.status == "finished" and saved.outputs == {"answer": 76.9}
    # the program: one async function over both steps, the tools imported
    program = handle.program()
    assert traj.program == program
    assert "from tools import convert_currency, price_of, shipping_quote, stock_level" in program
    assert "await shipping_quote(" in program and "asyncio.run" not in program
    kinds = [e.kind for e in [e async for e in handle.subscribe()]]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert {"step_proposed", "executing", "tool_called", "step_finished"} <= set(kinds)


async def test_one_step_typed_signature_and_inputs(engine: Engine, script: Script) -> None:
    model = script([code("final_answer(total=n * 2, unit='EUR')")])
    handle = await engine.start(
        RunRequest(
            task="double it",
            signature="n: int -> total: int, unit: str",
            inputs={"n": 21},
            model=model,
        )
    )
    traj = await _wait(handle)
    assert traj.status == "finished" and traj.outputs == {"total": 42, "unit": "EUR"}
    assert len(traj.steps) == 1
    assert "def double(n: int) -> DoubleResult:" in handle.program()


async def test_error_then_recovery_reports_line_and_tool_error(
    engine: Engine, script: Script
) -> None:
    model = script(
        [
            code("x = 1\nitem = price_of('SKU-999')"),
            code("item = price_of('SKU-42')\nfinal_answer(item['usd'])"),
        ]
    )
    traj = await _wait(await engine.start(RunRequest(task="price", model=model)))
    assert traj.status == "finished" and traj.outputs == {"answer": 25.0}
    first = traj.steps[0]
    assert first.status == "error" and first.error is not None
    assert first.error.type == "KeyError" and first.error.line == 2
    assert first.tool_calls[0].error and first.tool_calls[0].error.startswith("KeyError")
    assert first.tool_calls[0].error_detail is not None
    # the program keeps only what succeeded
    assert "SKU-999" not in (traj.program or "")


async def test_final_answer_wrong_type_is_a_step_error_the_model_fixes(
    engine: Engine, script: Script
) -> None:
    model = script([code("final_answer(total='lots')"), code("final_answer(total=76.9)")])
    traj = await _wait(
        await engine.start(RunRequest(task="t", signature="task -> total: float", model=model))
    )
    assert traj.status == "finished" and traj.outputs == {"total": 76.9}
    err = traj.steps[0].error
    assert traj.steps[0].status == "error" and err is not None
    assert "must be float" in err.message and err.line == 1


async def test_reply_without_code_tells_the_model_how_to_act(
    engine: Engine, script: Script
) -> None:
    model = script(["I think the answer is 4.", code("final_answer(4)")])
    traj = await _wait(await engine.start(RunRequest(task="2+2", model=model)))
    assert [s.status for s in traj.steps] == ["no_code", "ok"]
    assert traj.status == "finished"


async def test_budget_spent_is_max_iters(engine: Engine, script: Script) -> None:
    model = script([code("a = 1"), code("b = 2"), code("c = 3")])
    traj = await _wait(await engine.start(RunRequest(task="t", model=model, max_iters=2)))
    assert traj.status == "max_iters" and traj.outputs is None and len(traj.steps) == 2


async def test_cancel_mid_step_interrupts_the_sandbox(engine: Engine, script: Script) -> None:
    model = script([code("import time\ntime.sleep(60)")])
    handle = await engine.start(RunRequest(task="t", model=model))
    await _until(handle, "executing")
    assert handle.cancel()
    traj = await _wait(handle)
    assert traj.status == "cancelled"
    assert traj.steps[0].status == "cancelled"
    assert not handle.cancel()  # already over


async def test_review_mode_approve_edit_reject(engine: Engine, script: Script) -> None:
    model = script([code("a = 1"), code("b = 2"), code("final_answer(a + b + c)")])
    handle = await engine.start(RunRequest(task="t", model=model, approval="review"))
    event = await _until(handle, "awaiting_approval")
    assert event.step == 1 and handle.trajectory.status == "awaiting_approval"
    assert handle.pending_step is not None and handle.pending_step.code == "a = 1"
    assert handle.approve()
    # step 2: rejected with feedback (goes to the model)
    while handle.pending_step is None or handle.pending_step.index != 2:
        await _next(handle)
    assert handle.reject("use c instead")
    while handle.pending_step is None or handle.pending_step.index != 3:
        await _next(handle)
    # step 3: approved with edited code
    assert handle.approve("c = 10\nfinal_answer(a + c)")
    traj = await _wait(handle)
    assert traj.status == "finished" and traj.outputs == {"answer": 11}
    assert [s.status for s in traj.steps] == ["ok", "rejected", "ok"]
    assert traj.steps[1].feedback == "use c instead"
    assert traj.steps[2].edited and traj.steps[2].code.startswith("c = 10")
    assert not handle.approve()  # nothing waits any more


async def _next(handle: RunHandle) -> None:
    """Wait for the next awaiting_approval event (new subscription: only live events)."""
    async for event in handle.subscribe(replay=False):
        if event.kind == "awaiting_approval":
            return
    raise AssertionError("run ended")


async def test_confirm_tool_waits_even_in_auto_mode(engine: Engine, script: Script) -> None:
    model = script([code("left = reserve('SKU-42', 1)\nfinal_answer(left)")])
    handle = await engine.start(RunRequest(task="reserve one", model=model, approval="auto"))
    event = await _until(handle, "awaiting_approval")
    assert event.data["confirm_tools"] == ["reserve"]
    assert handle.trajectory.steps[0].tool_calls == []  # nothing ran yet
    handle.approve()
    traj = await _wait(handle)
    assert traj.status == "finished" and isinstance(traj.outputs["answer"], int)  # type: ignore[index]


async def test_approver_hook_decides_without_a_person(
    workspace: Path, config: object, host: object, tmp_path: Path, script: Script
) -> None:
    seen: list[list[str]] = []

    def approver(handle: RunHandle, step: object, tools: list[str]) -> Decision:
        seen.append(tools)
        return Decision(action="reject", feedback="no reservations")

    eng = Engine(config, host, workspace=workspace, runs_dir=None, approver=approver)  # type: ignore[arg-type]
    try:
        model = script([code("reserve('SKU-42', 1)"), code("final_answer('skipped')")])
        traj = await _wait(await eng.start(RunRequest(task="t", model=model)))
    finally:
        await eng.close()
    assert seen == [["reserve"]]
    assert traj.status == "finished" and traj.steps[0].status == "rejected"


async def test_follow_up_reuses_sandbox_state(engine: Engine, script: Script) -> None:
    model = script([code("secret = 41\nfinal_answer(secret)"), code("final_answer(secret + 1)")])
    first = await _wait(await engine.start(RunRequest(task="set it", model=model)))
    assert first.outputs == {"answer": 41}
    follow = await engine.follow_up(first.id, "add one")
    traj = await _wait(follow)
    assert traj.status == "finished" and traj.outputs == {"answer": 42}
    assert traj.parent == first.id
    assert "secret = 41" in follow.program() and "return secret + 1" in follow.program()


async def test_rerun_from_step_2_with_edited_code(engine: Engine, script: Script) -> None:
    model = script([code("a = 5"), code("final_answer(a * 2)")])
    first = await _wait(await engine.start(RunRequest(task="t", model=model)))
    assert first.outputs == {"answer": 10}
    rerun = await engine.rerun(first.id, 2, "final_answer(a * 3)")
    traj = await _wait(rerun)
    assert traj.status == "finished" and traj.outputs == {"answer": 15}
    assert traj.parent == first.id and len(traj.steps) == 2
    assert traj.steps[1].edited and traj.steps[0].code == "a = 5"
    assert rerun.id != first.id


async def test_two_runs_in_parallel(engine: Engine, script: Script) -> None:
    slow = code("import time\ntime.sleep(0.2)\nx = price_of('SKU-42')['usd']")
    h1 = await engine.start(RunRequest(task="a", model=script([slow, code("final_answer(x)")])))
    h2 = await engine.start(RunRequest(task="b", model=script([slow, code("final_answer(x + 1)")])))
    t1, t2 = await asyncio.gather(_wait(h1), _wait(h2))
    assert (t1.outputs, t2.outputs) == ({"answer": 25.0}, {"answer": 26.0})
    assert h1.session is not h2.session


async def test_model_errors_429_then_success_timeout_and_exhaustion(
    engine: Engine, script: Script
) -> None:
    flaky = script([{"error": "rate_limit", "retry_after": 0.001}, code("final_answer(1)")])
    ok = await _wait(await engine.start(RunRequest(task="t", model=flaky)))
    assert ok.status == "finished"
    engine.retry = engine.retry.model_copy(update={"timeout": 0.05, "retries": 1})
    slow = script([{"reply": code("final_answer(1)"), "delay": 30}] * 2)
    timed_out = await _wait(await engine.start(RunRequest(task="t", model=slow)))
    assert timed_out.status == "failed" and "timeout" in (timed_out.error or "")
    short = script([code("x = 1")])
    exhausted = await _wait(await engine.start(RunRequest(task="t", model=short)))
    assert exhausted.status == "failed" and "ran out of replies" in (exhausted.error or "")


async def test_request_errors_are_raised_at_start(engine: Engine, script: Script) -> None:
    import pytest

    from codeact_lsp.engine import EngineError

    with pytest.raises(EngineError, match="->"):
        await engine.start(RunRequest(task="t", signature="nonsense", model=script([])))
    with pytest.raises(EngineError, match="not found"):
        await engine.start(RunRequest(task="t", model="scripted:nowhere.json"))
    with pytest.raises(EngineError, match="no run"):
        await engine.follow_up("20990101-000000-aaaaaa", "x")


async def test_runs_dir_none_keeps_nothing_on_disk(
    workspace: Path, config: object, host: object, tmp_path: Path, script: Script
) -> None:
    eng = Engine(config, host, workspace=None, runs_dir=None)  # type: ignore[arg-type]
    try:
        traj = await _wait(
            await eng.start(RunRequest(task="t", model=script([code("final_answer(3)")])))
        )
        assert traj.status == "finished"
        assert eng.load(traj.id) is traj
    finally:
        await eng.close()
    assert not (tmp_path / "runs").exists()
    json.dumps(traj.model_dump(mode="json"))


async def test_follow_up_after_restart_replays_the_session(
    workspace: Path, config: object, host: object, tmp_path: Path, script: Script
) -> None:
    runs = tmp_path / "persisted"
    first_engine = Engine(config, host, workspace=workspace, runs_dir=runs)  # type: ignore[arg-type]
    try:
        model = script([code("base = 40\nfinal_answer(base)"), code("final_answer(base + 2)")])
        first = await _wait(await first_engine.start(RunRequest(task="set", model=model)))
    finally:
        await first_engine.close()
    # a new process (engine) knows the run only from its file: the state is rebuilt by replay
    second_engine = Engine(config, host, workspace=workspace, runs_dir=runs)  # type: ignore[arg-type]
    try:
        traj = await _wait(await second_engine.follow_up(first.id, "add two"))
    finally:
        await second_engine.close()
    assert traj.status == "finished" and traj.outputs == {"answer": 42}


async def test_optional_extraction_call_and_streamed_deltas(
    workspace: Path, config: object, host: object, script: Script
) -> None:
    eng = Engine(
        config,  # type: ignore[arg-type]
        host,  # type: ignore[arg-type]
        workspace=workspace,
        runs_dir=None,
        extract_on_max_iters=True,
        stream=True,
    )
    try:
        model = script([code("found = 7"), code("final_answer(found)")])
        handle = await eng.start(RunRequest(task="t", model=model, max_iters=1))
        traj = await _wait(handle)
    finally:
        await eng.close()
    assert traj.status == "finished" and traj.outputs == {"answer": 7}
    assert len(traj.steps) == 2 and getattr(traj.steps[1], "extracted", False)
    deltas = [e for e in [e async for e in handle.subscribe()] if e.kind == "model_delta"]
    assert "found = 7" in deltas[0].data["text"]


async def test_rerun_replays_failed_steps_faithfully(engine: Engine, script: Script) -> None:
    model = script([code("a = 2\nboom()"), code("b = 3"), code("final_answer(a + b)")])
    first = await _wait(await engine.start(RunRequest(task="t", model=model)))
    assert first.outputs == {"answer": 5} and first.steps[0].status == "error"
    rerun = await _wait(await engine.rerun(first.id, 3, "final_answer(a * b)"))
    assert rerun.status == "finished" and rerun.outputs == {"answer": 6}
    assert [getattr(s, "replayed", False) for s in rerun.steps] == [True, True, False]


async def test_pydantic_signature_through_a_run_and_its_follow_up(
    engine: Engine, script: Script
) -> None:
    from pydantic import BaseModel

    class Quote(BaseModel):
        """Quote a price."""

        total: float
        currency: str

    model = script(
        [
            code("final_answer(total='76.9', currency='EUR')"),
            code("final_answer(total='n/a', currency='EUR')"),
            code("final_answer(total=1, currency='EUR')"),
        ]
    )
    first = await _wait(await engine.start(RunRequest(task="quote", signature=Quote, model=model)))
    assert first.outputs == {"total": 76.9, "currency": "EUR"}
    follow = await _wait(await engine.follow_up(first.id, "again"))
    assert [s.status for s in follow.steps] == ["error", "ok"]  # still typed: 'n/a' is no float
    assert follow.outputs == {"total": 1.0, "currency": "EUR"}


async def test_garbage_replies_become_no_code_steps(engine: Engine, script: Script) -> None:
    garbage = ["\x00\x01 ``` }{ <execute>", "", '```json\n{"answer": 1}\n```']
    model = script([*garbage, code("final_answer(1)")])
    traj = await _wait(await engine.start(RunRequest(task="t", model=model, max_iters=5)))
    assert [s.status for s in traj.steps] == ["no_code", "no_code", "no_code", "ok"]
    assert traj.status == "finished"
