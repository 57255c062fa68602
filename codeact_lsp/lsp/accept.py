"""Accept: the edit that puts a finished run's function into the user's file.

Where it goes and what the imports become is decided by `engine.program.placement`; this module
turns that into LSP: a versioned `TextDocumentEdit` whose hunks carry change annotations that need
confirmation, so an editor that supports them (VS Code: the Refactor Preview) shows every hunk,
the import merge included, and lets the user untick some before anything is written.

Before sending, the document is compared with the snapshot taken when the run started. If the
user changed it meanwhile, the position the run was given means something else now, so Accept
refuses and says in words what changed, offering what cannot overwrite anything instead.
"""

from __future__ import annotations

import difflib
import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp

from codeact_lsp.engine.program.imports import Edit
from codeact_lsp.engine.program.placement import Placement, place

ALTERNATIVES = ["newFile", "insertAtEnd"]  # the `mode`s a refusal offers (kept for clients)
# What a client shows as buttons after a refusal: words, and what each does.
CHOICES: list[dict[str, str]] = [
    {"label": "Insert at End", "mode": "insertAtEnd"},
    {"label": "New File", "mode": "newFile"},
    {"label": "Show Diff", "action": "showDiff"},
]
IMPORTS, FUNCTION, NEW_FILE = "codeact.imports", "codeact.function", "codeact.newFile"


@dataclass
class DocState:
    """A document as the server knows it: the client's open copy (with version) or the disk."""

    uri: str
    text: str
    version: int | None  # None: not open in the client, read from disk


@dataclass
class Hunk:
    range: lsp.Range  # in the document before the edit
    new_text: str
    annotation: str  # IMPORTS, FUNCTION or NEW_FILE


@dataclass
class Plan:
    """The edit Accept would send, or why it will not."""

    ok: bool
    uri: str
    hunks: list[Hunk] = field(default_factory=list)
    version: int | None = None
    create: bool = False
    reason: str | None = None
    document_after: str | None = None
    name: str = ""  # the function's name
    function_range: lsp.Range | None = None  # where the function is in the document after
    imports_added: int = 0

    @property
    def range(self) -> lsp.Range | None:
        """The function hunk's range (what older clients read as "the" edit)."""
        return next((h.range for h in self.hunks if h.annotation != IMPORTS), None)

    @property
    def new_text(self) -> str:
        return next((h.new_text for h in self.hunks if h.annotation != IMPORTS), "")


# -- positions (LSP columns are UTF-16 code units) -------------------------------------------


def to_range(raw: dict[str, Any] | None) -> lsp.Range | None:
    if not raw:
        return None
    s, e = raw["start"], raw["end"]
    return lsp.Range(
        lsp.Position(int(s["line"]), int(s["character"])),
        lsp.Position(int(e["line"]), int(e["character"])),
    )


def offset(text: str, pos: lsp.Position) -> int:
    """The str offset of an LSP position (clamped to the line and the document)."""
    lines = text.splitlines(keepends=True)
    if pos.line >= len(lines):
        return len(text)
    line = lines[pos.line].rstrip("\r\n")
    units = 0
    col = 0
    for ch in line:
        if units >= pos.character:
            break
        units += 2 if ord(ch) > 0xFFFF else 1
        col += 1
    return sum(len(x) for x in lines[: pos.line]) + col


