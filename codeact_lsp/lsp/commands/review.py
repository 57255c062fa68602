"""Review commands: approve or reject the step a run waits on; preview and apply Accept.

Nothing is written to a user's file before Accept, and Accept is a versioned edit that the
editor refuses if the document changed meanwhile (the plan comes from `lsp.accept`).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from codeact_lsp.engine.program import as_script, parse_program, renamed
from codeact_lsp.engine.program.naming import explicit_identifier
from codeact_lsp.lsp import accept as acc
from codeact_lsp.lsp.args import AcceptArgs, ApproveArgs, Position, Range, RejectArgs
from codeact_lsp.lsp.commands.common import CommandError, engine, engine_call
from codeact_lsp.lsp.commands.registry import command
from codeact_lsp.lsp.document import path_to_uri, uri_to_path
from codeact_lsp.lsp.replies import (
    AcceptChoice,
    AcceptHunk,
    AcceptPreview,
    AcceptReply,
    ApproveReply,
    RejectReply,
)
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


def _program(rs: EditorRun, args: AcceptArgs) -> str:
    """The run's program, named and shaped as asked (the stored text when the run is not live)."""
    program: str = ""
    if rs.handle is not None:
        program = rs.handle.program(name=args.name, form=args.form)
    else:
        traj = rs.trajectory()
        program = (traj.program or "") if traj is not None else ""
        if program.strip() and args.name:
            program = renamed(program, explicit_identifier(args.name))
        if program.strip() and args.form == "script" and "__main__" not in program:
            program = as_script(program, traj.inputs if traj is not None else {})
    if program.strip():
        return program
    raise CommandError(f"run {rs.id} has no program to accept: none of its steps ran successfully")


def _plan(state: ServerState, rs: EditorRun, args: AcceptArgs) -> acc.Plan:
    traj = rs.trajectory()
    assert traj is not None
    if traj.status != "finished":
        raise CommandError(
            f"run {rs.id} is {traj.status}: only a finished run can be accepted"
            + (" — wait for it, or cancel it" if not traj.done else "")
        )
    program = _program(rs, args)
    target = rs.target or traj.target
    if args.mode == "newFile" or target is None:
        uri = args.newFileUri or _new_file_uri(state, program, target.uri if target else None)
        return acc.plan_new_file(program, uri)
    target_path = uri_to_path(target.uri)
    if state.open_doc(target.uri) is None and target_path is not None and not target_path.exists():
        return acc.plan_new_file(program, target.uri)  # the target was never saved
    current = state.doc_state(target.uri)
    if args.mode == "insertAtEnd":
        return acc.plan_insert_at_end(program, current)
    return acc.plan_at_target(
        program,
        current,
        acc.to_range(target.range),
        rs.start_text,
        target.text,
        replace=args.replace,
    )


def _new_file_uri(state: ServerState, program: str, beside: str | None) -> str:
    """`<function name>.py`, next to the target when there is one, else in the workspace root."""
    root = state.workspace.require_root()
    beside_path = uri_to_path(beside) if beside else None
    where = beside_path.parent if beside_path is not None else root
    if not where.is_dir():
        where = root
    stem = parse_program(program).name or "accepted"
    for n in range(1, 1000):
        name = f"{stem}.py" if n == 1 else f"{stem}_{n}.py"
        if not (where / name).exists():
            return path_to_uri(where / name)
    raise CommandError("cannot find a free file name for the new file; pass newFileUri")


@command("codeact.acceptPreview")
def accept_preview(state: ServerState, args: AcceptArgs) -> AcceptPreview:
    rs = state.runs.need(args.runId)
    plan = _plan(state, rs, args)
    traj = rs.trajectory()
    target = rs.target or (traj.target if traj is not None else None)
    rng = acc.to_range(target.range) if target is not None else None
    preview = _plan_json(plan, _program(rs, args))
    preview.selection = rng is not None and rng.start != rng.end
    return preview


