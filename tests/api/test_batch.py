"""`batch()`: inputs run in parallel, results come back in input order, failures included."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from codeact_lsp.api import CodeAct, Progress

from .conftest import factorial


def test_batch_of_ten_with_one_failure(
    make_act: Callable[..., CodeAct], capsys: pytest.CaptureFixture[str]
) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "batch_factorial", max_iters=2)
    ns = [5, 3, 7, -1, 0, 1, 10, 4, 6, 2]
    results = act.batch([{"n": n} for n in ns], concurrency=4)
    assert len(results) == len(ns)
    for n, result in zip(ns, results, strict=True):
        assert result.trajectory.inputs == {"n": n}, "results are in input order"
        if n < 0:
            assert not result.ok
            assert result.status in {"failed", "max_iters"}
            assert result.error
            errors = [s.error for s in result.steps if s.error is not None]
            assert errors and "negative" in errors[0].message
        else:
            assert result.ok, result.error
            assert result.factorial == factorial(n)
    assert len({r.run_id for r in results}) == len(ns)
    # stderr is not a terminal under pytest: no progress bar noise
    assert capsys.readouterr().err == ""


def test_batch_includes_inputs_that_never_became_runs(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "batch_factorial")
    results = act.batch([{"n": 3}, {"m": 1}, {"n": 4}], concurrency=2)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and "m" in results[1].error
    assert results[0].factorial == 6 and results[2].factorial == 24


def test_progress_bar_draws_on_a_terminal_only() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", encoding="utf-8", closefd=False) as tty:
            bar = Progress(3, stream=tty)
            assert bar.enabled
            bar.advance(True)
            bar.advance(False)
            bar.advance(True)
            bar.close()
        out = ""
        while "\n" not in out:  # a pty hands the text over in pieces
            out += os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert "\r" in out
    assert "3/3" in out and "1 failed" in out
    assert out.endswith("\n") or out.endswith("\r\n")


def test_progress_bar_is_silent_off_a_terminal(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "log.txt")
    with open(path, "w", encoding="utf-8") as log:
        bar = Progress(2, stream=log)
        assert not bar.enabled
        bar.advance(True)
        bar.close()
    assert Path(path).read_text(encoding="utf-8") == ""
    assert Progress(1, stream=sys.stderr, enabled=False).enabled is False


def test_batch_draws_progress_when_stderr_is_a_terminal() -> None:
    """End to end: a script whose stderr is a real pty shows the bar; its stdout stays clean."""
    import subprocess

    from .conftest import scripted_model

    script = f"""
from codeact_lsp import CodeAct

def factorial(n: int) -> int:
    "n! for n >= 0."
    return 1 if n <= 1 else n * factorial(n - 1)

with CodeAct("n: int -> f: int", tools=[factorial], model={scripted_model("batch_factorial")!r}) as act:
    results = act.batch([{{"n": n}} for n in range(6)], concurrency=3)
print([r.f for r in results])
"""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=slave, text=True
        )
        os.close(slave)
        stdout, _ = proc.communicate(timeout=60)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the writer is gone and everything was read
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert stdout.strip() == "[1, 1, 2, 6, 24, 120]"
    text = err.decode()
    assert "6/6" in text and "\r" in text
