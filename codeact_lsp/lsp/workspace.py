"""The open workspace: its settings and configuration, its backend, and the tools found in it.

Settings come from the client (`workspace/configuration`, section `codeact`) and override the
workspace file; a change of either replaces the backend (engine + tool host) for new runs while
running ones keep theirs. Discovery is static (no import) and re-runs as tool files are edited, so
tool lenses and step checks follow what the user types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from codeact_lsp.config import CodeActConfig, LoadedConfig, load_config
from codeact_lsp.engine.checks import CheckContext, ToolSig, sig_from_schema
from codeact_lsp.lsp.backend import Backend, BackendError
from codeact_lsp.lsp.document import path_to_uri, run_id_from_uri, uri_to_path
from codeact_lsp.lsp.errors import CommandError
from codeact_lsp.lsp.settings import client_python, settings_to_overrides
from codeact_lsp.lsp.tasks_view import TaskResult, load_results
from codeact_lsp.lsp.tool_view import CONFIG_FILES

if TYPE_CHECKING:
    from codeact_lsp.assemble import ServedTools
    from codeact_lsp.lsp.state import ServerState
    from codeact_lsp.tools.models import Discovery

log = logging.getLogger(__name__)


class WorkspaceState:
    """Settings, configuration, backend lifecycle and tool discovery of the one open workspace."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.server = state.server
        self.settings: dict[str, Any] = {}
        self.loaded = LoadedConfig(config=CodeActConfig())
        self.backend: Backend | None = None
        self.discovery: Discovery | None = None
        self._task_results: dict[str, TaskResult] | None = None
        self._shown_problems: list[str] = []
        self._retired: list[Backend] = []  # replaced by a config change while runs used them
        self._discovery_task: asyncio.Task[None] | None = None
        self._tool_paths: tuple[int, frozenset[str]] = (0, frozenset())
        # Set once the first settings are in: a backend built before would use the wrong config.
        self._configured = asyncio.Event()

    # ------------------------------------------------------------------ root & config

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
    def config(self) -> CodeActConfig:
        return self.loaded.config

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

    def tasks_file(self) -> Path | None:
        root = self.root
        if root is None:
            return None
        return root / (self.config.tasks or "tasks.toml")

    async def watch_files(self) -> None:
        """Config and tool files changed outside the editor (git checkout, another tool) count too."""
        if not self.state.client.watched_files:
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

    async def warm_up(self) -> None:
        """Start the tool host early: its import diagnostics show without running anything."""
        with contextlib.suppress(Exception):
            await self.with_backend(lambda b: b.tool_provider())
            self.state.refresh.schedule(*self.tool_file_uris())

    async def reload_settings(self, pushed: Any = None) -> None:
        settings = pushed
        if settings is None and self.state.client.configuration:
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
            if self.state.runs.any_active():
                self._retired.append(old)
            else:
                self.state.spawn(old.close(), "close-old-backend")
            if self._configured.is_set():
                self.state.spawn(self.warm_up(), "warm-up")  # tool diagnostics for the new config
        self.refresh_discovery()

    # ------------------------------------------------------------------ backend

    async def with_backend(self, use: Callable[[Backend], Any]) -> Any:
        """`use` the current backend; if a config change replaced it meanwhile, use the new one."""
        for _ in range(3):
            backend = await self.get_backend()
            try:
                return await use(backend)
            except BackendError:
                if self.state.closing or not backend.closed or backend is self.backend:
                    raise
        raise BackendError("the configuration kept changing while starting; try again")

    async def configured(self) -> None:
        """Wait (up to 10 s) for the client's settings: the config after it is the one in force."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._configured.wait(), 10)

    async def get_backend(self) -> Backend:
        await self.configured()
        if self.backend is None:
            root = self.require_root()
            loop = asyncio.get_running_loop()

            def changed() -> None:  # on the MCP thread: over to the server's loop
                loop.call_soon_threadsafe(self._tools_changed)

            self.backend = Backend(
                root, self.config, client_python(self.settings), on_tools_changed=changed
            )
        return self.backend

    def _tools_changed(self) -> None:
        """An MCP server changed its tool list: the lenses at its table and the step checks
        (unknown tool, arguments) follow at the next refresh; the next run's prompt has it."""
        root = self.root
        configs = [path_to_uri(root / name) for name in CONFIG_FILES] if root else []
        self.state.refresh.schedule(*self.tool_file_uris(), *configs)

    def restart_tools(self) -> None:
        """A tool module was saved: reload the tool host (unless a run is using its state)."""
        backend = self.backend
        if backend is not None and backend.tools is not None:
            self.state.spawn(self._restart_tools(backend.tools), "restart-tool-host")

    async def _restart_tools(self, tools: ServedTools) -> None:
        if self.state.runs.any_active():
            return  # a run is using the tools' state; the next save after it restarts them
        await asyncio.to_thread(tools.restart)
        self.state.refresh.schedule(*self.tool_file_uris())

    async def close_backends(self) -> None:
        backends = [b for b in (self.backend, *self._retired) if b is not None]
        self.backend, self._retired = None, []
        for backend in backends:
            await backend.close()

    # ------------------------------------------------------------------ tool discovery

    def refresh_discovery(self, delay: float = 0.0) -> None:
        if self.root is None or self.state.closing:
            return
        if self._discovery_task is not None and not self._discovery_task.done():
            self._discovery_task.cancel()
        self._discovery_task = self.state.spawn(self._discover(delay), "discover-tools")

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
        self.discovery = await asyncio.to_thread(tools_mod.discover, root, config, sources)
        self.state.refresh.schedule(*self.tool_file_uris())

    def tool_files(self) -> list[str]:
        if self.discovery is None:
            return []
        files = list(self.discovery.files)
        for tool in self.discovery.tools:
            if tool.file not in files:
                files.append(tool.file)
        return files

    def tool_file_uris(self) -> list[str]:
        return [path_to_uri(Path(f)) for f in self.tool_files()]

    def is_tool_file(self, path: Path) -> bool:
        if self._tool_paths[0] != id(self.discovery):
            resolved = frozenset(str(Path(f).resolve()) for f in self.tool_files())
            self._tool_paths = (id(self.discovery), resolved)
        return str(path.resolve()) in self._tool_paths[1]

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
        if not known and self.discovery is not None:
            for tool in self.discovery.tools:
                tools[tool.name] = ToolSig(name=tool.name, open_args=True, open_kwargs=True)
            known = bool(tools)
        # `confirm` globs are matched by the checks themselves (config.matches_glob).
        return CheckContext(tools=tools, confirm_globs=list(self.config.confirm), tools_known=known)

    def checks_key(self) -> tuple[int, int]:
        """Changes when what `check_context` reads changes (a cache key for views)."""
        backend = self.backend
        tools = backend.tools if backend is not None else None
        return (id(tools), id(self.discovery))
