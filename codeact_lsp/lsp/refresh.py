"""Telling the client that something changed: batched refreshes and work-done progress.

Runs change their trajectories thousands of times a second; the client hears of it at most once
per ~100 ms burst (one lens refresh, then pulled or published diagnostics), so the event loop
stays free for lens and diagnostic requests while runs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState

REFRESH_DELAY_S = 0.1


class Refresher:
    """Coalesces change notifications: documents to refresh and run documents to rewrite."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._handle: asyncio.TimerHandle | None = None
        self.dirty_uris: set[str] = set()
        self.dirty_runs: set[str] = set()  # run ids whose document is due a rewrite

    def schedule(self, *uris: str) -> None:
        """Coalesce change notifications: one lens refresh + diagnostics per ~100 ms burst."""
        self.dirty_uris.update(uris)
        if self._handle is not None or self.state.closing:
            return
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(REFRESH_DELAY_S, self._flush)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _flush(self) -> None:
        state = self.state
        self._handle = None
        uris, self.dirty_uris = self.dirty_uris, set()
        runs, self.dirty_runs = self.dirty_runs, set()
        if state.closing:
            return
        for run_id in runs:
            rs = state.runs.get(run_id)
            if rs is not None:
                state.runs.write_doc(rs)
        state.push.flush()  # run states after their documents: file, lenses and state agree
        server = state.server
        if state.client.code_lens_refresh:
            state.spawn(_ask(server.workspace_code_lens_refresh_async(None)), "lens-refresh")
        if state.client.pull_diagnostics:
            if state.client.diagnostic_refresh:
                state.spawn(_ask(server.workspace_diagnostic_refresh_async(None)), "diag-refresh")
            return
        for uri in uris:
            with contextlib.suppress(Exception):
                server.text_document_publish_diagnostics(
                    lsp.PublishDiagnosticsParams(uri=uri, diagnostics=state.views.diagnostics(uri))
                )


async def _ask(request: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(request, 10)


class Progress:
    """Cancellable work-done progress, for clients that show it (a no-op for the others)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def begin(self, name: str, title: str, on_cancel: Callable[[], object]) -> str | None:
        """A cancellable work-done progress, if the client shows them; None otherwise."""
        if not self.state.client.work_done_progress:
            return None
        progress = self.state.server.work_done_progress
        token = f"codeact-{name}-{time.monotonic_ns()}"
        try:
            await asyncio.wait_for(progress.create_async(token), 5)
        except Exception:
            return None
        progress.begin(token, lsp.WorkDoneProgressBegin(title=title, cancellable=True))
        fut = progress.tokens.get(token)
        if fut is not None:
            fut.add_done_callback(lambda f: on_cancel() if f.cancelled() else None)
        return token

    def report(self, token: str | None, message: str) -> None:
        if token is not None:
            with contextlib.suppress(Exception):
                self.state.server.work_done_progress.report(
                    token, lsp.WorkDoneProgressReport(message=message)
                )

    def end(self, token: str | None, message: str) -> None:
        if token is None:
            return
        progress = self.state.server.work_done_progress
        with contextlib.suppress(Exception):
            progress.end(token, lsp.WorkDoneProgressEnd(message=message))
        progress.tokens.pop(token, None)
