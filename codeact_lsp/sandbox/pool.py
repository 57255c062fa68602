"""Warm spare workers, so starting a sandbox costs a message, not an interpreter start.

One pool per process (the engine, the LSP server and the CLI each make one, or use `default()`);
many sandboxes come from it, in parallel. Spares are keyed by their `SpawnSpec` (interpreter,
backend, bubblewrap mounts): an idle worker is generic until a sandbox configures it.

All workers are forked by one long-lived spawner thread: Linux delivers PR_SET_PDEATHSIG when the
*thread* that forked a child exits, so forking from a short-lived executor thread would kill
workers at random; forking from a thread that lives as long as the process kills them exactly
when the server dies, which is what we want.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures as cf
import contextlib
import functools
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import cgroups
from codeact_lsp.sandbox.models import SandboxError
from codeact_lsp.sandbox.process import SpawnSpec, WorkerProcess

T = TypeVar("T")
READY_TIMEOUT = 15.0


def _precompile() -> None:
    """Write the worker's .pyc for our own interpreter (others write theirs on first start)."""
    import py_compile

    from codeact_lsp.sandbox import process

    for name in ("worker.py", "confine.py"):
        path = Path(process.WORKER_PATH).with_name(name)
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(str(path), doraise=True)


class _Spawner:
    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[Callable[[], Any], cf.Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sandbox-spawner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _precompile()
        while True:
            fn, fut = self._q.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

    def submit(self, fn: Callable[[], T]) -> cf.Future[T]:
        fut: cf.Future[T] = cf.Future()
        self._q.put((fn, fut))
        return fut


_SPAWNER: _Spawner | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> _Spawner:
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = _Spawner()
        return _SPAWNER


def _contain_ready(w: WorkerProcess, ready: cf.Future[dict[str, Any]]) -> None:
    if not ready.cancelled() and ready.exception() is None and w.pid is not None:
        cgroups.prepare(w.pid)  # the worker itself (inside bubblewrap: bwrap's child)


class SandboxPool:
    """Keeps `spares` started workers per spec (for the `max_specs` most recent specs)."""

    _default: SandboxPool | None = None

    def __init__(self, spares: int = 1, max_specs: int = 3) -> None:
        self.spares = spares
        self.max_specs = max_specs
        self._idle: dict[SpawnSpec, list[WorkerProcess]] = {}
        self._starting: dict[SpawnSpec, int] = {}
        self._spawning: set[cf.Future[WorkerProcess]] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._live: set[WorkerProcess] = set()
        atexit.register(self._kill_all)

    @classmethod
    def default(cls) -> SandboxPool:
        """The process-wide pool used when a sandbox is started without one."""
        if cls._default is None or cls._default._closed:
            cls._default = cls()
        return cls._default

    def prewarm(
        self,
        settings: SandboxSettings,
        python: str | None = None,
        extra_paths: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Start a spare now for sandboxes with these settings (e.g. when a workspace opens), so
        even the first run skips the cold start."""
        from codeact_lsp.sandbox.backends import make_plan

        self.warm(make_plan(settings, python or sys.executable, list(extra_paths)).spec)

    def spawn_now(self, spec: SpawnSpec) -> cf.Future[WorkerProcess]:
        return _spawner().submit(lambda: self._track(WorkerProcess(spec)))

    def _track(self, w: WorkerProcess) -> WorkerProcess:
        if w.spec.backend != "none" and sys.platform.startswith("linux"):
            # Its cgroups as soon as it says it is ready (it then waits, idle, for its config):
            # moving a process while it is still exec'ing the interpreter waits for the exec
            # (~5 ms), and configuring it then only writes the memory limit. The callback runs on
            # the reader thread before anyone awaiting `ready` sees it.
            w.ready.add_done_callback(functools.partial(_contain_ready, w))
        with self._lock:
            self._live = {x for x in self._live if x.alive}
            self._live.add(w)
        return w

    def warm(self, spec: SpawnSpec) -> None:
        """Start spares for `spec` in the background (no-op when enough are idle or starting)."""
        with self._lock:
            if self._closed:
                return
            idle = self._idle.setdefault(spec, [])
            idle[:] = [w for w in idle if w.alive]
            need = self.spares - len(idle) - self._starting.get(spec, 0)
            if need <= 0:
                return
            self._starting[spec] = self._starting.get(spec, 0) + need
            self._evict_locked(spec)
        for _ in range(need):
            fut = self.spawn_now(spec)
            with self._lock:
                self._spawning.add(fut)
            fut.add_done_callback(functools.partial(self._spare_started, spec))

    def _spare_started(self, spec: SpawnSpec, fut: cf.Future[WorkerProcess]) -> None:
        with self._lock:
            self._spawning.discard(fut)
            self._starting[spec] = max(0, self._starting.get(spec, 0) - 1)
            if fut.exception() is not None:
                return
            w = fut.result()
            if self._closed or spec not in self._idle:
                w.kill("pool closed")
                return
            self._idle[spec].append(w)

    def _evict_locked(self, keep: SpawnSpec) -> None:
        # the most recently used specs stay warm; dict order is insertion order
        self._idle[keep] = self._idle.pop(keep)
        while len(self._idle) > self.max_specs:
            old = next(iter(self._idle))
            for w in self._idle.pop(old):
                w.kill("evicted spare")

    async def warmed(self) -> list[WorkerProcess]:
        """Wait until the spares being started are up and ready; returns the idle spares."""
        with self._lock:
            spawning = list(self._spawning)
        for fut in spawning:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(fut)
        with self._lock:
            idle = [w for ws in self._idle.values() for w in ws if w.alive]
        for w in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(w.ready), READY_TIMEOUT)
        return [w for w in idle if w.alive]

    async def acquire(self, spec: SpawnSpec, *, replenish: bool = True) -> WorkerProcess:
        """A started, ready worker for `spec`: a warm spare when there is one. With
        `replenish=False` the caller calls `warm(spec)` itself once it is done with the critical
        path (starting the next spare competes for the CPU on a 2-core machine)."""
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        worker: WorkerProcess | None = None
        with self._lock:
            idle = self._idle.get(spec, [])
            while idle and worker is None:
                cand = idle.pop(0)
                if cand.alive:
                    worker = cand
        if worker is None:
            try:
                worker = await asyncio.wrap_future(self.spawn_now(spec))
            except OSError as exc:
                raise SandboxError(
                    f"cannot start the sandbox interpreter {spec.python!r}: {exc}"
                ) from None
        if replenish:
            self.warm(spec)
        try:
            await asyncio.wait_for(asyncio.wrap_future(worker.ready), READY_TIMEOUT)
        except (TimeoutError, Exception) as exc:
            worker.kill("did not start")
            raise SandboxError(
                f"the sandbox worker did not start ({spec.backend}, {spec.python}): "
                f"{worker.death or exc}"
            ) from None
        return worker

    def _kill_all(self) -> None:
        with self._lock:
            workers = [w for ws in self._idle.values() for w in ws] + list(self._live)
            self._idle.clear()
        for w in workers:
            w.kill("pool closed")

    async def close(self) -> None:
        """Kill the idle spares. Sandboxes already handed out keep running until closed."""
        self._closed = True
        with self._lock:
            workers = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
        for w in workers:
            w.kill("pool closed")
