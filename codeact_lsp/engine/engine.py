"""The engine: starts runs, keeps them (and their sandboxes) alive, persists them, continues them.

The CLI, the language server and the Python API all drive runs through this class. It never blocks
the event loop: sandboxes and tools work on their own threads and processes, and a run file is a
small atomic write coalesced to one per loop iteration.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import time
from pathlib import Path
from typing import Any

from codeact_lsp.config import CodeActConfig, resolve_python
from codeact_lsp.engine.approval import flagged_tools
from codeact_lsp.engine.kept_sessions import KeptSessions
from codeact_lsp.engine.model import (
    ModelClient,
    ModelError,
    RetryPolicy,
    make_model,
    resolve_model_name,
)
from codeact_lsp.engine.replay import (
    RAN,
    REPLAY_MODES,
    ReplayItem,
    ReplayMode,
    prelude,
    prior_program,
    replay_chain,
    replay_item,
)
from codeact_lsp.engine.run import Approver, RunHandle, RunRequest
from codeact_lsp.engine.runstate import RunSummary
from codeact_lsp.engine.session import Session
from codeact_lsp.engine.signature import Signature, SignatureError
from codeact_lsp.engine.store import RunStore, new_run_id, valid_run_id
from codeact_lsp.tools.models import ToolProvider, ToolSchema
from codeact_lsp.trajectory import Acceptance, Rebuild, Step, Trajectory

_APPROVALS = ("auto", "review", "confirm-tools")
_MINOR_EVENTS = frozenset({"model_call", "model_retry", "model_delta", "executing", "tool_called"})


class EngineError(ValueError):
    """A request the engine cannot start (bad model, signature, inputs, run id...): say why."""


class Engine(KeptSessions):
    def __init__(
        self,
        config: CodeActConfig,
        tools: ToolProvider,
        *,
        workspace: Path | str | None = None,
        runs_dir: Path | str | None = None,
        approver: Approver | None = None,
        retry: RetryPolicy | None = None,
        python: str | None = None,
        max_idle_sessions: int | None = None,
        idle_seconds: float | None = None,
        model_factory: Any = None,
        stream: bool = False,
        extract_on_max_iters: bool = False,
        model_params: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.tools = tools
        self.workspace = Path(workspace) if workspace is not None else None
        self.store = RunStore(Path(runs_dir)) if runs_dir is not None else None
        self.approver = approver
        # litellm options: the workspace's model_params, then the caller's (which win)
        self.model_params = {**config.model_params, **(model_params or {})}
        timeout = self.model_params.get("timeout")
        if retry is None and isinstance(timeout, int | float) and timeout > 0:
            retry = RetryPolicy(timeout=float(timeout))  # one model call's budget, as configured
        self.retry = retry or RetryPolicy()
        sessions = config.sessions
        # idle sandboxes kept for follow-ups, and how long each may wait (settings, see config)
        self.max_idle_sessions = (
            max_idle_sessions if max_idle_sessions is not None else sessions.idle_limit
        )
        self.idle_seconds = idle_seconds if idle_seconds is not None else sessions.idle_seconds
        self._evicted: dict[str, str] = {}  # run id -> why its sandbox was closed
        self._idle_timer: asyncio.TimerHandle | None = None
        self._python = python
        self._model_factory = model_factory or make_model
        self.stream = stream  # emit model_delta events while replies stream in
        self.extract_on_max_iters = extract_on_max_iters  # one extraction call when out of steps
        self._runs: dict[str, RunHandle] = {}
        self._sessions: dict[str, Session] = {}  # run id -> its session
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()

    # -- starting runs ------------------------------------------------------------------------

    async def start(self, request: RunRequest, *, tools: ToolProvider | None = None) -> RunHandle:
        """Start a run in the background; errors in the request raise EngineError at once.

        `tools` serves this run's tool calls instead of the engine's (a task suite gives each
        task a fresh tool host); its follow-ups and re-runs go back to the engine's tools."""
        self._check_open()
        try:
            signature = Signature.parse(request.signature)
            inputs = signature.validate_inputs(request.inputs, task=request.task)
        except SignatureError as exc:
            raise EngineError(str(exc)) from None
        model = self._model(request.model)
        approval = request.approval or self.config.approval
        if approval not in _APPROVALS:
            raise EngineError(f"approval must be one of {', '.join(_APPROVALS)}, not {approval!r}")
        max_iters = request.max_iters or self.config.max_iters
        if max_iters < 1:
            raise EngineError("max_iters must be at least 1")
        schemas = self._schemas(tools)
        traj = self._new_trajectory(
            task=request.task,
            signature=signature,
            model=model,
            inputs=inputs,
            approval=approval,
            max_iters=max_iters,
        )
        traj.target = request.target
        session = self._new_session(schemas, tools)
        handle = self._handle(traj, signature, model, schemas, session)
        handle.launch(replay=[ReplayItem(code=prelude(inputs))] if inputs else [])
        return handle

    async def follow_up(
        self, run_id: str, task: str, *, replay: ReplayMode = "recorded"
    ) -> RunHandle:
        """A new run that continues `run_id` in the same sandbox (its variables are still there).

        When that sandbox is gone (evicted, or the run is only on disk), the chain's steps are
        replayed into a new one with their recorded tool results; `replay="real"` runs them for
        real instead (each gated like a new step). `trajectory.rebuild` says which happened."""
        self._check_open()
        _check_replay(replay)
        parent = self._trajectory(run_id)
        live = self._runs.get(run_id)
        if live is not None and not live.done:
            raise EngineError(f"run {run_id} is still {parent.status}; follow up once it has ended")
        if not task.strip():
            raise EngineError("a follow-up needs a task")
        signature = live.signature if live is not None else Signature.recorded(parent.signature)
        model = self._model(parent.model, scripted_from=live)
        chain = self._chain(parent)
        if live is None and hasattr(model, "skip"):
            # a script replayed from the start: skip the replies the earlier runs consumed
            model.skip(sum(len(t.steps) for t in chain))
        schemas = self._schemas()
        session = self._sessions.get(run_id)
        items: list[ReplayItem] = []
        if session is None or session.closed or session.busy:
            reason = self._gone_reason(run_id, live, session)
            session = self._new_session(schemas)
            items = replay_chain(chain)
            rebuild = Rebuild(session="rebuilt", mode=replay, reason=reason)
        else:
            rebuild = Rebuild(session="live", mode=replay, reason="the parent's sandbox is open")
        inputs = dict(parent.inputs)
        traj = self._new_trajectory(
            task=task,
            signature=signature,
            model=model,
            inputs=inputs,
            approval=parent.approval,
            max_iters=parent.max_iters,
        )
        traj.parent = parent.id
        traj.target = parent.target
        traj.relation = "follow_up"
        traj.rebuild = rebuild
        handle = self._continuing(traj, signature, model, schemas, session, chain)
        self._sessions.pop(run_id, None)
        self._evicted.pop(run_id, None)
        handle.launch(replay=items)
        return handle

    async def rerun(
        self, run_id: str, step: int, code: str | None = None, *, replay: ReplayMode = "recorded"
    ) -> RunHandle:
        """A new run: steps before `step` rebuilt in a fresh sandbox, then `code` (or the model).

        The earlier steps' tool calls are answered from their record (no tool runs twice);
        `replay="real"` runs them for real instead, each gated like a new step."""
        self._check_open()
        _check_replay(replay)
        parent = self._trajectory(run_id)
        if not 1 <= step <= len(parent.steps) + 1:
            raise EngineError(
                f"step must be between 1 and {len(parent.steps) + 1} for run {run_id}, not {step}"
            )
        source = self._runs.get(run_id)
        signature = source.signature if source is not None else Signature.recorded(parent.signature)
        model = self._model(parent.model)
        skip = (step - 1) + (1 if code is not None else 0)
        if hasattr(model, "skip"):
            model.skip(skip)
        chain = self._chain(parent)[:-1]  # what the parent itself continued from
        kept = [s.model_copy(deep=True) for s in parent.steps[: step - 1]]
        for s in kept:
            s.replayed = True
            s.reexecuted = False
        traj = self._new_trajectory(
            task=parent.task,
            signature=signature,
            model=model,
            inputs=dict(parent.inputs),
            approval=parent.approval,
            max_iters=max(parent.max_iters, len(kept) + 1),
        )
        traj.parent = parent.id
        traj.target = parent.target
        traj.steps = kept
        traj.usage = _sum_usage(kept)
        traj.relation = "rerun"
        traj.rerun_from = step
        schemas = self._schemas()
        session = self._new_session(schemas)
        handle = self._continuing(traj, signature, model, schemas, session, chain)
        items = replay_chain(chain)
        if parent.inputs:
            items.append(ReplayItem(code=prelude(parent.inputs)))
        items += [
            replay_item(parent.id, s, kept=s.index) for s in kept if s.code and s.status in RAN
        ]
        traj.rebuild = Rebuild(
            session="rebuilt" if any(i.is_step for i in items) else "fresh",
            mode=replay,
            reason=f"re-run from step {step}: a new sandbox gets the state of the steps before it",
        )
        handle.launch(replay=items, first_code=code)
        return handle

    # -- review state that survives restarts ---------------------------------------------------

    def discard(self, run_id: str) -> Trajectory:
        """Mark a run discarded (a live one is cancelled first): it leaves every listing, and its
        file stays, marked, so that `restore` can undo it and a restart does not bring it back."""
        live = self._runs.get(run_id)
        if live is not None and not live.done:
            live.cancel()
        return self._update(run_id, discarded_at=time.time())

    def restore(self, run_id: str) -> Trajectory:
        """Undo `discard`."""
        return self._update(run_id, discarded_at=None)

    def mark_accepted(self, run_id: str, acceptance: Acceptance | None) -> Trajectory:
        """Record where and what Accept applied (None: forget it, e.g. Accept is offered again)."""
        return self._update(run_id, accepted=acceptance)

    def list_runs(self, *, include_discarded: bool = False) -> list[RunSummary]:
        """Runs in memory and on disk, oldest first; discarded ones only when asked for."""
        ids = set(self._runs)
        if self.store is not None:
            ids.update(self.store.list_ids())
        out: list[RunSummary] = []
        for run_id in ids:
            traj = self.load(run_id)
            if traj is None or (traj.discarded_at is not None and not include_discarded):
                continue
            out.append(RunSummary.of(traj))
        out.sort(key=lambda r: (r.created_at, r.id))
        return out

    def _update(self, run_id: str, **changes: Any) -> Trajectory:
        live = self._runs.get(run_id)
        traj = live.trajectory if live is not None else self._trajectory(run_id)
        for key, value in changes.items():
            setattr(traj, key, value)
        self._save(traj)
        return traj

    # -- lookup -------------------------------------------------------------------------------

    def get(self, run_id: str) -> RunHandle | None:
        return self._runs.get(run_id)

    def runs(self) -> list[RunHandle]:
        return list(self._runs.values())

    def load(self, run_id: str) -> Trajectory | None:
        """A run from memory or from its file (`store.read_run`: a file left `running` by a
        process that died reads as failed)."""
        live = self._runs.get(run_id)
        if live is not None:
            return live.trajectory
        if self.store is None or not valid_run_id(run_id):
            return None
        return self.store.load(run_id)

    async def close(self) -> None:
        """Cancel live runs, close every sandbox, write every run file."""
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        live = [h for h in self._runs.values() if not h.done]
        for handle in live:
            handle.cancel()
        for handle in live:
            await handle.wait()
        sessions = {id(s): s for s in self._sessions.values()}
        for handle in self._runs.values():
            sessions.setdefault(id(handle.session), handle.session)
        self._sessions.clear()
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)
        # sessions evicted earlier close in the background: done before the tools they hold
        # (per-run MCP servers) lose the loop they run on
        await asyncio.gather(*self._closing, return_exceptions=True)
        for handle in self._runs.values():
            self._save(handle.trajectory)
        await self.flushed()

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the engine is closed")

    def _model(self, name: str | None, scripted_from: RunHandle | None = None) -> ModelClient:
        if scripted_from is not None and scripted_from.model.scripted:
            return scripted_from.model  # a follow-up continues the same script
        try:
            resolved = resolve_model_name(name, self.config.model)
            model: ModelClient = self._model_factory(
                resolved, base=self.workspace, **self.model_params
            )
        except ModelError as exc:
            raise EngineError(str(exc)) from None
        return model

    def _schemas(self, tools: ToolProvider | None = None) -> list[ToolSchema]:
        try:
            return list((tools or self.tools).schemas())
        except Exception as exc:
            raise EngineError(f"the tools are not available: {exc}") from exc

    def _trajectory(self, run_id: str) -> Trajectory:
        traj = self.load(run_id)
        if traj is None:
            raise EngineError(f"no run {run_id!r}")
        return traj

    def _chain(self, traj: Trajectory) -> list[Trajectory]:
        """The follow-up ancestors of a run, oldest first, ending with the run itself if it is the
        parent of a follow-up (their state is the session the new run continues)."""
        chain = [traj]
        seen = {traj.id}
        current = traj
        while current.relation == "follow_up" and current.parent:
            prev = self.load(current.parent)
            if prev is None or prev.id in seen:
                break
            seen.add(prev.id)
            chain.append(prev)
            current = prev
        chain.reverse()
        return chain

    def _new_trajectory(
        self,
        *,
        task: str,
        signature: Signature,
        model: ModelClient,
        inputs: dict[str, Any],
        approval: str,
        max_iters: int,
    ) -> Trajectory:
        now = time.time()
        traj = Trajectory(
            id=new_run_id(),
            task=task,
            signature=signature.text,
            model=model.name,
            scripted=model.scripted,
            inputs=inputs,
            approval=approval,
            max_iters=max_iters,
            workspace=str(self.workspace) if self.workspace else None,
            created_at=now,
            updated_at=now,
        )
        traj.pid = os.getpid()  # who runs it (see `load`)
        return traj

    def _new_session(self, schemas: list[ToolSchema], tools: ToolProvider | None = None) -> Session:
        python = self._python
        if python is None and self.workspace is not None:
            python = resolve_python(self.workspace, self.config)
        workspace = str(self.workspace) if self.workspace is not None else None
        base = tools or self.tools
        for_run = getattr(base, "for_run", None)  # per-run MCP servers: the session's own
        own = for_run() if callable(for_run) else None
        return Session(
            own or base,
            schemas,
            self.config.sandbox,
            python=python,
            workspace=workspace,
            owns_tools=own is not None,
        )

    def _continuing(
        self,
        traj: Trajectory,
        signature: Signature,
        model: ModelClient,
        schemas: list[ToolSchema],
        session: Session,
        chain: list[Trajectory],
    ) -> RunHandle:
        """A handle for a run that continues `chain` (follow-up or re-run): the model sees its code."""
        prior_code, prior_inputs = prior_program(chain)
        return self._handle(
            traj,
            signature,
            model,
            schemas,
            session,
            previous=chain,
            prior_code=prior_code,
            prior_inputs=prior_inputs,
        )

    def _handle(
        self,
        traj: Trajectory,
        signature: Signature,
        model: ModelClient,
        schemas: list[ToolSchema],
        session: Session,
        **extra: Any,
    ) -> RunHandle:
        flags = {t.name: t.confirm for t in schemas}
        handle = RunHandle(
            traj,
            signature=signature,
            model=model,
            tools=schemas,
            flagged=flagged_tools(flags, flags, self.config.confirm),
            session=session,
            retry=self.retry,
            step_timeout=self.config.sandbox.timeout,
            on_change=self._changed,
            approver=self.approver,
            stream=self.stream,
            extract=self.extract_on_max_iters,
            accept=self.config.accept,
            **extra,
        )
        self._runs[traj.id] = handle
        session.run_ids.append(traj.id)
        self._sessions[traj.id] = session
        return handle

    def _changed(self, handle: RunHandle, kind: str) -> None:
        """Queue a run-file write on events a reader after a crash would miss; the frequent ones
        (tool calls, model calls) ride along with the next write."""
        if handle.done:
            handle.saved = self._save(handle.trajectory)
            self._after_end(handle)
        elif kind not in _MINOR_EVENTS:
            self._save(handle.trajectory)

    def _save(self, traj: Trajectory) -> cf.Future[None] | None:
        if self.store is None:
            return None
        return self.store.save_async(traj)

    async def flushed(self) -> None:
        """Wait until every run-file write queued so far is on disk."""
        if self.store is not None:
            await asyncio.wrap_future(self.store.barrier())


def _check_replay(mode: str) -> None:
    if mode not in REPLAY_MODES:
        raise EngineError(f"replay must be one of {', '.join(REPLAY_MODES)}, not {mode!r}")


def _sum_usage(steps: list[Step]) -> Any:
    from codeact_lsp.trajectory import Usage

    total = Usage()
    for s in steps:
        total = total.add(s.usage)
    return total
