"""`sandbox.read_paths` are relative to the workspace: a granted data folder is readable, the rest of
the workspace (with its .env) is not."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from engine_helpers import EXAMPLE, Script, code

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.tools import ToolHost


async def test_relative_read_paths_grant_a_data_folder_but_not_the_workspace(
    tmp_path: Path, script: Script
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    (ws / "data").mkdir()
    (ws / "data" / "prices.csv").write_text("sku,usd\nSKU-42,25.0\n")
    (ws / ".env").write_text("OPENAI_API_KEY=sk-canary\n")
    config = load_config(ws, {"sandbox": {"read_paths": ["data"]}}).config
    host = ToolHost.start(ws, config)
    engine = Engine(config, host, workspace=ws, runs_dir=tmp_path / "runs")
    try:
        model = script(
            [
                code(
                    f"rows = open({str(ws / 'data' / 'prices.csv')!r}).read().splitlines()\n"
                    "try:\n"
                    f"    leaked = open({str(ws / '.env')!r}).read()\n"
                    "except OSError as exc:\n"
                    "    leaked = type(exc).__name__\n"
                    "final_answer({'rows': len(rows), 'env': leaked})"
                )
            ]
        )
        handle = await engine.start(RunRequest(task="read the data", model=model))
        traj = await asyncio.wait_for(handle.wait(), timeout=30)
    finally:
        await engine.close()
        host.close_sync()
    assert traj.status == "finished", (traj.error, traj.steps and traj.steps[0].error)
    assert traj.outputs == {"answer": {"rows": 2, "env": "PermissionError"}}
    assert "sk-canary" not in traj.model_dump_json()
