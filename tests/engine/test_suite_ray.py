"""The suite's matrix on a real Ray instance on this machine (started once for the session, by
a process of its own that the tests connect to as a cluster: `ray_address` in tests/conftest.py): the same results as a local run,
run files arriving on the driver, a worker killed mid-run retried and reported, and a cancelled
suite leaving no process behind. Two scripted models (different reply files) stand in for a
model that gets the tasks right and one that does not."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from counting import fast_retry, make_workspace

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine
from codeact_lsp.engine.matrix import MatrixSummary, summarise
from codeact_lsp.engine.suite import SuiteError, TaskResult, junit_xml, run_suite
from codeact_lsp.engine.suite_ray import run_suite_ray
from codeact_lsp.tools import ToolHost
from codeact_lsp.trajectory import Trajectory


def _model(ws: Path, name: str, code: str) -> str:
    (ws / name).write_text(json.dumps([f"```python\n{code}\n```"]))
    return f"scripted:{name}"  # relative: resolved in the workspace, on whichever node


async def test_the_matrix_on_ray_matches_the_local_run(tmp_path: Path, ray_address: str) -> None:
    ws = make_workspace(tmp_path / "ws")
    good = _model(ws, "good.json", "final_answer(price('1A'))")
    bad = _model(ws, "bad.json", "final_answer(price('1A') + 1)")
    tables = []
    for i in range(20):  # every third task takes either answer, the others only the right one
        judge = 'check = "answer in (12, 13)"' if i % 3 == 0 else "expect = 12"
        tables.append(f'[[task]]\nname = "t{i:02d}"\ntask = "the price of 1A"\n{judge}\n')
    (ws / "tasks.toml").write_text("\n".join(tables))
    config = load_config(ws).config
    arrived: list[str] = []

    ray_results = await run_suite_ray(
        config,
        ws,
        ws / "tasks.toml",
        models=[good, bad],
        repeat=2,
        address=ray_address,
        runs_dir=tmp_path / "driver-runs",
        on_result=lambda r: arrived.append(r.run_id or ""),
    )
    host = await ToolHost.astart(ws, config)
    eng = Engine(config, host, workspace=ws, runs_dir=tmp_path / "local", retry=fast_retry())
    try:
        local = await run_suite(eng, ws / "tasks.toml", models=[good, bad], repeat=2, jobs=4)
    finally:
        await eng.close()
        await host.close()

    def cells(results: list[TaskResult]) -> list[tuple[object, ...]]:
        return [(r.name, r.model, r.repeat, r.passed, r.answer, r.status, r.steps) for r in results]

    assert len(ray_results) == 80 and cells(ray_results) == cells(local)
    assert sum(r.passed for r in ray_results) == 40 + 14  # good: all 40; bad: 7 tasks x 2
    # each run file is on the driver, written as its run finished
    assert sorted(arrived) == sorted(r.run_id for r in ray_results)
    for r in ray_results:
        assert r.trajectory is not None and Path(r.trajectory).parent == tmp_path / "driver-runs"
        saved = Trajectory.model_validate_json(Path(r.trajectory).read_text())
        assert saved.id == r.run_id and saved.status == "finished" and saved.model == r.model
        assert r.attempts == 1 and r.node and r.prompt_tokens > 0
    assert len({r.tool_host_pid for r in ray_results}) == 80  # a tool host of its own, each
    # JUnit and the JSON summary are valid and say the same thing
    root = ET.fromstring(junit_xml(ray_results))
    assert (root.get("tests"), root.get("failures")) == ("80", "26")
    assert {c.get("classname") for c in root} == {m.replace(".", "_") for m in (good, bad)}
    summary = MatrixSummary.model_validate_json(summarise(ray_results).model_dump_json())
    assert [(m.model, m.passed) for m in summary.models] == [(good, 40), (bad, 14)]


CRASHY = '''

import os
import signal
from pathlib import Path

MARKS = Path({marks!r})


def crash_once(name: str) -> str:
    """Kill the process that started this tool host (the Ray worker) the first time."""
    mark = MARKS / name
    if not mark.exists():
        mark.write_text(str(os.getppid()))
        os.kill(os.getppid(), signal.SIGKILL)
    return "survived"


def crash_always() -> str:
    """Kill the Ray worker, every time."""
    os.kill(os.getppid(), signal.SIGKILL)
    return "never"


def wait_here(seconds: float) -> str:
    """Say where this runs, then take long (for cancelling)."""
    import time

    (MARKS / "waiting").write_text(f"{{os.getpid()}} {{os.getppid()}}")
    time.sleep(seconds)
    return "done"
'''


def _crashy_ws(tmp_path: Path) -> tuple[Path, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    ws = make_workspace(tmp_path / "ws")
    with (ws / "tools.py").open("a") as f:
        f.write(CRASHY.format(marks=str(marks)))
    return ws, marks


async def test_a_worker_killed_mid_run_is_retried_once_and_reported(
    tmp_path: Path, ray_address: str
) -> None:
    ws, marks = _crashy_ws(tmp_path)
    _model(ws, "flaky.json", "final_answer(crash_once('flaky'))")
    _model(ws, "doomed.json", "final_answer(crash_always())")
    (ws / "tasks.toml").write_text(
        '[[task]]\nname = "flaky"\ntask = "t"\nmodel = "scripted:flaky.json"\n'
        'expect = "survived"\n\n'
        '[[task]]\nname = "doomed"\ntask = "t"\nmodel = "scripted:doomed.json"\n'
        'expect = "never"\n'
    )
    flaky, doomed = await run_suite_ray(
        load_config(ws).config,
        ws,
        ws / "tasks.toml",
        address=ray_address,
        runs_dir=tmp_path / "runs",
    )
    killed = int((marks / "flaky").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # the first attempt's worker really died
    assert flaky.passed and flaky.attempts == 2 and flaky.answer == "survived"
    assert "retried" in flaky.message
    assert not doomed.passed and doomed.status == "error" and doomed.attempts == 2
    assert "lost twice" in doomed.message


def _session_processes(driver: int) -> set[int]:
    """The processes of the Ray instance a driver process started (its session directory is
    named after the driver's pid): other Ray instances on the machine are not counted."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    mine = re.compile(rf"/session_[0-9_-]+_{driver}(/|\s|$)")
    return {int(line.split()[0]) for line in out.splitlines() if mine.search(line)}


def _ended(pid: int, within: float = 30.0) -> bool:
    """Has `pid` exited (a zombie counts: it runs nothing)? Processes told to stop end a moment
    after the CLI does, so wait for the exit itself (pidfd readable), bounded."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if select.select([fd], [], [], within)[0]:
            return True
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    finally:
        os.close(fd)


def test_ctrl_c_cancels_the_suite_and_leaves_no_process(tmp_path: Path) -> None:
    """The CLI's own local Ray (no address): started, then stopped by Ctrl-C with every run."""
    ws, marks = _crashy_ws(tmp_path)
    _model(ws, "slow.json", "final_answer(wait_here(120))")
    tables = [
        f'[[task]]\nname = "w{i}"\ntask = "t"\nmodel = "scripted:slow.json"\nexpect = "done"\n'
        for i in range(4)
    ]
    (ws / "tasks.toml").write_text("\n".join(tables))
    env = {k: v for k, v in os.environ.items() if k != "CODEACT_MODEL"}
    cli = subprocess.Popen(
        [sys.executable, "-m", "codeact_lsp.cli", "test", "--ray", "--json", "-w", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        waiting = marks / "waiting"
        deadline = time.monotonic() + 150
        while not waiting.exists() and cli.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # polling for the event (a run is in its tool), not a sync by time
        assert waiting.exists(), cli.communicate(timeout=30)
        tool_host, worker = (int(p) for p in waiting.read_text().split())
        ray_processes = _session_processes(cli.pid)
        assert ray_processes, "the CLI's own Ray instance (gcs_server, raylet) is running"
    finally:
        cli.send_signal(signal.SIGINT)  # also when the test failed: the CLI must not linger
        _, err = cli.communicate(timeout=120)
    assert cli.returncode != 0
    for pid in (tool_host, worker, *ray_processes):  # the run's tool host, its Ray worker
        assert _ended(pid), f"process {pid} outlived the CLI"  # and the CLI's Ray instance
    assert not _session_processes(cli.pid), err
    assert not list((ws / ".codeact" / "runs").glob("*.json"))  # nothing finished, nothing faked


async def test_shared_state_is_refused_on_ray(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", '\n[suite]\nisolation = "shared"\n')
    (ws / "tasks.toml").write_text('[[task]]\nname = "a"\ntask = "t"\nexpect = 1\n')
    with pytest.raises(SuiteError, match="cannot run on Ray"):
        await run_suite_ray(load_config(ws).config, ws, ws / "tasks.toml")


def test_the_shipped_workspace_never_holds_env_files_and_user_excludes_add(tmp_path: Path) -> None:
    from codeact_lsp.engine.suite_ray import EXCLUDES, runtime_env

    env = runtime_env(tmp_path, {"excludes": ["data/"], "pip": ["requests"]})
    assert env["working_dir"] == str(tmp_path) and env["pip"] == ["requests"]
    assert env["excludes"] == [*EXCLUDES, "data/"]  # added to the defaults, not replacing them
    assert {".env", ".env.*", ".git", ".codeact"} <= set(env["excludes"])
    assert runtime_env(tmp_path, {})["excludes"] == EXCLUDES
