"""The tool bench: code lenses and diagnostics on the workspace's tool modules.

Pure functions of what discovery found, what the tool host reported and the last run's trajectory,
so they are tested without a server. Paths are compared resolved, because the trajectory records
the file a tool raised in as the tool host saw it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from codeact_lsp.trajectory import Step, Trajectory

SOURCE = "codeact"
_SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "info": lsp.DiagnosticSeverity.Information,
    "hint": lsp.DiagnosticSeverity.Hint,
}


@dataclass
class Raised:
    file: str
    line: int
    message: str
    step: int


@dataclass
class ToolStats:
    calls: int = 0
    errors: int = 0
    raised: list[Raised] = field(default_factory=list)


def same_file(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def tool_stats(traj: Trajectory | None) -> dict[str, ToolStats]:
    stats: dict[str, ToolStats] = {}
    if traj is None:
        return stats
    for step in traj.steps:
        _add_step(stats, step)
    return stats


class ToolStatsCache:
    """`tool_stats` of a growing run without re-reading finished steps on every request (a
    step may hold thousands of calls, and editors ask for lenses after every change)."""

    def __init__(self) -> None:
        self._run: tuple[str, int] | None = None
        self._counted = 0
        self._base: dict[str, ToolStats] = {}

    def get(self, traj: Trajectory | None) -> dict[str, ToolStats]:
        if traj is None:
            return {}
        if self._run != (traj.id, id(traj)) or self._counted > len(traj.steps):
            self._run, self._counted, self._base = (traj.id, id(traj)), 0, {}
        settled = len(traj.steps) if traj.done else max(len(traj.steps) - 1, 0)
        while self._counted < settled:
            _add_step(self._base, traj.steps[self._counted])
            self._counted += 1
        out = {name: ToolStats(e.calls, e.errors, list(e.raised)) for name, e in self._base.items()}
        for step in traj.steps[self._counted :]:
            _add_step(out, step)
        return out


def _add_step(stats: dict[str, ToolStats], step: Step) -> None:
    for call in step.tool_calls:
        if call.name == "final_answer":
            continue
        entry = stats.setdefault(call.name, ToolStats())
        entry.calls += 1
        if call.error:
            entry.errors += 1
            detail = call.error_detail
            if detail is not None and detail.file and detail.line:
                msg = f"{detail.type}: {detail.message}"
                entry.raised.append(Raised(detail.file, detail.line, msg, step.index))


def _line(n: int) -> lsp.Range:
    return lsp.Range(lsp.Position(max(n, 0), 0), lsp.Position(max(n, 0), 10_000))


def bench_lenses(
    tools: Iterable[Any], file: str, stats: dict[str, ToolStats], run_id: str | None
) -> list[lsp.CodeLens]:
    """ "Try" and last-run usage above each tool defined in `file` (DiscoveredTool-like objects)."""
    lenses: list[lsp.CodeLens] = []
    for tool in tools:
        if not same_file(getattr(tool, "file", None), file):
            continue
        at = _line(int(tool.line) - 1)
        at = lsp.Range(at.start, at.start)
        lenses.append(
            lsp.CodeLens(
                range=at,
                command=lsp.Command(
                    title="▷ Try",
                    command="codeact.tryTool",
                    arguments=[{"name": tool.name, "args": {}}],
                ),
            )
        )
        entry = stats.get(tool.name)
        if run_id is None:
            title = "no runs yet"
        elif entry is None:
            title = "not used in last run"
        else:
            title = f"used {entry.calls}× in last run · {entry.errors} error{'s' if entry.errors != 1 else ''}"
        lenses.append(
            lsp.CodeLens(
                range=at,
                command=lsp.Command(
                    title=title,
                    command="codeact.getRun" if run_id else "codeact.listTools",
                    arguments=[{"runId": run_id} if run_id else {}],
                ),
            )
        )
    return lenses


def bench_diagnostics(
    file: str,
    reported: Iterable[Any],
    traj: Trajectory | None,
    stats: dict[str, ToolStats] | None = None,
) -> list[lsp.Diagnostic]:
    """Discovery/host diagnostics for `file` (ToolDiagnostic-like) + what raised in the last run."""
    out: list[lsp.Diagnostic] = []
    seen: set[tuple[int, str]] = set()
    for d in reported:
        if not same_file(getattr(d, "file", None), file):
            continue
        line = int(getattr(d, "line", 1) or 1) - 1
        key = (line, str(d.message))
        if key in seen:
            continue
        seen.add(key)
        col = int(getattr(d, "column", 0) or 0)
        end_line = int(getattr(d, "end_line", None) or (line + 1)) - 1
        rng = lsp.Range(lsp.Position(line, col), lsp.Position(max(end_line, line), 10_000))
        out.append(
            lsp.Diagnostic(
                range=rng,
                message=str(d.message),
                severity=_SEVERITY.get(
                    str(getattr(d, "severity", "warning")), lsp.DiagnosticSeverity.Warning
                ),
                source=SOURCE,
                code=str(getattr(d, "code", "") or "") or None,
            )
        )
    if traj is not None:
        for name, entry in (stats if stats is not None else tool_stats(traj)).items():
            for raised in entry.raised:
                if not same_file(raised.file, file):
                    continue
                out.append(
                    lsp.Diagnostic(
                        range=_line(raised.line - 1),
                        message=f"{raised.message} (raised by `{name}` in run {traj.id}, step {raised.step})",
                        severity=lsp.DiagnosticSeverity.Warning,
                        source=SOURCE,
                        code="raised-in-last-run",
                    )
                )
    return out


CONFIG_FILES = frozenset({"pyproject.toml", "codeact.toml"})


def mcp_lenses(
    schemas: Iterable[Any], file: str, stats: dict[str, ToolStats], run_id: str | None
) -> list[lsp.CodeLens]:
    """ "▷ Try <tool>" with last-run usage for each MCP tool, above its server's table in the
    config file (an MCP tool has no source of its own to put a lens on)."""
    lenses: list[lsp.CodeLens] = []
    for s in schemas:
        if not str(getattr(s, "module", "")).startswith("mcp:") or not getattr(s, "line", None):
            continue
        if not same_file(getattr(s, "file", None), file):
            continue
        at = lsp.Range(lsp.Position(int(s.line) - 1, 0), lsp.Position(int(s.line) - 1, 0))
        entry = stats.get(s.name)
        if run_id is None or entry is None:
            used = ""
        else:
            used = f" · {entry.calls}× in last run, {entry.errors} error{'s' if entry.errors != 1 else ''}"
        lenses.append(
            lsp.CodeLens(
                range=at,
                command=lsp.Command(
                    title=f"▷ Try {s.name}{used}",
                    command="codeact.tryTool",
                    arguments=[{"name": s.name, "args": {}}],
                ),
            )
        )
    return lenses
