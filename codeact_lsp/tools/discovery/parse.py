"""Parsing tool modules, incrementally for big ones: top-level blocks are parsed on their own and
cached by their text, so an edit re-parses only the block it touched (discovery runs on every
keystroke's worth of edits)."""

from __future__ import annotations

import ast
import re
import threading
from collections import OrderedDict

_BLOCK_RE = re.compile(r"[A-Za-z_@]")
_GLUE = frozenset({"else", "elif", "except", "finally"})
_WORD_RE = re.compile(r"\w+")
CHUNKED_MIN_LINES = 300
_CHUNK_CACHE_MAX = 4000
_chunks: OrderedDict[tuple[str, str], tuple[list[ast.stmt], int]] = OrderedDict()
chunks_lock = threading.RLock()
_seeded: set[str] = set()


def _split_blocks(lines: list[str]) -> list[int]:
    """0-based first lines of top-level blocks. A wrong split (inside a string or brackets)
    leaves a block that does not parse, which sends the caller to a whole-file parse."""
    starts: list[int] = []
    in_decorator = False
    for i, line in enumerate(lines):
        if not line or not _BLOCK_RE.match(line):
            continue
        if line[0] == "@":
            if not in_decorator:
                starts.append(i)
            in_decorator = True
            continue
        if in_decorator:
            in_decorator = False
            continue
        m = _WORD_RE.match(line)
        if m is not None and m.group(0) in _GLUE:
            continue
        starts.append(i)
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return starts


def _trim(stmts: list[ast.stmt]) -> None:
    """Drop function bodies but their docstring: nothing else is read, and cached trees stay small."""
    for node in stmts:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = [first]
            else:
                node.body = [ast.Pass(lineno=node.lineno, col_offset=0)]
        elif isinstance(node, ast.ClassDef):
            _trim(node.body)
        elif isinstance(node, ast.If | ast.With):
            _trim(node.body)
            _trim(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try | ast.TryStar):
            _trim(node.body)
            for h in node.handlers:
                _trim(h.body)
            _trim(node.orelse)
            _trim(node.finalbody)


def _shift(node: ast.AST, delta: int) -> None:
    """Move a cached block's line numbers (function bodies are trimmed, so this stays cheap)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if "lineno" in cur._attributes:
            cur.lineno = getattr(cur, "lineno", 1) + delta  # type: ignore[attr-defined]
            end = getattr(cur, "end_lineno", None)
            if end is not None:
                cur.end_lineno = end + delta  # type: ignore[attr-defined]
        stack.extend(ast.iter_child_nodes(cur))


def _parse_chunked(text: str, file: str) -> ast.Module | None:
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None
    lines = text.split("\n")
    starts = _split_blocks(lines)
    body: list[ast.stmt] = []
    used: set[int] = set()
    with chunks_lock:
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            chunk = "\n".join(lines[start:end])
            key = (file, chunk)
            hit = _chunks.get(key)
            if hit is not None and not (hit[0] and id(hit[0][0]) in used):
                stmts, at = hit
                if at != start:
                    for stmt in stmts:
                        _shift(stmt, start - at)
                _chunks[key] = (stmts, start)
                _chunks.move_to_end(key)
            else:
                try:
                    stmts = ast.parse(chunk, filename=file).body
                except (SyntaxError, ValueError):
                    return None
                _trim(stmts)
                if start:
                    for stmt in stmts:
                        _shift(stmt, start)
                _chunks[key] = (stmts, start)
                if len(_chunks) > _CHUNK_CACHE_MAX:
                    _chunks.popitem(last=False)
            if stmts:
                used.add(id(stmts[0]))
            body.extend(stmts)
    return ast.Module(body=body, type_ignores=[])


def _seed(file: str, text: str, tree: ast.Module) -> None:
    """Cache the blocks of a whole-file parse, so the first edit after it is already incremental."""
    lines = text.split("\n")
    starts = _split_blocks(lines)
    bounds = [*starts[1:], len(lines)]
    stmts = tree.body
    i = 0
    with chunks_lock:
        for start, end in zip(starts, bounds, strict=True):
            block: list[ast.stmt] = []
            while i < len(stmts) and stmts[i].lineno - 1 < end:
                stmt = stmts[i]
                first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
                if first - 1 < start or (stmt.end_lineno or stmt.lineno) - 1 >= end:
                    return  # the split does not follow statements here: no seeding
                block.append(stmt)
                i += 1
            _chunks[(file, "\n".join(lines[start:end]))] = (block, start)
        while len(_chunks) > _CHUNK_CACHE_MAX:
            _chunks.popitem(last=False)
        _seeded.add(file)


def parse_module(text: str, file: str) -> ast.Module:
    """`ast.parse`, incremental for big modules; raises SyntaxError like `ast.parse`."""
    if text.count("\n") < CHUNKED_MIN_LINES:
        return ast.parse(text, filename=file)
    if file in _seeded:
        chunked = _parse_chunked(text, file)
        if chunked is not None:
            return chunked
    tree = ast.parse(text, filename=file)
    _trim(tree.body)
    if "\r" not in text:
        _seed(file, text, tree)
    return tree


def clear() -> None:
    """Forget every cached block (tests, and `discovery.clear_cache`)."""
    with chunks_lock:
        _chunks.clear()
        _seeded.clear()
