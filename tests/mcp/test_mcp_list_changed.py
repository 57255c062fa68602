"""A server that changes its tool list says so (`notifications/tools/list_changed`): the list is
read again, the next run can call the new tool, and the editor is told to refresh."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from mcp_helpers import PY_SERVER

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.mcp import CombinedTools, McpTools
from codeact_lsp.tools import ToolHost


def _ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tools.py").write_text('def local() -> int:\n    """One."""\n    return 1\n')
    (ws / "codeact.toml").write_text(
        f'tools = ["tools.py"]\n\n[mcp.inventory]\ncommand = "{sys.executable}"\n'
        f'args = ["{PY_SERVER}"]\n'
    )
    return ws


async def test_a_new_tool_reaches_the_next_run(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    config = load_config(ws).config
    mcp = await McpTools.for_workspace(ws, config, reserved=["local"]).astart()
    tools = CombinedTools(ToolHost.start(ws, config), mcp)
    changed = threading.Event()
    tools.on_change(changed.set)
    eng = Engine(config, tools, workspace=ws, runs_dir=tmp_path / "runs")
    try:
        assert "seat_map" not in {s.name for s in tools.schemas()}
        replies = tmp_path / "replies.json"
        replies.write_text(json.dumps(["```python\nfinal_answer(grow('seat_map'))\n```"]))
        first = await (await eng.start(RunRequest(task="grow", model=f"scripted:{replies}"))).wait()
        assert first.outputs == {"answer": "added seat_map"}, first.error
        assert changed.wait(20), "no tools-changed callback"
        schema = next(s for s in tools.schemas() if s.name == "seat_map")
        assert schema.module == "mcp:inventory" and "Added at run time" in schema.doc
        replies.write_text(json.dumps(["```python\nfinal_answer(seat_map())\n```"]))
        second = await (await eng.start(RunRequest(task="use", model=f"scripted:{replies}"))).wait()
        assert second.outputs == {"answer": "seat_map"}, [s.error for s in second.steps]
    finally:
        await eng.close()
        await tools.close()
