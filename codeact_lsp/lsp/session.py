"""Everything the server knows about one workspace: settings, runs, views, and the commands.

`server.py` only registers handlers and imports this module on first use (it pulls in pydantic and
the views), so `initialize` is answered before any of it is loaded. Every handler here is either
plain computation on data already in memory (code lenses, diagnostics, hovers — they must stay
fast while runs go on) or an `async` command that awaits the engine; nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from codeact_lsp.config import CodeActConfig, LoadedConfig, load_config
from codeact_lsp.engine.checks import CheckContext, ToolSig, sig_from_schema
from codeact_lsp.lsp import accept as acc
from codeact_lsp.lsp.args import (
    AcceptArgs,
    ApproveArgs,
    CommandArgumentError,
    FollowUpArgs,
    NoArgs,
    RejectArgs,
    RerunArgs,
    RunArgs,
    RunIdArgs,
    RunTasksArgs,
    TryToolArgs,
    parse_args,
)
from codeact_lsp.lsp.backend import Backend, BackendError
from codeact_lsp.lsp.bench import ToolStatsCache, bench_diagnostics, bench_lenses
from codeact_lsp.lsp.document import (
    RUNS_DIR,
    parse_sections,
    path_to_uri,
    render,
    replace_file,
    run_id_from_uri,
    trajectory_path,
    uri_to_path,
)
from codeact_lsp.lsp.settings import client_python, settings_to_overrides
from codeact_lsp.lsp.tasks_view import (
    TaskResult,
    load_results,
    save_results,
    task_diagnostics,
    task_lenses,
)
from codeact_lsp.lsp.view import TrajectoryView, build_view, normalise_code, step_markdown
from codeact_lsp.trajectory import Target, Trajectory

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)
REFRESH_DELAY_S = 0.1


class CommandError(JsonRpcInvalidParams):
    """A request the user can fix (bad argument, unknown run, wrong state): InvalidParams."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


@dataclass
class RunSession:
    """A run as the editor sees it: its engine handle, its document and its Accept snapshot."""

    id: str
    path: Path
    uri: str
    handle: Any = None
    target: Target | None = None
    start_text: str | None = None  # the whole target document when the run started
    overrides: dict[int, str] = field(default_factory=dict)  # step -> code edited in the doc
    accepted: bool = False
    discarded: bool = False
    pump: asyncio.Task[None] | None = None
    loaded: Trajectory | None = None  # read from disk (no live handle)
    progress_token: str | None = None
    # Texts this document had on disk lately (hashes): an open document holding one of them has
    # no unsaved edits, even if the editor has not reloaded the newest one yet.
    disk_texts: deque[int] = field(default_factory=lambda: deque(maxlen=64))
    paused: bool = False  # the user has unsaved edits in the open document: not rewritten
    rendered: tuple[Any, ...] | None = None  # `_text_key` of the last text written

    def trajectory(self) -> Trajectory | None:
        if self.handle is not None:
            traj: Trajectory = self.handle.trajectory
            return traj
        return self.loaded


@dataclass(frozen=True)
class _Reported:
    """A diagnostic on a tool module, shaped like the tools layer's ToolDiagnostic."""

    file: str
    line: int
    message: str
    code: str
    severity: str = "warning"
    column: int = 0


