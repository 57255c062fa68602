"""`codeact/runState`: run state pushed to a client that asked for it, so the editor never polls.

A real server over stdio (pytest-lsp), the quickstart tools in a real tool host and sandbox, the
scripted model. The client opts in with `initializationOptions.runStateNotifications`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from .conftest import (
    SERVER,
    EditorClient,
    code_reply,
    initialize_params,
    plain,
    start_client,
    stop_client,
    write_replies,
)

QUOTE = "scripted:replies/quote.json"
KEYS = {
    "runId",
    "task",
    "status",
    "trajectoryUri",
    "steps",
    "currentStep",
    "tool",
    "pendingStep",
    "createdAt",
    "updatedAt",
    "answer",
    "error",
    "maxIters",
    "accepted",
    "discarded",
    "live",
    "parent",
}


def _plain(value: Any) -> Any:
    """pygls hands custom notifications' params over as nested namedtuples."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return plain(value)


class Pushed:
    """The `codeact/runState` notifications a client received, per run."""

    def __init__(self, client: EditorClient) -> None:
        self.states: list[dict[str, Any]] = []
        self.client = client

        @client.feature("codeact/runState")  # type: ignore[untyped-decorator]
        def on_state(params: Any) -> None:
            self.states.append(_plain(params))

    def of(self, run_id: str) -> list[dict[str, Any]]:
        return [s for s in self.states if s["runId"] == run_id]

    async def until(self, run_id: str, pred: Any, what: str) -> dict[str, Any]:
        await self.client.until(lambda: any(pred(s) for s in self.of(run_id)), what)
        return next(s for s in self.of(run_id) if pred(s))


async def opted_in(ws: Path) -> tuple[EditorClient, Pushed]:
    client = SERVER.client_factory()
    assert isinstance(client, EditorClient)
    pushed = Pushed(client)
    await client.start_io(*SERVER.server_command, env=SERVER.server_env)
    client.workspace = ws
    client.set_configuration({"maxIters": 6}, section="codeact")
    params = initialize_params(ws)
    params.initialization_options = {"runStateNotifications": True}
    await client.initialize_session(params)
    return client, pushed


@pytest.fixture
async def pushing(workspace: Path) -> AsyncIterator[tuple[EditorClient, Pushed]]:
    client, pushed = await opted_in(workspace)
    try:
        yield client, pushed
    finally:
        await stop_client(client)


async def test_a_run_pushes_its_states_to_the_end_without_work_done_progress(
    pushing: tuple[EditorClient, Pushed],
) -> None:
    client, pushed = pushing
    started = await client.command(
        "codeact.run", {"task": "Quote 3 × SKU-42 to DE", "model": QUOTE}
    )
    run_id = started["runId"]
    final = await pushed.until(run_id, lambda s: s["status"] == "finished", "the finished state")
    states = pushed.of(run_id)
    first = states[0]
    assert set(first) == KEYS
    assert first["status"] == "running" and first["task"] == "Quote 3 × SKU-42 to DE"
    assert first["trajectoryUri"] == started["trajectoryUri"]
    assert first["live"] is True and first["createdAt"] > 0
    # states come in order (bursts are coalesced, so how many is not fixed)
    assert [s["steps"] for s in states] == sorted(s["steps"] for s in states)
    assert final == states[-1], "nothing after the final state"
    assert final["answer"] == {"answer": 76.9}
    assert final["steps"] == 2 and final["currentStep"] is None and final["tool"] is None
    # the client shows its own progress from these states: no work-done progress for the run
    assert client.progress_for("codeact-run-") == []
    # listRuns answers with the same shape, so a view can start from it
    listed = await client.command("codeact.listRuns", {})
    assert [r for r in listed["runs"] if r["runId"] == run_id] == [final]


