"""Everything the server knows about one workspace, as parts, and the editor events that move them.

The pygls server (`server`) imports this module only after `initialize` has been answered (it pulls
in pydantic and the views). The parts: `workspace` (settings, config, backend, discovery), `runs`
(run documents), `views` (lenses, diagnostics, hovers), `refresh` and `progress` (telling the
client). Commands live in `commands/`. Every handler is either plain computation on data already
in memory (lenses, diagnostics, hovers — they must stay fast while runs go on) or `async`;
nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from codeact_lsp.lsp import accept as acc
from codeact_lsp.lsp.client import ClientFeatures
from codeact_lsp.lsp.document import run_id_from_uri, uri_to_path
from codeact_lsp.lsp.refresh import Progress, Refresher
from codeact_lsp.lsp.run_docs import RunDocuments
from codeact_lsp.lsp.run_state import RunStatePusher
from codeact_lsp.lsp.views import Views
from codeact_lsp.lsp.workspace import WorkspaceState

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


class ServerState:
    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        # Created after `initialize`: what the client can do is known, once and for all.
        self.client = ClientFeatures.from_capabilities(server.client_capabilities)
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refresh = Refresher(self)
        self.progress = Progress(self)
        self.push = RunStatePusher(self)
        self.workspace = WorkspaceState(self)
        self.runs = RunDocuments(self)
        self.views = Views(self)

    # ------------------------------------------------------------------ client & tasks

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task that is kept alive, logged when it fails, and ended at shutdown."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def record(self, kind: str, seconds: float) -> None:
        """A timing for `codeact.serverStats` (benchmarks)."""
        stats = getattr(self.server, "stats", None)
        if stats is not None:
            stats.record(kind, seconds)

    # ------------------------------------------------------------------ open documents

    def open_doc(self, uri: str) -> Any:
        return self.server.workspace.text_documents.get(unquote(uri))

    def doc_state(self, uri: str) -> acc.DocState:
        doc = self.open_doc(uri)
        if doc is not None:
            return acc.DocState(uri=uri, text=doc.source, version=doc.version)
        path = uri_to_path(uri)
        text = ""
        if path is not None and path.is_file():
            text = path.read_text(encoding="utf-8")
        return acc.DocState(uri=uri, text=text, version=None)

    # ------------------------------------------------------------------ editor events

    async def on_initialized(self) -> None:
        await self.workspace.reload_settings()
        if self.workspace.root is not None and not self.closing:
            self.spawn(self.workspace.warm_up(), "warm-up")
            self.spawn(self.workspace.watch_files(), "watch-files")

    def on_file_changed_on_disk(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is None or run_id_from_uri(uri) is not None or self.open_doc(uri) is not None:
            return  # open documents are followed through didChange/didSave
        workspace = self.workspace
        if path.name in {"pyproject.toml", "codeact.toml"} and path.parent == workspace.root:
            workspace.reload_config()
        elif path.suffix == ".py" and workspace.is_tool_file(path):
            self.on_doc_saved(uri)
        elif path.suffix == ".toml":
            self.refresh.schedule(uri)

    def on_doc_changed(self, uri: str) -> None:
        rs = self.runs.of_uri(uri)
        if rs is not None:
            self.runs.follow_user_text(rs)
            self.refresh.schedule(uri)
            return
        # an undo or edit in a document that holds an accepted program: its runs' views follow
        accepted = [r.uri for r in self.runs.accepted_into(uri)]
        if accepted:
            self.refresh.schedule(*accepted)
        path = uri_to_path(uri)
        if path is not None and path.suffix == ".py" and self.workspace.is_tool_file(path):
            self.workspace.refresh_discovery(delay=0.2)

    def on_doc_opened(self, uri: str) -> None:
        """Pull clients ask for what they show; the others get this document's diagnostics now."""
        if self.client.pull_diagnostics or self.views.kind(uri)[0] == "other":
            return
        self.refresh.schedule(uri)

    def on_doc_closed(self, uri: str) -> None:
        """A trajectory document closed with unsaved edits: they are gone, the view resumes."""
        rs = self.runs.of_uri(uri)
        if rs is not None:
            self.runs.follow_user_text(rs)

    def on_doc_saved(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        rs = self.runs.of_uri(uri)
        if rs is not None:
            doc = self.open_doc(uri)
            if doc is not None:
                rs.disk_texts.append(hash(doc.source))  # the user's text is the file now
            rs.rendered = None
            self.runs.check_paused(rs)
            self.refresh.schedule(uri)
            return
        workspace = self.workspace
        if path.name in {"pyproject.toml", "codeact.toml"} and path.parent == workspace.root:
            workspace.reload_config()
            return
        if path.suffix == ".py" and workspace.is_tool_file(path):
            workspace.refresh_discovery()
            workspace.restart_tools()
        self.refresh.schedule(uri)

    # ------------------------------------------------------------------ shutdown

    async def close(self) -> None:
        """End every run, worker and tool host; idempotent."""
        if self.closing:
            return
        self.closing = True
        self.refresh.cancel()
        self.push.cancel()
        for rs in self.runs.runs.values():
            if rs.handle is not None and self.runs.active(rs):
                with contextlib.suppress(Exception):
                    rs.handle.cancel()
        await self.workspace.close_backends()
        for task in list(self._tasks):
            task.cancel()
