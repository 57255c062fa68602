"""`CodeAct(signature, tools=[...])`: the CodeAct engine as a library call.

Tools are the caller's own Python objects, served to the sandboxed code from this process with the
same registry (schemas, argument validation, error locations) as the editor's tool host. Everything
async runs on a private loop thread (see `_loop`), so the sync calls work in scripts, notebooks and
threads alike, and several runs can share one engine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from codeact_lsp.api._loop import on_caller_thread
from codeact_lsp.api._shared import Shared
from codeact_lsp.api.approval import Reviewer
from codeact_lsp.api.options import build_config, split_approval
from codeact_lsp.api.progress import Progress
from codeact_lsp.api.result import Result, failed_result
from codeact_lsp.api.review import ask, for_engine, pending_step, weak_approver, with_checks
from codeact_lsp.api.session import Session
from codeact_lsp.config import Approval, CodeActConfig, SandboxSettings
from codeact_lsp.trajectory import Step, Trajectory, Usage

if TYPE_CHECKING:
    from codeact_lsp.engine import Decision as EngineDecision
    from codeact_lsp.engine import Engine, RunEvent, RunHandle
    from codeact_lsp.engine.replay import ReplayMode
    from codeact_lsp.engine.runstate import RunSummary
    from codeact_lsp.tools import ToolDiagnostic, ToolSchema


class CodeAct:
    """An agent that answers `signature` by writing Python that calls `tools`, run in a sandbox.

    `signature` is docs/contracts.md's "inputs -> outputs" string, with optional types
    (`"n: int -> factorial: int"`), or a pydantic model of the outputs. `tools` may be functions,
    async functions, bound methods, callable objects, builtins or a `{name: callable}` mapping;
    they run in this process, the model's code does not.

    Settings default to `workspace`'s `[tool.codeact]` (when given), then to the built-in
    defaults; the keyword arguments win. `approval` is a mode ("auto", "review",
    "confirm-tools") or a review callback (short for "review": every step); `confirm` globs name
    tools whose steps always wait for `reviewer`, and with `reviewer=` only those steps wait. `timeout` bounds one step in the sandbox, `tool_timeout` one
    tool call. `model="scripted:PATH"` (or `scripted([...])`) replays replies, for tests only.
    `model_params` go to litellm over the workspace's: e.g. a local server with
    `model="openai/qwen2.5", model_params={"api_base": "http://127.0.0.1:8080/v1"}` (no key).
    """

    def __init__(
        self,
        signature: str | type[BaseModel] | tuple[type[BaseModel], type[BaseModel]] = (
            "task -> answer"
        ),
        tools: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]] = (),
        *,
        model: str | None = None,
        instructions: str | None = None,
        max_iters: int | None = None,
        approval: Approval | Reviewer | None = None,
        reviewer: Reviewer | None = None,
        confirm: Sequence[str] = (),
        sandbox: SandboxSettings | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        tool_timeout: float | None = None,
        workspace: str | os.PathLike[str] | None = None,
        runs_dir: str | os.PathLike[str] | None = None,
        config: CodeActConfig | None = None,
        keep_history: int | None = 1000,
        on_event: Callable[[RunEvent], Any] | None = None,
        model_params: Mapping[str, Any] | None = None,
    ) -> None:
        from codeact_lsp.engine.signature import Signature

        self.spec = Signature.parse(signature)
        self.signature = signature if isinstance(signature, str) else self.spec.text
        self._instructions = instructions
        self.instructions = instructions or self.spec.instructions or None
        self._adapters = {
            f.name: TypeAdapter(f.annotation) for f in self.spec.outputs if f.type_text is not None
        }
        tool_list = dict(tools) if isinstance(tools, Mapping) else list(tools)
        mode, self.reviewer = split_approval(approval)
        if reviewer is not None:
            if self.reviewer is not None:
                raise TypeError("pass the review callback once: approval=callback or reviewer=...")
            self.reviewer = reviewer
        self.config = build_config(
            config, workspace, model, max_iters, mode, confirm, sandbox, timeout
        )
        # README: `confirm=[...], reviewer=fn` reviews only the steps calling those tools (they
        # wait in every mode); with nothing flagged, the reviewer reviews every step
        unflagged = self.config.approval == "auto" and not self.config.confirm
        if reviewer is not None and mode is None and unflagged:
            self.config = self.config.model_copy(update={"approval": "review"})
        waits = self.config.approval != "auto" or bool(self.config.confirm)
        if waits and self.reviewer is None:
            raise ValueError(
                f"approval={self.config.approval!r} with confirm={self.config.confirm} makes "
                "steps wait for a decision: pass reviewer=callback (or approval=callback, short "
                "for reviewing every step)"
            )
        if self.reviewer is not None and not waits:
            raise ValueError(
                "the reviewer would never be asked: use approval='review' (every step) or "
                "confirm=[tool globs] (steps calling those tools)"
            )
        self.model = model or self.config.model or os.environ.get("CODEACT_MODEL")
        if not self.model:
            raise ValueError(
                "CodeAct needs a model: pass model='provider/name' (any litellm model string), "
                "set `model` in [tool.codeact], or set CODEACT_MODEL"
            )
        self.workspace = Path(workspace) if workspace is not None else None
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        # litellm options over the workspace's model_params (api_base, temperature, max_tokens,
        # timeout...); code may pass api_key, files may not
        self.model_params = dict(model_params or {})
        # the last results (a long batch must not grow memory without bound; None keeps all)
        self.history: collections.deque[Result] = collections.deque(maxlen=keep_history)
        self._review_errors: dict[str, BaseException] = {}
        # sees each run's events as they happen (step proposed, executing, tool called, ...)
        self.on_event = on_event
        self._usage = Usage()
        self._usage_lock = threading.Lock()
        from codeact_lsp.assemble import python_tools

        # built here, not lazily: a tool that cannot be described fails at construction
        in_process = python_tools(
            tool_list, self.config, timeout=tool_timeout, workspace=self.workspace
        )
        self._schemas = in_process.schemas()
        self._diagnostics = list(in_process.diagnostics)
        self._shared = Shared(in_process)
        self._finalizer = weakref.finalize(self, self._shared.shutdown)

    # -- construction helpers ------------------------------------------------------------------
    @property
    def tool_schemas(self) -> list[ToolSchema]:
        """What the model is shown for each tool (signature, doc, JSON schema, confirm flag)."""
        return list(self._schemas)

    @property
    def tool_diagnostics(self) -> list[ToolDiagnostic]:
        """Problems that leave the model guessing (no docstring, no annotations, ...)."""
        return list(self._diagnostics)

    async def _engine(self) -> Engine:
        shared = self._shared
        async with shared.lock:
            if shared.engine is None:
                from codeact_lsp.assemble import make_engine

                if shared.tools is None:
                    raise RuntimeError("this CodeAct was closed; create a new one")
                shared.engine = make_engine(
                    self.config,
                    shared.tools,
                    workspace=self.workspace,
                    runs_dir=self.runs_dir,
                    approver=weak_approver(self) if self.reviewer is not None else None,
                    model_params=self.model_params,
                )
            return shared.engine

    # -- one run -------------------------------------------------------------------------------
    def __call__(self, **inputs: Any) -> Result:
        """Run once on `inputs` and wait: usable from scripts, notebooks and threads."""
        self._check_inputs(inputs)
        return self._shared.loop.run(self._run(inputs))

    async def acall(self, **inputs: Any) -> Result:
        """`await act.acall(n=5)`: same as calling, without blocking the caller's event loop."""
        self._check_inputs(inputs)
        return await self._shared.loop.call(self._run(inputs))

    def follow_up(
        self, previous: Result | str, task: str, *, replay: ReplayMode = "recorded"
    ) -> Result:
        """Continue `previous` with a new instruction in the same sandbox (variables survive).
        If that sandbox is gone, its steps are replayed with their recorded tool results (no
        tool runs again); `replay="real"` runs them for real, each step reviewed as usual."""
        run_id = previous.run_id if isinstance(previous, Result) else previous
        return self._shared.loop.run(self._run({}, follow_up_of=run_id, task=task, replay=replay))

    async def afollow_up(
        self, previous: Result | str, task: str, *, replay: ReplayMode = "recorded"
    ) -> Result:
        run_id = previous.run_id if isinstance(previous, Result) else previous
        coro = self._run({}, follow_up_of=run_id, task=task, replay=replay)
        return await self._shared.loop.call(coro)

    def rerun(
        self,
        previous: Result | str,
        step: int,
        code: str | None = None,
        *,
        replay: ReplayMode = "recorded",
    ) -> Result:
        """A new run that rebuilds `previous` up to `step` in a fresh sandbox, then runs `code`
        as that step (or asks the model again): try a fix without redoing the earlier work. The
        earlier steps' tool calls are answered from their record; `replay="real"` calls the real
        tools again (each step reviewed as usual, confirm tools always)."""
        run_id = previous.run_id if isinstance(previous, Result) else previous
        return self._shared.loop.run(self._run({}, rerun_of=(run_id, step, code), replay=replay))

    async def arerun(
        self,
        previous: Result | str,
        step: int,
        code: str | None = None,
        *,
        replay: ReplayMode = "recorded",
    ) -> Result:
        run_id = previous.run_id if isinstance(previous, Result) else previous
        coro = self._run({}, rerun_of=(run_id, step, code), replay=replay)
        return await self._shared.loop.call(coro)

    def session(self) -> Session:
        """A conversation: the first call runs, each later call follows up in the same sandbox."""
        return Session(self)

    def _check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Fail in the caller's frame, before any run starts, on inputs the signature refuses."""
        self.spec.validate_inputs(dict(inputs))

    def _typed(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The trajectory holds JSON; give the caller the signature's Python types back."""
        typed = dict(outputs)
        for name, adapter in self._adapters.items():
            if name in typed:
                # already validated by the engine; keep the JSON form if it does not round-trip
                with contextlib.suppress(ValidationError):
                    typed[name] = adapter.validate_python(typed[name])
        return typed

    def _task(self, inputs: Mapping[str, Any]) -> str:
        """The task line of the prompt; the input values themselves reach the model as variables.

        A `task` input is the task; `instructions=` go before it. Without either, the output
        model's docstring (already in the system prompt) or a sentence naming the fields.
        """
        parts = [self._instructions] if self._instructions else []
        task = inputs.get("task")
        if isinstance(task, str) and task.strip():
            parts.append(task)
        if parts:
            return "\n\n".join(parts)
        if self.spec.instructions:
            return self.spec.instructions
        ins = ", ".join(f"`{n}`" for n in self.spec.input_names)
        outs = ", ".join(f"`{n}`" for n in self.spec.output_names)
        return f"Given {ins}, produce {outs}." if ins else f"Produce {outs}."

    async def _run(
        self,
        inputs: Mapping[str, Any],
        *,
        follow_up_of: str | None = None,
        rerun_of: tuple[str, int, str | None] | None = None,
        task: str | None = None,
        replay: ReplayMode = "recorded",
    ) -> Result:
        from codeact_lsp.engine import RunRequest

        engine = await self._engine()
        if follow_up_of is not None:
            handle = await engine.follow_up(follow_up_of, task or "", replay=replay)
        elif rerun_of is not None:
            handle = await engine.rerun(*rerun_of, replay=replay)
        else:
            request = RunRequest(
                task=task or self._task(inputs),
                signature=self.spec,
                inputs=dict(inputs),
                model=self.model,
                approval=self.config.approval,
                max_iters=self.config.max_iters,
            )
            handle = await engine.start(request)
        watching = (
            asyncio.ensure_future(self._forward_events(handle))
            if self.on_event is not None
            else None
        )
        try:
            trajectory = await handle.wait()
            if watching is not None:
                await watching  # every event is delivered before the result
        except asyncio.CancelledError:
            # the caller gave up (Ctrl-C, task cancelled): stop the run too, and keep its record
            handle.cancel()
            if watching is not None:
                watching.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(handle.wait())
            self._finish(handle.trajectory, handle)
            raise
        review_error = self._review_errors.pop(handle.id, None)
        if review_error is not None:
            raise review_error
        return self._finish(trajectory, handle)

    async def _forward_events(self, handle: RunHandle) -> None:
        """Hand each event to `on_event`, in order, on the caller's thread for sync calls (so a
        notebook can print progress); a failing callback stops the events, never the run."""
        callback = self.on_event
        if callback is None:
            return
        async for event in handle.subscribe():
            try:
                if inspect.iscoroutinefunction(callback):
                    await callback(event)
                else:
                    await on_caller_thread(callback, event)
            except Exception as exc:  # say it once, keep the run going
                import warnings

                warnings.warn(
                    f"on_event callback failed, no more events for run {handle.id}: {exc!r}",
                    RuntimeWarning,
                    stacklevel=1,
                )
                return

    def _finish(self, trajectory: Trajectory, handle: RunHandle) -> Result:
        program: str | None = None
        if trajectory.status == "finished":
            try:
                program = handle.program()
            except Exception:  # the program is a convenience; never lose the result over it
                program = trajectory.program
        outputs = trajectory.outputs if trajectory.status == "finished" else None
        result = Result(trajectory, self._typed(outputs) if outputs is not None else None, program)
        with self._usage_lock:
            self._usage = self._usage.add(trajectory.usage)
            self.history.append(result)
        return result

    # -- review --------------------------------------------------------------------------------
    async def _approve(
        self, handle: RunHandle, step: Step, confirm_tools: list[str]
    ) -> EngineDecision | None:
        """The engine's approver hook: ask the reviewer about the step that waits.

        A sync reviewer runs on the thread blocked in `act(...)` (so `input()` and Ctrl-C work
        there), or on a daemon thread for async callers; a reviewer that raises cancels the run,
        and the exception is re-raised to whoever called `act(...)`.
        """
        reviewer = self.reviewer
        if reviewer is None:
            return None
        pending = pending_step(handle.trajectory, step, confirm_tools, handle.pending_reason)
        with_checks(pending, handle, step, self._schemas, list(self.config.confirm))
        try:
            decision = await ask(reviewer, pending)
        except Exception as exc:
            self._review_errors[handle.id] = exc
            handle.cancel()
            return None
        return for_engine(decision)

    # -- many runs -----------------------------------------------------------------------------
    def batch(
        self,
        inputs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 4,
        progress: bool | None = None,
    ) -> list[Result]:
        """Run every input, `concurrency` at a time; results come back in input order.

        A failing input is a `Result` with `ok == False` in its place, never an exception that
        throws the other results away. The progress bar shows only when stderr is a terminal
        (`progress=True/False` forces it).
        """
        return self._shared.loop.run(self._batch(list(inputs), concurrency, progress))

    async def abatch(
        self,
        inputs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 4,
        progress: bool | None = None,
    ) -> list[Result]:
        coro = self._batch(list(inputs), concurrency, progress)
        return await self._shared.loop.call(coro)

    async def _batch(
        self, items: list[Mapping[str, Any]], concurrency: int, progress: bool | None
    ) -> list[Result]:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)
        bar = Progress(len(items), enabled=progress)

        async def one(item: Mapping[str, Any]) -> Result:
            async with gate:
                try:
                    if not isinstance(item, Mapping):
                        raise TypeError(f"batch inputs must be mappings, got {item!r}")
                    self._check_inputs(item)
                    result = await self._run(item)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    result = failed_result(
                        item, exc, self.instructions or "", self.signature, self.model or ""
                    )
            bar.advance(result.ok)
            return result

        try:
            return list(await asyncio.gather(*(one(item) for item in items)))
        finally:
            bar.close()

    # -- run listing and review state ---------------------------------------------------------
    def runs(self, *, include_discarded: bool = False) -> list[RunSummary]:
        """The runs this engine knows (in memory, and in `runs_dir` across restarts); discarded
        ones only when asked for."""

        async def listing() -> list[RunSummary]:
            return (await self._engine()).list_runs(include_discarded=include_discarded)

        return self._shared.loop.run(listing())

    def discard(self, run: Result | str) -> None:
        """Leave a run out of `runs()` from now on, also after a restart; `restore` undoes it."""
        self._set_state(run, discard=True)

    def restore(self, run: Result | str) -> None:
        self._set_state(run, discard=False)

    def _set_state(self, run: Result | str, *, discard: bool) -> None:
        run_id = run.run_id if isinstance(run, Result) else run

        async def change() -> None:
            engine = await self._engine()
            if discard:
                engine.discard(run_id)  # EngineError (a ValueError) names a missing run
            else:
                engine.restore(run_id)
            await engine.flushed()

        self._shared.loop.run(change())

    # -- totals and history --------------------------------------------------------------------
    @property
    def usage(self) -> Usage:
        """Tokens and cost over every run this object made."""
        with self._usage_lock:
            return self._usage

    def inspect_history(self, n: int = 1) -> str:
        """The last `n` runs as readable text: each step's code, output, errors and tool calls."""
        from codeact_lsp.api.render import render_trajectory

        recent = list(self.history)[-n:] if n > 0 else []
        return "\n\n".join(render_trajectory(r.trajectory) for r in recent)

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """End the sandboxes, the tool server and the loop thread. Idempotent."""
        self._finalizer()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> CodeAct:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> CodeAct:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"CodeAct({self.signature!r}, tools={self.tool_names}, model={self.model!r})"

    @property
    def tool_names(self) -> list[str]:
        return [s.name for s in self.tool_schemas]
