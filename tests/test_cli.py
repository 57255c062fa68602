"""The `codeact` command as CI and users call it: real processes, exit codes, output, run files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from codeact_lsp.cli import main
from codeact_lsp.engine import Engine
from codeact_lsp.trajectory import Trajectory

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
CLI = [sys.executable, "-m", "codeact_lsp.cli"]
QUOTE = "What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    dest = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    return dest


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CODEACT_MODEL", None)
    return env


def codeact(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeact_lsp.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )


def _replies(ws: Path, name: str, replies: list[str]) -> str:
    (ws / name).write_text(json.dumps(replies))
    return f"scripted:{name}"


def test_run_finishes_with_the_answer_and_labels_the_stand_in(ws: Path) -> None:
    out = codeact("run", QUOTE, "--model", "scripted:replies/quote.json", cwd=ws)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "76.9"
    assert "scripted stand-in" in out.stderr
    assert out.stderr.rstrip().splitlines()[-1].startswith("finished · 2 steps · ")
    runs = list((ws / ".codeact" / "runs").glob("*.json"))
    assert len(runs) == 1
    assert Trajectory.model_validate_json(runs[0].read_text()).status == "finished"


def test_run_json_prints_the_trajectory(ws: Path) -> None:
    out = codeact(
        "run", QUOTE, "-w", str(ws), "-m", "scripted:replies/quote.json", "--json", cwd=ws.parent
    )
    assert out.returncode == 0, out.stderr
    traj = Trajectory.model_validate_json(out.stdout)
    assert traj.outputs == {"answer": 76.9} and traj.scripted
    assert out.stderr == "", out.stderr  # --json is quiet


def test_run_not_finished_exits_1(ws: Path) -> None:
    model = _replies(ws, "loop.json", ["```python\nx = 1\n```"] * 3)
    out = codeact("run", "t", "--model", model, "--max-iters", "2", cwd=ws)
    assert out.returncode == 1
    assert "max_iters" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "t"], "no model configured"),
        (["run", "t", "-m", "scripted:x.json", "--signature", "bad"], "->"),
        (["run", "t", "-m", "scripted:nowhere.json"], "not found"),
        (["run", "t", "-m", "scripted:replies/quote.json", "--inputs", "[1]"], "JSON object"),
        (["test", "missing.toml"], "not found"),
        (["run", "t", "-m", "scripted:replies/quote.json", "--model-timeout", "0"], "positive"),
    ],
)
def test_usage_and_config_errors_exit_2(
    ws: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # in-process: the same `main` the console script calls, without paying for a process each
    monkeypatch.delenv("CODEACT_MODEL", raising=False)
    monkeypatch.chdir(ws)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_bad_workspace_and_missing_argument_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "t", "--workspace", "/nonexistent/dir"]) == 2
    assert "not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == 2


def test_bad_config_value_exits_2(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "codeact.toml").write_text("max_iters = -3\n")
    assert main(["run", "t", "-m", "scripted:replies/quote.json", "-w", str(ws)]) == 2
    assert "max_iters" in capsys.readouterr().err


def test_suite_passes_and_writes_junit(ws: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    out = codeact("test", "--junit", str(junit), cwd=ws)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "quote-to-germany" in out.stdout and "PASS" in out.stdout and "1/1 passed" in out.stdout
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "1" and root.get("failures") == "0"


def test_suite_failure_exits_1(ws: Path) -> None:
    (ws / "more.toml").write_text(
        '[[task]]\nname = "wrong"\ntask = "quote"\nmodel = "scripted:replies/quote.json"\n'
        "expect = 1.0\n\n"
        '[[task]]\nname = "checked"\ntask = "quote"\nmodel = "scripted:replies/quote.json"\n'
        'check = "70 < answer < 80"\n'
    )
    out = codeact("test", "more.toml", "--json", cwd=ws)
    assert out.returncode == 1
    results = {r["name"]: r for r in json.loads(out.stdout)}
    assert results["checked"]["passed"] is True
    assert results["wrong"]["passed"] is False and "expected 1.0" in results["wrong"]["message"]


def _matrix_suite(ws: Path) -> tuple[str, str]:
    """The quote task with no model of its own, a model that gets it right and one that
    answers without looking anything up."""
    (ws / "matrix.toml").write_text(f'[[task]]\nname = "quote"\ntask = "{QUOTE}"\nexpect = 76.9\n')
    bad = _replies(ws, "guess.json", ["```python\nfinal_answer(70.0)\n```"])
    return "scripted:replies/quote.json", bad


def test_suite_matrix_runs_each_model_n_times(ws: Path) -> None:
    good, bad = _matrix_suite(ws)
    out = codeact("test", "matrix.toml", "--models", f"{good},{bad}", "-n", "2", "--json", cwd=ws)
    assert out.returncode == 1, out.stderr  # one model fails the task
    cells = [(r["model"], r["repeat"], r["passed"]) for r in json.loads(out.stdout)]
    assert cells == [(good, 1, True), (good, 2, True), (bad, 1, False), (bad, 2, False)]


def test_suite_summary_junit_and_compare(ws: Path, tmp_path: Path) -> None:
    good, bad = _matrix_suite(ws)
    first, second, junit = tmp_path / "first.json", tmp_path / "second.json", tmp_path / "j.xml"
    out = codeact(
        "test", "matrix.toml", "--models", good, "-n", "2", "--summary", str(first), cwd=ws
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "quote[r2]" in out.stdout and "2/2 100%" in out.stdout
    # the same suite, now also on a model that fails it, compared with the first run
    out = codeact(
        "test", "matrix.toml", "--models", f"{good},{bad}", "-n", "2",
        "--summary", str(second), "--junit", str(junit), "--compare", str(first), cwd=ws,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"quote: fails on {bad}" in out.stdout and "expected 76.9, got 70.0" in out.stdout
    assert f"compared with {first}:" in out.stdout and f"new: {bad} overall (now 0%)" in out.stdout
    summary = json.loads(second.read_text())
    assert [(m["model"], m["passed"], m["runs"]) for m in summary["models"]] == [
        (good, 2, 2),
        (bad, 0, 2),
    ]
    assert summary["models"][0]["prompt_tokens"] > 0 and summary["models"][0]["cost_usd"] is None
    cases = [(c.get("classname"), c.get("name")) for c in ET.parse(junit).getroot()]
    assert cases == [
        (good, "quote[r1]"),
        (good, "quote[r2]"),
        (bad, "quote[r1]"),
        (bad, "quote[r2]"),
    ]
    # a --compare file that is not a summary: exit 2 before anything runs
    (tmp_path / "junk.json").write_text("[1, 2]")
    out = codeact("test", "matrix.toml", "--compare", str(tmp_path / "junk.json"), cwd=ws)
    assert out.returncode == 2 and "not a `codeact test --summary` file" in out.stderr
    assert len(list((ws / ".codeact" / "runs").glob("*.json"))) == 6


def test_tools_subcommand_lists_the_workspace_tools(ws: Path) -> None:
    out = codeact("tools", "--json", cwd=ws)
    assert out.returncode == 0, out.stderr
    assert "shipping_quote" in out.stdout


def test_killed_mid_run_leaves_a_readable_run_file(ws: Path) -> None:
    model = _replies(
        ws, "slow.json", ["```python\nprint('working')\nimport time\ntime.sleep(60)\n```"]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "codeact_lsp.cli", "run", "t", "-m", model],
        cwd=ws,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    from codeact_lsp.config import CodeActConfig
    from codeact_lsp.tools import InProcessTools

    runs_dir = ws / ".codeact" / "runs"
    engine = Engine(CodeActConfig(), InProcessTools([]), workspace=ws, runs_dir=runs_dir)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("step 1:"):  # printed once the run file has the step
                break
        else:
            raise AssertionError("the run never proposed step 1")
        (run_file,) = runs_dir.glob("*.json")
        # while the CLI lives, another process (the editor) sees the run as running
        live = engine.load(run_file.stem)
        assert live is not None and live.status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    traj = Trajectory.model_validate_json(run_file.read_text())
    assert traj.status == "running" and traj.steps and "time.sleep" in traj.steps[0].code
    # once the process is gone the run is reported as interrupted, not as forever running
    loaded = engine.load(traj.id)
    assert loaded is not None and loaded.status == "failed"
    assert "interrupted" in (loaded.error or "")


def test_review_needs_a_terminal_or_yes(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "run",
        QUOTE,
        "-w",
        str(ws),
        "-m",
        "scripted:replies/quote.json",
        "--approval",
        "review",
    ]
    assert main(base) == 2
    assert "needs a terminal" in capsys.readouterr().err
    assert main([*base, "--yes", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == "76.9"
    assert main([*base, "--yes", "--quiet", "--program"]) == 0
    program = capsys.readouterr().out
    assert program.startswith("from tools import") and "return total" in program
    assert "async def " in program and "final_answer" not in program


def test_confirm_tool_without_a_person_is_rejected_with_feedback(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _replies(
        ws,
        "reserve.json",
        ["```python\nreserve('SKU-42', 1)\n```", "```python\nfinal_answer('not reserved')\n```"],
    )
    assert main(["run", "reserve one", "-w", str(ws), "-m", model, "--json"]) == 0
    traj = Trajectory.model_validate_json(capsys.readouterr().out)
    assert traj.steps[0].status == "rejected"
    assert "non-interactive" in (traj.steps[0].feedback or "")


def test_review_on_a_terminal_approve_then_edit(ws: Path) -> None:
    """A person at a terminal (a pty): approves step 1, edits step 2 in $EDITOR."""
    import pty
    import select

    master, slave = pty.openpty()
    env = _env()
    env["EDITOR"] = 'sh -c \'printf "final_answer(item[\\"usd\\"])" > "$1"\' sh'
    proc = subprocess.Popen(
        [*CLI, "run", QUOTE, "--approval", "review", "-m", "scripted:replies/quote.json"],
        cwd=ws,
        stdin=slave,
        stderr=slave,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    os.close(slave)
    seen, answers = "", ["y\n", "e\n"]
    try:
        while answers:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no prompt; output so far:\n{seen}"
            seen += os.read(master, 4096).decode(errors="replace")
            if seen.count("run it?") > 2 - len(answers):
                os.write(master, answers.pop(0).encode())
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        os.close(master)
    assert proc.returncode == 0, seen
    assert out.strip() == "25.0"
    (run_file,) = (ws / ".codeact" / "runs").glob("*.json")
    traj = Trajectory.model_validate_json(run_file.read_text())
    assert traj.steps[1].edited and traj.steps[1].code == 'final_answer(item["usd"])'


@pytest.mark.parametrize("flag", ["--summary", "--junit"])
def test_an_output_path_that_cannot_be_written_is_a_usage_error_before_any_run(
    ws: Path, tmp_path: Path, flag: str
) -> None:
    out = codeact("test", flag, str(tmp_path / "missing" / "out.file"), cwd=ws)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"codeact: {flag}: no directory") and "Traceback" not in out.stderr
    assert not (ws / ".codeact" / "runs").exists()  # nothing ran


def test_ctrl_c_exits_130_with_what_finished_and_no_traceback(ws: Path) -> None:
    slow = ws / "replies" / "slow.json"  # a model that takes its time: the run Ctrl-C meets
    slow.write_text(json.dumps([{"reply": "```python\nfinal_answer(1)\n```", "delay": 60}]))
    (ws / "tasks.toml").write_text(
        (ws / "tasks.toml").read_text()
        + '\n[[task]]\nname = "slow"\ntask = "t"\nmodel = "scripted:replies/slow.json"\n'
        "expect = 1\n"
    )
    cli = subprocess.Popen(
        [*CLI, "test", "--jobs", "1"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(),
    )  # fmt: skip
    runs = ws / ".codeact" / "runs"
    try:

        def statuses() -> list[str]:
            found = []
            for f in runs.glob("*.json") if runs.is_dir() else []:
                with contextlib.suppress(ValueError, KeyError):  # being written
                    found.append(json.loads(f.read_text())["status"])
            return found

        while cli.poll() is None and not ("finished" in statuses() and len(statuses()) == 2):
            time.sleep(0.05)  # polling for the event (the slow run started), not a sync by time
    finally:
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    assert "Traceback" not in err and err.rstrip().splitlines()[-1] == "codeact: interrupted"
    assert "quote-to-germany" in out and "1/1 passed" in out  # the table of what finished
