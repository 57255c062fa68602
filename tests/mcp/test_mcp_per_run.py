"""`per_run = true`: each run (with its follow-ups) gets a server of its own, closed with its
session, so one run's server state never reaches another's; the shared instance stays for the
editor's Try and for the tool list."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp_helpers import PY_SERVER, server_pids

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.mcp import CombinedTools, McpTools
from codeact_lsp.tools import ToolHost


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tools.py").write_text('def local() -> int:\n    """One."""\n    return 1\n')
    (ws / "codeact.toml").write_text(
        f'tools = ["tools.py"]\n\n[mcp.inventory]\ncommand = "{sys.executable}"\n'
        f'args = ["{PY_SERVER}"]\nper_run = true\n'
    )
    return ws


@pytest.fixture
async def engine(ws: Path, tmp_path: Path) -> AsyncIterator[tuple[Engine, McpTools]]:
    config = load_config(ws).config
    host = ToolHost.start(ws, config)
    mcp = await McpTools.for_workspace(ws, config, reserved=["local"]).astart()
    eng = Engine(config, CombinedTools(host, mcp), workspace=ws, runs_dir=tmp_path / "runs")
    yield eng, mcp
    await eng.close()
    await CombinedTools(host, mcp).close()


def _answer(traj: Any) -> int:
    assert traj.status == "finished", (traj.error, [s.error for s in traj.steps])
    return int(traj.outputs["answer"])


async def test_each_run_has_its_own_server_and_follow_ups_keep_it(
    engine: tuple[Engine, McpTools], tmp_path: Path
) -> None:
    eng, mcp = engine
    shared = mcp.call_sync("pid", [], {}).result
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["```python\nfinal_answer(pid())\n```"] * 3))
    model = f"scripted:{replies}"
    first = await (await eng.start(RunRequest(task="whose server?", model=model))).wait()
    second = await (await eng.start(RunRequest(task="whose server?", model=model))).wait()
    mine, theirs = _answer(first), _answer(second)
    assert len({shared, mine, theirs}) == 3  # the shared instance and one per run
    later = await (await eng.follow_up(first.id, "and now?")).wait()
    assert _answer(later) == mine  # a follow-up continues in its run's session: same server
    assert mcp.call_sync("pid", [], {}).result == shared
    await eng.close()  # the sessions close, and with them their servers
    alive = server_pids(str(PY_SERVER))
    assert mine not in alive and theirs not in alive and shared in alive


def test_a_run_view_closes_only_its_own_servers(ws: Path) -> None:
    tools = McpTools.for_workspace(ws, load_config(ws).config)
    tools.start()
    try:
        view = tools.for_run()
        assert view is not None and view.schemas() == tools.schemas()
        own = view.call_sync("pid", [], {}).result
        view.close_sync()
        assert own not in server_pids(str(PY_SERVER))
        assert tools.call_sync("pid", [], {}).ok  # the shared server and the loop stayed
    finally:
        tools.close_sync()
    assert server_pids(str(PY_SERVER)) == []
