"""Run commands: start a run, follow it up or re-run it, look at it, cancel or discard it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from codeact_lsp.lsp import accept as acc
from codeact_lsp.lsp.args import FollowUpArgs, ListRunsArgs, RerunArgs, RunArgs, RunIdArgs
from codeact_lsp.lsp.commands.common import CommandError, engine, engine_call, engine_mod
from codeact_lsp.lsp.commands.registry import command
from codeact_lsp.lsp.replies import (
    CommandRef,
    DiscardReply,
    RestoreReply,
    RunList,
    RunStarted,
    RunSummary,
    StatusReply,
    StepReply,
)
from codeact_lsp.lsp.run_docs import EditorRun
from codeact_lsp.lsp.run_state import run_state
from codeact_lsp.lsp.trajectory_view import step_markdown
from codeact_lsp.trajectory import Target, Trajectory

if TYPE_CHECKING:
    from codeact_lsp.engine import RunHandle
    from codeact_lsp.lsp.state import ServerState


def _snapshot_target(state: ServerState, args: RunArgs) -> tuple[Target | None, str | None]:
    """Where Accept will write, as the user sees it now (and the whole document, to compare)."""
    if not args.uri:
        return None, None
    doc = state.doc_state(args.uri)
    raw_range = args.range.model_dump() if args.range else None
    rng = acc.to_range(raw_range)
    return (
        Target(
            uri=args.uri,
            range=raw_range,
            version=doc.version,
            text=acc.range_text(doc.text, rng),
        ),
        doc.text,
    )


@command("codeact.run")
async def run(state: ServerState, args: RunArgs) -> RunStarted:
    state.workspace.require_root()
    target, start_text = _snapshot_target(state, args)  # as the user sees it now
    eng = await engine(state)
    # The contract's camelCase `maxIters` is the engine's `max_iters`; the other keys match.
    asked = args.model_dump(include={"task", "signature", "inputs", "model", "approval"})
    request = engine_mod().RunRequest(**asked, max_iters=args.maxIters, target=target)
    handle = await engine_call(eng.start(request))
    rs = state.runs.register(handle, target, start_text)
    return RunStarted(runId=rs.id, trajectoryUri=rs.uri)


@command("codeact.getRun")
def get_run(state: ServerState, args: RunIdArgs) -> Trajectory:
    rs = state.runs.need(args.runId)
    traj = rs.trajectory()
    assert traj is not None
    state.runs.write_doc(rs)  # the document never lags behind what getRun reports
    return traj


@command("codeact.showStep")
def show_step(state: ServerState, args: RerunArgs) -> StepReply:
    rs = state.runs.need(args.runId)
    traj = rs.trajectory()
    assert traj is not None
    for step in traj.steps:
        if step.index == args.step:
            return StepReply(step=step, markdown=step_markdown(step))
    raise CommandError(f"run {rs.id} has no step {args.step} (it has {len(traj.steps)})")


@command("codeact.listRuns")
async def list_runs(state: ServerState, args: ListRunsArgs) -> RunList:
    known = state.runs
    root = state.workspace.root
    if root is not None:
        store = known.store(root)
        # Reading and validating many stored runs is slow: off the event loop.
        stored = [i for i in store.list_ids() if i not in known.runs]
        loaded = await asyncio.to_thread(lambda: [(i, store.load(i)) for i in stored])
        for run_id, traj in loaded:
            if traj is not None:
                known.adopt(root, run_id, traj)
    # The shape `codeact/runState` pushes (see run_state): a view starts here and follows pushes.
    runs: list[RunSummary] = []
    for rs in known.runs.values():
        current = run_state(rs, state.push.tool_of(rs.id))
        if current is None or (rs.discarded and not args.includeDiscarded):
            continue
        runs.append(current)
    runs.sort(key=lambda r: r.updatedAt)
    return RunList(runs=runs)


@command("codeact.cancel")
async def cancel(state: ServerState, args: RunIdArgs) -> StatusReply:
    rs = state.runs.need(args.runId)
    traj = rs.trajectory()
    assert traj is not None
    if traj.done:
        return StatusReply(status=traj.status)
    handle = state.runs.need_live(rs, "cancel it")
    handle.cancel()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(handle.wait()), 5)
    return StatusReply(status=handle.trajectory.status)


@command("codeact.discard")
async def discard(state: ServerState, args: RunIdArgs) -> DiscardReply:
    """Discard a run: cancelled if live, marked in its run file (so a restart, `codeact runs`
    and the API agree), its document deleted and its diagnostics cleared. `codeact.restore`
    undoes it; the answer carries that command for an "Undo" button."""
    runs = state.runs
    rs = runs.need(args.runId)
    eng = await engine(state)
    rs.updated(await engine_call(_sync(eng.discard, rs.id)))
    with contextlib.suppress(OSError):
        rs.path.unlink()  # the rendered document; the run file stays, marked, for restore
    rs.rendered = None
    if runs.last_run_id == rs.id:
        runs.last_run_id = None
    state.push.changed(rs, now=True)
    state.refresh.schedule(rs.uri, *state.workspace.tool_file_uris())
    return DiscardReply(
        discarded=True,
        closeDocument=rs.uri,
        undo=CommandRef(
            title="Undo discard", command="codeact.restore", arguments=[{"runId": rs.id}]
        ),
    )


@command("codeact.restore")
async def restore(state: ServerState, args: RunIdArgs) -> RestoreReply:
    """Bring a discarded run back: listed again, its document written again."""
    runs = state.runs
    rs = runs.find(args.runId)
    if rs is None:
        runs.need(args.runId)  # raises the usual "no run" error
        raise AssertionError("unreachable")
    eng = await engine(state)
    rs.updated(await engine_call(_sync(eng.restore, rs.id)))
    runs.write_doc(rs, force=True)
    state.push.changed(rs, now=True)
    state.refresh.schedule(rs.uri, *state.workspace.tool_file_uris())
    return RestoreReply(restored=True, runId=rs.id, trajectoryUri=rs.uri)


async def _sync(fn: Callable[[str], Trajectory], run_id: str) -> Trajectory:
    return fn(run_id)


def _derived(state: ServerState, rs: EditorRun, handle: RunHandle) -> RunStarted:
    new = state.runs.register(handle, rs.target, rs.start_text)
    return RunStarted(runId=new.id, trajectoryUri=new.uri)


@command("codeact.rerun")
async def rerun(state: ServerState, args: RerunArgs) -> RunStarted:
    rs = state.runs.need(args.runId)
    traj = rs.trajectory()
    assert traj is not None
    if not any(s.index == args.step for s in traj.steps):
        raise CommandError(f"run {rs.id} has no step {args.step} (it has {len(traj.steps)})")
    code = args.code if args.code is not None else state.runs.edited_code(rs, args.step)
    eng = await engine(state)
    handle = await engine_call(eng.rerun(rs.id, args.step, code, replay=args.replay))
    return _derived(state, rs, handle)


@command("codeact.followUp")
async def follow_up(state: ServerState, args: FollowUpArgs) -> RunStarted:
    rs = state.runs.need(args.runId)
    eng = await engine(state)
    handle = await engine_call(eng.follow_up(rs.id, args.task, replay=args.replay))
    return _derived(state, rs, handle)