class Session:
    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.settings: dict[str, Any] = {}
        self.loaded = LoadedConfig(config=CodeActConfig())
        self.runs: dict[str, RunSession] = {}
        self.last_run_id: str | None = None
        self._task_results: dict[str, TaskResult] | None = None
        self.backend: Backend | None = None
        self._shown_problems: list[str] = []
        self._retired: list[Backend] = []  # replaced by a config change while runs used them
        self._discovery: Any = None
        self._discovery_task: asyncio.Task[None] | None = None
        self._refresh_handle: asyncio.TimerHandle | None = None
        self._dirty_uris: set[str] = set()
        self._dirty_runs: set[str] = set()
        self._view_cache: dict[str, tuple[Any, TrajectoryView]] = {}
        self._bench_cache: dict[str, tuple[Any, object]] = {}
        self._stats = ToolStatsCache()
        self._tried: dict[str, _Reported] = {}  # tool -> where its last "Try" raised
        self._tool_paths: tuple[int, frozenset[str]] = (0, frozenset())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        # Set once the first settings are in: a backend built before would use the wrong config.
        self._configured = asyncio.Event()

    # ------------------------------------------------------------------ workspace & settings

    @property
    def root(self) -> Path | None:
        try:
            root = self.server.workspace.root_path
        except Exception:
            return None
        return Path(root) if root else None

    def require_root(self) -> Path:
        root = self.root
        if root is None:
            raise CommandError(
                "no workspace folder is open: open the folder that holds your tools "
                "(and its pyproject.toml or codeact.toml) and try again"
            )
        return root

    @property
    def task_results(self) -> dict[str, TaskResult]:
        """Each task's last result: read from `.codeact/` once (a previous session's), then
        kept here and saved after every suite run."""
        if self._task_results is None:
            root = self.root
            if root is None:
                return {}
            self._task_results = load_results(root)
        return self._task_results

    @property
    def config(self) -> CodeActConfig:
        return self.loaded.config

    def _caps(self) -> lsp.ClientCapabilities:
        return self.server.client_capabilities

    def _supports(self, *path: str) -> bool:
        node: Any = self._caps()
        for part in path:
            node = getattr(node, part, None)
            if node is None:
                return False
        return bool(node)

    @property
    def pull_diagnostics(self) -> bool:
        return self._supports("text_document", "diagnostic")

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
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

    async def on_initialized(self) -> None:
        await self.reload_settings()
        if self.root is not None and not self._closing:
            self.spawn(self._warm_up(), "warm-up")
            self.spawn(self._watch_files(), "watch-files")

    async def _watch_files(self) -> None:
        """Config and tool files changed outside the editor (git checkout, another tool) count too."""
        if not self._supports("workspace", "did_change_watched_files", "dynamic_registration"):
            return
        patterns = [
            "**/pyproject.toml",
            "**/codeact.toml",
            f"**/{self.config.tasks or 'tasks.toml'}",
        ]
        # Tool globs that name files (not importable modules); a "**/" prefix as VS Code matches
        # string globs against absolute paths.
        patterns += [f"**/{g}" for g in self.config.tools if g.endswith(".py") or "/" in g]
        watchers = [lsp.FileSystemWatcher(glob_pattern=pattern) for pattern in patterns]
        options = lsp.DidChangeWatchedFilesRegistrationOptions(watchers=watchers)
        registration = lsp.Registration(
            id="codeact-watch",
            method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=options,
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.server.client_register_capability_async(
                    lsp.RegistrationParams(registrations=[registration])
                ),
                10,
            )

    def on_file_changed_on_disk(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is None or run_id_from_uri(uri) is not None or self.open_doc(uri) is not None:
            return  # open documents are followed through didChange/didSave
        if path.name in {"pyproject.toml", "codeact.toml"} and path.parent == self.root:
            self.reload_config()
        elif path.suffix == ".py" and self.is_tool_file(path):
            self.on_doc_saved(uri)
        elif path.suffix == ".toml":
            self.schedule_refresh(uri)

    async def _warm_up(self) -> None:
        """Start the tool host early: its import diagnostics show without running anything."""
        with contextlib.suppress(Exception):
            await self._with_backend(lambda b: b.tool_provider())
            self.schedule_refresh(*self.tool_file_uris())

    async def reload_settings(self, pushed: Any = None) -> None:
        settings = pushed
        if settings is None and self._supports("workspace", "configuration"):
            try:
                root_uri = self.server.workspace.root_uri
                got = await asyncio.wait_for(
                    self.server.workspace_configuration_async(
                        lsp.ConfigurationParams(
                            items=[lsp.ConfigurationItem(section="codeact", scope_uri=root_uri)]
                        )
                    ),
                    5,
                )
                settings = got[0] if got else None
            except Exception as exc:
                log.warning("workspace/configuration failed: %s", exc)
        if isinstance(settings, dict):
            self.settings = settings
        self.reload_config()
        self._configured.set()

    def reload_config(self) -> None:
        root = self.root
        if root is None:
            return
        self.loaded = load_config(root, settings_to_overrides(self.settings))
        problems = [str(p) for p in self.loaded.problems]
        if problems and problems != self._shown_problems:
            # Once per distinct set: a bad value is ignored (the default applies), say which.
            self.server.window_show_message(
                lsp.ShowMessageParams(
                    type=lsp.MessageType.Warning,
                    message="CodeAct configuration: " + "; ".join(problems) + " (ignored)",
                )
            )
        self._shown_problems = problems
        if self.backend is not None and self.loaded.config != self.backend.config:
            # New runs get a backend with the new settings; running ones keep theirs.
            old, self.backend = self.backend, None
            if any(self._active(rs) for rs in self.runs.values()):
                self._retired.append(old)
            else:
                self.spawn(old.close(), "close-old-backend")
            if self._configured.is_set():
                self.spawn(self._warm_up(), "warm-up")  # tool diagnostics for the new config
        self.refresh_discovery()

    async def _with_backend(self, use: Callable[[Backend], Any]) -> Any:
        """`use` the current backend; if a config change replaced it meanwhile, use the new one."""
        for _ in range(3):
            backend = await self.get_backend()
            try:
                return await use(backend)
            except BackendError:
                if self._closing or not backend.closed or backend is self.backend:
                    raise
        raise BackendError("the configuration kept changing while starting; try again")

    async def get_backend(self) -> Backend:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._configured.wait(), 10)
        if self.backend is None:
            root = self.require_root()
            self.backend = Backend(root, self.config, client_python(self.settings))
        return self.backend

    # ------------------------------------------------------------------ tool discovery

    def refresh_discovery(self, delay: float = 0.0) -> None:
        if self.root is None or self._closing:
            return
        if self._discovery_task is not None and not self._discovery_task.done():
            self._discovery_task.cancel()
        self._discovery_task = self.spawn(self._discover(delay), "discover-tools")

    async def _discover(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)  # typing: wait for a pause before re-reading the module
        root = self.root
        if root is None:
            return
        import importlib

        tools_mod = await asyncio.to_thread(importlib.import_module, "codeact_lsp.tools")
        config = self.config
        # Unsaved tool buffers count: the bench shows what the user is typing, not the disk.
        sources = {
            str(path): doc.source
            for uri, doc in list(self.server.workspace.text_documents.items())
            if (path := uri_to_path(uri)) is not None
            and path.suffix == ".py"
            and run_id_from_uri(uri) is None
        }
        self._discovery = await asyncio.to_thread(tools_mod.discover, root, config, sources)
        self.schedule_refresh(*self.tool_file_uris())

    def tool_files(self) -> list[str]:
        files = list(getattr(self._discovery, "files", []) or [])
        for tool in getattr(self._discovery, "tools", []) or []:
            if tool.file not in files:
                files.append(tool.file)
        return files

    def tool_file_uris(self) -> list[str]:
        return [path_to_uri(Path(f)) for f in self.tool_files()]

    def is_tool_file(self, path: Path) -> bool:
        if self._tool_paths[0] != id(self._discovery):
            resolved = frozenset(str(Path(f).resolve()) for f in self.tool_files())
            self._tool_paths = (id(self._discovery), resolved)
        return str(path.resolve()) in self._tool_paths[1]

    def tasks_file(self) -> Path | None:
        root = self.root
        if root is None:
            return None
        return root / (self.config.tasks or "tasks.toml")

    def check_context(self) -> CheckContext:
        tools: dict[str, ToolSig] = {}
        schemas: list[Any] = []
        backend = self.backend
        if backend is not None and backend.tools is not None:
            with contextlib.suppress(Exception):
                schemas = list(backend.tools.schemas())
        for schema in schemas:
            sig = sig_from_schema(schema)
            tools[sig.name] = sig
        known = bool(schemas)
        if not known and self._discovery is not None:
            for tool in self._discovery.tools:
                tools[tool.name] = ToolSig(name=tool.name, open_args=True, open_kwargs=True)
            known = bool(tools)
        for name, sig in list(tools.items()):
            if any(fnmatch.fnmatchcase(name, g) for g in self.config.confirm):
                tools[name] = ToolSig(
                    name=sig.name,
                    params=sig.params,
                    required=sig.required,
                    open_args=sig.open_args,
                    open_kwargs=sig.open_kwargs,
                    confirm=True,
                )
        return CheckContext(tools=tools, confirm_globs=list(self.config.confirm), tools_known=known)

    # ------------------------------------------------------------------ documents

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

    def on_doc_changed(self, uri: str) -> None:
        run_id = run_id_from_uri(uri)
        rs = self.runs.get(run_id) if run_id else None
        if rs is not None:
            self._capture_overrides(rs)
            self._check_paused(rs)
            self.schedule_refresh(uri)
            return
        path = uri_to_path(uri)
        if path is not None and path.suffix == ".py" and self.is_tool_file(path):
            self.refresh_discovery(delay=0.2)

    def on_doc_opened(self, uri: str) -> None:
        """Pull clients ask for what they show; the others get this document's diagnostics now."""
        if self.pull_diagnostics or self._kind(uri)[0] == "other":
            return
        self.schedule_refresh(uri)

    def on_doc_closed(self, uri: str) -> None:
        """A trajectory document closed with unsaved edits: they are gone, the view resumes."""
        run_id = run_id_from_uri(uri)
        rs = self.runs.get(run_id) if run_id else None
        if rs is not None:
            self._capture_overrides(rs)
            self._check_paused(rs)

    def on_doc_saved(self, uri: str) -> None:
        path = uri_to_path(uri)
        if path is None:
            return
        run_id = run_id_from_uri(uri)
        rs = self.runs.get(run_id) if run_id else None
        if rs is not None:
            doc = self.open_doc(uri)
            if doc is not None:
                rs.disk_texts.append(hash(doc.source))  # the user's text is the file now
            rs.rendered = None
            self._check_paused(rs)
            self.schedule_refresh(uri)
            return
        if path.name in {"pyproject.toml", "codeact.toml"} and path.parent == self.root:
            self.reload_config()
            return
        if path.suffix == ".py" and self.is_tool_file(path):
            self.refresh_discovery()
            backend = self.backend
            if (
                backend is not None
                and backend.tools is not None
                and hasattr(backend.tools, "restart")
            ):
                self.spawn(self._restart_tools(backend), "restart-tool-host")
        self.schedule_refresh(uri)

    async def _restart_tools(self, backend: Backend) -> None:
        if any(self._active(rs) for rs in self.runs.values()):
            return  # a run is using the tools' state; the next save after it restarts them
        await asyncio.to_thread(backend.tools.restart)
        self.schedule_refresh(*self.tool_file_uris())

    def _doc_dirty(self, rs: RunSession) -> bool:
        """Does the open trajectory document hold edits the user has not saved?

        Then rewriting the file would make the editor report a conflict on their next save (or
        lose their edits); the server leaves the file alone until they save, revert or close.
        The document's text is compared with what the file held lately rather than trusting
        versions: an editor reloading the server's write also sends a didChange.
        """
        doc = self.open_doc(rs.uri)
        if doc is None:
            return False
        text = doc.source
        if hash(text) in rs.disk_texts:
            return False
        try:
            on_disk = rs.path.read_text(encoding="utf-8")
        except OSError:
            on_disk = None
        if on_disk == text:
            rs.disk_texts.append(hash(text))
            return False
        return True

    def _check_paused(self, rs: RunSession) -> None:
        """Pause the rewriting of a run's document while it has unsaved edits; resume after."""
        dirty = self._doc_dirty(rs)
        traj = rs.trajectory()
        if dirty and not rs.paused and traj is not None:
            # Paused when a rewrite is due: the run goes on, or the file lags behind its state.
            rs.paused = self._active(rs) or (
                rs.rendered is not None and rs.rendered[0] != _state_key(traj)
            )
        elif not dirty and rs.paused:
            rs.paused = False
            rs.rendered = None  # the file may hold the user's saved text: rewrite it
            self._dirty_runs.add(rs.id)  # the state it missed, with the user's kept edits
            self.schedule_refresh(rs.uri)

    def _disk_text(self, rs: RunSession) -> str:
        try:
            return rs.path.read_text(encoding="utf-8")
        except OSError:
            return ""

    def _capture_overrides(self, rs: RunSession) -> None:
        traj = rs.trajectory()
        doc = self.open_doc(rs.uri)
        if traj is None:
            return
        # A closed document: what the user kept is what the file holds.
        text = doc.source if doc is not None else self._disk_text(rs)
        sections = {s.index: s for s in parse_sections(text)}
        for step in traj.steps:
            section = sections.get(step.index)
            if section is None:
                continue
            if normalise_code(section.code) != normalise_code(step.code):
                rs.overrides[step.index] = section.code
            else:
                rs.overrides.pop(step.index, None)

    def edited_code(self, rs: RunSession, step: int) -> str | None:
        """The step's code as the user left it in the trajectory document, if they changed it."""
        self._capture_overrides(rs)
        return rs.overrides.get(step)

    # ------------------------------------------------------------------ views

    def trajectory_view_text(self, rs: RunSession) -> str | None:
        traj = rs.trajectory()
        return None if traj is None else render(traj, rs.overrides)

    def _trajectory_view(self, uri: str) -> TrajectoryView | None:
        """The view of a trajectory document, rebuilt only when the run or the text changed.

        Editors ask for lenses, diagnostics and hovers again and again (after every refresh,
        scroll or keystroke); while runs go on, rebuilding on every request would compete with
        them for the event loop.
        """
        run_id = run_id_from_uri(uri)
        rs = self.find_run(run_id) if run_id else None
        traj = rs.trajectory() if rs else None
        if rs is None or traj is None:
            return None
        doc = self.open_doc(uri)
        last = traj.steps[-1] if traj.steps else None
        key = (
            id(traj),
            traj.updated_at,
            traj.status,
            len(traj.steps),
            last.status if last else None,
            len(last.tool_calls) if last else 0,
            doc.version if doc is not None else None,
            rs.accepted,
            rs.paused,
            self._checks_key(),
        )
        cached = self._view_cache.get(uri)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = build_view(
            traj,
            doc.source if doc is not None else None,
            self.check_context(),
            uri=uri,
            accepted=rs.accepted,
            paused=rs.paused,
        )
        self._view_cache[uri] = (key, view)
        return view

    def _checks_key(self) -> tuple[int, int]:
        backend = self.backend
        tools = backend.tools if backend is not None else None
        return (id(tools), id(self._discovery))

    def _kind(self, uri: str) -> tuple[str, Path | None]:
        """What a document is to this server: trajectory, tasks, tools, or other."""
        if run_id_from_uri(uri) is not None:
            return "trajectory", None
        path = uri_to_path(uri)
        if path is None:
            return "other", None
        resolved = path.resolve()
        tasks = self.tasks_file()
        if tasks is not None and resolved == tasks.resolve():
            return "tasks", path
        if self._discovery is not None and self.is_tool_file(path):
            return "tools", path
        return "other", path

    def code_lens(self, uri: str) -> list[lsp.CodeLens]:
        kind, path = self._kind(uri)
        if kind == "trajectory":
            view = self._trajectory_view(uri)
            return view.lenses if view else []
        if kind == "tasks" and path is not None:
            root = self.root
            rel = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
            return task_lenses(self.doc_state(uri).text, rel, self.task_results)
        if kind == "tools" and path is not None:
            last = self.last_trajectory()
            key = ("lens", id(self._discovery), id(last), last.updated_at if last else None)
            cached = self._bench_cache.get(uri)
            if cached is not None and cached[0] == key:
                return cached[1]  # type: ignore[return-value]
            lenses = bench_lenses(
                self._discovery.tools, str(path), self._stats.get(last), last.id if last else None
            )
            self._bench_cache[uri] = (key, lenses)
            return lenses
        return []

    def diagnostics(self, uri: str) -> list[lsp.Diagnostic]:
        kind, path = self._kind(uri)
        if kind == "trajectory":
            view = self._trajectory_view(uri)
            return view.diagnostics if view else []
        if kind == "tasks":
            return task_diagnostics(self.doc_state(uri).text, self.task_results)
        if kind == "tools" and path is not None:
            reported = list(self._discovery.diagnostics)
            if self.backend is not None:
                reported += self.backend.host_diagnostics()
            reported += list(self._tried.values())
            last = self.last_trajectory()
            key = (
                "diag",
                id(self._discovery),
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
        return []

    def hover(self, uri: str, pos: lsp.Position) -> lsp.Hover | None:
        view = self._trajectory_view(uri)
        found = view.hover_at(pos.line, pos.character) if view else None
        if found is None:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.markdown),
            range=found.range,
        )

    def last_trajectory(self) -> Trajectory | None:
        if self.last_run_id is None:
            return None
        rs = self.runs.get(self.last_run_id)
        return rs.trajectory() if rs else None

    # ------------------------------------------------------------------ refresh

    def schedule_refresh(self, *uris: str) -> None:
        """Coalesce change notifications: one lens refresh + diagnostics per ~100 ms burst."""
        self._dirty_uris.update(uris)
        if self._refresh_handle is not None or self._closing:
            return
        loop = asyncio.get_running_loop()
        self._refresh_handle = loop.call_later(REFRESH_DELAY_S, self._flush_refresh)

    def _flush_refresh(self) -> None:
        self._refresh_handle = None
        uris, self._dirty_uris = self._dirty_uris, set()
        runs, self._dirty_runs = self._dirty_runs, set()
        if self._closing:
            return
        for run_id in runs:
            rs = self.runs.get(run_id)
            if rs is not None:
                self._write_doc(rs)
        if self._supports("workspace", "code_lens", "refresh_support"):
            self.spawn(
                self._ask(self.server.workspace_code_lens_refresh_async(None)), "lens-refresh"
            )
        if self.pull_diagnostics:
            if self._supports("workspace", "diagnostics", "refresh_support"):
                self.spawn(
                    self._ask(self.server.workspace_diagnostic_refresh_async(None)), "diag-refresh"
                )
            return
        for uri in uris:
            with contextlib.suppress(Exception):
                self.server.text_document_publish_diagnostics(
                    lsp.PublishDiagnosticsParams(uri=uri, diagnostics=self.diagnostics(uri))
                )

    async def _ask(self, request: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(request, 10)

    # ------------------------------------------------------------------ runs

    def _active(self, rs: RunSession) -> bool:
        traj = rs.trajectory()
        return rs.handle is not None and traj is not None and not traj.done

    def find_run(self, run_id: str) -> RunSession | None:
        rs = self.runs.get(run_id)
        if rs is not None:
            return rs
        root = self.root
        if root is None or not run_id or "/" in run_id or run_id.startswith("."):
            return None
        traj = _load_stored(root / RUNS_DIR / f"{run_id}.json")
        return self._adopt(root, run_id, traj) if traj is not None else None

    def _adopt(self, root: Path, run_id: str, traj: Trajectory) -> RunSession:
        """Track a run read from disk (a previous session's, or not started by this server)."""
        if run_id in self.runs:
            return self.runs[run_id]
        path = trajectory_path(root, run_id)
        rs = RunSession(
            id=run_id, path=path, uri=path_to_uri(path), loaded=traj, target=traj.target
        )
        self.runs[run_id] = rs
        return rs

    def need_run(self, run_id: str) -> RunSession:
        rs = self.find_run(run_id)
        if rs is None or rs.discarded:
            known = ", ".join(sorted(self.runs)[-5:]) or "none yet"
            raise CommandError(
                f"no run with id {run_id!r} in this workspace (recent: {known}); "
                "codeact.listRuns lists them"
            )
        return rs

    def need_live(self, rs: RunSession, what: str) -> Any:
        if rs.handle is None:
            raise CommandError(
                f"run {rs.id} is not live in this server (it was loaded from disk): cannot {what}; "
                "re-run it with codeact.rerun"
            )
        return rs.handle

    def _snapshot_target(self, args: RunArgs) -> tuple[Target | None, str | None]:
        if not args.uri:
            return None, None
        state = self.doc_state(args.uri)
        raw_range = args.range.model_dump() if args.range else None
        rng = acc.to_range(raw_range)
        return (
            Target(
                uri=args.uri,
                range=raw_range,
                version=state.version,
                text=acc.range_text(state.text, rng),
            ),
            state.text,
        )

    async def _engine(self) -> Any:
        try:
            return await self._with_backend(lambda b: b.ready())
        except BackendError as exc:
            raise JsonRpcInternalError(message=str(exc)) from None
        except ImportError as exc:
            raise JsonRpcInternalError(
                message=f"the CodeAct engine is not available in this installation: {exc}"
            ) from None

    def _register(
        self,
        handle: Any,
        target: Target | None,
        start_text: str | None,
        *,
        show: bool = True,
        progress: bool = True,
    ) -> RunSession:
        root = self.require_root()
        path = trajectory_path(root, handle.id)
        rs = RunSession(
            id=handle.id,
            path=path,
            uri=path_to_uri(path),
            handle=handle,
            target=target,
            start_text=start_text,
        )
        self.runs[rs.id] = rs
        self.last_run_id = rs.id
        self._write_doc(rs)
        rs.pump = self.spawn(self._pump(rs, progress), f"run-{rs.id}")
        if show:
            self.spawn(self._show(rs.uri), f"show-{rs.id}")
        return rs

    async def _show(self, uri: str) -> None:
        if not self._supports("window", "show_document", "support"):
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.server.window_show_document_async(
                    lsp.ShowDocumentParams(uri=uri, take_focus=True)
                ),
                10,
            )

    def _record(self, kind: str, seconds: float) -> None:
        stats = getattr(self.server, "stats", None)
        if stats is not None:
            stats.record(kind, seconds)

    def _write_doc(self, rs: RunSession, *, force: bool = False) -> None:
        """Bring the run's document up to date (at most once per refresh, ~100 ms, per run).

        A loop of tool calls changes the trajectory thousands of times a second but not its
        text (tool calls show in lenses and hovers, not in the document): rendering is skipped
        unless something the text shows changed, or `force` (the run's final state).
        """
        if rs.discarded:
            return
        if self._doc_dirty(rs):
            if not rs.paused:
                rs.paused = True  # the lens says so; the state is written once they save
                self.schedule_refresh(rs.uri)
            return
        traj = rs.trajectory()
        if traj is None:
            return
        key = _text_key(traj, rs.overrides)
        if key == rs.rendered and not force:
            return
        started = time.perf_counter()
        text = render(traj, rs.overrides)
        try:
            written = replace_file(rs.path, text)
        except OSError as exc:
            log.warning("cannot write %s: %s", rs.path, exc)
            return
        self._record("docRender", time.perf_counter() - started)
        rs.rendered = key
        if written is not None:
            rs.disk_texts.append(hash(written))
            self._record("docWrite", time.perf_counter() - started)

    def _changed(self, rs: RunSession, *, now: bool = False) -> None:
        """The run moved on: rewrite its document (batched with the refresh, or `now`)."""
        if now:
            self._write_doc(rs, force=True)
        else:
            self._dirty_runs.add(rs.id)
        uris = [rs.uri]
        traj = rs.trajectory()
        if traj is not None and traj.done:
            uris += self.tool_file_uris()
        self.schedule_refresh(*uris)

    async def _progress_begin(
        self, name: str, title: str, on_cancel: Callable[[], object]
    ) -> str | None:
        """A cancellable work-done progress, if the client shows them; None otherwise."""
        if not self._supports("window", "work_done_progress"):
            return None
        progress = self.server.work_done_progress
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

    def _progress_report(self, token: str | None, message: str) -> None:
        if token is not None:
            with contextlib.suppress(Exception):
                self.server.work_done_progress.report(
                    token, lsp.WorkDoneProgressReport(message=message)
                )

    def _progress_end(self, token: str | None, message: str) -> None:
        if token is None:
            return
        progress = self.server.work_done_progress
        with contextlib.suppress(Exception):
            progress.end(token, lsp.WorkDoneProgressEnd(message=message))
        progress.tokens.pop(token, None)

    async def _pump(self, rs: RunSession, progress: bool = True) -> None:
        """Follow one run: rewrite its document, refresh views, report and honour progress."""
        handle = rs.handle
        token: str | None = None
        if progress:
            token = await self._progress_begin(
                f"run-{rs.id}", f"CodeAct: {handle.trajectory.task[:60]}", handle.cancel
            )
        rs.progress_token = token
        last_report = 0.0
        try:
            async for event in handle.subscribe():
                self._record("runEvent", 0.0)
                self._changed(rs)
                now = time.monotonic()
                # A loop of tool calls emits thousands of events: report at most ~4 per second.
                if event.kind != "tool_called" or now - last_report > 0.25:
                    last_report = now
                    self._progress_report(token, _describe(event))
            await handle.wait()
        finally:
            self._changed(rs, now=True)
            self._progress_end(token, handle.trajectory.status)

    # ------------------------------------------------------------------ commands

    async def cmd_run(self, raw: list[Any]) -> dict[str, Any]:
        args = parse(("codeact.run"), RunArgs, raw)
        self.require_root()
        target, start_text = self._snapshot_target(args)  # as the user sees it now
        engine = await self._engine()
        request = _engine_mod().RunRequest(
            task=args.task,
            signature=args.signature,
            inputs=args.inputs,
            model=args.model,
            approval=args.approval,
            max_iters=args.maxIters,
            target=target,
        )
        handle = await _engine_call(engine.start(request))
        rs = self._register(handle, target, start_text)
        return {"runId": rs.id, "trajectoryUri": rs.uri}

    def cmd_get_run(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.getRun", RunIdArgs, raw)
        rs = self.need_run(args.runId)
        traj = rs.trajectory()
        assert traj is not None
        self._write_doc(rs)  # the document never lags behind what getRun reports
        out: dict[str, Any] = traj.model_dump(mode="json")
        return out

    def cmd_show_step(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.showStep", RerunArgs, raw)
        rs = self.need_run(args.runId)
        traj = rs.trajectory()
        assert traj is not None
        for step in traj.steps:
            if step.index == args.step:
                return {"step": step.model_dump(mode="json"), "markdown": step_markdown(step)}
        raise CommandError(f"run {rs.id} has no step {args.step} (it has {len(traj.steps)})")

    async def cmd_list_runs(self, raw: list[Any]) -> dict[str, Any]:
        parse("codeact.listRuns", NoArgs, raw)
        root = self.root
        if root is not None and (root / RUNS_DIR).is_dir():
            # Reading and validating many stored runs is slow: off the event loop.
            stored = [
                p for p in sorted((root / RUNS_DIR).glob("*.json")) if p.stem not in self.runs
            ]
            loaded = await asyncio.to_thread(lambda: [(p.stem, _load_stored(p)) for p in stored])
            for run_id, traj in loaded:
                if traj is not None:
                    self._adopt(root, run_id, traj)
        runs: list[dict[str, Any]] = []
        for rs in self.runs.values():
            traj = rs.trajectory()
            if traj is None or rs.discarded:
                continue
            runs.append(
                {
                    "runId": rs.id,
                    "task": traj.task,
                    "status": traj.status,
                    "trajectoryUri": rs.uri,
                    "live": rs.handle is not None,
                    "accepted": rs.accepted,
                    "updatedAt": traj.updated_at,
                }
            )
        runs.sort(key=lambda r: r["updatedAt"])
        return {"runs": runs}

    async def cmd_cancel(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.cancel", RunIdArgs, raw)
        rs = self.need_run(args.runId)
        traj = rs.trajectory()
        assert traj is not None
        if traj.done:
            return {"status": traj.status}
        handle = self.need_live(rs, "cancel it")
        handle.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(handle.wait()), 5)
        return {"status": handle.trajectory.status}

    def _need_waiting(self, rs: RunSession, what: str) -> Any:
        handle = self.need_live(rs, what)
        status = handle.trajectory.status
        if status != "awaiting_approval":
            raise CommandError(
                f"run {rs.id} is {status}, not waiting for approval: nothing to {what}"
                + (
                    ' (set approval to "review" to approve each step)'
                    if status == "running"
                    else ""
                )
            )
        return handle

    def _pending_step(self, handle: Any) -> int | None:
        for step in reversed(handle.trajectory.steps):
            if step.status == "awaiting_approval":
                return int(step.index)
        return None

    async def cmd_approve(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.approve", ApproveArgs, raw)
        rs = self.need_run(args.runId)
        handle = self._need_waiting(rs, "approve")
        code = args.code
        pending = self._pending_step(handle)
        if code is None and pending is not None:
            code = self.edited_code(rs, pending)
        if pending is not None:
            rs.overrides.pop(pending, None)
        handle.approve(code)
        self._changed(rs)
        return {"status": handle.trajectory.status, "step": pending, "edited": code is not None}

    async def cmd_reject(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.reject", RejectArgs, raw)
        rs = self.need_run(args.runId)
        handle = self._need_waiting(rs, "reject")
        pending = self._pending_step(handle)
        if pending is not None:
            rs.overrides.pop(pending, None)
        handle.reject(args.feedback)
        self._changed(rs)
        return {"status": handle.trajectory.status, "step": pending}

    def _program(self, rs: RunSession) -> str:
        program: str = ""
        if rs.handle is not None:
            program = rs.handle.program()
        else:
            traj = rs.trajectory()
            program = (traj.program or "") if traj is not None else ""
        if program.strip():
            return program
        raise CommandError(
            f"run {rs.id} has no program to accept: none of its steps ran successfully"
        )

    def _plan(self, rs: RunSession, mode: str, new_file_uri: str | None) -> acc.Plan:
        traj = rs.trajectory()
        assert traj is not None
        if traj.status != "finished":
            raise CommandError(
                f"run {rs.id} is {traj.status}: only a finished run can be accepted"
                + (" — wait for it, or cancel it" if not traj.done else "")
            )
        program = self._program(rs)
        target = rs.target or traj.target
        if mode == "newFile" or target is None:
            return acc.plan_new_file(program, new_file_uri or self._new_file_uri(rs))
        target_path = uri_to_path(target.uri)
        if (
            self.open_doc(target.uri) is None
            and target_path is not None
            and not target_path.exists()
        ):
            return acc.plan_new_file(program, target.uri)  # the target was never saved
        current = self.doc_state(target.uri)
        if mode == "insertAtEnd":
            return acc.plan_insert_at_end(program, current)
        return acc.plan_at_target(
            program, current, acc.to_range(target.range), rs.start_text, target.text
        )

    def _new_file_uri(self, rs: RunSession) -> str:
        root = self.require_root()
        for n in range(1000):
            name = f"codeact_{rs.id}.py" if n == 0 else f"codeact_{rs.id}_{n}.py"
            if not (root / name).exists():
                return path_to_uri(root / name)
        raise CommandError("cannot find a free file name for the new file; pass newFileUri")

    def cmd_accept_preview(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.acceptPreview", AcceptArgs, raw)
        rs = self.need_run(args.runId)
        plan = self._plan(rs, args.mode, args.newFileUri)
        return _plan_json(plan, self._program(rs))

    async def cmd_accept(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.accept", AcceptArgs, raw)
        rs = self.need_run(args.runId)
        if rs.accepted and args.mode == "target":
            return {
                "applied": False,
                "reason": f"run {rs.id} was already accepted; to insert its program again, "
                'use mode "insertAtEnd" or "newFile"',
                "alternatives": acc.ALTERNATIVES,
            }
        plan = self._plan(rs, args.mode, args.newFileUri)
        if not plan.ok:
            return {"applied": False, "reason": plan.reason, "alternatives": acc.ALTERNATIVES}
        if not self._supports("workspace", "apply_edit"):
            return {
                "applied": False,
                "reason": "this client cannot apply workspace edits; use codeact.acceptPreview",
            }
        result = await self.server.workspace_apply_edit_async(
            lsp.ApplyWorkspaceEditParams(
                edit=acc.workspace_edit(plan), label=f"CodeAct: accept run {rs.id}"
            )
        )
        if not result.applied:
            return {
                "applied": False,
                "reason": result.failure_reason
                or "the editor refused the edit (the document probably changed meanwhile)",
                "alternatives": acc.ALTERNATIVES,
            }
        rs.accepted = True
        self.schedule_refresh(rs.uri)
        return {"applied": True, "uri": plan.uri, "version": plan.version}

    async def cmd_discard(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.discard", RunIdArgs, raw)
        rs = self.need_run(args.runId)
        if self._active(rs):
            rs.handle.cancel()
        rs.discarded = True
        for path in (rs.path, rs.path.with_suffix(".json")):
            with contextlib.suppress(OSError):
                path.unlink()
        if self.last_run_id == rs.id:
            self.last_run_id = None
        self.schedule_refresh(rs.uri, *self.tool_file_uris())
        return {"discarded": True}

    async def _derived(self, rs: RunSession, handle: Any) -> dict[str, Any]:
        new = self._register(handle, rs.target, rs.start_text)
        return {"runId": new.id, "trajectoryUri": new.uri}

    async def cmd_rerun(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.rerun", RerunArgs, raw)
        rs = self.need_run(args.runId)
        traj = rs.trajectory()
        assert traj is not None
        if not any(s.index == args.step for s in traj.steps):
            raise CommandError(f"run {rs.id} has no step {args.step} (it has {len(traj.steps)})")
        code = args.code if args.code is not None else self.edited_code(rs, args.step)
        engine = await self._engine()
        handle = await _engine_call(engine.rerun(rs.id, args.step, code))
        return await self._derived(rs, handle)

    async def cmd_follow_up(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.followUp", FollowUpArgs, raw)
        rs = self.need_run(args.runId)
        engine = await self._engine()
        handle = await _engine_call(engine.follow_up(rs.id, args.task))
        return await self._derived(rs, handle)

    async def cmd_list_tools(self, raw: list[Any]) -> dict[str, Any]:
        parse("codeact.listTools", NoArgs, raw)
        self.require_root()
        diagnostics: list[Any] = list(getattr(self._discovery, "diagnostics", []) or [])
        schemas: list[Any] = []
        error: str | None = None
        try:
            tools = await self._with_backend(lambda b: b.tool_provider())
            schemas = list(tools.schemas())
            diagnostics += self.backend.host_diagnostics() if self.backend else []
        except (BackendError, ImportError) as exc:
            error = str(exc)
        return {
            "tools": [_dump(s) for s in schemas],
            "diagnostics": [_dump(d) for d in diagnostics],
            **({"error": error} if error else {}),
        }

    async def cmd_try_tool(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.tryTool", TryToolArgs, raw)
        self.require_root()
        try:
            tools = await self._with_backend(lambda b: b.tool_provider())
        except (BackendError, ImportError) as exc:
            raise JsonRpcInternalError(message=str(exc)) from None
        names = [s.name for s in tools.schemas()]
        if args.name not in names:
            import difflib

            close = difflib.get_close_matches(args.name, names, n=1)
            raise CommandError(
                f"no tool named {args.name!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (tools: {', '.join(names) or 'none found'})"
            )
        positional = args.args if isinstance(args.args, list) else []
        keywords = args.args if isinstance(args.args, dict) else {}
        outcome = await asyncio.to_thread(tools.call_sync, args.name, positional, keywords)
        base = {"stdout": outcome.stdout, "durationMs": outcome.duration_ms}
        self._note_tried(args.name, outcome.error if not outcome.ok else None)
        if outcome.ok:
            return {"result": outcome.result, **base}
        return {"error": _dump(outcome.error), **base}

    def _note_tried(self, name: str, error: Any) -> None:
        """A "Try" that raised shows at the raising line of the tool, like a run's failure."""
        before = self._tried.pop(name, None)
        if error is not None and getattr(error, "file", None) and getattr(error, "line", None):
            self._tried[name] = _Reported(
                file=str(error.file),
                line=int(error.line),
                message=f"{error.type}: {error.message} (when you tried `{name}`)",
                code="raised-when-tried",
            )
        for entry in (before, self._tried.get(name)):
            if entry is not None:
                self.schedule_refresh(path_to_uri(Path(entry.file)))

    async def cmd_run_tasks(self, raw: list[Any]) -> dict[str, Any]:
        args = parse("codeact.runTasks", RunTasksArgs, raw)
        root = self.require_root()
        from codeact_lsp.engine import suite

        file = suite.suite_path(root, args.file, self.config.tasks)
        if not file.is_file():
            raise CommandError(
                f"no task suite at {file}: create it with [[task]] tables, or set `tasks` in "
                "[tool.codeact]"
            )
        engine = await self._engine()
        handles: list[Any] = []
        cancelled = False

        def cancel_all() -> None:
            nonlocal cancelled
            cancelled = True
            for handle in handles:
                handle.cancel()

        token = await self._progress_begin("tasks", f"CodeAct: task suite {file.name}", cancel_all)

        def started(task: Any, handle: Any) -> None:
            handles.append(handle)
            self._register(handle, None, None, show=False, progress=False)
            if cancelled:
                handle.cancel()
            self._progress_report(token, f"{task.name}: running")

        def finished(result: Any) -> None:
            mark = "passed" if result.passed else f"failed ({result.message[:60]})"
            self._progress_report(token, f"{result.name}: {mark}")

        try:
            results = await suite.run_suite(
                engine, file, names=args.names, on_start=started, on_result=finished
            )
        except suite.SuiteError as exc:
            raise CommandError(str(exc)) from None
        finally:
            self._progress_end(token, "cancelled" if cancelled else "done")
        out: list[dict[str, Any]] = []
        for item in results:
            data = _dump(item)
            self.task_results[item.name] = TaskResult(
                name=item.name,
                passed=item.passed,
                duration_s=item.duration_s,
                message=item.message,
                run_id=item.run_id,
            )
            out.append(data)
        await asyncio.to_thread(save_results, root, dict(self.task_results))
        self.schedule_refresh(path_to_uri(file))
        return {
            "file": str(file),
            "results": out,
            "passed": sum(1 for r in out if r.get("passed")),
            "total": len(out),
        }

    # ------------------------------------------------------------------ shutdown

    async def close(self) -> None:
        """End every run, worker and tool host; idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._refresh_handle is not None:
            self._refresh_handle.cancel()
        for rs in self.runs.values():
            if self._active(rs):
                with contextlib.suppress(Exception):
                    rs.handle.cancel()
        backends = [b for b in (self.backend, *self._retired) if b is not None]
        self.backend, self._retired = None, []
        for backend in backends:
            await backend.close()
        for task in list(self._tasks):
            task.cancel()


def parse(command: str, model: Any, raw: list[Any]) -> Any:
    try:
        return parse_args(command, model, raw)
    except CommandArgumentError as exc:
        raise CommandError(str(exc)) from None


def _text_key(traj: Trajectory, overrides: dict[int, str]) -> tuple[Any, ...]:
    """What `render` shows that can still change: the run's state and the user's edits."""
    return (_state_key(traj), tuple(sorted(overrides.items())))


def _state_key(traj: Trajectory) -> tuple[Any, ...]:
    """The run's status and answer, the number of steps, and the last step (earlier steps are
    settled once a later one exists)."""
    last = traj.steps[-1] if traj.steps else None
    return (
        traj.id,
        traj.status,
        traj.model,
        traj.error,
        repr(traj.outputs) if traj.done else None,
        len(traj.steps),
        None
        if last is None
        else (
            last.status,
            last.code,
            len(last.stdout),
            last.value,
            last.error is not None,
            last.feedback,
        ),
    )


def _load_stored(stored: Path) -> Trajectory | None:
    if not stored.is_file():
        return None
    try:
        return Trajectory.model_validate_json(stored.read_text(encoding="utf-8"))
    except Exception as exc:
        log.warning("cannot read %s: %s", stored, exc)
        return None


async def _engine_call(coro: Any) -> Any:
    """Await an engine call; a request the engine refuses becomes an actionable command error."""
    from codeact_lsp.engine import EngineError

    try:
        return await coro
    except EngineError as exc:
        raise CommandError(str(exc)) from None


def _engine_mod() -> Any:
    import importlib

    return importlib.import_module("codeact_lsp.engine")


def _dump(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        out: dict[str, Any] = value.model_dump(mode="json")
        return out
    if isinstance(value, dict):
        return value
    return json.loads(json.dumps(value, default=repr))  # type: ignore[no-any-return]


def _plan_json(plan: acc.Plan, program: str) -> dict[str, Any]:
    return {
        "ok": plan.ok,
        "reason": plan.reason,
        "alternatives": acc.ALTERNATIVES if not plan.ok else [],
        "targetUri": plan.uri,
        "range": _range_json(plan.range),
        "version": plan.version,
        "createsFile": plan.create,
        "newText": plan.new_text,
        "documentAfter": plan.document_after,
        "program": program,
    }


def _range_json(rng: lsp.Range | None) -> dict[str, Any] | None:
    if rng is None:
        return None
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }


def _describe(event: Any) -> str:
    kind = str(getattr(event, "kind", "update"))
    step = getattr(event, "step", None)
    data = getattr(event, "data", {}) or {}
    where = f"step {step}: " if step else ""
    if kind == "tool_called":
        return f"{where}called {data.get('name', 'a tool')}"
    return f"{where}{kind.replace('_', ' ')}"
