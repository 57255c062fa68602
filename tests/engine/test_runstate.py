"""Review state that sticks: discarded stays discarded and accepted stays accepted across
restarts (a new engine reading the same run files), in the engine, `codeact runs` and the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from counting import fast_retry, make_workspace, real_calls
from engine_helpers import Script, code

from codeact_lsp.api import CodeAct
from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine, RunRequest, acceptance_state
from codeact_lsp.tools import ToolHost
from codeact_lsp.trajectory import Acceptance


async def test_discard_restart_list_restore_and_accept_survive(
    tmp_path: Path, script: Script
) -> None:
    ws = make_workspace(tmp_path / "ws")
    config = load_config(ws).config
    runs = tmp_path / "runs"
    host = await ToolHost.astart(ws, config)
    try:
        eng = Engine(config, host, workspace=ws, runs_dir=runs, retry=fast_retry())
        model = script([code("s = reserve('5E')\nfinal_answer(s)")])
        one = await (await eng.start(RunRequest(task="one", model=model))).wait()
        model = script([code("final_answer(2)")])
        two = await (await eng.start(RunRequest(task="two", model=model))).wait()
        assert [r.id for r in eng.list_runs()] == [one.id, two.id]
        eng.discard(one.id)
        applied = Acceptance(uri="file:///x.py", text="def book():\n    return 1\n", at=1.0)
        eng.mark_accepted(two.id, applied)
        assert [r.id for r in eng.list_runs()] == [two.id]
        await eng.close()  # writes every run file again: the discard must survive this
        assert json.loads((runs / f"{one.id}.json").read_text())["discarded_at"] is not None

        # a restart: a new engine knows the runs only from their files
        again = Engine(config, host, workspace=ws, runs_dir=runs, retry=fast_retry())
        listing = again.list_runs()
        assert [(r.id, r.accepted) for r in listing] == [(two.id, True)]
        everything = again.list_runs(include_discarded=True)
        assert [(r.id, r.discarded) for r in everything] == [(one.id, True), (two.id, False)]
        loaded = again.load(two.id)
        assert loaded is not None and loaded.accepted == applied
        again.restore(one.id)
        await again.flushed()
        assert [r.id for r in again.list_runs()] == [one.id, two.id]
        again.mark_accepted(two.id, None)  # the edit was undone: Accept is offered again
        await again.close()
        third = Engine(config, host, workspace=ws, runs_dir=runs)
        reloaded = third.load(two.id)
        assert reloaded is not None and reloaded.accepted is None
        await third.close()
    finally:
        await host.close()
    assert real_calls(ws) == [["reserve", "5E"]]  # listing and state changes call no tool


def test_acceptance_state_sees_undo_and_edits() -> None:
    acc = Acceptance(uri="file:///a.py", text="def f():\n    return 1\n")
    assert acceptance_state(acc, "import x\n\ndef f():\n    return 1\n") == "applied"
    assert acceptance_state(acc, "import x\n") == "missing"  # undone
    assert acceptance_state(acc, "def f():\n    return 2\n") == "missing"  # edited away
    assert acceptance_state(acc, None) == "missing"  # the file is gone


def test_codeact_runs_lists_discards_and_restores(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    replies = ws / "r.json"
    replies.write_text(json.dumps([code("final_answer(1)")]))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codeact_lsp.cli", *args, "-w", str(ws)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    ran = cli("run", "t", "--model", f"scripted:{replies}", "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["id"]
    assert [r["id"] for r in json.loads(cli("runs", "--json").stdout)] == [run_id]
    assert cli("runs", "--discard", run_id, "--json").stdout.strip() == "[]"
    assert json.loads(cli("runs", "--json").stdout) == []  # a new process: still discarded
    listed = json.loads(cli("runs", "--all", "--json").stdout)
    assert [(r["id"], r["discarded"]) for r in listed] == [(run_id, True)]
    assert run_id in cli("runs", "--restore", run_id).stdout
    bad = cli("runs", "--discard", "20990101-000000-nope00")
    assert bad.returncode == 2 and "no run" in bad.stderr


def test_api_runs_discard_restore_across_instances(tmp_path: Path) -> None:
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps([code("final_answer(1)"), code("final_answer(2)")]))
    runs = tmp_path / "runs"
    with CodeAct(model=f"scripted:{replies}", runs_dir=runs) as act:
        first = act(task="a")
        second = act(task="b")
        act.discard(first)
        assert [r.id for r in act.runs()] == [second.run_id]
    with CodeAct(model=f"scripted:{replies}", runs_dir=runs) as later:
        assert [r.id for r in later.runs()] == [second.run_id]
        assert [r.id for r in later.runs(include_discarded=True)] == [first.run_id, second.run_id]
        later.restore(first.run_id)
        assert [r.id for r in later.runs()] == [first.run_id, second.run_id]
