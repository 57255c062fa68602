"""`codeact test` on a workspace with MCP servers: each task still gets a fresh tool host for the
workspace's tools (their call log is the oracle), and the MCP tools keep working from task to
task (the servers are shared, not closed with a task's tool host)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mcp_helpers import PY_SERVER, server_pids

TOOLS = '''\
"""A stateful workspace tool that logs its real calls."""

from pathlib import Path

LOG = Path(__file__).with_name("calls.log")
_count = 0


def count() -> int:
    """Count calls in this tool process."""
    global _count
    _count += 1
    with LOG.open("a", encoding="utf-8") as f:
        f.write("count\\n")
    return _count
'''


def test_fresh_workspace_tools_beside_shared_mcp_servers(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tools.py").write_text(TOOLS)
    (ws / "codeact.toml").write_text(
        f'tools = ["tools.py"]\n\n[mcp.inventory]\ncommand = "{sys.executable}"\n'
        f'args = ["{PY_SERVER}"]\n'
    )
    step = "n = count()\nleft = restock(sku='apple', count=0)\nfinal_answer([n, left])"
    replies = ws / "r.json"
    replies.write_text(json.dumps([f"```python\n{step}\n```"]))
    (ws / "tasks.toml").write_text(
        "\n".join(
            f'[[task]]\nname = "t{i}"\ntask = "t"\nmodel = "scripted:{replies}"\nexpect = [1, 3]\n'
            for i in range(3)
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "codeact_lsp.cli", "test", "-w", str(ws), "--jobs", "2", "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    results = json.loads(proc.stdout or "[]")
    assert [(r["passed"], r["answer"]) for r in results] == [(True, [1, 3])] * 3, proc.stderr + str(
        [r["message"] for r in results]
    )
    assert proc.returncode == 0
    assert len({r["tool_host_pid"] for r in results}) == 3
    assert (ws / "calls.log").read_text().splitlines() == ["count"] * 3


ROUTED = '''\
"""A workspace tool that tells which route served it, and one that raises its own class."""

import inspect


class SeatTaken(Exception):
    """The tool module's own exception class."""


def via_server() -> bool:
    """True when the call came through the server's channel (not the direct route)."""
    return any(f.function == "on_line" for f in inspect.stack())


def take() -> int:
    """Always taken."""
    raise SeatTaken("taken")
'''


async def test_suite_runs_get_per_run_servers_the_direct_route_and_tool_exceptions(
    tmp_path: Path,
) -> None:
    from codeact_lsp.config import load_config
    from codeact_lsp.engine import Engine
    from codeact_lsp.engine.suite import run_suite
    from codeact_lsp.mcp import CombinedTools, McpTools
    from codeact_lsp.tools import ToolHost

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tools.py").write_text(ROUTED)
    (ws / "codeact.toml").write_text(
        f'tools = ["tools.py"]\n\n[mcp.inventory]\ncommand = "{sys.executable}"\n'
        f'args = ["{PY_SERVER}"]\nper_run = true\n'
    )
    # the per-run server starts with 3 apples: each task restocks one and sees 4 when the
    # server is its own; the tool module's class and MCP's are caught by name
    step = (
        "left = restock(sku='apple', count=1)\n"
        "try:\n    take()\n    own = 'no raise'\nexcept SeatTaken:\n    own = 'caught'\n"
        "try:\n    stock(sku='nope')\n    mcp = 'no raise'\nexcept McpToolError:\n"
        "    mcp = 'caught'\n"
        "final_answer([left, via_server(), own, mcp, pid()])"
    )
    replies = ws / "r.json"
    replies.write_text(json.dumps([f"```python\n{step}\n```"]))
    (ws / "tasks.toml").write_text(
        "\n".join(
            f'[[task]]\nname = "t{i}"\ntask = "t"\nmodel = "scripted:{replies}"\n'
            'check = \'answer[:4] == [4, False, "caught", "caught"]\'\n'
            for i in range(3)
        )
    )
    config = load_config(ws).config
    host = await ToolHost.astart(ws, config)
    mcp = await McpTools.for_workspace(ws, config, reserved=["via_server", "take"]).astart()
    tools = CombinedTools(host, mcp)
    eng = Engine(config, tools, workspace=ws, runs_dir=tmp_path / "runs")
    try:
        results = await run_suite(eng, ws / "tasks.toml", jobs=2)
        shared = mcp.call_sync("pid", [], {}).result
        assert mcp.call_sync("stock", [], {"sku": "apple"}).result["count"] == 3
    finally:
        await eng.close()
        await tools.close()
    assert [(r.passed, r.answer[:4]) for r in results] == [
        (True, [4, False, "caught", "caught"])
    ] * 3, [r.message for r in results]
    servers = {r.answer[4] for r in results}
    assert len(servers) == 3 and shared not in servers  # a server of its own per task
    assert len({r.tool_host_pid for r in results}) == 3
    alive = server_pids(str(PY_SERVER))
    assert not servers & set(alive)  # each closed with its run
