"""Code lenses and diagnostics on the task-suite file (`tasks.toml`, `[[task]]` tables).

tomllib gives no line numbers, so the `[[task]]` headers are found by the suite's own line scan
(`engine.suite.find_tasks`, the one locator); the lens sits on the header, where a reader looks for "which task is this".
"""

from __future__ import annotations

import logging
from pathlib import Path

from lsprotocol import types as lsp
from pydantic import BaseModel, ValidationError

from codeact_lsp.engine.suite import TaskLocation, TaskResult, find_tasks
from codeact_lsp.lsp.document import write_atomic

__all__ = [
    "TaskLocation",
    "TaskResult",
    "find_tasks",
    "load_results",
    "save_results",
    "task_diagnostics",
    "task_lenses",
]

log = logging.getLogger(__name__)
# The last result of each task, kept across server restarts (the lens "last ✓ 1.2 s" is what a
# user looks at when they reopen the project).
RESULTS_FILE = Path(".codeact") / "task_results.json"
RESULTS_VERSION = 2


class StoredResults(BaseModel):
    """`.codeact/task_results.json`: task name → its last result (the suite's own `TaskResult`).

    Version 1 files held a slimmer result of their own; they are not read (the lenses show no
    "last" mark until the next run), which loses nothing a run file does not still hold."""

    version: int = RESULTS_VERSION
    results: dict[str, TaskResult] = {}


def load_results(workspace: Path) -> dict[str, TaskResult]:
    """The stored results; a missing or unreadable file is no results (logged), never an error."""
    path = workspace / RESULTS_FILE
    try:
        stored = StoredResults.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValidationError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    if stored.version != RESULTS_VERSION:
        log.info("ignoring %s: results of format %s", path, stored.version)
        return {}
    return stored.results


def save_results(workspace: Path, results: dict[str, TaskResult]) -> None:
    text = StoredResults(results=results).model_dump_json(indent=1)
    try:
        write_atomic(workspace / RESULTS_FILE, text + "\n")
    except OSError as exc:
        log.warning("cannot save task results: %s", exc)


def task_lenses(text: str, file: str, results: dict[str, TaskResult]) -> list[lsp.CodeLens]:
    lenses: list[lsp.CodeLens] = []
    for task in find_tasks(text):
        at = lsp.Range(lsp.Position(task.line, 0), lsp.Position(task.line, 0))
        result = results.get(task.name)
        title = "▷ Run task"
        if result is not None:
            title += f" · last {'✓' if result.passed else '✗'} {result.duration_s:.1f} s"
            cause = result.root_error
            if not result.passed and cause is not None:
                root = cause.text()
                title += f" · {root if len(root) <= 80 else root[:77] + '...'}"
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
                related_information=_root_location(result),
            )
        )
    return out


def _root_location(result: TaskResult) -> list[lsp.DiagnosticRelatedInformation] | None:
    """The tool line that raised the root error, one click away from the task's diagnostic."""
    cause = result.root_error
    if cause is None or not cause.file or not cause.file_line:
        return None
    line = max(0, cause.file_line - 1)
    return [
        lsp.DiagnosticRelatedInformation(
            location=lsp.Location(
                uri=Path(cause.file).resolve().as_uri(),
                range=lsp.Range(lsp.Position(line, 0), lsp.Position(line, 10_000)),
            ),
            message=cause.text(),
        )
    ]
