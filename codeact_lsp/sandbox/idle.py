"""Between steps, nothing in the worker runs; after `idle_timeout`, the worker is gone.

A thread that a step left running (`threading.Thread(target=spin).start()`) would otherwise go on
using the CPU, the disk budget and the tool channel after its step, and after `final_answer`. The
host stops the whole worker with SIGSTOP as soon as a step's result is in and continues it just
before the next step is sent: a stopped process runs no thread at all, and it cannot continue itself
(nothing in it runs, and seccomp + Landlock keep other processes from signalling it). SIGKILL still
ends a stopped worker, so close, the server's death (PDEATHSIG) and the idle timeout still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Protocol


class _Worker(Protocol):
    pid: int | None

    @property
    def alive(self) -> bool: ...


class Parking:
    """Stops a sandbox's worker while it is idle and ends it after `timeout` seconds of that."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._stopped: int | None = None  # the pid we stopped

    def wake(self, worker: _Worker) -> None:
        """Before a step: continue the worker (if we stopped it) and disarm the idle timer."""
        self._disarm()
        pid, self._stopped = self._stopped, None
        if pid is not None and pid == worker.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)

    def park(self, worker: _Worker | None, expire: Callable[[], None]) -> None:
        """After a step: stop the worker, and call `expire` if it stays idle for `timeout` s."""
        self._disarm()
        if worker is None or not worker.alive or worker.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(worker.pid, signal.SIGSTOP)
            self._stopped = worker.pid
        if self.timeout is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.timeout, expire)

    def forget(self) -> None:
        """The worker is gone (closed, killed, replaced): nothing to continue or time out."""
        self._disarm()
        self._stopped = None

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
