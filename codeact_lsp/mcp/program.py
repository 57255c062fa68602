"""MCP tools outside the sandbox: what an accepted program imports to call them for real.

A run's program (what Accept inserts, `codeact run --program`) replays against the real tools.
Workspace tools are imported from their modules; an MCP tool has no module, so the program binds
it with `name = mcp_tool("server", "name")`: a plain function that starts the server from the
workspace's configuration on first use (found from the current directory upwards), calls the tool
and returns what the snippet got, or raises `McpToolError` with the server's message.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeact_lsp.config import load_config
from codeact_lsp.mcp.provider import McpTools
from codeact_lsp.mcp.schema import python_name


class McpToolError(Exception):
    """An MCP tool failed (its server's message), or its server could not be reached."""


_lock = threading.Lock()
_open: dict[Path, McpTools] = {}


def find_workspace(start: Path | None = None) -> Path:
    """The nearest directory (from `start`, default the current one) whose codeact.toml or
    pyproject.toml configures MCP servers."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        has_file = (folder / "codeact.toml").is_file() or (folder / "pyproject.toml").is_file()
        if has_file and load_config(folder).config.mcp:
            return folder
    raise McpToolError(f"no codeact.toml or pyproject.toml with [mcp] servers above {here}")


def _tools(workspace: Path) -> McpTools:
    with _lock:
        tools = _open.get(workspace)
        if tools is None:
            from codeact_lsp.tools.discovery import discover

            loaded = load_config(workspace)
            taken = [t.name for t in discover(workspace, loaded.config).tools]
            tools = McpTools.for_workspace(
                workspace, loaded.config, source=loaded.source, reserved=taken
            )
            tools.start()
            _open[workspace] = tools
        return tools


def mcp_tool(server: str, name: str, *, workspace: str | Path | None = None) -> Callable[..., Any]:
    """A callable for the MCP tool the run called `name` (its Python name) on `server`."""
    where = Path(workspace).resolve() if workspace is not None else None

    def call(*args: Any, **kwargs: Any) -> Any:
        tools = _tools(where or find_workspace())
        key = _resolve(tools, server, name)
        outcome = tools.call_sync(key, list(args), dict(kwargs))
        if not outcome.ok:
            error = outcome.error
            text = f"{error.type}: {error.message}" if error else "the MCP tool failed"
            if error is not None and error.type == "TypeError":
                raise TypeError(error.message)
            raise McpToolError(text)
        return outcome.result

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"MCP tool {name!r} of server {server!r} (started on first call)."
    return call


def _resolve(tools: McpTools, server: str, name: str) -> str:
    """The provider's key for `name` of `server` (`server` as configured or as an identifier)."""

    def ours(tool: Any) -> bool:
        return server in (tool.server, python_name(tool.server))

    if name in tools.tools and ours(tools.tools[name]):
        return name
    for key, tool in tools.tools.items():
        prefixed = f"{python_name(tool.server)}_{python_name(tool.tool)}"
        if ours(tool) and name in (python_name(tool.tool), prefixed):
            return key
    known = sorted(k for k, t in tools.tools.items() if ours(t))
    problem = next((d.message for d in tools.diagnostics if f"'{server}'" in d.message), None)
    raise McpToolError(
        f"MCP server {server!r} has no tool {name!r}"
        + (f" (it has: {', '.join(known)})" if known else "")
        + (f": {problem}" if problem else "")
    )


@atexit.register
def _close_all() -> None:
    with _lock:
        for tools in _open.values():
            tools.close_sync()
        _open.clear()
