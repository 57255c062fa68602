"""The trajectory document: a plain Python file per run, `<workspace>/.codeact/runs/<run id>.py`.

Why a real file next to the engine's `<run id>.json` instead of a custom URI scheme:

- the thin client opens it with an ordinary `window/showDocument` (a `file://` URI) — no
  TextDocumentContentProvider or FileSystemProvider to write, and any LSP client (not only VS Code)
  can show it;
- it is editable like any file (a virtual document would be read-only), with Python highlighting,
  so the user can change a step's code and "Re-run from here" / "Run step" picks the edited text up
  from the open-document store (didOpen/didChange), saved or not;
- code lenses, diagnostics and hovers come through the ordinary requests for that URI (the client's
  document selector must include `**/.codeact/runs/*.py`, which a `python` language selector
  already covers);
- `.codeact/` is the tool's own directory (the engine persists runs there), never a user file, so
  "nothing is written to user files before Accept" holds.

Layout: a comment header, then one section per step opened by a marker line
`# ━━ step N ━━…`, the step's code, and its observation as `#> ` comment lines (which are not
part of the code when the section is read back). Lens and diagnostic positions are computed from
the *current* text (see `parse_sections`), so they stay on the right lines after the user edits.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from codeact_lsp.engine.store import RUNS_DIR, runs_dir
from codeact_lsp.trajectory import Step, Trajectory

STEP_MARKER = re.compile(r"^# ━━ step (\d+)\b")
ANSWER_MARKER = "# ━━ answer"
OUTPUT_PREFIX = "#> "
_RULE = "━" * 60
_MAX_OUTPUT_LINES = 8


@dataclass(frozen=True)
class StepSection:
    """Where one step sits in the document text (0-based lines, `code_end` exclusive)."""

    index: int
    header_line: int
    code_start: int
    code_end: int
    code: str


def trajectory_path(workspace: Path, run_id: str) -> Path:
    """The run's document, next to the engine's `<run id>.json`."""
    return runs_dir(workspace) / f"{run_id}.py"


def path_to_uri(path: Path) -> str:
    return path.resolve().as_uri()


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def run_id_from_uri(uri: str) -> str | None:
    """The run a trajectory document shows, or None for any other document."""
    path = uri_to_path(uri)
    if path is None or path.suffix != ".py":
        return None
    if path.parent.parts[-len(RUNS_DIR.parts) :] != RUNS_DIR.parts:
        return None
    return path.stem


def _comment(text: str, prefix: str = "# ") -> list[str]:
    return [f"{prefix}{line}".rstrip() for line in (text.splitlines() or [""])]


def _observation(step: Step) -> list[str]:
    lines: list[str] = []
    out = step.stdout.rstrip("\n")
    if out:
        out_lines = out.splitlines()
        shown = out_lines[:_MAX_OUTPUT_LINES]
        lines += [OUTPUT_PREFIX + line for line in shown]
        if len(out_lines) > len(shown):
            lines.append(f"{OUTPUT_PREFIX}… {len(out_lines) - len(shown)} more lines (hover)")
    if step.value is not None and not step.final:
        lines.append(f"{OUTPUT_PREFIX}= {step.value.splitlines()[0] if step.value else ''}")
    if step.error is not None:
        lines.append(f"{OUTPUT_PREFIX}{step.error.type}: {step.error.message.splitlines()[0]}")
    if step.status == "rejected":
        lines.append(f"{OUTPUT_PREFIX}rejected: {step.feedback or '(no feedback)'}")
    return [line.rstrip() for line in lines]


# The header says a run's status in words, as the lenses do (not the trajectory's enum names).
_STATUS_WORDS = {"awaiting_approval": "waiting for you", "max_iters": "step budget spent"}


def render(traj: Trajectory, overrides: dict[int, str] | None = None) -> str:
    """The document text for `traj`; `overrides` keeps the user's edited code of some steps."""
    overrides = overrides or {}
    model = traj.model or "(default model)"
    if traj.scripted:
        model += " — scripted replies, not a real model"
    lines = [
        f"# CodeAct run {traj.id} · {_STATUS_WORDS.get(traj.status, traj.status)} · {model}",
        *_comment(traj.task, "# task: "),
        *_lineage(traj),
        '# Edit a step\'s code, then use its "Re-run from here" (or "Run step") lens.',
        "# This file is regenerated as the run goes; edited steps keep your text. While you",
        "# have unsaved edits here it is left alone (no save conflict): save to see the rest.",
        "# pyright: reportUndefinedVariable=false",
        "",
    ]
    for step in traj.steps:
        lines.append(f"# ━━ step {step.index} {_RULE}")
        code = overrides.get(step.index, step.code)
        if code.strip():
            lines += code.rstrip("\n").splitlines()
        else:
            lines.append("# (no code in this reply: the model was told how to act)")
        lines += _observation(step)
        lines.append("")
    if traj.done:
        lines.append(f"{ANSWER_MARKER} {_RULE}")
        if traj.outputs is not None:
            lines += _comment(_short_json(traj.outputs), OUTPUT_PREFIX)
        else:
            lines += _comment(traj.error or traj.status, OUTPUT_PREFIX)
    return "\n".join(lines) + "\n"


