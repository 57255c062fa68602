"""The CLI with MCP servers configured: `codeact tools` lists them under `mcp:<server>`, `codeact
run` calls them, and a killed process leaves no server behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcp_helpers import PY_SERVER, server_pids

CODEACT = [sys.executable, "-m", "codeact_lsp.cli"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CODEACT, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_tools_json_lists_mcp_tools_and_server_diagnostics(mcp_workspace: Path) -> None:
    ws = mcp_workspace
    toml = (ws / "codeact.toml").read_text()
    try:
        (ws / "codeact.toml").write_text(toml + '\n[mcp.broken]\ncommand = "/nonexistent/x"\n')
        proc = _run("tools", "--workspace", str(ws), "--json", cwd=ws)
    finally:
        (ws / "codeact.toml").write_text(toml)
    assert proc.returncode == 1, proc.stderr  # a server that fails is an error
    report = json.loads(proc.stdout)
    modules = {t["name"]: t["module"] for t in report["tools"]}
    assert modules["note"] == "tools"
    assert modules["inventory_note"] == "mcp:inventory"
    assert modules["get_sum"] == "mcp:everything" and modules["read_graph"] == "mcp:memory"
    broken = [d for d in report["diagnostics"] if d["code"] == "mcp-server-failed"]
    assert len(broken) == 1 and broken[0]["file"].endswith("codeact.toml")


def test_tools_table_marks_the_module(mcp_workspace: Path) -> None:
    proc = _run("tools", "--workspace", str(mcp_workspace), cwd=mcp_workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "restock [confirm] [mcp:inventory]" in proc.stdout


def test_run_calls_mcp_tools(mcp_workspace: Path, tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    snippet = "total = sum(restock('fig', n) for n in (1, 2))\nfinal_answer(stock('fig')['count'])"
    replies.write_text(json.dumps([f"```python\n{snippet}\n```"]))
    proc = _run(
        "run",
        "restock figs",
        "--workspace",
        str(mcp_workspace),
        "--model",
        f"scripted:{replies}",
        "--yes",  # restock is flagged: --yes approves the waiting step
        "--json",
        cwd=mcp_workspace,
    )
    assert proc.returncode == 0, proc.stderr
    traj = json.loads(proc.stdout)
    assert traj["outputs"] == {"answer": 3}
    assert [c["name"] for c in traj["steps"][0]["tool_calls"]] == [
        "restock",
        "restock",
        "stock",
        "final_answer",
    ]
    assert (mcp_workspace / ".codeact" / "runs" / f"{traj['id']}.json").is_file()


HOLDER = """
import sys, time
from codeact_lsp.config import load_config
from codeact_lsp.mcp import McpTools
tools = McpTools.for_workspace(sys.argv[1], load_config(sys.argv[1]).config)
tools.start()
print(tools.call_sync("pid", [], {}).result, flush=True)
time.sleep(600)
"""


def test_a_killed_owner_takes_its_servers_along(tmp_path: Path) -> None:
    own = tmp_path / "held_server.py"
    shutil.copy(PY_SERVER, own)
    (tmp_path / "codeact.toml").write_text(
        f'[mcp.held]\ncommand = "{sys.executable}"\nargs = ["{own}"]\n'
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert pid in server_pids(str(own))
        os.kill(owner.pid, signal.SIGKILL)  # no cleanup code runs in the owner
        owner.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            assert time.monotonic() < deadline, "the MCP server outlived its owner"
            time.sleep(0.05)
    finally:
        if owner.poll() is None:
            owner.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_suite_tasks_get_fresh_tools_and_share_the_servers(
    mcp_workspace: Path, tmp_path: Path
) -> None:
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps(["```python\nfinal_answer(stock('apple')['count'])\n```"]))
    suite = tmp_path / "suite.toml"
    suite.write_text(
        "".join(
            f'[[task]]\nname = "t{i}"\ntask = "apples"\nmodel = "scripted:{replies}"\nexpect = 3\n'
            for i in (1, 2)
        )
    )
    proc = _run("test", str(suite), "--workspace", str(mcp_workspace), "--json", cwd=mcp_workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)
    assert [r["passed"] for r in results] == [True, True]
    assert results[0]["tool_host_pid"] != results[1]["tool_host_pid"]  # fresh tool state
