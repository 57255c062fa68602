"""Lenses, diagnostics and hovers, routed by what a document is: trajectory, tasks or tools.

Editors ask for these again and again (after every refresh, scroll or keystroke), and they must
stay fast while runs go on, so each answer is computed from data in memory and cached until the
run, the document or the tools change. The pure builders live in `trajectory_view`, `tasks_view`
and `tool_view`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsprotocol import types as lsp

from codeact_lsp.lsp.document import path_to_uri, run_id_from_uri, uri_to_path
from codeact_lsp.lsp.tasks_view import task_diagnostics, task_lenses
from codeact_lsp.lsp.tool_view import (
    CONFIG_FILES,
    ToolStatsCache,
    bench_diagnostics,
    bench_lenses,
    mcp_lenses,
)
from codeact_lsp.lsp.trajectory_view import TrajectoryView, build_view

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState

DocKind = Literal["trajectory", "tasks", "tools", "other"]


@dataclass(frozen=True)
class Reported:
    """A diagnostic on a tool module, shaped like the tools layer's ToolDiagnostic."""

    file: str
    line: int
    message: str
    code: str
    severity: str = "warning"
    column: int = 0


class Views:
    """Answers `textDocument/codeLens`, `/diagnostic` and `/hover` for every kind of document."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._view_cache: dict[str, tuple[Any, TrajectoryView]] = {}
        self._bench_cache: dict[str, tuple[Any, object]] = {}
        self._stats = ToolStatsCache()
        self._tried: dict[str, Reported] = {}  # tool -> where its last "Try" raised

    def kind(self, uri: str) -> tuple[DocKind, Path | None]:
        """What a document is to this server: trajectory, tasks, tools, or other."""
        if run_id_from_uri(uri) is not None:
            return "trajectory", None
        path = uri_to_path(uri)
        if path is None:
            return "other", None
        workspace = self.state.workspace
        resolved = path.resolve()
        tasks = workspace.tasks_file()
        if tasks is not None and resolved == tasks.resolve():
            return "tasks", path
        if workspace.discovery is not None and workspace.is_tool_file(path):
            return "tools", path
        return "other", path

    def trajectory_view(self, uri: str) -> TrajectoryView | None:
        """The view of a trajectory document, rebuilt only when the run or the text changed.

        Editors ask for lenses, diagnostics and hovers again and again (after every refresh,
        scroll or keystroke); while runs go on, rebuilding on every request would compete with
        them for the event loop.
        """
        run_id = run_id_from_uri(uri)
        rs = self.state.runs.find(run_id) if run_id else None
        traj = rs.trajectory() if rs else None
        if rs is None or traj is None or rs.discarded:
            return None  # a discarded run shows nothing (its diagnostics are cleared)
        accepted = self.state.runs.acceptance_state(rs)
        doc = self.state.open_doc(uri)
        last = traj.steps[-1] if traj.steps else None
        key = (
            id(traj),
            traj.updated_at,
            traj.status,
            len(traj.steps),
            last.status if last else None,
            len(last.tool_calls) if last else 0,
            doc.version if doc is not None else None,
            accepted,
            rs.paused,
            self.state.workspace.checks_key(),
        )
        cached = self._view_cache.get(uri)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = build_view(
            traj,
            doc.source if doc is not None else None,
            self.state.workspace.check_context(),
            uri=uri,
            accepted=accepted,
            paused=rs.paused,
        )
        self._view_cache[uri] = (key, view)
        return view

    def code_lens(self, uri: str) -> list[lsp.CodeLens]:
        kind, path = self.kind(uri)
        workspace = self.state.workspace
        if kind == "trajectory":
            view = self.trajectory_view(uri)
            return view.lenses if view else []
        if kind == "tasks" and path is not None:
            root = workspace.root
            rel = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
            return task_lenses(self.state.doc_state(uri).text, rel, workspace.task_results)
        discovery = workspace.discovery
        if kind == "tools" and path is not None and discovery is not None:
            last = self.state.runs.last_trajectory()
            key = ("lens", id(discovery), id(last), last.updated_at if last else None)
            cached = self._bench_cache.get(uri)
            if cached is not None and cached[0] == key:
                return cached[1]  # type: ignore[return-value]
            lenses = bench_lenses(
                discovery.tools,
                str(path),
                self._stats.get(last),
                last.id if last else None,
            )
            self._bench_cache[uri] = (key, lenses)
            return lenses
        if path is not None and path.name in CONFIG_FILES and workspace.backend is not None:
            tools = workspace.backend.tools  # MCP servers' tools: lenses at their tables
            if tools is not None:
                last = self.state.runs.last_trajectory()
                stats = self._stats.get(last)
                return mcp_lenses(tools.schemas(), str(path), stats, last.id if last else None)
        return []

    def diagnostics(self, uri: str) -> list[lsp.Diagnostic]:
        kind, path = self.kind(uri)
        workspace = self.state.workspace
        if kind == "trajectory":
            view = self.trajectory_view(uri)
            return view.diagnostics if view else []
        if kind == "tasks":
            return task_diagnostics(self.state.doc_state(uri).text, workspace.task_results)
        discovery = workspace.discovery
        if kind == "tools" and path is not None and discovery is not None:
            reported: list[Any] = list(discovery.diagnostics)
            if workspace.backend is not None:
                reported += workspace.backend.host_diagnostics()
            reported += list(self._tried.values())
            last = self.state.runs.last_trajectory()
            key = (
                "diag",
                id(discovery),
                tuple(id(r) for r in reported),
                id(last),
                last.updated_at if last else None,
            )
            cached = self._bench_cache.get("diag:" + uri)
            if cached is not None and cached[0] == key:
                return cached[1]  # type: ignore[return-value]
            diags = bench_diagnostics(str(path), reported, last, self._stats.get(last))
            self._bench_cache["diag:" + uri] = (key, diags)
            return diags
        if path is not None and path.name in CONFIG_FILES and workspace.backend is not None:
            # an MCP server that failed to start or lists no tools, at its table
            found = [
                d
                for d in workspace.backend.host_diagnostics()
                if str(getattr(d, "code", "")).startswith("mcp-")
            ]
            return bench_diagnostics(str(path), found, None)
        return []

    def hover(self, uri: str, pos: lsp.Position) -> lsp.Hover | None:
        view = self.trajectory_view(uri)
        found = view.hover_at(pos.line, pos.character) if view else None
        if found is None:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.markdown),
            range=found.range,
        )

    def note_tried(self, name: str, error: Any) -> None:
        """A "Try" that raised shows at the raising line of the tool, like a run's failure."""
        before = self._tried.pop(name, None)
        if error is not None and getattr(error, "file", None) and getattr(error, "line", None):
            self._tried[name] = Reported(
                file=str(error.file),
                line=int(error.line),
                message=f"{error.type}: {error.message} (when you tried `{name}`)",
                code="raised-when-tried",
            )
        for entry in (before, self._tried.get(name)):
            if entry is not None:
                self.state.refresh.schedule(path_to_uri(Path(entry.file)))
