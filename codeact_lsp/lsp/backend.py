"""The engine and the tool host, created on first use, off the event loop.

Importing the engine (and through it, on demand, litellm) and starting the tool host take far
longer than an editor may wait for `initialize`, so nothing here is imported at server start. The
first command that needs them awaits `ready()`; the import itself runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from codeact_lsp.config import CodeActConfig, resolve_python

if TYPE_CHECKING:  # imported at first use (see above), typed here
    from codeact_lsp.assemble import ServedTools
    from codeact_lsp.engine import Engine
    from codeact_lsp.tools.models import ToolDiagnostic


log = logging.getLogger(__name__)


async def _assembly() -> ModuleType:
    """`codeact_lsp.assemble` with what it imports on use (the engine, the tool host, MCP),
    imported in a worker thread: together they take seconds."""

    def load() -> ModuleType:
        for name in ("codeact_lsp.engine", "codeact_lsp.tools.host", "codeact_lsp.mcp.provider"):
            importlib.import_module(name)
        return importlib.import_module("codeact_lsp.assemble")

    return await asyncio.to_thread(load)


class BackendError(Exception):
    """The engine or tool host could not start; the message says why and what to do."""


class Backend:
    """One engine + tool host for one workspace and one configuration."""

    def __init__(
        self,
        workspace: Path,
        config: CodeActConfig,
        client_python: str | None,
        on_tools_changed: Callable[[], None] | None = None,
    ) -> None:
        self.workspace = workspace
        self.config = config
        self.client_python = client_python
        self.on_tools_changed = on_tools_changed  # an MCP server changed its list (any thread)
        self.engine: Engine | None = None
        self.tools: ServedTools | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def ready(self) -> Engine:
        """The engine, starting it (and the tool host) the first time."""
        async with self._lock:
            if self._closed:
                raise BackendError("the server is shutting down")
            if self.engine is not None:
                return self.engine
            assemble = await _assembly()
            if self.tools is None:
                self.tools = await self._start_tools()
            if self._closed:  # replaced while starting: do not leave a tool host behind
                tools, self.tools = self.tools, None
                await tools.close()
                raise BackendError("the server is shutting down")
            self.engine = assemble.make_engine(self.config, self.tools, workspace=self.workspace)
            return self.engine

    async def tool_provider(self) -> ServedTools:
        """The tool host alone (the bench and listTools do not need the engine)."""
        async with self._lock:
            if self._closed:
                raise BackendError("the server is shutting down")
            if self.tools is None:
                self.tools = await self._start_tools()
            if self._closed:
                tools, self.tools = self.tools, None
                await tools.close()
                raise BackendError("the server is shutting down")
            return self.tools

    async def _start_tools(self) -> ServedTools:
        assemble = await _assembly()
        python = resolve_python(self.workspace, self.config, self.client_python)
        try:
            served: ServedTools = await assemble.start_workspace_tools(
                self.workspace, self.config, python=python
            )
            subscribe = getattr(served, "on_change", None)
            if callable(subscribe) and self.on_tools_changed is not None:
                subscribe(self.on_tools_changed)
            return served
        except Exception as exc:
            raise BackendError(
                f"the tool host could not start with {python}: {exc}. "
                "Check `python` in [tool.codeact] (or the codeact.python setting) and the tool "
                "modules' imports."
            ) from exc

    def host_diagnostics(self) -> list[ToolDiagnostic]:
        return list(self.tools.diagnostics) if self.tools is not None else []

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """End every run's worker and the tool host (client gone, shutdown, or config change)."""
        self._closed = True
        engine, tools = self.engine, self.tools
        self.engine = self.tools = None
        for closer in (engine, tools):
            if closer is None:
                continue
            try:
                await asyncio.wait_for(closer.close(), 10)
            except Exception:
                log.exception("closing %r failed", closer)
