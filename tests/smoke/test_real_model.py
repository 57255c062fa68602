"""A handful of real-model runs through each way in: the CLI (a real `codeact` process), the
language server (over stdio, as an editor) and the Python API. Each must end as finished or
max_iters with tokens and steps recorded, what ran must be exactly what the parser took, the
views must render, and afterwards the real tools and final_answer must still answer (whatever the
model redefined), checked by re-running the run with one more step of our own."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from smoke_helpers import (
    MAX_ITERS,
    MODEL,
    STOCK,
    TOOLS,
    ModelServer,
    check_probe,
    check_trajectory,
    shadow_probe,
)

from codeact_lsp.engine.contract import redefined

TASKS = [
    "How many units of SKU-42 are in stock?",
    "What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?",
]
RUN_WAIT_S = 150.0  # a bound, never a pause: runs poll until they end
pytestmark = pytest.mark.timeout(400)  # one test: a run and its re-run, on a shared CPU


def _codeact(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}  # no key at all
    return subprocess.run(
        [sys.executable, "-m", "codeact_lsp.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=RUN_WAIT_S,
    )


def _flags(server: ModelServer) -> list[str]:
    flags = ["--model", MODEL, "--api-base", server.base]
    for key, value in server.params().items():
        if key != "api_base":
            flags += ["--model-param", f"{key}={json.dumps(value)}"]
    return flags


@pytest.mark.parametrize("task", TASKS)
def test_cli_runs_end_cleanly(model_server: ModelServer, smoke_workspace: Path, task: str) -> None:
    """`codeact run` against the local server with no API key in the environment."""
    done = _codeact("run", task, "-w", str(smoke_workspace), *_flags(model_server), "--json", "-y",
                    cwd=smoke_workspace)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 2 would be a usage/config error
    traj = json.loads(done.stdout)
    check_trajectory(traj)
    assert "Traceback" not in done.stderr
    _throughput(traj)


def test_cli_suite_runs_end_cleanly(model_server: ModelServer, smoke_workspace: Path) -> None:
    """`codeact test` with the model from the flags: every task reports, none crashes."""
    (smoke_workspace / "tasks.toml").write_text(
        '[[task]]\nname = "stock"\ntask = "How many units of SKU-42 are in stock?"\nexpect = 12\n',
        encoding="utf-8",
    )
    done = _codeact("test", "-w", str(smoke_workspace), *_flags(model_server), "--json",
                    cwd=smoke_workspace)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    (result,) = json.loads(done.stdout)
    assert result["status"] in ("finished", "max_iters"), result
    assert "Traceback" not in done.stderr


async def test_language_server_run_views_and_tools_survive(
    model_server: ModelServer, smoke_workspace: Path
) -> None:
    """The editor path: model and model_params from the settings; the trajectory document's
    lenses and diagnostics render; a re-run with one more step reaches the real tools."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from lsp.conftest import start_client, stop_client

    client = await start_client(smoke_workspace)
    try:
        client.set_configuration(
            {"model": MODEL, "modelParams": model_server.params()}, section="codeact"
        )
        started = await client.command("codeact.run", {"task": TASKS[0]})
        traj = await _until_ended(client, started["runId"])
        check_trajectory(traj)
        uri = started["trajectoryUri"]
        lenses = await client.lenses(uri)
        assert lenses, "the trajectory document shows no code lenses"
        assert all(lens.command is not None or lens.data is not None for lens in lenses)
        await client.diagnostics_for(uri)  # answers (the view renders), whatever it reports
        # the editor re-runs an existing step: the probe replaces the last one, the model's
        # earlier steps are rebuilt first (the API test below appends it after all of them)
        probe = await client.command(
            "codeact.rerun",
            {"runId": started["runId"], "step": len(traj["steps"]), "code": shadow_probe()},
        )
        check_probe(await _until_ended(client, probe["runId"]))
    finally:
        await stop_client(client)


async def _until_ended(client: Any, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_WAIT_S
    while True:
        run = await client.command("codeact.getRun", {"runId": run_id})
        if run["status"] not in ("running", "awaiting_approval"):
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} did not end: {run['status']}"
        await asyncio.sleep(0.2)


def test_python_api_run_and_rerun(model_server: ModelServer, tmp_path: Path) -> None:
    """`CodeAct(...)` with in-process tools and model_params; then the probe as a re-run."""
    from codeact_lsp.api import CodeAct

    spec = importlib.util.spec_from_file_location("smoke_tools", Path(__file__).parents[2]
                                                  / "examples" / "quickstart" / "tools.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    tools_mod = importlib.util.module_from_spec(spec)
    sys.modules["smoke_tools"] = tools_mod  # its dataclass looks its module up
    spec.loader.exec_module(tools_mod)
    tools = [getattr(tools_mod, name) for name in sorted(TOOLS - {"reserve"})]
    with CodeAct(
        "question -> answer",
        tools=tools,
        model=MODEL,
        model_params=model_server.params(),
        max_iters=MAX_ITERS,
        timeout=5,
        runs_dir=tmp_path / "runs",
    ) as act:
        result = act(question=TASKS[1])
        traj = result.trajectory.model_dump(mode="json")
        check_trajectory(traj)
        assert repr(result) and act.inspect_history(1)  # the API's views render
        shadowed = sorted({n for s in result.trajectory.steps for n in redefined(s.code, TOOLS)})
        probe = act.rerun(result, step=len(traj["steps"]) + 1, code=shadow_probe())
        check_probe(probe.trajectory.model_dump(mode="json"))
        print(f"\nsmoke api: redefined by the model: {shadowed or 'nothing'}; probe answered")
        assert probe.answer == STOCK["SKU-42"]


def _throughput(traj: dict[str, Any]) -> None:
    """Print what the real model costs here (the benchmarks report it too)."""
    steps = [s for s in traj["steps"] if s.get("model_duration_ms")]
    if not steps:
        return
    gen = sum(s["usage"]["completion_tokens"] for s in steps)
    secs = sum(s["model_duration_ms"] for s in steps) / 1000
    print(f"\nsmoke: {len(steps)} model steps, {gen} tokens out, {secs / len(steps):.1f} s/step,"
          f" {gen / secs:.0f} tok/s out (prompt included in the time)")  # fmt: skip
