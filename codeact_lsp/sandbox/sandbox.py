"""`Sandbox`: one run's worker, its limits, and the timeout / cancel / crash semantics.

A snippet that overruns its time is interrupted (KeyboardInterrupt inside the snippet: globals are
kept); if it does not come back within a short grace period the worker is killed and the next
snippet gets a fresh one, with `state_lost` said out loud. Cancelling the task that awaits
`execute` does the same before re-raising, so the sandbox stays usable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import functools
import os
import secrets
import sys
import time
from typing import Any

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import backends, cgroups
from codeact_lsp.sandbox.idle import Parking
from codeact_lsp.sandbox.models import (
    DirectRoute,
    DirectSink,
    ExecResult,
    SandboxError,
    SandboxInfo,
    StepError,
    ToolHandler,
    ToolStub,
)
from codeact_lsp.sandbox.pool import SandboxPool
from codeact_lsp.sandbox.process import MAX_FRAME, ChannelLimits, WorkerDied, WorkerProcess

GRACE = 0.3  # seconds an interrupted snippet gets to unwind before the worker is killed
POLL = 0.25  # seconds between CPU-time checks while a snippet runs
FAST_WAIT = 0.0005  # seconds `execute` may block the event loop waiting for a quick snippet
DIRECT_TIMEOUT = 5.0  # seconds the tool host may take to open or close a step
CANCEL_WAIT = 2.0  # seconds a cancelled host call may take to end, so its record is kept
LIVE_AFTER = 1.0  # seconds into a step before its direct-route records are handed over live


def _cut_off(worker: WorkerProcess, why: str) -> None:
    """The tool host cut the worker off its direct route (it broke the protocol there)."""
    worker.direct_broken = worker.direct_broken or why[:500]
    worker.kill(why[:500])


class Sandbox:
    """A worker process that runs generated code for one run, with tool stubs wired to `handler`."""

    def __init__(
        self,
        settings: SandboxSettings,
        tools: list[ToolStub],
        handler: ToolHandler,
        *,
        python: str,
        extra_paths: list[str],
        pool: SandboxPool,
        workspace: str | None = None,
        exceptions: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
        direct: DirectRoute | None = None,
        on_direct: DirectSink | None = None,
    ) -> None:
        if workspace:  # relative read_paths name files of the workspace
            resolved = [os.path.join(workspace, os.path.expanduser(p)) for p in settings.read_paths]
            settings = settings.model_copy(update={"read_paths": resolved})
        self.settings = settings
        self.tools = list(tools)
        self.handler = handler
        self.exceptions = list(exceptions)
        self.python = python
        self.extra_paths = list(extra_paths)
        self.pool = pool
        self.plan = backends.make_plan(settings, python, self.extra_paths, workspace=workspace)
        self.info = SandboxInfo(backend=self.plan.spec.backend)
        self._worker: WorkerProcess | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self._lost_unreported = False
        self._parking = Parking(settings.idle_timeout)  # stopped between steps, ended when idle
        self._cgroup: cgroups.WorkerCgroup | None = None
        # the direct route: calls of the provider's own tools go from the worker to it, and
        # their records come back to `on_direct` (in call order, before the step's result)
        self.direct = direct if on_direct is not None else None
        self.on_direct = on_direct
        self._caps: dict[str, Any] = {}
        self._flushing: asyncio.Future[None] | None = None  # a live flush in flight

    @classmethod
    async def start(
        cls,
        settings: SandboxSettings,
        tools: list[ToolStub],
        handler: ToolHandler,
        *,
        python: str | None = None,
        extra_paths: list[str] | tuple[str, ...] = (),
        pool: SandboxPool | None = None,
        workspace: str | None = None,
        exceptions: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
        direct: DirectRoute | None = None,
        on_direct: DirectSink | None = None,
    ) -> Sandbox:
        """Configure a (warm) worker. Raises `IsolationUnavailable` under `require_isolation` when a
        layer is missing, `SandboxError` when the worker cannot start.

        `workspace` (optional): relative `read_paths` are resolved against it, and granting a path
        that contains it is reported as not enforced (its `.env` would be readable).
        `exceptions`: exception classes of the tool modules (`codec.exception_tree` form), bound
        by name in the snippet's globals so `except InsufficientFunds:` works.
        `direct` / `on_direct`: the provider that serves its own tools' calls straight from the
        worker (the tool host), and where those calls' records go; only steps run with
        `execute(..., direct=True)` use it, the rest (and every other tool) go to `handler`."""
        sb = cls(
            settings,
            tools,
            handler,
            python=python or sys.executable,
            extra_paths=list(extra_paths),
            pool=pool or SandboxPool.default(),
            workspace=workspace,
            exceptions=exceptions,
            direct=direct,
            on_direct=on_direct,
        )
        await sb._boot()
        return sb

    @property
    def scratch(self) -> str | None:
        """The worker's private working directory (on the host; a private tmpfs hides its files)."""
        return self._worker.scratch if self._worker else None

    @property
    def pid(self) -> int | None:
        return self._worker.pid if self._worker else None

    @staticmethod
    def _detach(worker: WorkerProcess | None) -> None:
        if worker is not None and worker.direct is not None:
            conn, worker.direct = worker.direct, None
            conn.detach()

    async def _boot(self) -> None:
        self._detach(self._worker)
        try:
            worker = await self.pool.acquire(self.plan.spec, replenish=False)
        except SandboxError as exc:
            if self.plan.spec.backend != "bwrap" or self.settings.require_isolation:
                raise
            # bubblewrap is installed but cannot run here (e.g. user namespaces disabled):
            # fall back to Landlock + seccomp, and say so in the isolation report
            self.plan = backends.without_bwrap(self.plan, self.settings, str(exc))
            worker = await self.pool.acquire(self.plan.spec, replenish=False)
        try:
            await self._configure(worker)
        finally:
            self.pool.warm(self.plan.spec)

    async def _configure(self, worker: WorkerProcess) -> None:
        worker.handler = self.handler
        worker.tool_names = frozenset(t.name for t in self.tools)
        worker.confirm_names = frozenset(t.name for t in self.tools if t.confirm)
        st = self.settings
        worker.limits = ChannelLimits(
            frame=max(MAX_FRAME, st.max_args_kb * 1024 + 4096),
            args=st.max_args_kb * 1024,
            calls=st.max_tool_calls,
            # replies waiting for a worker that does not read: a few of the largest results
            backlog=max(8 * 1024 * 1024, 4 * st.max_result_kb * 1024),
        )
        tools = [
            {
                "name": t.name,
                "doc": t.doc,
                "signature": t.signature,
                "local": None if t.confirm else t.local,
            }
            for t in self.tools
        ]
        # kernel memory and tasks: cgroups made by the host before the worker runs any code
        contained = backends.contain(worker, self.settings, self.plan)
        self._cgroup = contained.cgroup
        msg = backends.config_message(
            self.settings, self.plan, worker.scratch, tools, self.extra_paths
        )
        msg["exceptions"] = list(self.exceptions)
        msg["direct"] = self._attach(worker)
        msg["max_args"] = st.max_args_kb * 1024
        msg["max_depth"] = st.max_depth
        try:
            reply = await asyncio.wrap_future(worker.request(msg))
        except WorkerDied as exc:
            raise SandboxError(f"the sandbox worker died while being configured: {exc}") from None
        except asyncio.CancelledError:
            worker.kill("cancelled during start")
            raise
        if reply.get("t") != "configured":
            worker.kill("configuration failed")
            err = reply.get("error") or {}
            raise SandboxError(
                f"the sandbox worker could not be configured: {err.get('traceback') or reply}"
            )
        applied = [str(x)[:300] for x in list(reply.get("applied", []))[:50]]
        problems = [str(x)[:300] for x in list(reply.get("problems", []))[:50]]
        info = backends.describe(self.plan, applied, problems, contained)
        try:
            backends.refuse_if_required(self.settings, info)
        except Exception:
            worker.kill("isolation refused")
            raise
        self.info = info
        self._worker = worker

    def _attach(self, worker: WorkerProcess) -> list[str]:
        """Hand the worker's direct pipes to the provider; the tools it will serve directly."""
        fds = worker.take_direct_fds()
        route = self.direct
        if fds is None or route is None:
            for fd in fds or ():
                with contextlib.suppress(OSError):
                    os.close(fd)
            return []
        own = route.direct_names()
        names = [t.name for t in self.tools if t.name in own and not (t.local and not t.confirm)]
        confirm = [t.name for t in self.tools if t.confirm and t.name in names]
        st = self.settings
        limits = {
            "max_frame": worker.limits.frame,
            "backlog": worker.limits.backlog,
        }
        conn = (
            route.attach(fds, names, confirm, limits, functools.partial(_cut_off, worker))
            if names
            else None
        )
        if conn is None:
            if not names:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            return []
        worker.direct = conn
        worker.direct_sink = self.on_direct
        self._caps = {
            "max_calls": st.max_tool_calls,
            "max_args": st.max_args_kb * 1024,
            "timeout": st.timeout,
            "record_chars": st.record_kb * 1024,
            "max_recorded": st.max_recorded_calls,
        }
        return names

    async def execute(
        self,
        code: str,
        timeout: float | None = None,
        *,
        confirmed: bool = False,
        direct: bool = False,
        flagged: frozenset[str] | set[str] = frozenset(),
    ) -> ExecResult:
        """Run one snippet in the persistent globals. Never raises for errors of the code itself.

        `confirmed`: a person approved this snippet; only then are tools whose stub says
        `confirm` served (however the code reaches them); otherwise they fail with a
        PermissionError inside the snippet and do not run.
        `direct`: calls of the direct route's tools go straight to it (when it is attached and
        alive), their records to `on_direct`; off for replayed steps, whose calls the handler
        answers from the record. `flagged`: more tools that need the approval in this step (the
        run's `confirm` globs), enforced where the direct route serves them."""
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            gone = self._worker
            if gone is not None and gone.direct_broken and not gone.direct_broken_reported:
                # the host cut it off after its last step had already answered: say so now
                gone.direct_broken_reported = True
                self._lost_unreported = True
            if self._worker is None or not self._worker.alive:
                await self._boot()
            worker = self._worker
            assert worker is not None
            self._parking.wake(worker)
            try:
                result = await self._run(
                    worker, code, timeout or self.settings.timeout, confirmed, direct, flagged
                )
            finally:
                self._parking.park(self._worker, self._idle_expired)
            if self._lost_unreported:
                self._lost_unreported = False
                result.state_lost = True
            return result

    async def _run(
        self,
        worker: WorkerProcess,
        code: str,
        limit: float,
        confirmed: bool,
        direct: bool,
        flagged: frozenset[str] | set[str] = frozenset(),
    ) -> ExecResult:
        t0 = time.perf_counter()
        nonce = await self._open_direct(worker, confirmed, flagged) if direct else None
        if nonce is None:
            return await self._run_inner(worker, code, limit, confirmed, nonce, t0)
        try:
            result = await self._run_inner(worker, code, limit, confirmed, nonce, t0)
        finally:
            await self._close_direct(worker, nonce)
        result.refused = list(worker.refusals)  # the host's refusals too
        if worker.direct_broken:
            worker.direct_broken_reported = True
        if worker.direct_broken and not result.state_lost:
            # the host cut the worker off after the snippet (an unusable channel): say so
            result.state_lost = True
            self._worker = None
            if result.error is None:
                result.error = StepError(
                    type="SandboxCrash",
                    message=f"the sandbox worker was stopped ({worker.direct_broken}); it was "
                    "restarted and variables from earlier steps are lost",
                )
        return result

    async def _open_direct(
        self, worker: WorkerProcess, confirmed: bool, flagged: frozenset[str] | set[str]
    ) -> str | None:
        """Open a step on the direct route; None (the handler serves every call) when it is not
        attached, not alive or does not answer."""
        conn = worker.direct
        if conn is None or not conn.alive or self.on_direct is None:
            return None
        nonce = secrets.token_hex(8)
        caps = {**self._caps, "confirm": sorted(flagged)} if flagged else self._caps
        fut = conn.open(nonce, confirmed, caps)
        with contextlib.suppress(cf.TimeoutError):
            fut.result(timeout=FAST_WAIT * 4)  # the host answers in tens of microseconds
        if not fut.done():
            try:
                await asyncio.wait_for(asyncio.wrap_future(fut), DIRECT_TIMEOUT)
            except TimeoutError:
                return None
        if not fut.result():
            return None
        worker.direct_nonce = nonce
        worker.direct_cancelled = False
        return nonce

    def _flush_live(self, worker: WorkerProcess) -> None:
        """A long step on the direct route (past LIVE_AFTER): its records so far go to
        `on_direct` now (the live view sees calls every POLL seconds, not only at the end), on a
        thread, one at a time. Short steps hand them over once, at the end: a flush costs the
        server a round trip, which is what a burst of fast calls must not pay."""
        nonce = worker.direct_nonce
        if nonce is None or (self._flushing is not None and not self._flushing.done()):
            return
        self._flushing = asyncio.ensure_future(asyncio.to_thread(worker.flush_direct, nonce))

    async def _close_direct(self, worker: WorkerProcess, nonce: str) -> None:
        """End the step on the direct route: its remaining records go to `on_direct` before the
        step's result is seen; a connection the host cut gets the worker killed."""
        worker.direct_nonce = None
        flushing, self._flushing = self._flushing, None
        if flushing is not None:  # a live flush delivers first: the records stay in order
            with contextlib.suppress(Exception):
                await asyncio.shield(flushing)
        conn, sink = worker.direct, self.on_direct
        if conn is None or sink is None:
            return
        # a cancelled call is interrupted in the host: wait for its record (briefly)
        fut = conn.close(nonce, CANCEL_WAIT if worker.direct_cancelled else 0.0)
        reply: dict[str, Any] = {}
        try:
            with contextlib.suppress(cf.TimeoutError):
                reply = fut.result(timeout=FAST_WAIT * 4)
            if not fut.done():
                reply = await asyncio.wait_for(asyncio.wrap_future(fut), DIRECT_TIMEOUT)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # cancelled: keep what is there already
                reply = fut.result(timeout=0.05)
            self._take(worker, reply, sink)
            raise
        except (TimeoutError, ConnectionError):
            reply = {}
        self._take(worker, reply, sink)
        if not worker.alive:
            self._detach(worker)
        # callbacks the sink scheduled (tool_called events) run before the step's result is seen
        await asyncio.sleep(0)

    def _take(self, worker: WorkerProcess, reply: dict[str, Any], sink: DirectSink) -> None:
        calls = reply.get("calls")
        calls = calls if isinstance(calls, list) else []
        omitted = reply.get("omitted")
        refused = reply.get("refused")
        if isinstance(refused, list):
            worker.refusals.extend(r for r in refused[:100] if isinstance(r, dict))
        if calls or (type(omitted) is int and omitted > 0):
            sink(calls, omitted if type(omitted) is int else 0)
        broken = reply.get("broken")
        if isinstance(broken, str) and worker.alive:
            worker.direct_broken = broken[:500]
            worker.kill(worker.direct_broken)

    async def _run_inner(
        self,
        worker: WorkerProcess,
        code: str,
        limit: float,
        confirmed: bool,
        nonce: str | None,
        t0: float,
    ) -> ExecResult:
        cpu_limit = self.settings.cpu_seconds or limit
        command: dict[str, Any] = {"t": "exec", "code": code}
        if nonce is not None:
            command["direct"] = True
        cfut = worker.request(command, confirmed=confirmed)
        with contextlib.suppress(cf.TimeoutError, WorkerDied):
            # Trivial snippets finish in tens of microseconds: waiting here briefly saves the
            # event-loop round trip (and the CPU it steals from the worker on 2 cores).
            cfut.result(timeout=FAST_WAIT)
        reason: str | None = None
        if cfut.done():
            msg = self._outcome(cfut)
            # callbacks the handler threads scheduled meanwhile (tool_called events) run before
            # the step's result is seen, as they would have on the slow path
            await asyncio.sleep(0)
        else:
            reason, msg = await self._wait(worker, asyncio.wrap_future(cfut), limit, cpu_limit)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if msg is None:  # killed, or crashed
            if reason is not None:
                what = (
                    f"the step exceeded its {limit:g} s time limit"
                    if reason == "timeout"
                    else f"the step exceeded its {cpu_limit:g} s CPU-time limit"
                )
                err = StepError(
                    type="TimeoutError",
                    message=f"{what} and did not stop when interrupted; the sandbox was restarted "
                    "and variables from earlier steps are lost",
                )
            else:
                err = StepError(
                    type="SandboxCrash",
                    message=f"the sandbox worker died ({worker.death}); it was restarted and "
                    "variables from earlier steps are lost",
                )
            return ExecResult(
                error=err,
                duration_ms=elapsed,
                timed_out=reason is not None,
                state_lost=True,
                sandbox=self.info,
            )
        return self._result(msg, reason, limit, cpu_limit, elapsed, worker)

    async def _wait(
        self,
        worker: WorkerProcess,
        fut: asyncio.Future[dict[str, Any]],
        limit: float,
        cpu_limit: float,
    ) -> tuple[str | None, dict[str, Any] | None]:
        """Wait for the snippet, enforcing wall-clock and CPU limits; stop it when cancelled."""
        t0 = time.perf_counter()
        cpu0 = worker.cpu_seconds()  # from /proc: the worker's own report is not to be trusted
        reason: str | None = None
        try:
            deadline = t0 + limit
            while True:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    reason = "timeout"
                    break
                done, _ = await asyncio.wait((fut,), timeout=min(remaining, POLL))
                if done:
                    return None, self._outcome(fut)
                if time.perf_counter() - t0 >= LIVE_AFTER:
                    self._flush_live(worker)
                cpu = worker.cpu_seconds()
                if cpu is not None and cpu0 is not None and cpu - cpu0 > cpu_limit:
                    reason = "cpu"
                    break
        except asyncio.CancelledError:
            if await self._stop(worker, fut) is None:
                self._lost_unreported = True  # the next result says so
            raise
        return reason, await self._stop(worker, fut)

    def _outcome(
        self, fut: asyncio.Future[dict[str, Any]] | cf.Future[dict[str, Any]]
    ) -> dict[str, Any] | None:
        try:
            return fut.result()
        except WorkerDied:
            return None

    async def _stop(
        self, worker: WorkerProcess, fut: asyncio.Future[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Interrupt the snippet; kill the worker if it does not come back within GRACE."""
        end = time.perf_counter() + GRACE
        while not fut.done():
            worker.interrupt()
            remaining = end - time.perf_counter()
            if remaining <= 0:
                break
            await asyncio.wait((fut,), timeout=min(remaining, 0.1))
        if not fut.done():
            worker.kill("did not stop when interrupted")
            self._worker = None
            fut.cancel()
            return None
        out = self._outcome(fut)
        if out is None:
            self._worker = None
        return out

    def _result(
        self,
        msg: dict[str, Any],
        reason: str | None,
        limit: float,
        cpu_limit: float,
        elapsed: float,
        worker: WorkerProcess,
    ) -> ExecResult:
        """`msg` comes from the worker, i.e. from a process that ran untrusted code: everything is
        clipped, and `stopped` / `cancelled` are what the host saw, not what the worker claims."""
        cap = self.settings.output_kb * 1024 * 2
        error = None
        raw = msg.get("error")
        timed_out = False
        cancelled = False
        if isinstance(raw, dict):
            error = StepError(
                type=str(raw.get("type", "Error"))[:200],
                message=str(raw.get("message", ""))[:cap],
                line=raw.get("line") if isinstance(raw.get("line"), int) else None,
                traceback=str(raw.get("traceback", ""))[:cap],
            )
            if error.type == "KeyboardInterrupt" and worker.interrupted:
                if reason is not None:
                    timed_out = True
                    what = (
                        f"the step exceeded its {limit:g} s time limit"
                        if reason == "timeout"
                        else f"the step exceeded its {cpu_limit:g} s CPU-time limit"
                    )
                    where = f" (interrupted at line {error.line})" if error.line else ""
                    error = StepError(
                        type="TimeoutError",
                        message=what + where,
                        line=error.line,
                        traceback=error.traceback.rsplit("\n", 1)[0] + f"\nTimeoutError: {what}"
                        if "\n" in error.traceback
                        else f"TimeoutError: {what}",
                    )
                else:
                    cancelled = True
        value = msg.get("value")
        return ExecResult(
            stdout=str(msg.get("stdout", ""))[:cap],
            stderr=str(msg.get("stderr", ""))[:cap],
            value=value[:cap] if isinstance(value, str) else None,
            error=error,
            duration_ms=elapsed,
            stopped=worker.stop_replied,
            timed_out=timed_out,
            truncated=bool(msg.get("truncated")),
            cancelled=cancelled,
            sandbox=self.info,
            refused=list(worker.refusals),
        )

    def cancel_tools(self) -> None:
        """The run was cancelled: a host tool the running snippet called directly is interrupted
        where it is, and the step's further calls are refused (safe from any thread)."""
        worker = self._worker
        if worker is None:
            return
        conn, nonce = worker.direct, worker.direct_nonce
        if conn is not None and nonce is not None:
            worker.direct_cancelled = True
            conn.cancel(nonce)

    def interrupt(self) -> None:
        """Interrupt the running snippet (it ends with KeyboardInterrupt, globals kept)."""
        if self._worker is not None:
            self._worker.interrupt()

    def _idle_expired(self) -> None:
        """Idle for `idle_timeout`: end the worker; the next step gets a fresh one, and says so."""
        worker, self._worker = self._worker, None
        self._detach(worker)
        if worker is not None and not self._closed:
            worker.kill(f"idle for {self.settings.idle_timeout:g} s")
            self._lost_unreported = True

    async def close(self) -> None:
        """Kill the worker and its process group, remove its scratch directory."""
        self._closed = True
        self._parking.forget()
        worker, self._worker = self._worker, None
        self._detach(worker)
        if worker is not None:
            worker.kill("sandbox closed")

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
