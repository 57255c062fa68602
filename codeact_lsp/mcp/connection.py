"""One MCP server, spoken to with the official SDK client on a private event loop thread.

Tool calls arrive on sandbox threads and must block until the server answers, while the SDK is
async (anyio) and needs its client context entered and left in one task. So every server's client
lives in a task on one background loop (`McpLoop`), and the blocking methods here hand coroutines
to it. A server that exits is noticed at the call that fails ("connection closed"), reported with
the tail of its stderr, and started again at the next call. stdio servers run under a tiny
launcher that asks the kernel to end them when the loop thread that spawned them goes away, so
nothing outlives the language server, even when it is killed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO, TypeVar, cast

from codeact_lsp.mcp.servers import ServerSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_START_FAILURES = 3  # consecutive failed starts before a server is left stopped
_STDERR_TAIL = 2000

# Run by the interpreter we run in (`-S`: no site import, ~10 ms): PR_SET_PDEATHSIG = 1, so the
# server gets SIGTERM when the spawning thread ends; then exec the real command in place.
_LAUNCHER = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None).prctl(1,signal.SIGTERM)\n"
    "os.getppid()==int(os.environ.pop('CODEACT_MCP_PARENT','0')) or os._exit(70)\n"
    "os.execvp(sys.argv[1],sys.argv[1:])\n"
)


class McpCallError(Exception):
    """The server (or the connection to it) failed a call; the message says which and why."""

    def __init__(self, message: str, *, kind: str = "McpToolError", crashed: bool = False):
        super().__init__(message)
        self.kind = kind
        self.crashed = crashed


class McpLoop:
    """A daemon thread running the event loop every server's client lives on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="codeact-mcp", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def submit(self, coro: Awaitable[T]) -> cf.Future[T]:
        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop)

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Block the calling thread (never the loop's own) until `coro` is done."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("McpLoop.run called on the MCP loop thread")
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(10)


class ServerConnection:
    """A lazily started, restartable client session with one server."""

    def __init__(self, spec: ServerSpec, loop: McpLoop) -> None:
        self.spec = spec
        self._loop = loop
        self._lock = threading.Lock()
        self._in_flight: dict[int, cf.Future[Any]] = {}  # calling thread -> its call
        self._starting: set[int] = set()  # threads whose call waits for the server to start
        self._cancelled: set[int] = set()  # ...and were cancelled meanwhile
        self._calls = threading.Lock()  # guards the three above
        # called (on the MCP loop) when the server said its tool list changed and it was re-read
        self.on_tools_changed: Callable[[], None] | None = None
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._errlog: TextIO | None = None
        self.tools: list[Any] = []  # mcp Tool objects from the last successful listing
        self._relisting: set[asyncio.Future[None]] = set()
        self.problem: str | None = (
            f"MCP server {spec.name!r} cannot start: {spec.problem}" if spec.problem else None
        )
        self.starts = 0
        self.crashes = 0
        self.failures = 0
        self.started_ms: float | None = None
        self.closed = False

    # -- blocking API (any thread but the loop's) ---------------------------------------------

    @property
    def running(self) -> bool:
        return self._client is not None

    def ensure(self) -> list[Any]:
        """Start the server if it is not running; its tools. Raises McpCallError when it cannot."""
        with self._lock:
            if self._client is not None:
                return self.tools
            if self.closed:
                raise McpCallError(
                    f"MCP server {self.spec.name!r} is closed", kind="McpServerError"
                )
            if self.spec.problem:
                raise McpCallError(
                    f"MCP server {self.spec.name!r} cannot start: {self.spec.problem}",
                    kind="McpServerError",
                )
            if self.failures >= MAX_START_FAILURES:
                raise McpCallError(
                    f"MCP server {self.spec.name!r} failed to start {self.failures} times in a"
                    f" row and is left stopped: {self.problem}",
                    kind="McpServerError",
                )
            try:
                self._loop.run(self._start(), self.spec.startup_timeout + 15)
            except McpCallError as exc:
                self.failures += 1
                self.problem = str(exc)
                raise
            except Exception as exc:  # a timeout of the backstop, or the loop is gone
                self.failures += 1
                self.problem = f"MCP server {self.spec.name!r} did not start: {exc!r}"
                raise McpCallError(self.problem, kind="McpServerError") from exc
            self.failures = 0
            self.problem = None
            return self.tools

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """One `tools/call`; the SDK's CallToolResult. Raises McpCallError for protocol errors,
        timeouts and crashes (after which the next call starts the server again)."""
        restarted = self.crashes > 0 and not self.running
        me = threading.get_ident()
        with self._calls:
            self._starting.add(me)
        try:
            self.ensure()  # a per-run server's first call starts it: a cancel may come meanwhile
        finally:
            with self._calls:
                self._starting.discard(me)
        client = self._client
        if client is None:  # closed meanwhile
            raise McpCallError(f"MCP server {self.spec.name!r} stopped", kind="McpServerError")
        timeout = self.spec.call_timeout
        with self._calls:
            cancelled = me in self._cancelled
            self._cancelled.discard(me)
            if not cancelled:
                call = self._loop.submit(self._call(client, tool, arguments, timeout))
                self._in_flight[me] = call
        try:
            if cancelled:
                raise cf.CancelledError
            return call.result(timeout + 10)
        except cf.CancelledError:
            raise McpCallError(
                f"{tool}: cancelled (the run was cancelled while MCP server {self.spec.name!r}"
                " was answering)",
                kind="CancelledError",
            ) from None
        except McpCallError as exc:
            if restarted:
                exc.args = (f"{exc} (the server had been restarted after a crash)",)
            raise
        except cf.TimeoutError:
            raise McpCallError(
                f"{tool}: MCP server {self.spec.name!r} did not answer within {timeout:g} s",
                kind="TimeoutError",
            ) from None
        finally:
            with self._calls:
                self._in_flight.pop(me, None)

    def cancel(self, thread: int | None = None) -> None:
        """Abandon the call made from `thread` (every call when None): the SDK's request task is
        cancelled, and the caller gets a CancelledError at once; a call still waiting for its
        server to start is not sent at all."""
        with self._calls:
            for caller, call in list(self._in_flight.items()):
                if thread is None or caller == thread:
                    call.cancel()
            self._cancelled |= {c for c in self._starting if thread is None or c == thread}

    def close(self) -> None:
        with self._lock:
            self.closed = True
            try:
                self._loop.run(self._shutdown(), 15)
            except Exception:
                log.exception("closing MCP server %s", self.spec.name)
            if self._errlog is not None:
                with contextlib.suppress(OSError):
                    self._errlog.close()
                self._errlog = None

    # -- on the loop ---------------------------------------------------------------------------

    async def _start(self) -> None:
        await self._shutdown()  # a dead client's task, if any
        started = time.perf_counter()
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(self._serve(ready, self._stop))
        try:
            tools = await asyncio.wait_for(asyncio.shield(ready), self.spec.startup_timeout)
        except TimeoutError:
            await self._shutdown()
            raise McpCallError(
                f"MCP server {self.spec.name!r} did not start within"
                f" {self.spec.startup_timeout:g} s{self._stderr_hint()}",
                kind="McpServerError",
            ) from None
        except BaseException as exc:
            await self._shutdown()
            raise McpCallError(
                f"MCP server {self.spec.name!r} failed to start: {_describe(exc)}"
                f"{self._stderr_hint()}",
                kind="McpServerError",
            ) from None
        self.tools = tools
        self.starts += 1
        self.started_ms = (time.perf_counter() - started) * 1000

    async def _serve(self, ready: asyncio.Future[list[Any]], stop: asyncio.Event) -> None:
        """Holds the client context for the server's lifetime (anyio wants one task for it)."""
        from mcp import Client

        try:
            async with (
                self._transport() as transport,
                Client(transport, mode="legacy", message_handler=self._on_message) as client,
            ):
                tools = await _list_tools(client)
                self._client = client
                if not ready.done():
                    ready.set_result(tools)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError | GeneratorExit):
                log.info("MCP server %s ended: %s", self.spec.name, _describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def _on_message(self, message: Any) -> None:
        """Server notifications: a changed tool list is read again (in a task of its own: the
        answer arrives through the loop that is delivering this notification)."""
        from mcp import types

        if isinstance(message, types.ToolListChangedNotification):
            task = asyncio.ensure_future(self._relist())
            self._relisting.add(task)
            task.add_done_callback(self._relisting.discard)

    async def _relist(self) -> None:
        client = self._client
        if client is None:
            return
        try:
            self.tools = await _list_tools(client)
        except Exception as exc:  # the old list stays; the next start lists again
            log.warning("MCP server %s: re-listing tools failed: %s", self.spec.name, exc)
            return
        if self.on_tools_changed is not None:
            self.on_tools_changed()

    @contextlib.asynccontextmanager
    async def _transport(self) -> Any:
        spec = self.spec
        if spec.transport == "http":
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            async with create_mcp_http_client(headers=spec.headers or None) as http:
                yield streamable_http_client(spec.url or "", http_client=http)
            return
        from mcp.client.stdio import StdioServerParameters, stdio_client

        if self._errlog is None:
            # kept open for the server's lifetime (closed in close()): its stderr goes here
            self._errlog = cast(
                TextIO,
                tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"),  # noqa: SIM115
            )
        else:
            self._errlog.seek(0)
            self._errlog.truncate()
        command, args = spec.command or "", list(spec.args)
        env = dict(spec.env)
        if sys.platform.startswith("linux"):
            import os

            command, args = sys.executable, ["-S", "-c", _LAUNCHER, command, *args]
            env["CODEACT_MCP_PARENT"] = str(os.getpid())
        params = StdioServerParameters(command=command, args=args, env=env, cwd=spec.cwd)
        yield stdio_client(params, errlog=self._errlog)

    async def _call(self, client: Any, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        from mcp.shared.exceptions import MCPError

        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=timeout)
        except MCPError as exc:
            if _connection_lost(exc):
                self.crashes += 1
                await self._shutdown()
                raise McpCallError(
                    f"MCP server {self.spec.name!r} exited during {tool}() (it will be started"
                    f" again at the next call){self._stderr_hint()}",
                    kind="McpServerError",
                    crashed=True,
                ) from None
            if _timed_out(exc):
                raise McpCallError(
                    f"{tool}: MCP server {self.spec.name!r} did not answer within {timeout:g} s",
                    kind="TimeoutError",
                ) from None
            raise McpCallError(f"{tool}: {exc}") from None
        except TimeoutError:
            raise McpCallError(
                f"{tool}: MCP server {self.spec.name!r} did not answer within {timeout:g} s",
                kind="TimeoutError",
            ) from None

    async def _shutdown(self) -> None:
        task, stop = self._task, self._stop
        self._task = self._stop = None
        self._client = None
        if task is None:
            return
        if stop is not None:
            stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), 8)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _stderr_hint(self) -> str:
        log_file = self._errlog
        if log_file is None:
            return ""
        try:
            log_file.flush()
            log_file.seek(0, 2)
            size = log_file.tell()
            log_file.seek(max(0, size - _STDERR_TAIL))
            tail = log_file.read().strip()
        except (OSError, ValueError):
            return ""
        lines = tail.splitlines()[-6:]
        return "; its stderr ends with:\n" + "\n".join(lines) if lines else ""


async def _list_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _connection_lost(exc: Any) -> bool:
    from mcp_types import CONNECTION_CLOSED

    return (
        getattr(exc, "code", None) == CONNECTION_CLOSED or "connection closed" in str(exc).lower()
    )


def _timed_out(exc: Any) -> bool:
    from mcp_types import REQUEST_TIMEOUT

    return getattr(exc, "code", None) == REQUEST_TIMEOUT


def _describe(exc: BaseException) -> str:
    """The innermost useful message of an exception group (anyio task groups wrap them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, OSError) else text
