"""Tool commands: list the workspace's tools (schemas + diagnostics) and try one by hand."""

from __future__ import annotations

import asyncio
import difflib
from typing import TYPE_CHECKING

from pygls.exceptions import JsonRpcInternalError

from codeact_lsp.lsp.args import NoArgs, TryToolArgs
from codeact_lsp.lsp.backend import BackendError
from codeact_lsp.lsp.commands.common import CommandError
from codeact_lsp.lsp.commands.registry import command
from codeact_lsp.lsp.replies import ToolList, TryResult
from codeact_lsp.tools.models import ToolDiagnostic, ToolSchema

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState


@command("codeact.listTools")
async def list_tools(state: ServerState, args: NoArgs) -> ToolList:
    workspace = state.workspace
    workspace.require_root()
    discovery = workspace.discovery
    diagnostics: list[ToolDiagnostic] = list(discovery.diagnostics) if discovery is not None else []
    schemas: list[ToolSchema] = []
    error: str | None = None
    try:
        tools = await workspace.with_backend(lambda b: b.tool_provider())
        schemas = list(tools.schemas())
        diagnostics += workspace.backend.host_diagnostics() if workspace.backend else []
    except (BackendError, ImportError) as exc:
        error = str(exc)
    if error:
        return ToolList(tools=schemas, diagnostics=diagnostics, error=error)
    return ToolList(tools=schemas, diagnostics=diagnostics)


@command("codeact.tryTool")
async def try_tool(state: ServerState, args: TryToolArgs) -> TryResult:
    workspace = state.workspace
    workspace.require_root()
    try:
        tools = await workspace.with_backend(lambda b: b.tool_provider())
    except (BackendError, ImportError) as exc:
        raise JsonRpcInternalError(message=str(exc)) from None
    names = [s.name for s in tools.schemas()]
    if args.name not in names:
        close = difflib.get_close_matches(args.name, names, n=1)
        raise CommandError(
            f"no tool named {args.name!r}"
            + (f"; did you mean {close[0]!r}?" if close else "")
            + f" (tools: {', '.join(names) or 'none found'})"
        )
    positional = args.args if isinstance(args.args, list) else []
    keywords = args.args if isinstance(args.args, dict) else {}
    outcome = await asyncio.to_thread(tools.call_sync, args.name, positional, keywords)
    state.views.note_tried(args.name, outcome.error if not outcome.ok else None)
    if outcome.ok:
        return TryResult(
            result=outcome.shown,  # readable JSON (a tuple as a list)
            stdout=outcome.stdout,
            durationMs=outcome.duration_ms,
        )
    return TryResult(error=outcome.error, stdout=outcome.stdout, durationMs=outcome.duration_ms)
