"""Task suites are isolated like unit tests: every task gets fresh tool state (its own tool host
process), at any `jobs`; shared state is an explicit opt-in. The tools' own call log is the
oracle (see counting.py). Failures lead with the first root error, then the consequence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from counting import fast_retry, make_workspace, real_calls

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine
from codeact_lsp.engine.suite import SuiteError, junit_xml, run_suite
from codeact_lsp.tools import InProcessTools, ToolHost

TASKS = 10
# every task expects a tool state nobody touched: no seat booked yet, then its own booking
STEP = "before = booked()\nseats = reserve('9Z')\nfinal_answer([len(before), len(seats)])"


def _suite_ws(root: Path) -> Path:
    ws = make_workspace(root)
    replies = ws / "replies.json"
    replies.write_text(json.dumps([f"```python\n{STEP}\n```"]))
    tables = [
        f'[[task]]\nname = "t{i:02d}"\ntask = "book seat 9Z"\nmodel = "scripted:{replies}"\n'
        "expect = [0, 1]\n"
        for i in range(TASKS)
    ]
    (ws / "tasks.toml").write_text("\n".join(tables))
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return _suite_ws(tmp_path / "suite")


async def _run(ws: Path, tmp_path: Path, **kw: object) -> list:  # type: ignore[type-arg]
    config = load_config(ws).config
    host = await ToolHost.astart(ws, config)
    eng = Engine(config, host, workspace=ws, runs_dir=tmp_path / "runs", retry=fast_retry())
    try:
        return await run_suite(eng, ws / "tasks.toml", **kw)  # type: ignore[arg-type]
    finally:
        await eng.close()
        await host.close()


@pytest.mark.parametrize("jobs", [1, 4])
async def test_every_task_gets_fresh_tool_state(ws: Path, tmp_path: Path, jobs: int) -> None:
    results = await _run(ws, tmp_path, jobs=jobs)
    assert [(r.name, r.passed, r.answer) for r in results] == [
        (f"t{i:02d}", True, [0, 1]) for i in range(TASKS)
    ], [r.message for r in results]
    # exactly one real booked() and one real reserve() per task, nothing else
    want = [["booked", None], ["reserve", "9Z"]] * TASKS
    calls = real_calls(ws)
    if jobs == 1:
        assert calls == want
    else:  # tasks side by side interleave their calls, but each made exactly its own two
        assert sorted(map(json.dumps, calls)) == sorted(map(json.dumps, want))
    pids = {r.tool_host_pid for r in results}
    assert len(pids) == TASKS and None not in pids  # a tool host process of its own, each
    assert {r.isolation for r in results} == {"fresh"}


async def test_shared_state_is_opt_in_and_runs_in_order(ws: Path, tmp_path: Path) -> None:
    results = await _run(ws, tmp_path, jobs=4, isolation="shared")
    assert [r.passed for r in results] == [True] + [False] * (TASKS - 1)
    assert len({r.tool_host_pid for r in results}) == 1
    # in file order, one at a time: each later task saw the seat booked and its booking refused
    assert real_calls(ws) == [["booked", None], ["reserve", "9Z"]] * TASKS
    second = results[1]
    assert second.root_error is not None and second.root_error.kind == "tool"
    assert second.root_error.tool == "reserve" and second.root_error.step == 1
    assert second.root_error.line == 2
    assert second.root_error.file and second.root_error.file.endswith("tools.py")
    # the message leads with the root error, then the consequence
    assert second.message.startswith(
        "tool reserve raised ValueError: seat 9Z is already booked at "
    )
    assert "(called in step 1, line 2); then: " in second.message
    assert second.message.index("already booked") < second.message.index("ran out of replies")
    failure = ET.fromstring(junit_xml(results)).findall("testcase")[1].find("failure")
    assert failure is not None and failure.get("message") == second.message
    assert "consequence: " in (failure.text or "")


async def test_fresh_isolation_needs_a_provider_that_can_be_fresh(ws: Path, tmp_path: Path) -> None:
    config = load_config(ws).config
    tools = InProcessTools([len])
    eng = Engine(config, tools, workspace=ws, runs_dir=None)
    try:
        with pytest.raises(SuiteError, match='isolation="shared"'):
            await run_suite(eng, ws / "tasks.toml")
    finally:
        await eng.close()


@pytest.mark.parametrize(("flags", "passed"), [([], TASKS), (["--shared-state"], 1)])
def test_cli_jobs_and_shared_state(ws: Path, flags: list[str], passed: int) -> None:
    junit = ws / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "codeact_lsp.cli", "test", "-w", str(ws), "--jobs", "4",
         "--junit", str(junit), "--json", *flags],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    results = json.loads(proc.stdout)
    assert sum(r["passed"] for r in results) == passed, proc.stderr
    assert proc.returncode == (0 if passed == TASKS else 1)
    assert len(real_calls(ws)) == 2 * TASKS
    root = ET.fromstring(junit.read_text())
    assert root.get("failures") == str(TASKS - passed)
    bad = subprocess.run(
        [sys.executable, "-m", "codeact_lsp.cli", "test", "-w", str(ws), "--jobs", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--jobs must be at least 1" in bad.stderr
