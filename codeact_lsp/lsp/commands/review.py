"""Review commands: approve or reject the step a run waits on; preview and apply Accept.

Nothing is written to a user's file before Accept, and Accept is a versioned edit that the
editor refuses if the document changed meanwhile (the plan comes from `lsp.accept`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from codeact_lsp.lsp import accept as acc
from codeact_lsp.lsp.args import AcceptArgs, ApproveArgs, Position, Range, RejectArgs
from codeact_lsp.lsp.commands.common import CommandError, engine, engine_call
from codeact_lsp.lsp.commands.registry import command
from codeact_lsp.lsp.document import path_to_uri, uri_to_path
from codeact_lsp.lsp.replies import AcceptPreview, AcceptReply, ApproveReply, RejectReply
from codeact_lsp.lsp.run_docs import EditorRun
from codeact_lsp.trajectory import Acceptance

if TYPE_CHECKING:
    from codeact_lsp.engine import RunHandle
    from codeact_lsp.lsp.state import ServerState


def _need_waiting(state: ServerState, rs: EditorRun, what: str) -> RunHandle:
    handle = state.runs.need_live(rs, what)
    status = handle.trajectory.status
    if status != "awaiting_approval":
        raise CommandError(
            f"run {rs.id} is {status}, not waiting for approval: nothing to {what}"
            + (' (set approval to "review" to approve each step)' if status == "running" else "")
        )
    return handle


def _pending_step(handle: RunHandle) -> int | None:
    for step in reversed(handle.trajectory.steps):
        if step.status == "awaiting_approval":
            return int(step.index)
    return None


@command("codeact.approve")
async def approve(state: ServerState, args: ApproveArgs) -> ApproveReply:
    rs = state.runs.need(args.runId)
    handle = _need_waiting(state, rs, "approve")
    code = args.code
    pending = _pending_step(handle)
    if code is None and pending is not None:
        code = state.runs.edited_code(rs, pending)
    if pending is not None:
        rs.overrides.pop(pending, None)
    handle.approve(code)
    state.runs.changed(rs)
    return ApproveReply(status=handle.trajectory.status, step=pending, edited=code is not None)


@command("codeact.reject")
async def reject(state: ServerState, args: RejectArgs) -> RejectReply:
    rs = state.runs.need(args.runId)
    handle = _need_waiting(state, rs, "reject")
    pending = _pending_step(handle)
    if pending is not None:
        rs.overrides.pop(pending, None)
    handle.reject(args.feedback)
    state.runs.changed(rs)
    return RejectReply(status=handle.trajectory.status, step=pending)


def _program(rs: EditorRun) -> str:
    program: str = ""
    if rs.handle is not None:
        program = rs.handle.program()
    else:
        traj = rs.trajectory()
        program = (traj.program or "") if traj is not None else ""
    if program.strip():
        return program
    raise CommandError(f"run {rs.id} has no program to accept: none of its steps ran successfully")


def _plan(state: ServerState, rs: EditorRun, mode: str, new_file_uri: str | None) -> acc.Plan:
    traj = rs.trajectory()
    assert traj is not None
    if traj.status != "finished":
        raise CommandError(
            f"run {rs.id} is {traj.status}: only a finished run can be accepted"
            + (" — wait for it, or cancel it" if not traj.done else "")
        )
    program = _program(rs)
    target = rs.target or traj.target
    if mode == "newFile" or target is None:
        return acc.plan_new_file(program, new_file_uri or _new_file_uri(state, rs))
    target_path = uri_to_path(target.uri)
    if state.open_doc(target.uri) is None and target_path is not None and not target_path.exists():
        return acc.plan_new_file(program, target.uri)  # the target was never saved
    current = state.doc_state(target.uri)
    if mode == "insertAtEnd":
        return acc.plan_insert_at_end(program, current)
    return acc.plan_at_target(
        program, current, acc.to_range(target.range), rs.start_text, target.text
    )


def _new_file_uri(state: ServerState, rs: EditorRun) -> str:
    root = state.workspace.require_root()
    for n in range(1000):
        name = f"codeact_{rs.id}.py" if n == 0 else f"codeact_{rs.id}_{n}.py"
        if not (root / name).exists():
            return path_to_uri(root / name)
    raise CommandError("cannot find a free file name for the new file; pass newFileUri")


@command("codeact.acceptPreview")
def accept_preview(state: ServerState, args: AcceptArgs) -> AcceptPreview:
    rs = state.runs.need(args.runId)
    plan = _plan(state, rs, args.mode, args.newFileUri)
    return _plan_json(plan, _program(rs))


@command("codeact.accept")
async def accept(state: ServerState, args: AcceptArgs) -> AcceptReply:
    rs = state.runs.need(args.runId)
    # once the accepted text is gone (undone, edited away) Accept is offered again
    if state.runs.acceptance_state(rs) == "applied" and args.mode == "target":
        return AcceptReply(
            applied=False,
            reason=f"run {rs.id} was already accepted; to insert its program again, "
            'use mode "insertAtEnd" or "newFile"',
            alternatives=acc.ALTERNATIVES,
        )
    plan = _plan(state, rs, args.mode, args.newFileUri)
    if not plan.ok:
        return AcceptReply(applied=False, reason=plan.reason, alternatives=acc.ALTERNATIVES)
    if not state.client.apply_edit:
        return AcceptReply(
            applied=False,
            reason="this client cannot apply workspace edits; use codeact.acceptPreview",
        )
    result = await state.server.workspace_apply_edit_async(
        lsp.ApplyWorkspaceEditParams(
            edit=acc.workspace_edit(plan), label=f"CodeAct: accept run {rs.id}"
        )
    )
    if not result.applied:
        return AcceptReply(
            applied=False,
            reason=result.failure_reason
            or "the editor refused the edit (the document probably changed meanwhile)",
            alternatives=acc.ALTERNATIVES,
        )
    inserted = _range_json(_inserted_range(plan))
    acceptance = Acceptance(
        uri=plan.uri,
        range=inserted.model_dump() if inserted is not None else None,
        text=plan.new_text,
        version=plan.version + 1 if plan.version is not None else None,
        at=time.time(),
        mode=args.mode,
    )
    eng = await engine(state)
    rs.updated(await engine_call(_mark_accepted(eng, rs.id, acceptance)))
    state.refresh.schedule(rs.uri)
    return AcceptReply(applied=True, uri=plan.uri, version=plan.version)


async def _mark_accepted(eng: Any, run_id: str, acceptance: Acceptance) -> Any:
    """Record where and what was applied, in the run file (survives restarts)."""
    return eng.mark_accepted(run_id, acceptance)


def _inserted_range(plan: acc.Plan) -> lsp.Range | None:
    """Where the inserted text sits after the edit (it starts where the replaced range did)."""
    if plan.range is None:
        return None
    lines = plan.new_text.split("\n")
    start = plan.range.start
    end_char = len(lines[-1]) + (start.character if len(lines) == 1 else 0)
    return lsp.Range(start, lsp.Position(start.line + len(lines) - 1, end_char))


def _plan_json(plan: acc.Plan, program: str) -> AcceptPreview:
    return AcceptPreview(
        ok=plan.ok,
        reason=plan.reason,
        alternatives=acc.ALTERNATIVES if not plan.ok else [],
        targetUri=plan.uri,
        range=_range_json(plan.range),
        version=plan.version,
        createsFile=plan.create,
        newText=plan.new_text,
        documentAfter=plan.document_after,
        program=program,
    )


def _range_json(rng: lsp.Range | None) -> Range | None:
    if rng is None:
        return None
    return Range(
        start=Position(line=rng.start.line, character=rng.start.character),
        end=Position(line=rng.end.line, character=rng.end.character),
    )
