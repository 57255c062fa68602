"""Waiting for a person: when a step waits (review mode, a confirm tool, a rebuild), and the
answer that comes first, the approver hook's or a person's approve()/reject().

Part of `RunHandle` (engine/run.py); the public controls (`approve`, `reject`, `pending_step`)
stay there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from codeact_lsp.engine.approval import Decision, needs_approval
from codeact_lsp.engine.events import EventKind
from codeact_lsp.trajectory import Step, StepStatus, Trajectory

if TYPE_CHECKING:
    from codeact_lsp.engine.run import Approver, RunHandle


class Reviewing:
    """`RunHandle`'s approval waits (a mixin: the attributes below are the handle's)."""

    trajectory: Trajectory
    flagged: set[str]
    approver: Approver | None
    _approved: set[int]
    _decision: asyncio.Future[Decision] | None
    _pending: Step | None
    _pending_reason: str
    _held_status: StepStatus
    _loop: asyncio.AbstractEventLoop | None

    if TYPE_CHECKING:

        def _emit(self, kind: EventKind, step: int | None = None, **data: Any) -> None: ...

    async def _ask(self, step: Step, reason: str, hits: list[str], *, kind: str) -> Decision:
        """Wait for a person (or the approver hook) on `step`, which may be a kept copy or a
        stand-in outside this run's steps."""
        in_run = step in self.trajectory.steps
        self._held_status = step.status
        step.status = "awaiting_approval"
        if not in_run:
            self._pending = step
        self._pending_reason = reason
        self.trajectory.status = "awaiting_approval"
        assert self._loop is not None
        self._decision = self._loop.create_future()
        self._emit(
            "awaiting_approval",
            step.index,
            code=step.code,
            reason=reason,
            confirm_tools=hits,
            wait=kind,  # step | rebuild_step | replay_diverged
        )
        try:
            return await self._await_decision(self._decision, step, hits)
        finally:
            self._decision = None
            self._pending = None
            self.trajectory.status = "running"
            if in_run and step.replayed and step.status == "awaiting_approval":
                step.status = self._held_status  # a kept copy keeps what it was

    async def _gate(self, step: Step, mode: str | None = None) -> bool:
        """Wait for a person when the mode or a flagged tool asks for it. True = run the step."""
        wait, hits = needs_approval(mode or self.trajectory.approval, step.code, self.flagged)
        if not wait:
            return True
        reason = (
            f"calls {', '.join(hits)}, which needs confirmation"
            if hits
            else "review mode: every step waits for approval"
        )
        decision = await self._ask(step, reason, hits, kind="step")
        if decision.action == "reject":
            step.status = "rejected"
            step.feedback = decision.feedback
            self._emit("step_finished", step.index, status="rejected", feedback=decision.feedback)
            return False
        if decision.code is not None and decision.code != step.code:
            step.code = decision.code
            step.edited = True
        step.status = "proposed"
        self._approved.add(id(step))  # a person (or the approver) said yes to this very step
        return True

    async def _await_decision(
        self, person: asyncio.Future[Decision], step: Step, hits: list[str]
    ) -> Decision:
        """The approver hook's answer or a person's approve()/reject(), whichever comes first;
        a hook that answers None leaves the decision to the person."""
        if self.approver is None:
            return await person
        answer = self.approver(cast("RunHandle", self), step, hits)
        if not isinstance(answer, Awaitable):
            return answer if answer is not None else await person

        async def hook() -> Decision | None:
            return await answer

        hook_task = asyncio.ensure_future(hook())
        try:
            pending: set[asyncio.Future[Any]] = {hook_task, person}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if person.done():
                return person.result()
            decision = hook_task.result()
            return decision if decision is not None else await person
        finally:
            hook_task.cancel()
