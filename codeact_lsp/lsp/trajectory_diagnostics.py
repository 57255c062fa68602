"""Trajectory → diagnostics: the run's own problems (failed, out of steps, replay diverged) and
each step's (pre-run checks of pending or edited code, tool errors, the step's error), placed on
the step's section of the document."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from codeact_lsp.engine.checks import CheckContext, check_code
from codeact_lsp.lsp.document import StepSection, path_to_uri
from codeact_lsp.trajectory import Step, Trajectory

SOURCE = "codeact"
PENDING = frozenset({"proposed", "awaiting_approval"})
# A run's status in words (lens titles and messages), not the trajectory's enum names.
STATUS_WORDS = {
    "running": "running",
    "awaiting_approval": "waiting for you",
    "finished": "finished",
    "failed": "failed",
    "cancelled": "cancelled",
    "max_iters": "step budget spent",
}


def line_range(line: int, start: int = 0, end: int = 10_000) -> lsp.Range:
    return lsp.Range(lsp.Position(line, start), lsp.Position(line, end))


def _diag(
    rng: lsp.Range,
    message: str,
    severity: lsp.DiagnosticSeverity,
    code: str,
    related: list[lsp.DiagnosticRelatedInformation] | None = None,
) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=rng,
        message=message,
        severity=severity,
        source=SOURCE,
        code=code,
        related_information=related or None,
    )


def code_line(section: StepSection, line: int | None) -> int:
    """Document line for a 1-based line of the step's code, kept inside the section."""
    if line is None or line < 1:
        return section.code_start if section.code_end > section.code_start else section.header_line
    last = max(section.code_start, section.code_end - 1)
    return min(section.code_start + line - 1, last)


_SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "info": lsp.DiagnosticSeverity.Information,
}


def _rebuild_diagnostics(traj: Trajectory) -> list[lsp.Diagnostic]:
    rebuild = traj.rebuild
    if rebuild is None or rebuild.divergence is None:
        return []
    choice = {
        "pending": "choose: run the rest for real, or stop",
        "real": "the rest ran for real",
        "stop": "stopped",
    }.get(rebuild.choice or "", "")
    return [
        _diag(
            line_range(0),
            f"replay diverged: {rebuild.divergence.message}" + (f" — {choice}" if choice else ""),
            lsp.DiagnosticSeverity.Warning,
            "replay-diverged",
        )
    ]


def step_diagnostics(
    step: Step,
    section: StepSection,
    edited: bool,
    ctx: CheckContext | None,
    known: set[str],
    uri: str,
) -> list[lsp.Diagnostic]:
    out: list[lsp.Diagnostic] = []
    # Pre-run checks: a pending step, or a step the user edited here (what a re-run would run).
    if ctx is not None and (step.status in PENDING or edited):
        local = CheckContext(
            tools=ctx.tools,
            known_names=ctx.known_names | known,
            confirm_globs=ctx.confirm_globs,
            tools_known=ctx.tools_known,
        )
        for f in check_code(section.code, local):
            line = code_line(section, f.line)
            out.append(
                _diag(line_range(line, f.col, f.end_col), f.message, _SEVERITY[f.severity], f.code)
            )
    if edited:
        return out  # results below belong to the code as it ran, not to the edited text
    # One diagnostic per failure. A failed tool call that ended the step is one error at the call
    # line (the step's own error would repeat it), with the raising line in the tool's file as
    # related information; the traceback is in the step's hover, not repeated here.
    step_error_line = code_line(section, step.error.line) if step.error is not None else None
    merged = False
    for call in step.tool_calls:
        if not call.error:
            continue
        line = code_line(section, call.line)
        ended_step = (
            step.error is not None
            and not merged
            and line == step_error_line
            and call.error.startswith(f"{step.error.type}:")
        )
        merged = merged or ended_step
        related: list[lsp.DiagnosticRelatedInformation] = []
        detail = call.error_detail
        if detail is not None and detail.file and detail.line:
            loc = lsp.Location(
                uri=path_to_uri(Path(detail.file)),
                range=line_range(detail.line - 1),
            )
            related.append(
                lsp.DiagnosticRelatedInformation(
                    location=loc, message=f"raised here: {detail.type}: {detail.message}"
                )
            )
        out.append(
            _diag(
                line_range(line),
                f"`{call.name}` raised {call.error}"
                if ended_step
                else f"`{call.name}` raised {call.error} (caught by the step)",
                lsp.DiagnosticSeverity.Error if ended_step else lsp.DiagnosticSeverity.Warning,
                "tool-error",
                related,
            )
        )
    if step.error is not None and not merged:
        line = code_line(section, step.error.line)
        message = f"{step.error.type}: {step.error.message}"
        out.append(_diag(line_range(line), message, lsp.DiagnosticSeverity.Error, "step-error"))
    return out


def run_diagnostics(traj: Trajectory) -> list[lsp.Diagnostic]:
    """The run's own problems, on the document's first line: a failed or exhausted run, and a
    rebuild whose replay stopped matching."""
    out = _rebuild_diagnostics(traj)
    if traj.error and traj.status in {"failed", "max_iters"}:
        severity = (
            lsp.DiagnosticSeverity.Error
            if traj.status == "failed"
            else lsp.DiagnosticSeverity.Warning
        )
        out.append(
            _diag(
                line_range(0),
                f"run {STATUS_WORDS.get(traj.status, traj.status)}: {traj.error}",
                severity,
                "run-" + traj.status,
            )
        )
    return out
