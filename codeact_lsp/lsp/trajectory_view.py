"""Trajectory → what the editor shows: document text, code lenses, diagnostics, hovers.

A pure function of the trajectory (plus the document's current text, when the user edited it,
and what the static checks need), so every lens and diagnostic can be tested with a hand-built
`Trajectory` and no server. Positions come from `parse_sections` of the current text.

Lens commands are the server's own `codeact.*` commands. Their arguments leave out what only the
user can type — `task` for `codeact.followUp`, `feedback` for `codeact.reject`, `args` for
`codeact.tryTool` — so a client that wants to ask for them does so in its executeCommand
middleware; without it, Reject sends no feedback and Try calls the tool with no arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp

from codeact_lsp.engine.checks import CheckContext, defined_names
from codeact_lsp.lsp.document import StepSection, parse_sections, render
from codeact_lsp.lsp.trajectory_diagnostics import (
    STATUS_WORDS,
    code_line,
    line_range,
    run_diagnostics,
    step_diagnostics,
)
from codeact_lsp.trajectory import Step, ToolCall, Trajectory

_STEP_ICON = {
    "proposed": "…",
    "awaiting_approval": "⏸",
    "running": "⟳",
    "ok": "✓",
    "error": "✗",
    "rejected": "⊘",
    "no_code": "∅",
    "cancelled": "■",
}
_RUN_ICON = {
    "running": "⟳",
    "awaiting_approval": "⏸",
    "finished": "✓",
    "failed": "✗",
    "cancelled": "■",
    "max_iters": "⚠",
}


@dataclass
class Hover:
    range: lsp.Range
    markdown: str


@dataclass
class TrajectoryView:
    text: str
    sections: list[StepSection]
    lenses: list[lsp.CodeLens] = field(default_factory=list)
    diagnostics: list[lsp.Diagnostic] = field(default_factory=list)
    steps: dict[int, Step] = field(default_factory=dict)

    def hovers(self) -> list[Hover]:
        """Every hover (tests and tools); the server asks `hover_at` for one position."""
        out: list[Hover] = []
        for section in self.sections:
            step = self.steps.get(section.index)
            if step is not None:
                out += _step_hovers(step, section)
        return out

    def hover_at(self, line: int, character: int) -> Hover | None:
        """Built on demand for the step under the cursor: a step can hold thousands of calls."""
        section = next(
            (
                s
                for s in self.sections
                if s.header_line <= line < max(s.code_end, s.header_line + 1)
            ),
            None,
        )
        step = self.steps.get(section.index) if section is not None else None
        if section is None or step is None:
            return None
        best: Hover | None = None
        for hover in _step_hovers(step, section):
            r = hover.range
            if not r.start.line <= line <= r.end.line:
                continue
            if r.start.line == r.end.line and not r.start.character <= character <= r.end.character:
                continue
            # The narrowest range wins: a tool call inside a step beats the whole step.
            if best is None or _span(r) < _span(best.range):
                best = hover
        return best


def _span(r: lsp.Range) -> tuple[int, int]:
    return (r.end.line - r.start.line, r.end.character - r.start.character)


def _cmd(title: str, command: str, **args: object) -> lsp.Command:
    return lsp.Command(title=title, command=command, arguments=[args])


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def normalise_code(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines())


def step_summary(step: Step) -> str:
    icon = _STEP_ICON.get(step.status, "?")
    parts = [f"{icon} step {step.index}"]
    # final_answer is how a step ends, not a tool the user wrote: it is not counted.
    tool_calls = [c for c in step.tool_calls if c.name != "final_answer"]
    if tool_calls:
        errors = sum(1 for c in tool_calls if c.error)
        calls = f"{len(tool_calls)} tool call{'s' if len(tool_calls) != 1 else ''}"
        parts.append(calls + (f" ({errors} failed)" if errors else ""))
    if step.duration_ms:
        parts.append(_fmt_ms(step.duration_ms))
    tokens = step.usage.prompt_tokens + step.usage.completion_tokens
    if tokens:
        parts.append(f"{tokens} tok")
    if step.status == "awaiting_approval":
        parts.append("waiting for you")
    if step.edited:
        parts.append("edited")
    if step.reexecuted:
        parts.append("ran again for real")
    elif step.replayed:
        parts.append("replayed: tool calls answered from the record")
    if step.state_lost:
        parts.append("sandbox restarted")
    return " · ".join(parts)


def run_summary(traj: Trajectory) -> str:
    icon = _RUN_ICON.get(traj.status, "?")
    tokens = traj.usage.prompt_tokens + traj.usage.completion_tokens
    parts = [
        f"{icon} {STATUS_WORDS.get(traj.status, traj.status)}",
        f"{len(traj.steps)} step{'s' if len(traj.steps) != 1 else ''}",
    ]
    if tokens:
        parts.append(f"{tokens} tok")
    if traj.usage.cost_usd is not None:
        parts.append(f"${traj.usage.cost_usd:.4f}")
    if traj.scripted:
        parts.append("scripted")
    return " · ".join(parts)


def build_view(
    traj: Trajectory,
    text: str | None = None,
    ctx: CheckContext | None = None,
    *,
    uri: str = "",
    accepted: str | bool | None = None,
    paused: bool = False,
) -> TrajectoryView:
    """Everything the editor shows for `traj`; `text` is the open document's text if any.

    `paused`: the user has unsaved edits in the document, so the server stopped rewriting it;
    the lenses and diagnostics still follow the run, placed on the user's text. `accepted`:
    "applied" (the accepted program is still where Accept put it), "missing" (undone or edited
    away: Accept is offered again), None (not accepted); True means "applied".
    """
    doc = render(traj) if text is None else text
    sections = parse_sections(doc)
    view = TrajectoryView(text=doc, sections=sections)
    by_index = {s.index: s for s in sections}
    state = "applied" if accepted is True else (accepted or None)
    view.lenses += _run_lenses(traj, state)
    view.lenses += _rebuild_lenses(traj)
    view.diagnostics += run_diagnostics(traj)
    if paused:
        view.lenses.append(
            _paused_lens(traj, sum(1 for s in traj.steps if s.index not in by_index))
        )
    known: set[str] = set()
    for step in traj.steps:
        section = by_index.get(step.index)
        if section is None:
            continue
        edited = normalise_code(section.code) != normalise_code(step.code)
        view.lenses += _step_lenses(traj, step, section, edited)
        view.diagnostics += step_diagnostics(step, section, edited, ctx, known, uri)
        view.steps[step.index] = step
        if step.status == "ok":
            known |= defined_names(step.code)
    return view


def _paused_lens(traj: Trajectory, unseen: int) -> lsp.CodeLens:
    title = "⏸ live view paused: you have unsaved edits here — save or revert to resume"
    if unseen:
        title += f" ({unseen} newer step{'s' if unseen != 1 else ''} not shown yet)"
    return lsp.CodeLens(
        range=line_range(0, 0, 0), command=_cmd(title, "codeact.getRun", runId=traj.id)
    )


def _run_lenses(traj: Trajectory, accepted: str | None) -> list[lsp.CodeLens]:
    top = line_range(0, 0, 0)
    lenses = [
        lsp.CodeLens(range=top, command=_cmd(run_summary(traj), "codeact.getRun", runId=traj.id))
    ]
    if not traj.done:
        lenses.append(
            lsp.CodeLens(range=top, command=_cmd("■ Cancel", "codeact.cancel", runId=traj.id))
        )
        return lenses
    if traj.status == "finished" and accepted != "applied":
        title = "✔ Accept" if accepted is None else "✔ Accept again"
        lenses.append(lsp.CodeLens(range=top, command=_cmd(title, "codeact.accept", runId=traj.id)))
        lenses.append(
            lsp.CodeLens(range=top, command=_cmd("Preview", "codeact.acceptPreview", runId=traj.id))
        )
    if traj.status == "max_iters":
        # a follow-up in the same sandbox gets the run's step budget again
        n = traj.max_iters
        title = f"⏩ Continue ({n} more step{'s' if n != 1 else ''})"
        lenses.append(
            lsp.CodeLens(
                range=top,
                command=_cmd(title, "codeact.followUp", runId=traj.id, task=continue_task(traj)),
            )
        )
    if accepted is not None:
        lenses.append(
            lsp.CodeLens(
                range=top,
                command=_cmd(_accepted_title(traj, accepted), "codeact.getRun", runId=traj.id),
            )
        )
    lenses.append(
        lsp.CodeLens(range=top, command=_cmd("🗑 Discard", "codeact.discard", runId=traj.id))
    )
    lenses.append(
        lsp.CodeLens(range=top, command=_cmd("↪ Follow up", "codeact.followUp", runId=traj.id))
    )
    return lenses


def continue_task(traj: Trajectory) -> str:
    """The follow-up task of "Continue" after the step budget ran out."""
    task = traj.task.removeprefix("Continue: ")
    return f"Continue: {task}"


def _accepted_title(traj: Trajectory, state: str) -> str:
    acc = traj.accepted
    where = Path(acc.uri.removeprefix("file://")).name if acc is not None else "its target"
    line = ""
    if acc is not None and acc.range:
        line = f":{int(acc.range.get('start', {}).get('line', 0)) + 1}"
    if state == "applied":
        return f"accepted into {where}{line}"
    return f"accepted into {where}, but that text is no longer there (undone or edited)"


def _rebuild_lenses(traj: Trajectory) -> list[lsp.CodeLens]:
    """How a follow-up / re-run got its earlier state, and the choice after a divergence."""
    rebuild = traj.rebuild
    if rebuild is None:
        return []
    top = line_range(0, 0, 0)
    if rebuild.session == "live":
        title = "continues the live session"
    elif rebuild.session == "rebuilt":
        how = (
            "tool calls answered from the record"
            if rebuild.mode == "recorded"
            else "earlier steps run again for real"
        )
        title = f"state rebuilt ({how}): {rebuild.reason}"
    else:
        return []
    lenses = [lsp.CodeLens(range=top, command=_cmd(title, "codeact.getRun", runId=traj.id))]
    waiting_here = any(s.status == "awaiting_approval" for s in traj.steps)
    if rebuild.choice == "pending" and traj.status == "awaiting_approval" and not waiting_here:
        lenses.append(
            lsp.CodeLens(
                range=top,
                command=_cmd("▶ Run the rest for real", "codeact.approve", runId=traj.id),
            )
        )
        lenses.append(
            lsp.CodeLens(range=top, command=_cmd("■ Stop", "codeact.reject", runId=traj.id))
        )
    return lenses


def _step_lenses(
    traj: Trajectory, step: Step, section: StepSection, edited: bool
) -> list[lsp.CodeLens]:
    at = line_range(section.header_line, 0, 0)
    title = step_summary(step) + (" · edited here" if edited and not step.edited else "")
    lenses = [
        lsp.CodeLens(
            range=at, command=_cmd(title, "codeact.showStep", runId=traj.id, step=step.index)
        )
    ]
    if step.status == "awaiting_approval" and traj.status == "awaiting_approval":
        diverged = step.replayed and traj.rebuild is not None and traj.rebuild.choice == "pending"
        run, stop = (
            ("▶ Run the rest for real", "■ Stop") if diverged else ("▶ Run step", "✗ Reject")
        )
        lenses.append(lsp.CodeLens(range=at, command=_cmd(run, "codeact.approve", runId=traj.id)))
        lenses.append(lsp.CodeLens(range=at, command=_cmd(stop, "codeact.reject", runId=traj.id)))
    elif traj.done or step.status in {"ok", "error", "rejected", "no_code"}:
        title = "↻ Re-run from here" + (" (your edit)" if edited else "")
        if traj.done:
            lenses.append(
                lsp.CodeLens(
                    range=at, command=_cmd(title, "codeact.rerun", runId=traj.id, step=step.index)
                )
            )
    return lenses


def _tool_call_md(call: ToolCall) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in call.args.items())
    head = f"`{call.name}({args})` · {_fmt_ms(call.duration_ms)}"
    if call.error:
        body = f"**error** `{call.error}`"
        if call.error_detail and call.error_detail.file:
            body += f" — raised at {call.error_detail.file}:{call.error_detail.line}"
    else:
        body = f"→ `{call.result!r}`"
    out = f"{head}\n\n{body}"
    if call.stdout:
        out += f"\n\n```text\n{call.stdout.rstrip()}\n```"
    return out


def step_markdown(step: Step) -> str:
    parts = [f"**{step_summary(step)}**"]
    if step.stdout:
        parts.append(f"stdout:\n```text\n{step.stdout.rstrip()[-4000:]}\n```")
    if step.stderr:
        parts.append(f"stderr:\n```text\n{step.stderr.rstrip()[-2000:]}\n```")
    if step.value is not None:
        parts.append(f"value: `{step.value[:500]}`")
    if step.error is not None:
        parts.append(f"**{step.error.type}**: {step.error.message}")
        if step.error.traceback:
            parts.append(f"```text\n{step.error.traceback.rstrip()[-2000:]}\n```")
    if step.feedback:
        parts.append(f"rejected: {step.feedback}")
    for call in step.tool_calls:
        parts.append(_tool_call_md(call))
    return "\n\n".join(parts)


def _step_hovers(step: Step, section: StepSection) -> list[Hover]:
    end = max(section.code_end - 1, section.header_line)
    hovers = [
        Hover(
            range=lsp.Range(lsp.Position(section.header_line, 0), lsp.Position(end, 10_000)),
            markdown=step_markdown(step),
        )
    ]
    code_lines = section.code.splitlines()
    for call in step.tool_calls:
        if call.line is None:
            continue
        line = code_line(section, call.line)
        text = code_lines[call.line - 1] if 0 < call.line <= len(code_lines) else ""
        col = text.find(call.name)
        start, stop = (col, col + len(call.name)) if col >= 0 else (0, len(text))
        hovers.append(Hover(range=line_range(line, start, stop), markdown=_tool_call_md(call)))
    return hovers
