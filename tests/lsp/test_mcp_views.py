"""MCP servers in the editor: a Try lens per MCP tool at its server's table in the config file,
and a diagnostic there for a server that fails to start (real server over stdio)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from .conftest import copy_quickstart, start_client, stop_client

PY_SERVER = Path(__file__).resolve().parents[1] / "fixtures" / "mcp" / "py_server.py"


async def test_try_lenses_and_failure_diagnostics_at_the_server_tables(tmp_path: Path) -> None:
    ws = copy_quickstart(tmp_path)
    pyproject = ws / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.codeact.mcp.broken]\ncommand = "/nonexistent/server"\n'
    )
    lines = pyproject.read_text().splitlines()
    carrier = lines.index("[tool.codeact.mcp.carrier]")
    broken = lines.index("[tool.codeact.mcp.broken]")
    client = await start_client(ws)
    try:
        listed = await client.command("codeact.listTools", {})  # starts the tools and servers
        assert "delivery_estimate" in {t["name"] for t in listed["tools"]}
        uri = client.open(pyproject)
        lenses = [lens for lens in await client.lenses(uri) if lens.command]
        assert [(lens.range.start.line, lens.command.title) for lens in lenses] == [
            (carrier, "▷ Try delivery_estimate")
        ]
        assert lenses[0].command.command == "codeact.tryTool"
        diags = await client.diagnostics_for(uri)
        assert [(d.range.start.line, d.code) for d in diags] == [(broken, "mcp-server-failed")]
        assert "failed to start" in diags[0].message
    finally:
        await stop_client(client)


async def test_a_server_that_changes_its_tools_refreshes_the_editor(tmp_path: Path) -> None:
    ws = copy_quickstart(tmp_path)
    pyproject = ws / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + f'\n[tool.codeact.mcp.inventory]\ncommand = "{sys.executable}"\nargs = ["{PY_SERVER}"]\n'
    )
    table = pyproject.read_text().splitlines().index("[tool.codeact.mcp.inventory]")
    client = await start_client(ws)
    try:
        listed = await client.command("codeact.listTools", {})
        assert "seat_map" not in {t["name"] for t in listed["tools"]}
        refreshes = client.lens_refreshes
        tried = await client.command(
            "codeact.tryTool", {"name": "grow", "args": {"name": "seat_map"}}
        )
        assert tried.get("result") == "added seat_map", tried
        for _ in range(400):  # the server's notification, the re-listing, then the refresh
            if client.lens_refreshes > refreshes:
                break
            await asyncio.sleep(0.05)
        assert client.lens_refreshes > refreshes
        listed = await client.command("codeact.listTools", {})
        assert "seat_map" in {t["name"] for t in listed["tools"]}
        uri = client.open(pyproject)
        titles = {
            (lens.range.start.line, lens.command.title)
            for lens in await client.lenses(uri)
            if lens.command
        }
        assert (table, "▷ Try seat_map") in titles
    finally:
        await stop_client(client)
