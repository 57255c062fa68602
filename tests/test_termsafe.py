"""Terminal control sequences from a run are shown, not interpreted; pipes and --json stay exact.

The unit table covers the families (OSC clipboard/title, CSI cursor movement and erasing, the 8-bit
C1 forms, carriage return and backspace overwrites, bidi reordering); the CLI tests run the real
`codeact run` on a pseudo-terminal, with a scripted model whose code, error and answer carry them.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codeact_lsp.termsafe import for_stream, visible

ATTACKS = {
    "osc52-clipboard": "\x1b]52;c;cHduZWQ=\x07",
    "osc-title": "\x1b]0;pwned\x1b\\",
    "cursor-up-erase-line": "\x1b[1A\x1b[2K",
    "clear-screen": "\x1b[2J\x1b[H",
    "c1-csi": "\x9b2J",
    "c1-osc": "\x9d0;pwned\x9c",
    "carriage-return-overwrite": "rm -rf ~\rprint(1)",
    "backspaces": "danger\x08\x08\x08\x08\x08\x08",
    "bidi-override": "access = 'user\u202e \u2066// admin\u2069 \u2066'",
    "delete-char": "x\x7fy",
    "bell-and-nul": "\x07\x00",
}
CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} - {"\n", "\t"}
BIDI = {"\u202e", "\u2066", "\u2069"}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_control_sequences_are_made_visible(name: str) -> None:
    text = f"before {ATTACKS[name]} after\nnext\tline"
    shown = visible(text)
    assert not (set(shown) & (CONTROLS | BIDI)), repr(shown)
    assert shown.startswith("before ") and shown.endswith(" after\nnext\tline")
    assert "\\x" in shown or "\\u" in shown  # the reviewer sees that something is there


@pytest.mark.parametrize("text", ["", "plain", "é ü 日本 😀", "a\nb\tc", "C:\\path\\x41"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert visible(text) == text


def test_only_terminals_get_the_visible_form(tmp_path: Path) -> None:
    with open(tmp_path / "out.txt", "w") as fh:
        assert for_stream("\x1b[2J", fh) == "\x1b[2J"  # files and pipes: exact


# --- the real CLI ------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
CLI = [sys.executable, "-m", "codeact_lsp.cli"]
CODE = "# looks harmless\x1b[1A\x1b[2K\nraise ValueError('\\x1b]0;pwned-title\\x07bad')"
ANSWER_CODE = "final_answer('\\x1b]52;c;cHduZWQ=\\x07answer\\u202e')"
ANSWER = "\x1b]52;c;cHduZWQ=\x07answer\u202e"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    dest = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    replies = [f"```python\n{CODE}\n```", f"```python\n{ANSWER_CODE}\n```"]
    (dest / "hostile.json").write_text(json.dumps(replies))
    return dest


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CODEACT_MODEL", None)
    return env


def test_cli_on_a_terminal_shows_escapes_in_code_errors_and_answer(ws: Path) -> None:
    """Review mode on a pty: the approval prompt, the progress lines and the answer are all on
    the terminal; none of the sequences reaches it raw."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "run", "t", "--approval", "review", "-m", "scripted:hostile.json"],
        cwd=ws,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(),
    )
    os.close(slave)
    seen = b""
    answers = [b"y\n", b"y\n"]
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no output; so far:\n{seen!r}"
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if answers and seen.count(b"run it?") > 2 - len(answers):
                os.write(master, answers.pop(0))
        proc.wait(timeout=60)
    finally:
        proc.kill()
        os.close(master)
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    for raw in ("\x1b]52", "\x1b]0;", "\x1b[1A", "\x1b[2K", "\u202e", "\x07"):
        assert raw not in text, (raw, text)
    assert "\\x1b[1A\\x1b[2K" in text  # the hidden part of the step's code, in the prompt
    assert "\\x1b]0;pwned-title\\x07bad" in text  # the error
    assert "\\x1b]52;c;cHduZWQ=\\x07answer\\u202e" in text  # the answer


def test_cli_pipes_and_json_stay_exact(ws: Path) -> None:
    run = [*CLI, "run", "t", "-m", "scripted:hostile.json"]
    plain = subprocess.run(run, cwd=ws, capture_output=True, text=True, env=_env(), timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == ANSWER + "\n"  # not a terminal: the exact answer
    out = subprocess.run(
        [*run, "--json"], cwd=ws, capture_output=True, text=True, env=_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr
    traj = json.loads(out.stdout)
    assert traj["outputs"] == {"answer": ANSWER}
    assert traj["steps"][0]["code"] == CODE


def _on_a_pty(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `argv` with stdout and stderr on a pseudo-terminal; (exit code, what it showed)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=slave, stderr=slave, env=_env())
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no output; so far:\n{seen!r}"
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        proc.wait(timeout=60)
    finally:
        proc.kill()
        os.close(master)
    return proc.returncode, seen.decode("utf-8", "replace")


def test_cli_run_listing_shows_escapes_in_recorded_tasks(ws: Path) -> None:
    """A run file's task (a cloned repo's .codeact/runs is anybody's) is shown, not obeyed."""
    task = "title\x1b]0;pwned\x07 clear\x1b[2J"
    done = subprocess.run(
        [*CLI, "run", task, "-m", "scripted:hostile.json", "-q"],
        cwd=ws,
        capture_output=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    code, text = _on_a_pty([*CLI, "runs"], ws)
    assert code == 0, text
    assert "\x1b]0;" not in text and "\x1b[2J" not in text and "\x07" not in text
    assert "title\\x1b]0;pwned\\x07 clear\\x1b[2J" in text
