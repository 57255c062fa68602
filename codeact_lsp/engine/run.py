"""One run: the CodeAct loop, its live trajectory, its events, and the controls a person has.

Everything here runs on the event loop except tool calls, which arrive on a sandbox thread; those
record into the step being executed and hand the event back to the loop thread-safely. The loop
never blocks: the model call and the sandbox step are awaited, and both can be cancelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from codeact_lsp.config import AcceptSettings
from codeact_lsp.engine.approval import Decision, confirm_tools
from codeact_lsp.engine.events import EventKind, EventLog, RunEvent
from codeact_lsp.engine.model import (
    ModelClient,
    ModelError,
    RetryPolicy,
)
from codeact_lsp.engine.program import as_script, build_program
from codeact_lsp.engine.replay import ReplayItem, ReplayPlayer
from codeact_lsp.engine.run_propose import Proposing
from codeact_lsp.engine.run_rebuild import Rebuilding, RunFailure
from codeact_lsp.engine.run_review import Reviewing
from codeact_lsp.engine.signature import Signature, SignatureError
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import (
    ErrorLocation,
    Step,
    StepError,
    StepStatus,
    Target,
    ToolCall,
    Trajectory,
)

if TYPE_CHECKING:
    from codeact_lsp.engine.session import Session
    from codeact_lsp.sandbox import ToolReply, ToolRequest

Approver = Callable[["RunHandle", Step, list[str]], "Awaitable[Decision | None] | Decision | None"]


class RunRequest(BaseModel):
    """What a caller asks for; everything unset falls back to the workspace configuration."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    task: str
    signature: Any = None  # "question -> answer", a pydantic model of outputs, or None
    inputs: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    approval: str | None = None
    max_iters: int | None = None
    target: Target | None = None


