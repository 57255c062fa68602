"""A private event loop on a daemon thread, so the sync API works the same everywhere.

The engine, its sandboxes and the in-process tool server are bound to the loop they were started on.
Owning that loop ourselves means `act(...)` behaves identically in a plain script, in a notebook
whose loop is already running, and from worker threads; `await act.acall(...)` just waits on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
Inbox = queue.SimpleQueue[Callable[[], None] | None]
_INBOX: contextvars.ContextVar[Inbox | None] = contextvars.ContextVar("codeact_inbox", default=None)


async def on_caller_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking `fn(*args)` on the thread that waits in a sync call, if there is one; else on
    a fresh daemon thread (a function that never returns must not keep the interpreter alive)."""
    loop = asyncio.get_running_loop()
    box: asyncio.Future[Any] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if box.done():
            return
        if ok:
            box.set_result(value)
        else:
            box.set_exception(value)

    def job() -> None:
        try:
            value = fn(*args)
        except Exception as exc:
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, value)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(deliver, *outcome)

    inbox = _INBOX.get()
    if inbox is not None:
        inbox.put(job)
    else:
        threading.Thread(target=job, name="codeact-reviewer", daemon=True).start()
    return await box


class LoopThread:
    """One event loop running forever on its own daemon thread until `stop()`."""

    def __init__(self, name: str = "codeact-api") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self._drain()
            self.loop.close()

    def _drain(self) -> None:
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(
        self, coro: Coroutine[Any, Any, T], inbox: Inbox | None = None
    ) -> tuple[concurrent.futures.Future[T], concurrent.futures.Future[None]]:
        """Schedule `coro`; the second future resolves once it has fully ended, cancelled or not.

        With an `inbox`, code running for `coro` (and for tasks it starts) can hand work back to
        the thread that waits for it, through `on_caller_thread`.
        """
        if not self.alive:
            coro.close()
            raise RuntimeError("this CodeAct was closed; create a new one")
        ended: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def guarded() -> T:
            if inbox is not None:
                _INBOX.set(inbox)  # copied into every task started from here on
            try:
                return await coro
            finally:
                ended.set_result(None)

        return asyncio.run_coroutine_threadsafe(guarded(), self.loop), ended

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Block the calling thread until `coro` finishes on the private loop.

        Meanwhile the thread serves its inbox: review callbacks run here, on the caller's own
        thread, where `input()` works (also in Jupyter) and Ctrl-C lands. Ctrl-C (or any
        exception raised while waiting) cancels the coroutine and waits for its cleanup, so an
        interrupted `act(...)` has stopped its run when the exception arrives.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "a synchronous CodeAct call was made from inside its own event loop "
                "(e.g. from an async review callback); use `await act.acall(...)`"
            )
        inbox: Inbox = queue.SimpleQueue()
        future, ended = self.submit(coro, inbox)
        future.add_done_callback(lambda _: inbox.put(None))
        try:
            while True:
                try:
                    # short waits: a Ctrl-C that lands just before a blocking wait begins is
                    # otherwise lost until something else wakes this thread (a CPython race)
                    job = inbox.get(timeout=0.25)
                except queue.Empty:
                    continue
                if job is None:
                    return future.result()
                job()
        except BaseException:
            future.cancel()
            ended.result()
            raise

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` from another event loop; cancelling the caller cancels it (and waits)."""
        future, ended = self.submit(coro)
        try:
            return await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            future.cancel()
            await asyncio.wrap_future(ended)
            raise

    def stop(self) -> None:
        if self._thread.is_alive() and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if not self.in_loop_thread():
                self._thread.join()
