"""MCP tools served as tools: a `ToolProvider` over the workspace's MCP servers, and the
combination with the tool host that the engine, the CLI and the editor are handed.

The provider runs in the server process (the workspace interpreter may not have the SDK), on the
`ToolHandler` path: generated code calls a stub, the call crosses the sandbox channel to the
engine, which records it, applies caps and approval, and lands here. Generated code never holds a
connection to an MCP server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codeact_lsp.config import CodeActConfig, matches_glob
from codeact_lsp.mcp.connection import McpCallError, McpLoop, ServerConnection
from codeact_lsp.mcp.content import convert
from codeact_lsp.mcp.schema import McpParam, annotation, assign_names, bind, build_stub
from codeact_lsp.mcp.servers import ServerSpec, server_specs
from codeact_lsp.tools.models import ToolDiagnostic, ToolOutcome, ToolSchema
from codeact_lsp.trajectory import ErrorLocation

RESERVED = frozenset({"final_answer"})
log = logging.getLogger(__name__)

# the classes MCP failures raise in the snippet (`codec.exception_tree` form): bound by name in
# its globals, so `except McpToolError:` works; a lost server is also a ConnectionError
_BUILTIN = "builtins"
MCP_EXCEPTIONS: dict[str, dict[str, Any]] = {
    "McpToolError": {
        "name": "McpToolError",
        "module": "codeact.mcp",
        "qualname": "McpToolError",
        "bases": [{"name": "Exception", "module": _BUILTIN}],
    },
    "McpServerError": {
        "name": "McpServerError",
        "module": "codeact.mcp",
        "qualname": "McpServerError",
        "bases": [{"name": "ConnectionError", "module": _BUILTIN}],
    },
}


class McpTool(BaseModel):
    """One exposed MCP tool: its Python name, where it lives and how to call it."""

    name: str  # Python name in the sandbox
    server: str
    tool: str  # the name the server knows it by
    params: list[McpParam]
    unwrap: bool  # the server wraps a non-object return in {"result": ...} (the SDK's way)
    tool_schema: ToolSchema


def _matches(globs: Sequence[str], *names: str) -> bool:
    return any(matches_glob(n, globs) for n in names)


def _wrapped(output: Any) -> Any:
    """The schema of `result` when the output schema is the SDK's {"result": X} wrapper."""
    if not isinstance(output, dict):
        return None
    props = output.get("properties")
    if (
        isinstance(props, dict)
        and list(props) == ["result"]
        and output.get("required") == ["result"]
    ):
        return props["result"]
    return None


