"""The pygls server: features, commands, and the stdio loop (imported by `main.main`).

Only pygls and lsprotocol are imported here; the server state (pydantic models, views) loads right
after `initialize` has been answered, and the engine, the tool host and litellm only when a
command needs them. Handlers are `async` or cheap: nothing blocks the event loop while runs go on.

Diagnostics are served by pull (`textDocument/diagnostic`) to clients that support it and
published to the others — never both, which would show every diagnostic twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from codeact_lsp import __version__
from codeact_lsp.lsp import fastinit
from codeact_lsp.lsp.commands import NAMES
from codeact_lsp.lsp.fastinit import FirstMessage

if TYPE_CHECKING:
    from collections.abc import Generator

    from codeact_lsp.lsp.state import ServerState

__all__ = ["CodeActServer", "build_server"]

log = logging.getLogger("codeact_lsp.lsp")


class CodeActProtocol(LanguageServerProtocol):
    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: lsp.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        # The stock answer to an unknown command does not say which commands exist.
        if params.command not in self.fm.commands:
            raise JsonRpcInvalidParams(
                message=f"unknown command {params.command!r}; this server provides: "
                + ", ".join(NAMES)
            )
        result = yield from super().lsp_workspace__execute_command(params)
        return result


class Stats:
    """Handler durations and event-loop lag, in milliseconds (bounded memory)."""

    def __init__(self) -> None:
        self.samples: dict[str, deque[float]] = {}
        self.counts: dict[str, int] = {}  # every record, beyond the bounded samples
        self._lag_task: asyncio.Task[None] | None = None

    def record(self, kind: str, seconds: float) -> None:
        self.samples.setdefault(kind, deque(maxlen=5000)).append(seconds * 1000)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    async def _watch_lag(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            self.record("loopLag", time.perf_counter() - started - 0.01)

    def report(self, reset: bool) -> dict[str, Any]:
        if self._lag_task is None:
            self._lag_task = asyncio.ensure_future(self._watch_lag())
        out: dict[str, Any] = {}
        for kind, values in self.samples.items():
            ordered = sorted(values)
            if ordered:
                out[kind] = {
                    "n": len(ordered),
                    "p50": ordered[len(ordered) // 2],
                    "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
                    "max": ordered[-1],
                    "count": self.counts.get(kind, len(ordered)),
                }
        if reset:
            self.samples.clear()
            self.counts.clear()
        return out


class CodeActServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("codeact-lsp", __version__, protocol_cls=CodeActProtocol)
        self._state: ServerState | None = None
        self.stats = Stats()
        self.init_options: Any = None  # `initializationOptions` of `initialize`

    @property
    def state(self) -> ServerState:
        if self._state is None:
            from codeact_lsp.lsp.state import ServerState

            self._state = ServerState(self)
        return self._state

    async def serve_io(self, first: FirstMessage | None = None) -> None:
        """Like `start_io`, but ends every run and tool host when the client goes away.

        `first` is a message `main.main` already read (and perhaps answered from the cache,
        see `fastinit`): pygls handles it here before reading on, so its state is as usual.
        """
        from threading import Event

        from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

        self._stop_event = Event()
        writer = StdoutWriter(sys.stdout.buffer)
        if first is not None:
            capture = _InitCapture(writer, first)
            self.protocol.set_writer(capture)
            message = json.loads(first.body, object_hook=self.protocol.structure_message)
            self.protocol.handle_message(message)  # `initialize` completes synchronously
            first.computed = capture.result
            fastinit.remember(first)  # before the client sees the answer and may stop us
            if capture.held is not None:
                writer.write(capture.held)
        self.protocol.set_writer(writer)
        reader = StdinAsyncReader(sys.stdin.buffer, self.thread_pool)
        try:
            await run_async(
                stop_event=self._stop_event,
                reader=reader,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )
        finally:
            if self._state is not None:
                await self._state.close()

    def serve_tcp(self, host: str, port: int) -> None:
        """Like `start_tcp`, but a client that disconnects ends every run and tool host, as on
        stdio; the server then exits (one client per server, like the stock one). Port 0 picks
        a free port; the address is printed on stderr ("codeact-lsp: listening on HOST:PORT")."""
        from threading import Event

        from pygls.io_ import run_async

        self._stop_event = stop_event = Event()
        exit_code: list[object] = []  # from the client's `exit` (pygls raises SystemExit)

        async def serve() -> None:
            done = asyncio.Event()
            busy = False

            async def connection(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                nonlocal busy
                if busy:  # one editor per server: a second connection is refused
                    writer.close()
                    return
                busy = True
                self.protocol.set_writer(writer)
                try:
                    await run_async(
                        stop_event=stop_event,
                        reader=reader,
                        protocol=self.protocol,
                        logger=log,
                        error_handler=self.report_server_error,
                    )
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    log.info("client connection lost: %s", exc)
                except SystemExit as exc:
                    exit_code.append(exc.code)
                finally:
                    if self._state is not None:
                        await self._state.close()
                    writer.close()
                    done.set()

            server = await asyncio.start_server(connection, host, port)
            bound = server.sockets[0].getsockname()
            print(f"codeact-lsp: listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
            async with server:
                await done.wait()

        try:
            asyncio.run(serve())
        finally:
            stop_event.set()
            if self._thread_pool:
                self._thread_pool.shutdown(wait=False)
        if exit_code:
            raise SystemExit(exit_code[0])


class _InitCapture:
    """Writer for the first message: keeps pygls' `initialize` answer (sent by `serve_io` after
    caching it, unless the client already got the cached answer)."""

    def __init__(self, writer: Any, first: FirstMessage) -> None:
        self.writer = writer
        self.first = first
        self.result: Any = None
        self.held: bytes | None = None  # pygls' answer, sent once it is cached

    def write(self, data: bytes) -> None:
        _, _, body = data.partition(b"\r\n\r\n")
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        if isinstance(message, dict) and message.get("id") == self.first.id and "result" in message:
            self.result = message["result"]
            if not self.first.answered:
                self.held = data
            return
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()


def _command(server: CodeActServer, name: str) -> Callable[..., Awaitable[Any]]:
    async def handler(ls: CodeActServer, *args: Any) -> Any:
        from codeact_lsp.lsp.commands.registry import load  # after `initialize`, see NAMES

        return await load()[name](ls.state, list(args))

    handler.__name__ = name
    server.command(name)(handler)
    return handler


def build_server() -> CodeActServer:
    server = CodeActServer()

    # The handlers register themselves where they are defined (`commands.registry.command`);
    # pygls needs the names now, for the `initialize` answer, and the modules only at first use.
    for name in NAMES:
        _command(server, name)

    @server.command("codeact.serverStats")
    async def server_stats(ls: CodeActServer, *args: Any) -> dict[str, Any]:
        """Server-side handler times and event-loop lag (for benchmarks: separates the
        server's own work from transport and from CPU contention)."""
        reset = bool(args and isinstance(args[0], dict) and args[0].get("reset"))
        return ls.stats.report(reset=reset)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: CodeActServer, params: lsp.InitializeParams) -> None:
        # what the client asked for beyond capabilities (e.g. `runStateNotifications`, run_state)
        ls.init_options = params.initialization_options

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: CodeActServer, params: lsp.InitializedParams) -> None:
        # `initialize` has been answered; load the state's and commands' modules off the loop.
        import importlib

        await asyncio.to_thread(importlib.import_module, "codeact_lsp.lsp.commands.registry")
        await ls.state.on_initialized()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: CodeActServer, params: lsp.DidChangeConfigurationParams
    ) -> None:
        pushed = params.settings.get("codeact") if isinstance(params.settings, dict) else None
        await ls.state.workspace.reload_settings(pushed)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: CodeActServer, params: lsp.DidChangeWatchedFilesParams
    ) -> None:
        for change in params.changes:
            ls.state.on_file_changed_on_disk(change.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CodeActServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.state.on_doc_changed(params.text_document.uri)
        ls.state.on_doc_opened(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CodeActServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.state.on_doc_changed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CodeActServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.state.on_doc_closed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CodeActServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.state.on_doc_saved(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: CodeActServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        started = time.perf_counter()
        lenses = ls.state.views.code_lens(params.text_document.uri)
        ls.stats.record("codeLens", time.perf_counter() - started)
        return lenses

    @server.feature(
        lsp.TEXT_DOCUMENT_DIAGNOSTIC,
        lsp.DiagnosticOptions(
            identifier="codeact", inter_file_dependencies=True, workspace_diagnostics=False
        ),
    )
    def diagnostic(
        ls: CodeActServer, params: lsp.DocumentDiagnosticParams
    ) -> lsp.RelatedFullDocumentDiagnosticReport:
        started = time.perf_counter()
        items = ls.state.views.diagnostics(params.text_document.uri)
        ls.stats.record("diagnostic", time.perf_counter() - started)
        return lsp.RelatedFullDocumentDiagnosticReport(items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: CodeActServer, params: lsp.HoverParams) -> lsp.Hover | None:
        return ls.state.views.hover(params.text_document.uri, params.position)

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: CodeActServer, params: None) -> None:
        if ls._state is not None:
            await ls._state.close()

    return server
