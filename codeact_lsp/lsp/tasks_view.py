"""Code lenses and diagnostics on the task-suite file (`tasks.toml`, `[[task]]` tables).

tomllib gives no line numbers, so the `[[task]]` headers and their `name = "…"` keys are found by a
line scan; the lens sits on the header, where a reader looks for "which task is this".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types as lsp
from pydantic import BaseModel

_HEADER = re.compile(r"^\s*\[\[\s*task\s*\]\]")
_NAME = re.compile(r"""^\s*name\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_TABLE = re.compile(r"^\s*\[")


class TaskResult(BaseModel):
    """What the editor remembers of a task's last run (from `codeact.runTasks`)."""

    name: str
    passed: bool
    duration_s: float = 0.0
    message: str = ""
    run_id: str | None = None


@dataclass(frozen=True)
class TaskLocation:
    name: str
    line: int  # 0-based line of the [[task]] header


def find_tasks(text: str) -> list[TaskLocation]:
    found: list[TaskLocation] = []
    lines = text.splitlines()
    for no, line in enumerate(lines):
        if not _HEADER.match(line):
            continue
        name = f"task-{len(found) + 1}"
        for follow in lines[no + 1 :]:
            if _TABLE.match(follow):
                break
            match = _NAME.match(follow)
            if match:
                name = match.group(1) if match.group(1) is not None else match.group(2)
                break
        found.append(TaskLocation(name=name, line=no))
    return found


def task_lenses(text: str, file: str, results: dict[str, TaskResult]) -> list[lsp.CodeLens]:
    lenses: list[lsp.CodeLens] = []
    for task in find_tasks(text):
        at = lsp.Range(lsp.Position(task.line, 0), lsp.Position(task.line, 0))
        result = results.get(task.name)
        title = "▷ Run task"
        if result is not None:
            title += f" · last {'✓' if result.passed else '✗'} {result.duration_s:.1f} s"
        lenses.append(
            lsp.CodeLens(
                range=at,
                command=lsp.Command(
                    title=title,
                    command="codeact.runTasks",
                    arguments=[{"file": file, "names": [task.name]}],
                ),
            )
        )
    return lenses


def task_diagnostics(text: str, results: dict[str, TaskResult]) -> list[lsp.Diagnostic]:
    out: list[lsp.Diagnostic] = []
    for task in find_tasks(text):
        result = results.get(task.name)
        if result is None or result.passed:
            continue
        out.append(
            lsp.Diagnostic(
                range=lsp.Range(lsp.Position(task.line, 0), lsp.Position(task.line, 10_000)),
                message=f"task `{task.name}` failed: {result.message or 'no detail'}"
                + (f" (run {result.run_id})" if result.run_id else ""),
                severity=lsp.DiagnosticSeverity.Error,
                source="codeact",
                code="task-failed",
            )
        )
    return out
