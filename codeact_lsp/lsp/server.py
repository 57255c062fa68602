"""`codeact-lsp`: the language server (pygls 2), stdio by default, `--tcp HOST:PORT` to debug.

This module is what the editor waits for at spawn, so it imports only pygls and lsprotocol; the
session (pydantic models, views) loads right after `initialize` has been answered, and the engine,
the tool host and litellm only when a command needs them. Handlers are `async` or cheap: nothing
blocks the event loop while runs are going.

Diagnostics are served by pull (`textDocument/diagnostic`) to clients that support it and
published to the others — never both, which would show every diagnostic twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

if TYPE_CHECKING:
    from collections.abc import Generator

    from codeact_lsp.lsp.session import Session

__all__ = ["COMMANDS", "CodeActServer", "build_server", "main"]

log = logging.getLogger("codeact_lsp.lsp")
VERSION = "0.1.0"

# DESIGN.md §3 commands, then this server's extensions (client helpers for lenses and diffs).
COMMANDS: dict[str, str] = {
    "codeact.run": "cmd_run",
    "codeact.getRun": "cmd_get_run",
    "codeact.cancel": "cmd_cancel",
    "codeact.approve": "cmd_approve",
    "codeact.reject": "cmd_reject",
    "codeact.accept": "cmd_accept",
    "codeact.rerun": "cmd_rerun",
    "codeact.followUp": "cmd_follow_up",
    "codeact.listTools": "cmd_list_tools",
    "codeact.tryTool": "cmd_try_tool",
    "codeact.runTasks": "cmd_run_tasks",
    "codeact.acceptPreview": "cmd_accept_preview",
    "codeact.discard": "cmd_discard",
    "codeact.listRuns": "cmd_list_runs",
    "codeact.showStep": "cmd_show_step",
}
# Also registered: `codeact.serverStats` (benchmarks only).


class CodeActProtocol(LanguageServerProtocol):
    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: lsp.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        # The stock answer to an unknown command does not say which commands exist.
        if params.command not in self.fm.commands:
            raise JsonRpcInvalidParams(
                message=f"unknown command {params.command!r}; this server provides: "
                + ", ".join(COMMANDS)
            )
        result = yield from super().lsp_workspace__execute_command(params)
        return result


class Stats:
    """Handler durations and event-loop lag, in milliseconds (bounded memory)."""

    def __init__(self) -> None:
        self.samples: dict[str, deque[float]] = {}
        self._lag_task: asyncio.Task[None] | None = None

    def record(self, kind: str, seconds: float) -> None:
        self.samples.setdefault(kind, deque(maxlen=5000)).append(seconds * 1000)

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
                }
        if reset:
            self.samples.clear()
        return out


class CodeActServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("codeact-lsp", VERSION, protocol_cls=CodeActProtocol)
        self._session: Session | None = None
        self.stats = Stats()

    @property
    def session(self) -> Session:
        if self._session is None:
            from codeact_lsp.lsp.session import Session

            self._session = Session(self)
        return self._session

    async def serve_io(self) -> None:
        """Like `start_io`, but ends every run and tool host when the client goes away."""
        from threading import Event

        from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

        self._stop_event = Event()
        reader = StdinAsyncReader(sys.stdin.buffer, self.thread_pool)
        self.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
        try:
            await run_async(
                stop_event=self._stop_event,
                reader=reader,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )
        finally:
            if self._session is not None:
                await self._session.close()


def _command(server: CodeActServer, name: str, method: str) -> Callable[..., Awaitable[Any]]:
    async def handler(ls: CodeActServer, *args: Any) -> Any:
        func = getattr(ls.session, method)
        result = func(list(args))
        if asyncio.iscoroutine(result):
            result = await result
        return result

    handler.__name__ = method
    server.command(name)(handler)
    return handler


def build_server() -> CodeActServer:
    server = CodeActServer()

    for name, method in COMMANDS.items():
        _command(server, name, method)

    @server.command("codeact.serverStats")
    async def server_stats(ls: CodeActServer, *args: Any) -> dict[str, Any]:
        """Server-side handler times and event-loop lag (for benchmarks: separates the
        server's own work from transport and from CPU contention)."""
        reset = bool(args and isinstance(args[0], dict) and args[0].get("reset"))
        return ls.stats.report(reset=reset)

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: CodeActServer, params: lsp.InitializedParams) -> None:
        # `initialize` has been answered; load the session's modules off the event loop.
        import importlib

        await asyncio.to_thread(importlib.import_module, "codeact_lsp.lsp.session")
        await ls.session.on_initialized()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: CodeActServer, params: lsp.DidChangeConfigurationParams
    ) -> None:
        pushed = params.settings.get("codeact") if isinstance(params.settings, dict) else None
        await ls.session.reload_settings(pushed)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CodeActServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.session.on_doc_changed(params.text_document.uri)
        ls.session.schedule_refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CodeActServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.session.on_doc_changed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CodeActServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.session.on_doc_saved(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: CodeActServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        started = time.perf_counter()
        lenses = ls.session.code_lens(params.text_document.uri)
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
        items = ls.session.diagnostics(params.text_document.uri)
        ls.stats.record("diagnostic", time.perf_counter() - started)
        return lsp.RelatedFullDocumentDiagnosticReport(items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: CodeActServer, params: lsp.HoverParams) -> lsp.Hover | None:
        return ls.session.hover(params.text_document.uri, params.position)

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: CodeActServer, params: None) -> None:
        if ls._session is not None:
            await ls._session.close()

    return server


def _quiet_expected_errors(record: logging.LogRecord) -> bool:
    """pygls logs every error answer with a traceback; a user's bad argument is not a crash."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, JsonRpcInvalidParams)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="codeact-lsp", description="CodeAct language server (stdio by default)"
    )
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_quiet_expected_errors)
    server = build_server()
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            parser.error("--tcp expects HOST:PORT, e.g. 127.0.0.1:2087")
        server.start_tcp(host or "127.0.0.1", int(port))
        return 0
    profile_to = os.environ.get("CODEACT_LSP_PROFILE")  # developers: where the loop's time goes
    try:
        if profile_to:
            import cProfile

            with cProfile.Profile() as prof:
                try:
                    asyncio.run(server.serve_io())
                finally:
                    prof.dump_stats(profile_to)
        else:
            asyncio.run(server.serve_io())
    except SystemExit as exc:  # `exit`: 0 after `shutdown`, 1 without
        return exc.code if isinstance(exc.code, int) else 0
    except (KeyboardInterrupt, BrokenPipeError):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
