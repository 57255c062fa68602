"""`codeact test` on a workspace with MCP servers: each task still gets a fresh tool host for the
workspace's tools (their call log is the oracle), and the MCP tools keep working from task to
task (the servers are shared, not closed with a task's tool host)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mcp_helpers import PY_SERVER

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
