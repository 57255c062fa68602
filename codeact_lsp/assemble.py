"""Assembly: an engine over a set of tools, built the same way by every way in.

The language server, the CLI, the MCP server and the Python API all run agents through an
`Engine`; they differ only in where the tools come from (the workspace's tool host plus its MCP
servers, or the caller's own Python functions) and in the engine's options (approver, retry,
model factory). This module is the one place that knows how those parts fit: which Python the
tool host runs in, that MCP servers' tools join the host's, and where a workspace keeps its runs.

Everything heavy is imported inside the functions: the language server must answer `initialize`
before the engine is imported, and `CodeAct(...)` must not start MCP's SDK when it has no use
for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from codeact_lsp.config import CodeActConfig

if TYPE_CHECKING:
    from codeact_lsp.engine import Engine
    from codeact_lsp.tools.inprocess import InProcessTools
    from codeact_lsp.tools.models import ToolDiagnostic, ToolProvider

    class ServedTools(ToolProvider, Protocol):
        """The workspace's tools as a way in uses them: the tool host, plus MCP servers'."""

        @property
        def diagnostics(self) -> list[ToolDiagnostic]: ...

        @property
        def problem(self) -> str | None: ...

        @property
        def python(self) -> str: ...

        def restart(self) -> None: ...


class _WorkspaceRuns:
    """The default of `make_engine(runs_dir=...)`: the workspace's own run directory."""

    def __repr__(self) -> str:
        return "WORKSPACE_RUNS"


WORKSPACE_RUNS: Final = _WorkspaceRuns()


async def start_workspace_tools(
    workspace: Path | str,
    config: CodeActConfig,
    *,
    python: str | None = None,
    client_python: str | None = None,
) -> ServedTools:
    """The workspace's tools: its tool host (started in the workspace's Python, see
    `config.resolve_python`) and, when it has any, its MCP servers' tools served alongside.

    A broken tool module does not raise: it is a diagnostic, and a host that cannot start at all
    reports `problem` (each caller decides how loudly to say so)."""
    from codeact_lsp.mcp.provider import with_mcp
    from codeact_lsp.tools.host import ToolHost

    host = await ToolHost.astart(workspace, config, python, client_python=client_python)
    served: ServedTools = await with_mcp(host, workspace, config)
    return served


def python_tools(
    functions: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]],
    config: CodeActConfig,
    *,
    timeout: float | None = None,
    workspace: Path | str | None = None,
) -> InProcessTools:
    """The caller's own functions as tools, served from this process (the Python API).

    Built eagerly: a function that cannot be described fails here, not at the first run."""
    from codeact_lsp.tools.inprocess import InProcessTools

    return InProcessTools(functions, list(config.confirm), timeout=timeout, workspace=workspace)


def no_tools() -> InProcessTools:
    """An empty tool set, for work that needs an engine but no tool host (listing runs)."""
    from codeact_lsp.tools.inprocess import InProcessTools

    return InProcessTools([])


def make_engine(
    config: CodeActConfig,
    tools: ToolProvider,
    *,
    workspace: Path | str | None,
    runs_dir: Path | str | os.PathLike[str] | _WorkspaceRuns | None = WORKSPACE_RUNS,
    **options: Any,
) -> Engine:
    """An engine over `tools` for `workspace`, keeping its runs in the workspace's run directory
    (`.codeact/runs/`, see engine/store.py) unless `runs_dir` names another (None: not kept).

    `options` are the Engine's own keyword arguments (approver, retry, model_factory, ...)."""
    from codeact_lsp.engine import Engine
    from codeact_lsp.engine.store import runs_dir as workspace_runs_dir

    if isinstance(runs_dir, _WorkspaceRuns):
        if workspace is None:
            raise ValueError("a workspace's run directory needs a workspace")
        runs_dir = workspace_runs_dir(Path(workspace))
    kept = Path(runs_dir) if runs_dir is not None else None
    return Engine(config, tools, workspace=workspace, runs_dir=kept, **options)
