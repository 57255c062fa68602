"""Asking the model for the next step (and, out of steps, for one last final answer): the prompt (with how the state was rebuilt), retries and
streamed deltas as events, and the step made of the reply's code.

Part of `RunHandle` (engine/run.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from codeact_lsp.engine.events import EventKind
from codeact_lsp.engine.model import ModelClient, ModelError, RetryPolicy, complete_with_retries
from codeact_lsp.engine.parsing import extract_code
from codeact_lsp.engine.prompt import build_messages
from codeact_lsp.engine.signature import Signature
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import Step, Trajectory

EXTRACT_PROMPT = (
    "The step budget is spent. Reply with one ```python block that only calls final_answer(...)"
    " with your best answer from what the steps above found (use existing variables)."
)


class Proposing:
    """`RunHandle`'s model calls (a mixin: the attributes below are the handle's)."""

    trajectory: Trajectory
    tools: list[ToolSchema]
    signature: Signature
    previous: list[Trajectory]
    step_timeout: float
    model: ModelClient
    retry: RetryPolicy
    stream: bool
    _notes: list[str]

    if TYPE_CHECKING:

        def _emit(self, kind: EventKind, step: int | None = None, **data: Any) -> None: ...

        async def _gate(self, step: Step, mode: str | None = None) -> bool: ...

        async def _execute(self, step: Step) -> bool: ...

        def _end(self, status: str, error: str | None) -> None: ...

    async def _propose(self, extra: str | None = None) -> Step:
        traj = self.trajectory
        messages = build_messages(
            tools=self.tools,
            signature=self.signature,
            task=traj.task,
            inputs=traj.inputs,
            steps=traj.steps,
            previous=self.previous,
            timeout=self.step_timeout,
        )
        if self._notes and len(messages) > 1:
            # how the earlier state was rebuilt goes with the task, in every prompt of the run
            first = messages[1]
            messages[1] = {**first, "content": "\n".join(self._notes) + "\n\n" + first["content"]}
        if extra:
            messages.append({"role": "user", "content": extra})
        index = len(traj.steps) + 1
        self._emit("model_call", index, messages=len(messages))

        attempts = [1]  # deltas name their attempt: after a retry a view starts the text over

        def on_retry(attempt: int, delay: float, error: ModelError) -> None:
            attempts[0] = attempt + 1
            self._emit(
                "model_retry",
                index,
                attempt=attempt,
                delay=delay,
                error=str(error),
                error_kind=error.kind,
            )

        def on_delta(text: str) -> None:
            self._emit("model_delta", index, text=text, attempt=attempts[0])

        reply = await complete_with_retries(
            self.model,
            messages,
            self.retry,
            on_retry=on_retry,
            on_delta=on_delta if self.stream else None,
        )
        traj.usage = traj.usage.add(reply.usage)
        code = extract_code(reply.text)
        step = Step(
            index=index,
            code=code or "",
            reply=reply.text,
            usage=reply.usage,
            model_duration_ms=reply.duration_ms,
            cut_off=reply.cut_off,
            status="proposed" if code else "no_code",
            started_at=time.time(),
        )
        traj.steps.append(step)
        if code:
            self._emit("step_proposed", index, code=code)
        return step

    async def _extract(self) -> bool:
        """One last call after the budget: ask only for final_answer from what is known. Its step
        runs like any other (approval included) and is marked `extracted`."""
        step = await self._propose(extra=EXTRACT_PROMPT)
        step.extracted = True
        if step.status == "no_code" or not await self._gate(step):
            return False
        if await self._execute(step):
            self.trajectory.extracted = True
            self._end("finished", None)
            return True
        return False
