"""A session: one sandbox and the runs that share its state (a run, then its follow-ups).

The sandbox worker only knows stubs; each stub call comes back here on a sandbox thread and goes to
whichever run is currently executing in this session.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from codeact_lsp.config import SandboxSettings
from codeact_lsp.tools.models import ToolProvider, ToolSchema
from codeact_lsp.trajectory import ErrorLocation

if TYPE_CHECKING:
    from codeact_lsp.engine.run import RunHandle
    from codeact_lsp.sandbox import Sandbox, ToolReply, ToolRequest


class Session:
    def __init__(
        self,
        tools: ToolProvider,
        schemas: list[ToolSchema],
        settings: SandboxSettings,
        *,
        python: str | None = None,
        extra_paths: list[str] | None = None,
        workspace: str | None = None,
        owns_tools: bool = False,
    ) -> None:
        self.tools = tools
        self.owns_tools = owns_tools  # closed with the session (its per-run servers)
        # relative `read_paths` resolve against the workspace, and a grant that would expose the
        # whole workspace (its .env) is reported as not enforced
        self.workspace = workspace
        self.schemas = schemas
        self.settings = settings
        self.python = python
        self.extra_paths = list(extra_paths or [])
        self.lock = asyncio.Lock()
        self.current: RunHandle | None = None
        self.sandbox: Sandbox | None = None
        self.closed = False
        self.last_used = time.monotonic()
        self.run_ids: list[str] = []
        self._opening: asyncio.Task[Sandbox] | None = None

    async def ensure_open(self) -> Sandbox:
        if self.closed:
            raise RuntimeError("session closed")
        self.last_used = time.monotonic()
        if self.sandbox is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._start())
            self.sandbox = await asyncio.shield(self._opening)
        return self.sandbox

    async def _start(self) -> Sandbox:
        from codeact_lsp.sandbox import Sandbox, ToolStub

        stubs = [
            ToolStub(
                name=t.name, signature=t.signature, doc=t.doc, local=t.local, confirm=t.confirm
            )
            for t in self.schemas
        ]
        stubs.append(ToolStub(name="final_answer", signature="def final_answer(*args, **kwargs)"))
        kwargs: dict[str, Any] = {"python": self.python}
        if self.extra_paths:
            kwargs["extra_paths"] = self.extra_paths
        if self.workspace:
            kwargs["workspace"] = self.workspace
        exceptions = getattr(self.tools, "exceptions", None)  # the tool modules' own classes
        if isinstance(exceptions, list):
            kwargs["exceptions"] = exceptions
        route = getattr(self.tools, "direct_route", None)  # the tool host serves its own calls
        if route is not None:
            kwargs["direct"] = route
            kwargs["on_direct"] = self.handle_direct
        sandbox = await Sandbox.start(self.settings, stubs, self.handle_tool, **kwargs)
        await sandbox.execute(self.prelude)
        return sandbox

    @property
    def prelude(self) -> str:
        """Binds the typing names the prompt's stubs use (`Any`...), so a copied stub is valid."""
        from codeact_lsp.engine.contract import session_prelude

        return session_prelude(t.signature for t in self.schemas)

    def handle_tool(self, request: ToolRequest) -> ToolReply:
        """Called on a sandbox thread for every stub call."""
        run = self.current
        if run is None:
            from codeact_lsp.sandbox import ToolReply

            return ToolReply(
                error=ErrorLocation(type="RuntimeError", message="no run is active in this session")
            )
        return run.on_tool(request)

    def handle_direct(self, calls: list[dict[str, Any]], omitted: int) -> None:
        """Records of calls the tool host served itself (the direct route), in call order."""
        run = self.current
        if run is not None:
            run.on_direct_calls(calls, omitted)

    async def reset(self) -> Sandbox:
        """A new sandbox in place of the current one (its state is thrown away)."""
        sandbox, self.sandbox, self._opening = self.sandbox, None, None
        if sandbox is not None:
            await sandbox.close()
        return await self.ensure_open()

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    async def close(self) -> None:
        self.closed = True
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is None and self._opening is not None:
            try:
                sandbox = await self._opening
            except Exception:
                sandbox = None
        if sandbox is not None:
            await sandbox.close()
        if self.owns_tools:
            await self.tools.close()
