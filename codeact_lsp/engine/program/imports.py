"""Imports of the accepted program, and merging them into a file that has imports of its own.

A developer's file keeps one `from tools import ...` line per module: a new name joins the line
that is already there, a name already imported (or defined) is not imported again, and new lines
go after the file's leading imports, so `from __future__` stays first.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Need:
    """One name the program imports: `from module import name [as asname]`, or `import module`."""

    module: str
    name: str | None = None  # None: `import module`
    asname: str | None = None

    @property
    def bound(self) -> str:
        if self.asname:
            return self.asname
        return self.name if self.name is not None else self.module.split(".")[0]


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] with `text` (offsets into the original document)."""

    start: int
    end: int
    text: str


def needs_of(node: ast.Import | ast.ImportFrom) -> list[Need]:
    if isinstance(node, ast.Import):
        return [Need(a.name, None, a.asname) for a in node.names]
    module = "." * node.level + (node.module or "")
    return [Need(module, a.name, a.asname) for a in node.names]


def _alias(n: Need) -> str:
    name = n.name if n.name is not None else n.module
    return f"{name} as {n.asname}" if n.asname else name


def _is_stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names or module == "__future__"


def render(needs: Iterable[Need]) -> str:
    """Import lines, standard library first, one `from` line per module (no trailing newline)."""
    unique = sorted(set(needs))
    groups: list[list[str]] = []
    for std in (True, False):
        part = [n for n in unique if _is_stdlib(n.module) == std]
        lines = [f"import {_alias(n)}" for n in part if n.name is None]
        by_module: dict[str, list[Need]] = {}
        for n in part:
            if n.name is not None:
                by_module.setdefault(n.module, []).append(n)
        lines += [_from_line(m, [_alias(n) for n in ns]) for m, ns in sorted(by_module.items())]
        if lines:
            groups.append(lines)
    return "\n\n".join("\n".join(g) for g in groups)


def _from_line(module: str, names: list[str], limit: int = 100) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= limit:
        return line
    inner = "".join(f"    {n},\n" for n in names)
    return f"from {module} import (\n{inner})"


def line_offsets(text: str) -> list[int]:
    """Offset of the start of each line (and one past the end), for ast positions -> offsets."""
    out = [0]
    for line in text.splitlines(keepends=True):
        out.append(out[-1] + len(line))
    return out


def _offset(starts: list[int], text: str, line: int, col: int) -> int:
    """ast gives UTF-8 byte columns; convert to a str offset."""
    base = starts[min(line - 1, len(starts) - 1)]
    raw = text[base:].encode("utf-8")[:col]
    return base + len(raw.decode("utf-8", errors="ignore"))


def top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            names.update(n.bound for n in needs_of(stmt))
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                names.update(
                    n.id
                    for n in ast.walk(t)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                )
    return names


def leading_end(text: str, tree: ast.Module | None) -> tuple[int, bool]:
    """Where new imports go: (offset, after existing imports?). After the docstring and the
    leading run of imports; without either, after the first comment lines (shebang, licence)."""
    starts = line_offsets(text)
    if tree is None:
        line = 0
        lines = text.splitlines()
        while line < len(lines) and lines[line].startswith("#!"):
            line += 1
        return starts[min(line, len(starts) - 1)], False
    last: ast.stmt | None = None
    after_imports = False
    for i, stmt in enumerate(tree.body):
        docstring = (
            i == 0
            and isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        )
        if docstring or isinstance(stmt, ast.Import | ast.ImportFrom):
            last = stmt
            after_imports = not docstring
            continue
        break
    if last is None:
        # no docstring, no imports: after the comment block the file opens with (a header)
        lines = text.splitlines(keepends=True)
        n = 0
        while n < len(lines) and lines[n].lstrip().startswith("#"):
            n += 1
        first = tree.body[0].lineno - 1 if tree.body else len(lines)
        return (starts[min(n, len(starts) - 1)] if n <= first else 0), False
    end = last.end_lineno or last.lineno
    return starts[min(end, len(starts) - 1)], after_imports


def _ends_stdlib(tree: ast.Module) -> bool:
    """The file's leading imports end with a standard-library one."""
    last: ast.Import | ast.ImportFrom | None = None
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            last = stmt
        elif not (i == 0 and isinstance(stmt, ast.Expr)):
            break
    return last is not None and all(_is_stdlib(n.module) for n in needs_of(last))


def merge(text: str, needs: Iterable[Need]) -> tuple[list[Edit], list[Need]]:
    """Edits that make `text` import every need it lacks, and the needs actually added."""
    try:
        tree: ast.Module | None = ast.parse(text)
    except SyntaxError:
        tree = None
    have = top_level_names(tree) if tree is not None else set()
    missing = [n for n in sorted(set(needs)) if n.bound not in have]
    if not missing:
        return [], []
    edits: list[Edit] = []
    rest: list[Need] = []
    starts = line_offsets(text)
    existing: dict[str, ast.ImportFrom] = {}
    if tree is not None:
        for stmt in tree.body:
            if (
                isinstance(stmt, ast.ImportFrom)
                and stmt.module != "__future__"
                and not any(a.name == "*" for a in stmt.names)
            ):
                existing.setdefault("." * stmt.level + (stmt.module or ""), stmt)
    joined: dict[str, list[Need]] = {}
    for n in missing:
        if n.name is not None and n.module in existing:
            joined.setdefault(n.module, []).append(n)
        else:
            rest.append(n)
    for module, ns in joined.items():
        stmt = existing[module]
        start = _offset(starts, text, stmt.lineno, stmt.col_offset)
        end = _offset(starts, text, stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0)
        if "(" in text[start:end] or "\\" in text[start:end]:
            names = [_alias(x) for x in needs_of(stmt)] + [_alias(x) for x in ns]
            edits.append(Edit(start, end, _from_line(module, names)))
        else:
            edits.append(Edit(end, end, "".join(f", {_alias(x)}" for x in ns)))
    if rest:
        at, after_imports = leading_end(text, tree)
        block = render(rest) + "\n"
        before = text[:at]
        if before and not before.endswith("\n"):
            block = "\n" + block
        if before.strip() and not after_imports:
            block = "\n" + block  # a blank line after the docstring
        elif (
            after_imports
            and tree is not None
            and _ends_stdlib(tree)
            and not any(_is_stdlib(n.module) for n in rest)
        ):
            block = "\n" + block  # the file's standard-library group stays its own
        after = text[at:]
        if after.strip() and not after_imports and not after.startswith("\n"):
            block += "\n"
        edits.append(Edit(at, at, block))
    return edits, [*(n for ns in joined.values() for n in ns), *rest]


def apply(text: str, edits: Iterable[Edit]) -> str:
    """The document after non-overlapping edits (inserts at one offset keep their order)."""
    out = text
    for e in reversed(sorted(edits, key=lambda e: (e.start, e.end))):
        out = out[: e.start] + e.text + out[e.end :]
    return out
