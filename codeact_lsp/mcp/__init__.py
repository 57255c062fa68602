"""MCP both ways: the tools of MCP servers as CodeAct tools (`provider`), and CodeAct's sandbox as
an MCP server (`server`, the `codeact mcp` command). The SDK is imported only when a server is
actually started, so workspaces without MCP pay nothing."""

from codeact_lsp.mcp.provider import CombinedTools, McpTools, with_mcp
from codeact_lsp.mcp.servers import ServerSpec, server_specs

__all__ = ["CombinedTools", "McpTools", "ServerSpec", "server_specs", "with_mcp"]
