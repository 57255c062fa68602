"""The reviewer's side of a run that waits: what the reviewer is shown, how it is asked (on the
caller's thread for a sync reviewer), and how its answer reaches the engine."""

from __future__ import annotations

import inspect
import weakref
from typing import TYPE_CHECKING, Any, cast

from codeact_lsp.api._loop import on_caller_thread
from codeact_lsp.api.approval import (
    Approve,
    Decision,
    PendingStep,
    Reviewer,
    is_async_reviewer,
    normalize,
)
from codeact_lsp.api.checks import static_checks
from codeact_lsp.trajectory import Step, Trajectory

if TYPE_CHECKING:
    from codeact_lsp.api.codeact import CodeAct
    from codeact_lsp.engine import Decision as EngineDecision
    from codeact_lsp.engine import RunHandle
    from codeact_lsp.engine.run import Approver
    from codeact_lsp.tools import ToolSchema


def weak_approver(act: CodeAct) -> Approver:
    """The engine outlives nothing but must not keep the CodeAct alive (its finalizer closes it)."""
    ref = weakref.ref(act)

    async def approve(
        handle: RunHandle, step: Step, confirm_tools: list[str]
    ) -> EngineDecision | None:
        owner = ref()
        return None if owner is None else await owner._approve(handle, step, confirm_tools)

    return approve


def pending_step(
    traj: Trajectory, step: Step, confirm_tools: list[str], reason: str = ""
) -> PendingStep:
    """What the reviewer needs to decide, copied so that it cannot alter the live run."""
    reason = reason or (
        f"calls {', '.join(confirm_tools)}, which needs confirmation"
        if confirm_tools
        else "review mode: every step waits for approval"
    )
    return PendingStep(
        run_id=traj.id,
        index=step.index,
        code=step.code,
        task=traj.task,
        reply=step.reply,
        reason=reason,
        confirm_tools=list(confirm_tools),
        step=step.model_copy(deep=True),
    )


def with_checks(
    pending: PendingStep,
    handle: RunHandle,
    step: Step,
    schemas: list[ToolSchema],
    confirm: list[str],
) -> PendingStep:
    """The step's static checks, as the editor shows them, for the reviewer to read."""
    pending.checks = static_checks(
        step, handle.trajectory, getattr(handle, "previous", []), schemas, confirm
    )
    return pending


async def ask(reviewer: Reviewer, pending: PendingStep) -> Decision:
    """The reviewer's answer, normalized; whatever it raises reaches the caller."""
    if is_async_reviewer(reviewer):
        answer = await cast(Any, reviewer)(pending)
    else:
        answer = await on_caller_thread(reviewer, pending)
        if inspect.isawaitable(answer):
            answer = await answer
    return normalize(answer)


def for_engine(decision: Decision) -> EngineDecision:
    from codeact_lsp.engine import Decision as EngineDecision

    if isinstance(decision, Approve):
        return EngineDecision(action="approve", code=decision.code)
    return EngineDecision(action="reject", feedback=decision.feedback)