class McpTools:
    """Every configured MCP server's tools. Servers start on `start()` (all at once, each within
    its `startup_timeout`), are shared by every run that uses this provider (a `per_run` server:
    see `for_run`), and are restarted by the next call after a crash."""

    def __init__(self, specs: list[ServerSpec], *, reserved: Iterable[str] = ()) -> None:
        self.specs = specs
        self._loop: McpLoop | None = None
        self.connections: dict[str, ServerConnection] = {}
        self._reserved = set(reserved) | RESERVED
        self.tools: dict[str, McpTool] = {}
        self.diagnostics: list[ToolDiagnostic] = []
        self.started = False
        self.start_ms = 0.0
        self.exceptions: list[dict[str, Any]] = list(MCP_EXCEPTIONS.values())
        self._own: list[ServerConnection] | None = None  # a run's view: only these are its own
        self._listeners: list[Callable[[], None]] = []

    @classmethod
    def for_workspace(
        cls,
        workspace: Path | str,
        config: CodeActConfig,
        *,
        source: str | None = None,
        reserved: Iterable[str] = (),
    ) -> McpTools:
        return cls(server_specs(Path(workspace), config, source), reserved=reserved)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every server and list its tools (blocking; `astart` from async code)."""
        if self.started:
            return
        began = time.perf_counter()
        if self.specs and self._loop is None:
            self._loop = McpLoop()
        loop = self._loop
        for spec in self.specs:
            if spec.name not in self.connections and loop is not None:
                conn = ServerConnection(spec, loop)
                conn.on_tools_changed = self._tools_changed
                self.connections[spec.name] = conn
        conns = list(self.connections.values())
        if conns:
            with cf.ThreadPoolExecutor(len(conns), thread_name_prefix="codeact-mcp-start") as ex:
                list(ex.map(_try_start, conns))
        self.started = True
        self.start_ms = (time.perf_counter() - began) * 1000
        self._rebuild()

    async def astart(self) -> McpTools:
        await asyncio.to_thread(self.start)
        return self

    def for_run(self) -> McpTools | None:
        """The tools as one run's session sees them: the shared servers, plus a fresh instance
        of each `per_run` server, started at its first call and closed with the session. The
        tool list stays the one listed at start (the shared instance answers the editor's Try).
        None when no server is per-run."""
        per_run = [s for s in self.specs if s.per_run and s.problem is None]
        if not per_run or self._loop is None:
            return None
        view = McpTools(self.specs, reserved=self._reserved)
        view._loop = self._loop
        view.connections = dict(self.connections)
        view._own = []
        for spec in per_run:
            conn = ServerConnection(spec, self._loop)
            view.connections[spec.name] = conn
            view._own.append(conn)
        view.tools, view.diagnostics = self.tools, self.diagnostics
        view.exceptions, view.started = self.exceptions, True
        return view

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the MCP thread) after a server changed its tool list: the next
        run's prompt and stubs, `listTools` and the lenses see the new list."""
        self._listeners.append(callback)

    def _tools_changed(self) -> None:
        self._rebuild()
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # a listener's failure must not stop the MCP loop
                log.exception("MCP tools-changed listener")

    def reserve(self, names: Iterable[str]) -> None:
        """Names MCP tools must not take (the workspace's tools); renames on a new collision."""
        wanted = set(names) | RESERVED
        if wanted != self._reserved:
            self._reserved = wanted
            self._rebuild()

    def _rebuild(self) -> None:
        listed: list[tuple[str, list[str]]] = []
        kept: dict[str, list[Any]] = {}
        diags: list[ToolDiagnostic] = []
        for spec in self.specs:
            conn = self.connections.get(spec.name)
            if conn is None:
                continue
            if conn.problem and not conn.tools:
                diags.append(_diag(spec, conn.problem, "mcp-server-failed", "error"))
                continue
            tools = [t for t in conn.tools if _matches(spec.tools, t.name)]
            if not tools:
                why = (
                    "lists no tools"
                    if not conn.tools
                    else f"lists no tool matching tools = {spec.tools!r}"
                    f" (it has: {', '.join(t.name for t in conn.tools)})"
                )
                diags.append(_diag(spec, f"MCP server {spec.name!r} {why}", "mcp-no-tools"))
            kept[spec.name] = tools
            listed.append((spec.name, [t.name for t in tools]))
        names = assign_names(listed, self._reserved)
        out: dict[str, McpTool] = {}
        for spec in self.specs:
            for tool in kept.get(spec.name, []):
                py = names[(spec.name, tool.name)]
                out[py] = self._tool(spec, tool, py)
        self.tools = out
        self.diagnostics = diags

    def _tool(self, spec: ServerSpec, tool: Any, py: str) -> McpTool:
        inner = _wrapped(tool.output_schema)
        output = inner if inner is not None else tool.output_schema
        stub = build_stub(
            py,
            tool.description,
            tool.input_schema,
            output,
            server=spec.name,
            title=getattr(tool, "title", None),
        )
        if inner is not None:
            # an SDK server returning a scalar: the stub says the scalar, the call unwraps it
            head, _, _ = stub.signature.rpartition(" -> ")
            stub = stub.model_copy(update={"signature": f"{head} -> {annotation(inner)}"})
        schema = ToolSchema(
            name=py,
            module=f"mcp:{spec.name}",
            signature=stub.signature,
            doc=stub.doc,
            parameters=tool.input_schema if isinstance(tool.input_schema, dict) else {},
            returns=tool.output_schema if isinstance(tool.output_schema, dict) else None,
            confirm=_matches(spec.confirm, tool.name, py),
            file=spec.source or None,
            line=spec.line,
        )
        return McpTool(
            name=py,
            server=spec.name,
            tool=tool.name,
            params=stub.params,
            unwrap=inner is not None,
            tool_schema=schema,
        )

    # -- ToolProvider -------------------------------------------------------------------------

    def schemas(self) -> list[ToolSchema]:
        return [t.tool_schema for t in self.tools.values()]

    def serves(self, name: str) -> bool:
        return name in self.tools

    def call_sync(
        self, name: str, args: list[Any], kwargs: dict[str, Any], timeout: float | None = None
    ) -> ToolOutcome:
        began = time.perf_counter()
        tool = self.tools.get(name)
        if tool is None:
            return _failed("NameError", f"no MCP tool named {name!r}", began)
        from codeact_lsp.sandbox import codec

        try:
            # codec wire values -> JSON (tuples and sets as lists): what an MCP server takes
            plain_args = [codec.preview(a) for a in args]
            plain_kwargs = {k: codec.preview(v) for k, v in kwargs.items()}
            arguments = bind(name, tool.params, plain_args, plain_kwargs)
        except TypeError as exc:
            return _failed("TypeError", str(exc), began)
        conn = self.connections[tool.server]
        try:
            result = conn.call(tool.tool, arguments)
        except McpCallError as exc:
            out = _failed(exc.kind, str(exc), began, bound=arguments)
            out.restarted = exc.crashed
            out.timed_out = exc.kind == "TimeoutError"
            return out
        value = convert(result)
        if value.error is not None:
            return _failed("McpToolError", value.error, began, bound=arguments)
        result_value = value.value
        if tool.unwrap and isinstance(result_value, dict) and set(result_value) == {"result"}:
            result_value = result_value["result"]
        return ToolOutcome(
            ok=True,
            result=codec.encode(result_value),  # JSON is wire, except dicts with a "$" key
            bound_args=arguments,
            duration_ms=(time.perf_counter() - began) * 1000,
        )

    def cancel(self, thread: int | None = None) -> None:
        """Abandon the MCP call in flight from `thread` (its run was cancelled). The server may
        still finish it (MCP's cancel is advisory), but nobody waits for it any more."""
        for conn in self.connections.values():
            conn.cancel(thread)

    def close_sync(self) -> None:
        if self._own is not None:  # a run's view: the shared servers and the loop stay
            for conn in self._own:
                conn.close()
            return
        for conn in self.connections.values():
            conn.close()
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def status(self) -> list[dict[str, Any]]:
        """Per server: running, tools, starts, crashes, problem (for `codeact tools` and logs)."""
        return [
            {
                "name": spec.name,
                "transport": spec.transport,
                "running": (c := self.connections.get(spec.name)) is not None and c.running,
                "tools": sorted(t.name for t in self.tools.values() if t.server == spec.name),
                "starts": c.starts if c else 0,
                "crashes": c.crashes if c else 0,
                "start_ms": round(c.started_ms, 1) if c and c.started_ms else None,
                "problem": (c.problem if c else spec.problem),
            }
            for spec in self.specs
        ]


def _try_start(conn: ServerConnection) -> None:
    with contextlib.suppress(McpCallError):  # kept in conn.problem, reported as a diagnostic
        conn.ensure()


def _diag(spec: ServerSpec, message: str, code: str, severity: str = "warning") -> ToolDiagnostic:
    return ToolDiagnostic(
        file=spec.source,
        line=spec.line,
        severity="error" if severity == "error" else "warning",
        message=message,
        code=code,
        source="runtime",
    )


def _failed(
    kind: str, message: str, began: float, *, bound: dict[str, Any] | None = None
) -> ToolOutcome:
    return ToolOutcome(
        ok=False,
        error=ErrorLocation(type=kind, message=message, exception=MCP_EXCEPTIONS.get(kind)),
        bound_args=bound or {},
        duration_ms=(time.perf_counter() - began) * 1000,
    )


class CombinedTools:
    """The workspace's tool host and its MCP servers as one `ToolProvider`.

    Calls are routed per tool name: MCP tools to their server (in this process), the rest to the
    host. Everything else the editor and CLI ask of "the tools" (problem, python, restart,
    changed...) is the host's.
    """

    def __init__(
        self, host: Any, mcp: McpTools, *, owns_mcp: bool = True, owns_host: bool = True
    ) -> None:
        self.host = host
        self.mcp = mcp
        self.owns_mcp = owns_mcp  # False: the servers belong to another CombinedTools
        self.owns_host = owns_host  # False: a run's view; the host belongs to the workspace

    def on_change(self, callback: Callable[[], None]) -> None:
        """See `McpTools.on_change` (the host's own tools change through a restart)."""
        self.mcp.on_change(callback)

    def for_run(self) -> CombinedTools | None:
        """One run's view (per-run MCP servers of its own), or None when every server is shared.
        Closing the view closes only its own servers."""
        scoped = self.mcp.for_run()
        return None if scoped is None else CombinedTools(self.host, scoped, owns_host=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.host, name)

    def schemas(self) -> list[ToolSchema]:
        own = list(self.host.schemas())
        self.mcp.reserve(s.name for s in own)
        return own + self.mcp.schemas()

    @property
    def diagnostics(self) -> list[ToolDiagnostic]:
        return list(getattr(self.host, "diagnostics", []) or []) + list(self.mcp.diagnostics)

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        """Exception classes bound in the snippet: the tool modules' and the MCP ones."""
        own = getattr(self.host, "exceptions", None)
        return (list(own) if isinstance(own, list) else []) + list(self.mcp.exceptions)

    def serves(self, name: str) -> bool:
        """Is `name` answered in this process (an MCP tool) rather than by the tool host?"""
        return self.mcp.serves(name)

    def call_sync(
        self, name: str, args: list[Any], kwargs: dict[str, Any], timeout: float | None = None
    ) -> ToolOutcome:
        if self.mcp.serves(name):
            return self.mcp.call_sync(name, args, kwargs, timeout)
        if timeout is None:
            outcome: ToolOutcome = self.host.call_sync(name, args, kwargs)
            return outcome
        result: ToolOutcome = self.host.call_sync(name, args, kwargs, timeout=timeout)
        return result

    def cancel(self, thread: int | None = None) -> None:
        self.mcp.cancel(thread)
        cancel = getattr(self.host, "cancel", None)
        if callable(cancel):
            cancel(thread)

    async def close(self) -> None:
        closing = ([self.host.close()] if self.owns_host else []) + (
            [self.mcp.close()] if self.owns_mcp else []
        )
        await asyncio.gather(*closing, return_exceptions=True)

    def close_sync(self) -> None:
        closer = getattr(self.host, "close_sync", None)
        if callable(closer) and self.owns_host:
            closer()
        if self.owns_mcp:
            self.mcp.close_sync()


def has_servers(workspace: Path | str, config: CodeActConfig) -> bool:
    return bool(config.mcp) or (
        config.mcp_vscode and (Path(workspace) / ".vscode" / "mcp.json").is_file()
    )


async def with_mcp(
    host: Any, workspace: Path | str, config: CodeActConfig, *, source: str | None = None
) -> Any:
    """`host` alone when the workspace has no MCP servers, else host + MCP servers (started)."""
    if not has_servers(workspace, config):
        return host
    names = [s.name for s in host.schemas()]
    mcp = McpTools.for_workspace(workspace, config, source=source, reserved=names)
    await mcp.astart()
    return CombinedTools(host, mcp)
