"""The editor's "Run Task Suite" run locally: cancelling it starts no further run, and a task's
lens shows this suite's verdict, never a stale one from an earlier suite."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from .conftest import start_client, stop_client


def _tasks(ws: Path, models: list[str]) -> Path:
    suite = ws / "tasks.toml"
    suite.write_text(
        "".join(
            f'[[task]]\nname = "t{i}"\ntask = "t"\nmodel = "{m}"\nexpect = 1\n\n'
            for i, m in enumerate(models)
        )
    )
    return suite


async def test_cancelling_a_local_suite_starts_no_further_run(workspace: Path) -> None:
    slow = workspace / "replies" / "slow.json"  # a model that takes its time to answer
    slow.write_text(json.dumps([{"reply": "```python\nfinal_answer(1)\n```", "delay": 10}]))
    _tasks(workspace, ["scripted:replies/slow.json"] * 6)
    with (workspace / "pyproject.toml").open("a") as f:
        f.write("\n[tool.codeact.suite]\njobs = 1\n")
    client = await start_client(workspace)
    try:
        call = asyncio.ensure_future(client.command("codeact.runTasks", {}))

        def first_running() -> bool:
            reports = client.progress_for("codeact-tasks-")
            return any("t0: running" in str(getattr(r, "message", "")) for r in reports)

        await client.until(first_running, "the first run's start")
        (token,) = [t for t in client.progress_reports if str(t).startswith("codeact-tasks-")]
        client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
        with pytest.raises(Exception, match="cancelled after 0 of 6 runs"):
            await call
        await client.shutdown_session()
    finally:
        await stop_client(client)
    # the run in flight was cancelled; the five after it never started
    runs = sorted((workspace / ".codeact" / "runs").glob("*.json"))
    assert len(runs) == 1, runs
    assert json.loads(runs[0].read_text())["status"] == "cancelled"


async def test_a_lens_shows_this_suites_verdict(workspace: Path) -> None:
    good = workspace / "replies" / "one.json"
    good.write_text(json.dumps(["```python\nfinal_answer(1)\n```"]))
    # "scripted:" names no reply file: the run cannot start (a result with no run id)
    suite = _tasks(workspace, ["scripted:", "scripted:"])
    client = await start_client(workspace)
    try:
        first = await client.command("codeact.runTasks", {})
        assert [r["status"] for r in first["results"]] == ["error", "error"]
        _tasks(workspace, ["scripted:", "scripted:replies/one.json"])  # t1 fixed, t0 not
        second = await client.command("codeact.runTasks", {})
        assert [r["passed"] for r in second["results"]] == [False, True]
        uri = client.open(suite)
        titles = [lens.command.title for lens in await client.lenses(uri) if lens.command]
        await client.shutdown_session()
    finally:
        await stop_client(client)
    assert len(titles) == 2 and "last ✗" in titles[0] and "last ✓" in titles[1], titles
    saved = json.loads((workspace / ".codeact" / "task_results.json").read_text())
    assert saved["results"]["t1"]["passed"] is True
