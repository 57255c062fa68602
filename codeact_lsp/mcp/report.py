"""`codeact tools` with the workspace's MCP servers: the same report and table as the tools layer
gives, with each MCP tool listed under its module `mcp:<server>` and a server that fails to start
or lists no tools reported as a diagnostic at its table in the config file."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from codeact_lsp.config import load_config
from codeact_lsp.mcp.provider import CombinedTools, McpTools, has_servers
from codeact_lsp.tools.host import ToolHost
from codeact_lsp.tools.report import ToolsReport, collect, write_report


def collect_with_mcp(workspace: Path) -> ToolsReport:
    loaded = load_config(workspace)
    if not has_servers(workspace, loaded.config):
        return collect(workspace)
    host = ToolHost.start(workspace, loaded.config)
    mcp = McpTools.for_workspace(
        workspace,
        loaded.config,
        source=loaded.source,
        reserved=[s.name for s in host.schemas()],
    )
    try:
        mcp.start()
        report = collect(workspace, loaded.config, host=CombinedTools(host, mcp))  # type: ignore[arg-type]
    finally:
        host.close_sync()
        mcp.close_sync()
    report.config_file = loaded.source
    report.problems = loaded.problems
    return report


def tools_command(workspace: Path, as_json: bool, out: TextIO) -> int:
    """Print the report. Exit code: 0 fine, 1 a tool module (or MCP server) has errors, 2
    configuration problems."""
    return write_report(collect_with_mcp(workspace), as_json, out)
