"""Real MCP servers for the tests: the npm reference servers (installed by scripts/test.sh with
`npm ci` in tests/fixtures/mcp) run with node, and a Python server built with the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_helpers import servers_toml

from codeact_lsp.config import load_config
from codeact_lsp.mcp import McpTools


@pytest.fixture(scope="module")
def mcp_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("mcpws")
    (ws / "tools.py").write_text(
        '"""Workspace tools next to the MCP servers."""\n\n\n'
        "def note(text: str) -> str:\n"
        '    """A workspace tool whose name an MCP tool also wants."""\n'
        '    return "workspace: " + text\n'
    )
    (ws / "codeact.toml").write_text(servers_toml(ws / "memory.jsonl"))
    return ws


@pytest.fixture(scope="module")
def mcp_tools(mcp_workspace: Path) -> Iterator[McpTools]:
    loaded = load_config(mcp_workspace)
    assert not loaded.problems, loaded.problems
    tools = McpTools.for_workspace(mcp_workspace, loaded.config, reserved=["note"])
    tools.start()
    yield tools
    tools.close_sync()