def _lineage(traj: Trajectory) -> list[str]:
    """Where a follow-up or re-run came from (the engine's `relation` / `rerun_from` fields)."""
    if not traj.parent:
        return []
    if traj.relation == "rerun":
        return [f"# re-run of {traj.parent} from step {traj.rerun_from or '?'}"]
    if traj.relation == "follow_up":
        return [f"# follows up run {traj.parent} (same sandbox state)"]
    return [f"# from run {traj.parent}"]


def _short_json(value: object) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def parse_sections(text: str) -> list[StepSection]:
    """Find every step section in (possibly user-edited) document text."""
    lines = text.splitlines()
    headers: list[tuple[int, int]] = []
    stop = len(lines)
    for no, line in enumerate(lines):
        match = STEP_MARKER.match(line)
        if match:
            headers.append((no, int(match.group(1))))
        elif line.startswith(ANSWER_MARKER):
            stop = no
            break
    sections: list[StepSection] = []
    for pos, (header, index) in enumerate(headers):
        end = headers[pos + 1][0] if pos + 1 < len(headers) else stop
        body = lines[header + 1 : end]
        # The observation and blank lines at the end of a section are not code.
        while body and (not body[-1].strip() or body[-1].startswith(OUTPUT_PREFIX.rstrip())):
            body.pop()
        code_lines = [line for line in body if not line.startswith(OUTPUT_PREFIX.rstrip())]
        code = "\n".join(code_lines)
        if code.startswith("# (no code in this reply"):
            code = ""
        sections.append(
            StepSection(
                index=index,
                header_line=header,
                code_start=header + 1,
                code_end=header + 1 + len(body),
                code=code + "\n" if code else "",
            )
        )
    return sections


def write_atomic(path: Path, text: str) -> bool:
    """Replace `path` with `text` unless it already holds it; True when the file changed."""
    return replace_file(path, text) is not None


def replace_file(path: Path, text: str) -> str | None:
    """Replace `path` with `text` unless it already holds it; the text as written, or None.

    Editors decide whether a file changed on disk from its mtime (VS Code: in whole
    milliseconds, plus the size; vim: seconds and size) and reload an open document only then.
    Two rewrites within one timestamp tick with equal sizes — a run's last two states often are —
    would look like no change, and the editor would keep showing the older one. So every
    replacement gets a size and a millisecond mtime different from the file it replaces (a
    trailing newline is added when the sizes would be equal; the mtime is nudged forward), and
    it goes through a temporary file and `os.replace`, so a reader never sees half a file.
    """
    try:
        before = path.stat()
        old = path.read_text(encoding="utf-8")
    except OSError:
        before, old = None, None
    if old is not None and old.rstrip("\n") == text.rstrip("\n"):
        return None
    data = text.encode("utf-8")
    if before is not None and len(data) == before.st_size:
        data += b"\n"  # a blank line at the end: harmless in the view, visible to a watcher
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if before is not None:
        after = path.stat()
        floor = (before.st_mtime_ns // 1_000_000 + 1) * 1_000_000  # the next whole millisecond
        if after.st_mtime_ns < floor:
            os.utime(path, ns=(after.st_atime_ns, floor))
    return data.decode("utf-8")