async def test_waiting_approval_cancel_and_discard_are_pushed(
    pushing: tuple[EditorClient, Pushed],
) -> None:
    client, pushed = pushing
    model = write_replies(
        client.workspace,
        "push-review",
        [code_reply('item = price_of("SKU-42")'), code_reply("final_answer(item['usd'])")],
    )
    started = await client.command(
        "codeact.run", {"task": "Price of SKU-42", "model": model, "approval": "review"}
    )
    run_id = started["runId"]
    waiting = await pushed.until(
        run_id, lambda s: s["status"] == "awaiting_approval", "the run to wait for approval"
    )
    assert waiting["pendingStep"] == 1 and waiting["currentStep"] == 1
    await client.command("codeact.approve", {"runId": run_id})
    second = await pushed.until(
        run_id,
        lambda s: s["status"] == "awaiting_approval" and s["pendingStep"] == 2,
        "step 2 to wait",
    )
    assert second["currentStep"] == 2 and second["steps"] == 2 and second["tool"] is None
    await client.command("codeact.cancel", {"runId": run_id})
    cancelled = await pushed.until(run_id, lambda s: s["status"] == "cancelled", "cancelled")
    assert cancelled["currentStep"] is None
    await client.command("codeact.discard", {"runId": run_id})
    gone = await pushed.until(run_id, lambda s: s["discarded"], "the discard")
    assert gone["status"] == "cancelled"


async def test_accept_is_pushed(pushing: tuple[EditorClient, Pushed]) -> None:
    client, pushed = pushing
    target = client.workspace / "push_target.py"
    target.write_text("# here\n", encoding="utf-8")
    uri = client.open(target)
    started = await client.command(
        "codeact.run",
        {
            "task": "Quote",
            "model": QUOTE,
            "uri": uri,
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
        },
    )
    run_id = started["runId"]
    await pushed.until(run_id, lambda s: s["status"] == "finished", "finished")
    applied = await client.command("codeact.accept", {"runId": run_id})
    assert applied["applied"] is True, applied
    await pushed.until(run_id, lambda s: s["accepted"], "the accepted state")


async def test_a_client_that_did_not_ask_gets_no_run_state(workspace: Path) -> None:
    client = await start_client(workspace)
    pushed = Pushed(client)
    try:
        started = await client.command("codeact.run", {"task": "Quote", "model": QUOTE})
        await client.run_until(started["runId"], {"finished"})
        # its work-done progress ends when the run does; by then any push would have been sent
        await client.until(
            lambda: any(
                isinstance(r, lsp.WorkDoneProgressEnd) for r in client.progress_for("codeact-run-")
            ),
            "the run's progress to end",
        )
        await asyncio.sleep(0)  # let already-received notifications be dispatched
        assert pushed.states == []
    finally:
        await stop_client(client)


def test_the_tool_being_called_is_the_last_one_the_running_step_called(tmp_path: Path) -> None:
    """`tool` follows the run's events: set by a call, cleared when the step ends or the model
    writes; `final_answer` is how a step ends, not a tool."""
    from types import SimpleNamespace

    from codeact_lsp.lsp.run_docs import EditorRun
    from codeact_lsp.lsp.run_state import RunStatePusher, run_state
    from codeact_lsp.trajectory import Step, Trajectory

    traj = Trajectory(id="r1", task="t", status="running", steps=[Step(index=1, status="running")])
    rs = EditorRun(
        id="r1",
        path=tmp_path / "r1.py",
        uri="file:///r1.py",
        handle=SimpleNamespace(trajectory=traj),
    )
    pusher = RunStatePusher(SimpleNamespace(server=SimpleNamespace(init_options=None)))  # type: ignore[arg-type]
    assert not pusher.enabled
    seen = []
    for kind, name in [
        ("executing", None),
        ("tool_called", "price_of"),
        ("tool_called", "convert_currency"),
        ("tool_called", "final_answer"),
        ("tool_called", "shipping_quote"),
        ("step_finished", None),
    ]:
        pusher.on_event(rs, SimpleNamespace(kind=kind, data={"name": name} if name else {}))
        state = run_state(rs, pusher.tool_of("r1"))
        assert state is not None
        seen.append(state.tool)
    assert seen == [None, "price_of", "convert_currency", None, "shipping_quote", None]
    assert run_state(rs, "price_of").currentStep == 1  # type: ignore[union-attr]
    traj.status = "finished"
    done = run_state(rs, "price_of")
    assert done is not None and done.tool is None and done.currentStep is None