@command("codeact.accept")
async def accept(state: ServerState, args: AcceptArgs) -> AcceptReply:
    rs = state.runs.need(args.runId)
    # once the accepted text is gone (undone, edited away) Accept is offered again
    if args.mode == "target" and state.runs.acceptance_state(rs) == "applied":
        where = acc.file_name(rs.acceptance.uri) if rs.acceptance else "the file"
        return AcceptReply(
            applied=False,
            reason=f"This run's function is already in {where}. To have it once more, insert "
            "it at the end of the file or put it in a new file.",
            alternatives=acc.ALTERNATIVES,
            choices=_choices(acc.CHOICES[:2]),
        )
    plan = _plan(state, rs, args)
    if not plan.ok:
        return AcceptReply(
            applied=False,
            reason=plan.reason,
            alternatives=acc.ALTERNATIVES,
            choices=_choices(acc.CHOICES),
        )
    if not state.client.apply_edit:
        return AcceptReply(
            applied=False,
            reason="this client cannot apply workspace edits; use codeact.acceptPreview",
        )
    annotate = args.confirm and state.client.change_annotations
    edit = acc.workspace_edit(plan, annotate=annotate, label=f"from CodeAct run {rs.id}")
    result = await state.server.workspace_apply_edit_async(
        lsp.ApplyWorkspaceEditParams(edit=edit, label=f"CodeAct: accept {plan.name or rs.id}")
    )
    if not result.applied:
        return AcceptReply(
            applied=False,
            cancelled=not result.failure_reason,
            reason=(
                f"The editor did not apply the edit: {result.failure_reason}"
                if result.failure_reason
                else "Accept was cancelled in the preview: nothing was written."
            ),
        )
    accepted = _landed(state, plan, args.mode)
    eng = await engine(state)
    rs.updated(await engine_call(_mark_accepted(eng, rs.id, accepted)))
    state.push.changed(rs)
    state.refresh.schedule(rs.uri)
    rng = acc.to_range(accepted.range)
    if state.client.show_document and rng is not None:
        await _show(state, plan.uri, rng)
    return AcceptReply(
        applied=True,
        uri=plan.uri,
        version=plan.version,
        range=_range_model(rng),
        name=plan.name,
        created=plan.create,
        message=acc.applied_message(plan),
    )


def _landed(state: ServerState, plan: acc.Plan, mode: str) -> Acceptance:
    """Where the function is now (the user may have unticked hunks in the preview)."""
    after = plan.document_after or ""
    rng = plan.function_range
    text = acc.range_text(after, rng) if rng is not None else ""
    current = state.doc_state(plan.uri).text if not plan.create else after
    at = current.find(text) if text else -1
    if at >= 0 and current != after:
        rng = lsp.Range(acc.position(current, at), acc.position(current, at + len(text)))
    doc = state.open_doc(plan.uri)
    return Acceptance(
        uri=plan.uri,
        range=acc.range_json(rng),
        text=text,
        version=getattr(doc, "version", None),
        at=time.time(),
        mode="newFile" if plan.create else mode,
        name=plan.name,
    )


async def _show(state: ServerState, uri: str, rng: lsp.Range) -> None:
    """Reveal and select the inserted function (the client may decline: nothing depends on it)."""
    with contextlib.suppress(Exception):
        await state.server.window_show_document_async(
            lsp.ShowDocumentParams(uri=uri, take_focus=True, selection=rng)
        )


def _choices(raw: list[dict[str, str]]) -> list[AcceptChoice]:
    return [AcceptChoice(**c) for c in raw]


async def _mark_accepted(eng: Any, run_id: str, acceptance: Acceptance) -> Any:
    """Record where and what was applied, in the run file (survives restarts), written before
    the reply so that whoever reads the file next finds it."""
    traj = eng.mark_accepted(run_id, acceptance)
    await eng.flushed()
    return traj


def _plan_json(plan: acc.Plan, program: str) -> AcceptPreview:
    return AcceptPreview(
        ok=plan.ok,
        reason=plan.reason,
        alternatives=acc.ALTERNATIVES if not plan.ok else [],
        choices=_choices(acc.CHOICES) if not plan.ok else [],
        targetUri=plan.uri,
        range=_range_model(plan.range),
        version=plan.version,
        createsFile=plan.create,
        newText=plan.new_text,
        edits=[
            AcceptHunk(range=_range_model(h.range), newText=h.new_text, kind=h.annotation)
            for h in plan.hunks
        ],
        documentAfter=plan.document_after,
        functionRange=_range_model(plan.function_range),
        name=plan.name,
        message=acc.applied_message(plan) if plan.ok else None,
        program=program,
    )


def _range_model(rng: lsp.Range | None) -> Range | None:
    if rng is None:
        return None
    return Range(
        start=Position(line=rng.start.line, character=rng.start.character),
        end=Position(line=rng.end.line, character=rng.end.character),
    )
