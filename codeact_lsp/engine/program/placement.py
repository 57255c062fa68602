"""Where the accepted function goes in a file, and the edits that put it there.

The function lands at the top level: after the statement the cursor (or the selection's end) is
in, never inside another function's body; the selection is replaced only when the user chose that.
Its imports are merged into the file's (see `imports`), and PEP 8's two blank lines surround it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from codeact_lsp.engine.program.forms import parse_program, renamed
from codeact_lsp.engine.program.imports import (
    Edit,
    apply,
    leading_end,
    line_offsets,
    merge,
    render,
    top_level_names,
)


@dataclass
class Placement:
    imports: list[Edit]  # merged into the file's imports (may be empty)
    function: Edit  # the function (and its result class)
    name: str  # the function's name (renamed if the file already had one by that name)
    start: int  # where the function's text starts and ends in the document after the edits
    end: int
    text_after: str

    @property
    def edits(self) -> list[Edit]:
        return [*self.imports, self.function]


def place(
    text: str,
    program_text: str,
    *,
    anchor: int | None = None,
    replace: tuple[int, int] | None = None,
) -> Placement:
    """Edits that put `program_text` into `text`: replacing `replace` (offsets), else after the
    top-level statement holding `anchor` (an offset), else at the end of the file."""
    try:
        tree: ast.Module | None = ast.parse(text)
    except SyntaxError:
        tree = None
    program = parse_program(program_text)
    taken = top_level_names(tree) if tree is not None else set()
    if replace is not None and tree is not None:
        taken -= _names_in(tree, text, replace)  # what the selection defines is going away
    if program.name and program.name in taken:
        name = _free_name(program.name, taken)
        program = parse_program(renamed(program_text, name))
    import_edits, _ = merge(text, program.imports)
    body = program.body

    if replace is not None:
        start, end = _whole_lines(text, *replace)
        if any((e.start < end and e.end > start) or start <= e.start <= end for e in import_edits):
            # the selection covers the imports: the replacement carries its own
            import_edits = []
            head = render(program.imports)
            body = (head + "\n\n\n" if head else "") + body
    else:
        start = end = _top_level_point(text, tree, anchor)
        floor, _ = leading_end(text, tree)
        start = end = max(start, floor)

    shared = "".join(e.text for e in import_edits if e.start == e.end == start)
    if shared:
        import_edits = [e for e in import_edits if not (e.start == e.end == start)]
    before = text[:start] + shared
    after = text[end:]
    prefix = _pad_before(before)
    suffix = _pad_after(after)
    function = Edit(start, end, shared + prefix + body + suffix)
    edits = [*import_edits, function]
    new_text = apply(text, edits)
    shift = sum(len(e.text) - (e.end - e.start) for e in import_edits if e.end <= start)
    fn_start = start + shift + len(shared) + len(prefix)
    return Placement(
        imports=import_edits,
        function=function,
        name=program.name,
        start=fn_start,
        end=fn_start + len(body.rstrip("\n")),
        text_after=new_text,
    )


def _free_name(name: str, taken: set[str]) -> str:
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def _names_in(tree: ast.Module, text: str, span: tuple[int, int]) -> set[str]:
    starts = line_offsets(text)
    inside = [
        s
        for s in tree.body
        if starts[s.lineno - 1] >= _whole_lines(text, *span)[0]
        and starts[min(s.end_lineno or s.lineno, len(starts) - 1)] <= _whole_lines(text, *span)[1]
    ]
    return top_level_names(ast.Module(body=inside, type_ignores=[]))


def _whole_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to whole lines (a selection rarely starts at column 0 exactly)."""
    line_start = text.rfind("\n", 0, start) + 1
    if end > start and text[end - 1 : end] == "\n":
        return line_start, end
    nl = text.find("\n", end)
    return line_start, (len(text) if nl < 0 else nl + 1)


def _top_level_point(text: str, tree: ast.Module | None, anchor: int | None) -> int:
    """Start of the line after the top-level statement holding `anchor` (end of file: None)."""
    if anchor is None:
        return len(text)
    starts = line_offsets(text)
    line = text.count("\n", 0, anchor) + 1  # 1-based
    if tree is None:
        # the file does not parse: the next line that starts at column 0 is a top-level one
        lines = text.splitlines(keepends=True)
        for i in range(line, len(lines)):
            if lines[i][:1] not in ("", " ", "\t", "\n", "\r", "#"):
                return starts[i]
        return len(text)
    for stmt in tree.body:
        first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        last = stmt.end_lineno or stmt.lineno
        if first <= line <= last:
            return starts[min(last, len(starts) - 1)]
    # between statements: on a blank line right there, on a comment line after it
    here = text[starts[min(line - 1, len(starts) - 1)] : starts[min(line, len(starts) - 1)]]
    return starts[min(line if here.strip() else line - 1, len(starts) - 1)]


def _pad_before(before: str) -> str:
    if not before.strip():
        return ""
    if not before.endswith("\n"):
        return "\n\n\n"
    have = len(before) - len(before.rstrip("\n"))
    return "\n" * max(0, 3 - have)


def _pad_after(after: str) -> str:
    if not after.strip():
        return ""
    have = len(after) - len(after.lstrip("\n"))
    return "\n" * max(0, 2 - have)
