"""Steps that wait for a person at the terminal: approve, edit or reject, or the `--yes` approver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from codeact_lsp.engine import Decision

from codeact_lsp.cli.common import _say


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _make_approver(yes: bool, out: TextIO, *, progress: bool) -> Any:
    """--yes approves; without a terminal nobody can approve (the model is told so); on a
    terminal the progress printer asks (so the question comes after the lines before it), or
    this hook asks when there is no progress output (--json, --quiet)."""
    from codeact_lsp.engine import Decision

    async def approver(handle: Any, step: Any, confirm: list[str]) -> Decision | None:
        if yes:
            return Decision(action="approve")
        if not _interactive():
            why = f"calls {', '.join(confirm)}" if confirm else "is in review mode"
            return Decision(
                action="reject",
                feedback=f"Not approved: this step {why} and nobody can approve it in this"
                " non-interactive session. Solve the task without it.",
            )
        if progress:
            return None  # the progress printer asks, in order with what it printed
        return await _prompt_decision(step, confirm, out)

    return approver


async def _prompt_decision(step: Any, confirm: list[str], out: TextIO) -> Decision:
    from codeact_lsp.engine import Decision

    why = f" (calls {', '.join(confirm)})" if confirm else ""
    _say(f"--- step {step.index} waits for approval{why} ---\n{step.code}\n---", out)
    while True:
        try:
            answer = await _ask("run it? [y]es / [e]dit / [n]o: ")
        except EOFError:
            return Decision(action="reject", feedback="Not approved (no answer).")
        choice = answer.strip().lower()[:1]
        if choice == "y":
            return Decision(action="approve")
        if choice == "e":
            edited = await asyncio.to_thread(_edit, step.code)
            if edited is not None:
                return Decision(action="approve", code=edited)
            continue
        if choice == "n":
            try:
                feedback = await _ask("feedback for the model (optional): ")
            except EOFError:
                feedback = ""
            return Decision(action="reject", feedback=feedback.strip() or None)


async def _ask(prompt: str) -> str:
    """input() on a daemon thread: Ctrl-C cancels the run without waiting for Enter."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def settle(result: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result or "")

    def read() -> None:
        # the question goes to stderr with the progress: stdout is kept for the answer
        print(prompt, end="", file=sys.stderr, flush=True)
        try:
            line, problem = input(), None
        except (EOFError, OSError) as exc:
            line, problem = None, EOFError(str(exc))
        with contextlib.suppress(RuntimeError):  # the loop may be gone by then
            loop.call_soon_threadsafe(settle, line, problem)

    threading.Thread(target=read, name="codeact-approval-input", daemon=True).start()
    return await answer


def _edit(code: str) -> str | None:
    """Open $VISUAL/$EDITOR on the step's code; None when the editor fails."""
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".py", delete=False) as fh:
        fh.write(code)
        path = fh.name
    try:
        if subprocess.run([*shlex.split(editor), path], check=False).returncode != 0:
            return None
        return Path(path).read_text(encoding="utf-8")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
