"""Helpers shared by the MCP tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mcp"
MODULES = FIXTURES / "node_modules" / "@modelcontextprotocol"
EVERYTHING = MODULES / "server-everything" / "dist" / "index.js"
MEMORY = MODULES / "server-memory" / "dist" / "index.js"
PY_SERVER = FIXTURES / "py_server.py"


def _require_node() -> str:
    node = shutil.which("node")
    if node is None or not EVERYTHING.is_file() or not MEMORY.is_file():
        pytest.fail(
            "the MCP reference servers are not installed: run `npm ci` in tests/fixtures/mcp"
            " (scripts/test.sh does) with node on PATH"
        )
    return node


def servers_toml(memory_file: Path, *, extra: str = "") -> str:
    node = _require_node()
    return f"""
[mcp.everything]
command = "{node}"
args = ["{EVERYTHING}", "stdio"]

[mcp.memory]
command = "{node}"
args = ["{MEMORY}"]
env = {{ MEMORY_FILE_PATH = "{memory_file}" }}

[mcp.inventory]
command = "{sys.executable}"
args = ["{PY_SERVER}"]
confirm = ["restock"]
call_timeout = 5
{extra}
"""


def server_pids(marker: str) -> list[int]:
    """Live processes started (directly or not) by this test process whose command line names
    `marker`: how a test finds a server to kill, and checks none is left."""
    me = os.getpid()
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker not in cmd or stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        if _descends_from(int(entry.name), me):
            out.append(int(entry.name))
    return out


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(50):
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            return False
    return False