def position(text: str, at: int) -> lsp.Position:
    before = text[:at]
    line = before.count("\n")
    col_text = before[before.rfind("\n") + 1 :]
    return lsp.Position(line, len(col_text.encode("utf-16-le")) // 2)


def range_text(text: str, rng: lsp.Range | None) -> str:
    if rng is None:
        return text
    return text[offset(text, rng.start) : offset(text, rng.end)]


def _span(text: str, rng: lsp.Range) -> tuple[int, int]:
    return offset(text, rng.start), offset(text, rng.end)


# -- plans ------------------------------------------------------------------------------------


def file_name(uri: str) -> str:
    return posixpath.basename(unquote(urlparse(uri).path)) or uri


def what_changed(before: str, after: str) -> str:
    """The user's edits since the run started, in words ("3 lines added, 1 line changed")."""
    a, b = before.splitlines(), after.splitlines()
    added = removed = changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "insert":
            added += j2 - j1
        elif tag == "delete":
            removed += i2 - i1
        elif tag == "replace":
            common = min(i2 - i1, j2 - j1)
            changed += common
            added += (j2 - j1) - common
            removed += (i2 - i1) - common
    parts = [
        f"{n} line{'s' if n != 1 else ''} {verb}"
        for n, verb in ((added, "added"), (removed, "removed"), (changed, "changed"))
        if n
    ]
    return ", ".join(parts) or "only whitespace at line ends changed"


def refusal(current: DocState, start_text: str | None, selection_text: str | None) -> str:
    name = file_name(current.uri)
    if start_text is not None:
        detail = what_changed(start_text, current.text)
        return (
            f"{name} was edited after the run started ({detail}), so the place the run was "
            "given may now hold your new code. Insert the function at the end of the file, put "
            "it in a new file, or look at the diff first."
        )
    return (
        f"The selected code in {name} changed after the run started, so Accept will not write "
        "over it. Insert the function at the end of the file, put it in a new file, or look at "
        "the diff first."
    )


def _plan_from(current: DocState, placement: Placement) -> Plan:
    text = current.text
    hunks = [
        Hunk(lsp.Range(position(text, e.start), position(text, e.end)), e.text, IMPORTS)
        for e in placement.imports
    ]
    f: Edit = placement.function
    hunks.append(Hunk(lsp.Range(position(text, f.start), position(text, f.end)), f.text, FUNCTION))
    after = placement.text_after
    return Plan(
        ok=True,
        uri=current.uri,
        hunks=hunks,
        version=current.version,
        document_after=after,
        name=placement.name,
        function_range=lsp.Range(position(after, placement.start), position(after, placement.end)),
        imports_added=len(placement.imports),
    )


def plan_at_target(
    program: str,
    current: DocState,
    rng: lsp.Range | None,
    start_text: str | None,
    start_range_text: str | None,
    *,
    replace: bool = False,
) -> Plan:
    """Into the target: replacing the selection (only when asked), else after the top-level
    statement at the selection's end or the cursor, else at the end; if the document is as it
    was when the run started."""
    unchanged = (
        current.text == start_text
        if start_text is not None
        else (start_range_text is None or range_text(current.text, rng) == start_range_text)
    )
    if not unchanged:
        return Plan(
            ok=False, uri=current.uri, reason=refusal(current, start_text, start_range_text)
        )
    text = current.text
    if rng is not None and replace and rng.start != rng.end:
        placement = place(text, program, replace=_span(text, rng))
    else:
        anchor = offset(text, rng.end) if rng is not None else None
        if anchor and rng is not None and rng.start != rng.end and rng.end.character == 0:
            anchor -= 1  # a selection of whole lines ends at the next line's start: not in it
        placement = place(text, program, anchor=anchor)
    return _plan_from(current, placement)


def plan_insert_at_end(program: str, current: DocState) -> Plan:
    return _plan_from(current, place(current.text, program))


def plan_new_file(program: str, uri: str) -> Plan:
    placement = place("", program)
    text = placement.text_after
    start = lsp.Position(0, 0)
    return Plan(
        ok=True,
        uri=uri,
        hunks=[Hunk(lsp.Range(start, start), text, NEW_FILE)],
        create=True,
        document_after=text,
        name=placement.name,
        function_range=lsp.Range(position(text, placement.start), position(text, placement.end)),
    )


def workspace_edit(plan: Plan, *, annotate: bool, label: str) -> lsp.WorkspaceEdit:
    """The edit; with `annotate`, each hunk needs the user's confirmation in the editor's preview."""
    assert plan.ok
    changes: list[Any] = []
    annotations: dict[str, lsp.ChangeAnnotation] | None = None
    if annotate:
        what = f"{plan.name}()" if plan.name else "the program"
        annotations = {
            FUNCTION: lsp.ChangeAnnotation(
                label=f"Insert {what}", needs_confirmation=True, description=label
            ),
            IMPORTS: lsp.ChangeAnnotation(
                label=f"Imports for {what}",
                needs_confirmation=True,
                description="merged into the file's imports",
            ),
            NEW_FILE: lsp.ChangeAnnotation(
                label=f"New file {file_name(plan.uri)}", needs_confirmation=True, description=label
            ),
        }
    if plan.create:
        changes.append(
            lsp.CreateFile(
                uri=plan.uri,
                options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=False),
                annotation_id=NEW_FILE if annotate else None,
            )
        )
    edits: list[lsp.TextEdit | lsp.AnnotatedTextEdit] = [
        lsp.AnnotatedTextEdit(range=h.range, new_text=h.new_text, annotation_id=h.annotation)
        if annotate
        else lsp.TextEdit(range=h.range, new_text=h.new_text)
        for h in plan.hunks
    ]
    changes.append(
        lsp.TextDocumentEdit(
            text_document=lsp.OptionalVersionedTextDocumentIdentifier(
                uri=plan.uri, version=None if plan.create else plan.version
            ),
            edits=edits,
        )
    )
    if annotations is not None:
        used = {h.annotation for h in plan.hunks} | ({NEW_FILE} if plan.create else set())
        annotations = {k: v for k, v in annotations.items() if k in used}
    return lsp.WorkspaceEdit(document_changes=changes, change_annotations=annotations)


def applied_message(plan: Plan) -> str:
    """The one status line after Accept: what went where."""
    what = f"{plan.name}()" if plan.name else "the program"
    where = file_name(plan.uri)
    line = plan.function_range.start.line + 1 if plan.function_range else None
    text = f"Accepted: {what} {'created in' if plan.create else 'inserted into'} {where}"
    if line is not None and not plan.create:
        text += f" at line {line}"
    if plan.imports_added:
        text += ", imports merged"
    return text + "."


def range_json(rng: lsp.Range | None) -> dict[str, Any] | None:
    if rng is None:
        return None
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }
