"""Accept: put a finished run's program at its target without overwriting the user's changes.

The edit is a versioned `TextDocumentEdit` (the client refuses it if the document moved on), and
before sending it the server itself compares the document with the snapshot taken when the run
started: if the user changed it meanwhile, Accept refuses and names the alternatives that cannot
overwrite anything (a new file, or inserting at the end) instead of guessing where the text went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

ALTERNATIVES = ["newFile", "insertAtEnd"]


@dataclass
class DocState:
    """A document as the server knows it: the client's open copy (with version) or the disk."""

    uri: str
    text: str
    version: int | None  # None: not open in the client, read from disk


@dataclass
class Plan:
    """The edit Accept would send, or why it will not."""

    ok: bool
    uri: str
    range: lsp.Range | None = None
    new_text: str = ""  # the text inserted
    version: int | None = None
    create: bool = False
    reason: str | None = None
    document_after: str | None = None  # the whole document after the edit (for a diff)


def to_range(raw: dict[str, Any] | None) -> lsp.Range | None:
    if not raw:
        return None
    s, e = raw["start"], raw["end"]
    return lsp.Range(
        lsp.Position(int(s["line"]), int(s["character"])),
        lsp.Position(int(e["line"]), int(e["character"])),
    )


def offset(text: str, pos: lsp.Position) -> int:
    """Offset of an LSP position (UTF-16 columns are treated as code points: close enough here)."""
    lines = text.splitlines(keepends=True)
    if pos.line >= len(lines):
        return len(text)
    line = lines[pos.line]
    body = line.rstrip("\r\n")
    return sum(len(x) for x in lines[: pos.line]) + min(pos.character, len(body))


def range_text(text: str, rng: lsp.Range | None) -> str:
    if rng is None:
        return text
    return text[offset(text, rng.start) : offset(text, rng.end)]


def splice(text: str, rng: lsp.Range, new: str) -> str:
    return text[: offset(text, rng.start)] + new + text[offset(text, rng.end) :]


def end_position(text: str) -> lsp.Position:
    lines = text.split("\n")
    return lsp.Position(len(lines) - 1, len(lines[-1]))


def fit_program(program: str, before: str, after: str) -> str:
    """Surround the program with newlines where it would otherwise glue onto existing text."""
    out = program if program.endswith("\n") else program + "\n"
    if before and not before.endswith("\n"):
        out = "\n" + out
    if after and not after.startswith("\n") and not out.endswith("\n"):
        out += "\n"
    return out


def plan_at_target(
    program: str,
    current: DocState,
    rng: lsp.Range | None,
    start_text: str | None,
    start_range_text: str | None,
) -> Plan:
    """Replace `rng` (or insert at the start of an empty range) if the document is unchanged."""
    unchanged = (
        current.text == start_text
        if start_text is not None
        else (start_range_text is None or range_text(current.text, rng) == start_range_text)
    )
    if not unchanged:
        return Plan(
            ok=False,
            uri=current.uri,
            reason=(
                f"{current.uri} changed since the run started, so Accept will not overwrite it. "
                'Accept into a new file (mode "newFile") or insert at the end '
                '(mode "insertAtEnd") instead, or re-run the task.'
            ),
        )
    if rng is None:
        rng = lsp.Range(end_position(current.text), end_position(current.text))
    start, end = offset(current.text, rng.start), offset(current.text, rng.end)
    new_text = fit_program(program, current.text[:start], current.text[end:])
    return Plan(
        ok=True,
        uri=current.uri,
        range=rng,
        new_text=new_text,
        version=current.version,
        document_after=splice(current.text, rng, new_text),
    )


def plan_insert_at_end(program: str, current: DocState) -> Plan:
    pos = end_position(current.text)
    new_text = fit_program(program, current.text, "")
    if current.text and not current.text.endswith("\n\n"):
        new_text = (
            "\n" + new_text if current.text.endswith("\n") else "\n\n" + new_text.lstrip("\n")
        )
    rng = lsp.Range(pos, pos)
    return Plan(
        ok=True,
        uri=current.uri,
        range=rng,
        new_text=new_text,
        version=current.version,
        document_after=current.text + new_text,
    )


def plan_new_file(program: str, uri: str) -> Plan:
    text = program if program.endswith("\n") else program + "\n"
    rng = lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    return Plan(ok=True, uri=uri, range=rng, new_text=text, create=True, document_after=text)


def workspace_edit(plan: Plan) -> lsp.WorkspaceEdit:
    assert plan.ok and plan.range is not None
    changes: list[Any] = []
    if plan.create:
        changes.append(
            lsp.CreateFile(
                uri=plan.uri, options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=False)
            )
        )
    changes.append(
        lsp.TextDocumentEdit(
            text_document=lsp.OptionalVersionedTextDocumentIdentifier(
                uri=plan.uri, version=None if plan.create else plan.version
            ),
            edits=[lsp.TextEdit(range=plan.range, new_text=plan.new_text)],
        )
    )
    return lsp.WorkspaceEdit(document_changes=changes)