class RunHandle(Rebuilding, Reviewing, Proposing):
    """A live run. The trajectory is always current; every change to it is followed by an event."""

    def __init__(
        self,
        trajectory: Trajectory,
        *,
        signature: Signature,
        model: ModelClient,
        tools: list[ToolSchema],
        flagged: set[str],
        session: Session,
        retry: RetryPolicy,
        step_timeout: float,
        on_change: Callable[[RunHandle, str], None],
        approver: Approver | None = None,
        stream: bool = False,
        extract: bool = False,
        previous: list[Trajectory] | None = None,
        prior_code: list[str] | None = None,
        prior_inputs: dict[str, Any] | None = None,
        accept: AcceptSettings | None = None,
    ) -> None:
        self.id = trajectory.id
        self.trajectory = trajectory
        self.signature = signature
        self.model = model
        self.tools = tools
        self.flagged = flagged
        self._approved: set[int] = set()  # steps (by id) a person approved: confirm tools may run
        self._calling: int | None = None  # the sandbox thread waiting on a tool call now
        self._cancelled = False
        self._record_chars = session.settings.record_kb * 1024
        self._max_recorded = session.settings.max_recorded_calls
        self.session = session
        self.retry = retry
        self.step_timeout = step_timeout
        self.approver = approver
        self.stream = stream
        self.extract = extract
        self.previous = previous or []
        self.prior_code = prior_code or []
        self.prior_inputs = prior_inputs or {}
        self.accept = accept or AcceptSettings()
        self._on_change = on_change
        self._events = EventLog()
        self._task: asyncio.Task[None] | None = None
        self._decision: asyncio.Future[Decision] | None = None
        self._executing: Step | None = None
        self._answer: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_code: str | None = None  # a re-run's edited step k
        self._player: ReplayPlayer | None = None  # set while a step is replayed from its record
        self._scratch: Step | None = None  # an earlier run's step being run again for real
        self._pending: Step | None = None  # a waiting decision that is not one of this run's steps
        self._pending_reason = ""
        self._held_status: StepStatus = "proposed"  # a kept step's own status while it waits
        self._notes: list[str] = []  # told to the model with the task (how the state was rebuilt)
        self.saved: concurrent.futures.Future[None] | None = None  # the final run-file write

    # -- public controls ----------------------------------------------------------------------

    def subscribe(self, replay: bool = True) -> AsyncIterator[RunEvent]:
        """Events of this run until it ends; past ones first unless `replay=False`."""
        return self._events.subscribe(replay)

    async def wait(self) -> Trajectory:
        if self._task is not None:
            await asyncio.wait({self._task})
        if self.saved is not None:
            await asyncio.wrap_future(self.saved)
        return self.trajectory

    @property
    def done(self) -> bool:
        return self.trajectory.done

    def cancel(self) -> bool:
        """Stop the run wherever it is (model call, approval wait, or mid-step in the sandbox)."""
        if self.trajectory.done or self._task is None:
            return False
        self._cancelled = True
        calling = self._calling
        cancel = getattr(self.session.tools, "cancel", None)
        if calling is not None and callable(cancel):
            cancel(calling)  # the tool stops where it is: nothing goes on behind the user's back
        sandbox = self.session.sandbox
        if sandbox is not None and self._executing is not None:
            sandbox.cancel_tools()  # the same for a host tool the step called directly
        self._task.cancel()
        return True

    @property
    def pending_step(self) -> Step | None:
        if self._decision is None or self._decision.done():
            return None
        if self._pending is not None:
            return self._pending
        return next((s for s in self.trajectory.steps if s.status == "awaiting_approval"), None)

    @property
    def pending_reason(self) -> str:
        """Why the pending step waits (review mode, a confirm tool, a rebuild that diverged...)."""
        return self._pending_reason if self.pending_step is not None else ""

    def approve(self, code: str | None = None) -> bool:
        """Run the waiting step, as proposed or as edited by the user. False if nothing waits."""
        return self._decide(Decision(action="approve", code=code))

    def reject(self, feedback: str | None = None) -> bool:
        """Skip the waiting step; the feedback goes to the model. False if nothing waits."""
        return self._decide(Decision(action="reject", feedback=feedback))

    def _decide(self, decision: Decision) -> bool:
        if self._decision is None or self._decision.done():
            return False
        self._decision.set_result(decision)
        return True

    def program(self, name: str | None = None, form: str | None = None) -> str:
        """The accepted program (docs/contracts.md): one typed function from the successful steps
        (those of earlier runs in the session first), as a module with its imports."""
        traj = self.trajectory
        inputs = {**self.prior_inputs, **traj.inputs}
        text = build_program(
            traj.steps,
            self.tools,
            inputs,
            extra_code=self.prior_code,
            signature=self.signature,
            task=traj.task,
            outputs=traj.outputs,
            name=name or self.accept.name,
        )
        if text and (form or self.accept.form) == "script":
            text = as_script(text, traj.inputs)
        return text

    # -- events and persistence ---------------------------------------------------------------

    def _emit(self, kind: EventKind, step: int | None = None, **data: Any) -> None:
        self.trajectory.updated_at = time.time()
        # persistence first: whoever reacts to the event finds the run file already current
        self._on_change(self, kind)
        self._events.publish(RunEvent(kind=kind, run_id=self.id, step=step, data=data))

    # -- the loop -----------------------------------------------------------------------------

    def launch(self, replay: list[ReplayItem], first_code: str | None = None) -> None:
        """Start the loop; `replay` restores a session's state first (see `_rebuild`)."""
        self._loop = asyncio.get_running_loop()
        self._first_code = first_code
        self._task = asyncio.create_task(self._main(replay), name=f"codeact-run-{self.id}")
        self._task.add_done_callback(self._finished_task)

    def _finished_task(self, task: asyncio.Task[None]) -> None:
        """A task cancelled before it started, or crashed, still ends with a terminal status."""
        if self.trajectory.done:
            return
        if task.cancelled():
            self._end("cancelled", None)
        else:
            exc = task.exception()
            self._end("failed", f"internal error: {type(exc).__name__}: {exc}")

    async def _main(self, replay: list[ReplayItem]) -> None:
        traj = self.trajectory
        self._emit(
            "started",
            task=traj.task,
            model=traj.model,
            scripted=traj.scripted,
            signature=traj.signature,
        )
        try:
            async with self.session.lock:
                self.session.current = self
                try:
                    await self._prepare(replay)
                    await self._steps()
                finally:
                    self.session.current = None
        except asyncio.CancelledError:
            for step in traj.steps:
                if step.status in ("proposed", "awaiting_approval", "running"):
                    step.status = "cancelled"
            self._end("cancelled", None)
        except ModelError as exc:
            self._end("failed", f"model error ({exc.kind}): {exc}")
        except RunFailure as exc:
            self._end("failed", str(exc))
        except Exception as exc:  # the sandbox or tool layer broke; the run says so and ends
            self._end("failed", f"{type(exc).__name__}: {exc}")

    async def _prepare(self, replay: list[ReplayItem]) -> None:
        try:
            sandbox = await self.session.ensure_open()
        except Exception as exc:  # SandboxError, IsolationUnavailable, a missing interpreter...
            raise RunFailure(f"the sandbox could not start: {exc}") from exc
        self.trajectory.sandbox = sandbox.info
        await self._rebuild(replay)

    async def _steps(self) -> None:
        traj = self.trajectory
        while len(traj.steps) < traj.max_iters:
            if self._first_code is not None:
                code, self._first_code = self._first_code, None
                step = Step(index=len(traj.steps) + 1, code=code, edited=True, status="proposed")
                traj.steps.append(step)
                self._emit("step_proposed", step.index, code=code, edited=True)
                # the person wrote this code, but a confirm tool still asks (in every mode)
                if confirm_tools(code, self.flagged) and not await self._gate(step, "confirm-only"):
                    continue
            else:
                step = await self._propose()
                if step.status == "no_code":
                    self._emit("step_finished", step.index, status="no_code")
                    continue
                if not await self._gate(step):
                    continue
            if await self._execute(step):
                self._end("finished", None)
                return
        if self.extract and await self._extract():
            return
        self._end("max_iters", f"no final_answer within {traj.max_iters} steps")

    async def _execute(self, step: Step) -> bool:
        """Run one step in the sandbox. True when it ended the run with a valid final answer."""
        sandbox = await self.session.ensure_open()
        step.status = "running"
        step.started_at = step.started_at or time.time()
        self._answer = None
        self._executing = step
        self._emit("executing", step.index, code=step.code)
        try:
            result = await sandbox.execute(
                step.code,
                timeout=self.step_timeout,
                confirmed=id(step) in self._approved,
                direct=True,  # host tools are served by the host: records come to on_direct_calls
                flagged=self.flagged,  # the run's confirm globs, enforced there too
            )
        finally:
            self._executing = None
            self._approved.discard(id(step))
        for refused in result.refused:  # confirm tools the sandbox refused (not approved)
            self._record(
                step,
                ToolCall(
                    name=str(refused.get("name", "")),
                    error=f"PermissionError: {refused.get('message', '')}",
                    error_detail=ErrorLocation(
                        type="PermissionError", message=str(refused.get("message", ""))
                    ),
                    line=refused.get("line") if isinstance(refused.get("line"), int) else None,
                ),
            )
        step.stdout = result.stdout
        step.stderr = result.stderr
        step.value = result.value
        step.duration_ms = result.duration_ms
        step.state_lost = result.state_lost
        if result.state_lost:  # a fresh worker: bind the stubs' typing names again
            await sandbox.execute(self.session.prelude, timeout=self.step_timeout)
        step.error = result.error
        if result.timed_out and step.error is None:
            step.error = StepError(
                type="TimeoutError", message=f"the step ran longer than {self.step_timeout:g}s"
            )
        final = self._answer is not None
        if final:
            self.trajectory.outputs = self._answer
            step.final = True
            step.status = "ok"
            step.error = None if result.stopped else step.error
        else:
            step.status = "error" if step.error is not None else "ok"
        self._emit(
            "step_finished",
            step.index,
            status=step.status,
            error=step.error.model_dump() if step.error else None,
            duration_ms=step.duration_ms,
            final=final,
        )
        return final

    def _end(self, status: str, error: str | None) -> None:
        traj = self.trajectory
        traj.status = status  # type: ignore[assignment]
        traj.error = error
        if status != "finished":
            traj.outputs = None
        try:
            traj.program = self.program() or None
        except Exception:  # the program is a convenience; never lose the run over it
            traj.program = None
        kind: EventKind = status  # type: ignore[assignment]
        data: dict[str, Any] = {"status": status}
        if error:
            data["error"] = error
        if status == "finished":
            data["outputs"] = traj.outputs
        self._emit(kind, None, **data)

    # -- tool calls (sandbox thread) ----------------------------------------------------------

    def on_tool(self, request: ToolRequest) -> ToolReply:
        from codeact_lsp.sandbox import ToolReply

        player = self._player
        if player is not None:
            return player.answer(request)  # a replayed step: the record answers, no tool runs
        step = self._executing
        if request.name == "final_answer":
            if step is not None and step is self._scratch:
                return ToolReply(stop=True)  # an earlier run's step: its answer is not this run's
            return self._final_answer(request, step)
        if request.name in self.flagged and (step is None or id(step) not in self._approved):
            # where the call is served: however the code reached the tool, it does not run
            err = ErrorLocation(
                type="PermissionError",
                message=f"{request.name}() needs a person's approval and this step was not "
                f"approved; call {request.name}(...) by name in a step of its own, so the step "
                "is shown for approval",
            )
            self._record(
                step,
                ToolCall(
                    name=request.name,
                    args=_raw_args(request, self._record_chars),
                    error=f"{err.type}: {err.message}",
                    error_detail=err,
                    line=request.line,
                ),
            )
            return ToolReply(error=err)
        started = time.perf_counter()
        self._calling = threading.get_ident()  # before the check: `cancel` sees one or the other
        if self._cancelled:  # the worker is being stopped; the tool must not start now
            self._calling = None
            return ToolReply(error=ErrorLocation(type="CancelledError", message="run cancelled"))
        try:
            outcome = self.session.tools.call_sync(
                request.name, list(request.args), dict(request.kwargs)
            )
        except Exception as exc:  # the provider itself broke (host died): the snippet sees it
            err = ErrorLocation(type="RuntimeError", message=f"tool host failed: {exc}")
            call = ToolCall(
                name=request.name,
                args=_raw_args(request, self._record_chars),
                error=f"{err.type}: {err.message}",
                error_detail=err,
                duration_ms=(time.perf_counter() - started) * 1000,
                line=request.line,
            )
            self._record(step, call)
            return ToolReply(error=err)
        finally:
            self._calling = None
        from codeact_lsp.sandbox import codec

        limit = self._record_chars
        result, wire = codec.recorded_result(outcome.result, limit) if outcome.ok else (None, None)
        call = ToolCall(
            name=request.name,
            args=codec.recorded_args(outcome.bound_args, request.args, request.kwargs, limit),
            result=result,
            wire=wire,
            error=outcome.error_text,
            error_detail=outcome.error,
            duration_ms=outcome.duration_ms,
            stdout=outcome.stdout,
            line=request.line,
        )
        self._record(step, call)
        if not outcome.ok:
            return ToolReply(
                error=outcome.error or ErrorLocation(type="RuntimeError", message="tool failed")
            )
        return ToolReply(result=outcome.result)

    def on_direct_calls(self, calls: list[dict[str, Any]], omitted: int) -> None:
        """Calls the tool host served itself in the executing step (already clipped there, with
        the same `codec.recorded_*` rules as `on_tool`): recorded as if `on_tool` had seen them."""
        step = self._executing
        if step is None or self._player is not None:
            return
        for rec in calls:
            call = tool_call_from_record(rec)
            if call is not None:
                self._record(step, call)
        step.tool_calls_omitted += omitted

    def _final_answer(self, request: ToolRequest, step: Step | None) -> ToolReply:
        from codeact_lsp.sandbox import ToolReply, codec

        # the answer is recorded as JSON: its plain form (a tuple as a list, a date as text)
        args = [codec.preview(a) for a in request.args]
        kwargs = {k: codec.preview(v) for k, v in request.kwargs.items()}
        try:
            outputs = self.signature.validate_outputs(args, kwargs)
        except SignatureError as exc:
            err = ErrorLocation(type="ValueError", message=str(exc))
            self._record(
                step,
                ToolCall(
                    name="final_answer",
                    args=kwargs or {"args": args},
                    error=f"ValueError: {exc}",
                    line=request.line,
                ),
            )
            return ToolReply(error=err)
        self._answer = outputs
        self._record(step, ToolCall(name="final_answer", args=outputs, line=request.line))
        return ToolReply(stop=True)

    def _record(self, step: Step | None, call: ToolCall) -> None:
        if step is None or self._loop is None:
            return
        if len(step.tool_calls) >= self._max_recorded:
            # the record stays bounded however many calls a loop makes: count the rest
            step.tool_calls_omitted += 1
            return
        step.tool_calls.append(call)
        if step is self._scratch:
            return  # an earlier run's step run again for real: its rebuild entry keeps the calls
        index = len(step.tool_calls) - 1
        data = {
            "name": call.name,
            "call": index,
            "error": call.error,
            "duration_ms": call.duration_ms,
            "line": call.line,
        }
        self._loop.call_soon_threadsafe(lambda: self._emit("tool_called", step.index, **data))


def tool_call_from_record(rec: dict[str, Any]) -> ToolCall | None:
    """A call record of the direct route as a `ToolCall` (None if it is not one). Validated:
    pydantic's validator is the fast path here (about 2 us a record; `model_construct` with its
    Python-side defaults costs several times that)."""
    try:
        return ToolCall.model_validate(rec)
    except ValueError:
        return None


def _raw_args(request: ToolRequest, limit: int) -> dict[str, Any]:
    """Arguments as called, when the tool layer could not bind them to parameter names."""
    from codeact_lsp.sandbox import codec

    return codec.recorded_args(None, request.args, request.kwargs, limit)
