"""The session's contract with the model: the tools and `final_answer` are always there, and the
stubs the prompt shows are valid Python in the session exactly as written.

Real small models copy the prompt's stub block into a step. Copied stubs used to fail (`Any` was
not defined) or, worse, replace every tool with a no-op for the rest of the run. The sandbox binds
the tools again before every step; this module finds the steps that redefined them (so the model is
told not to) and decides which annotation names the session binds and which the prompt must quote.
"""

from __future__ import annotations

import ast
import builtins
import functools
from collections.abc import Collection, Iterable, Iterator

# typing names the session always binds: what untyped outputs and common tool signatures use
BASE_TYPING = ("Any", "Optional", "Union", "Literal")
_BUILTINS = frozenset(dir(builtins))


def typing_names() -> frozenset[str]:
    """Public names of `typing` (imported here, in the server, never in the sandbox worker)."""
    import typing

    return frozenset(typing.__all__)


def annotation_names(signature: str) -> set[str]:
    """The bare names the annotations of a `def ...` signature refer to (for the session prelude)."""
    fn = _parse_def(signature)
    if fn is None:
        return set()
    return {n.id for ann in _annotations(fn) for n in ast.walk(ann) if isinstance(n, ast.Name)}


def prelude_names(signatures: Iterable[str]) -> frozenset[str]:
    """The typing names the session binds before the first step (steps may use them unimported)."""
    known = typing_names()
    used = set(BASE_TYPING)
    for sig in signatures:
        used |= annotation_names(sig) & known
    return frozenset(used)


def session_prelude(signatures: Iterable[str]) -> str:
    """The import that makes the stubs' typing names resolve in the session."""
    return f"from typing import {', '.join(sorted(prelude_names(signatures)))}"


def bound_names(signatures: Iterable[str]) -> frozenset[str]:
    """Names an annotation in the prompt may use unquoted: builtins and the prelude's imports."""
    return _BUILTINS | prelude_names(signatures)


def resolvable(node: ast.AST, bound: Collection[str]) -> bool:
    """Every name the expression needs is bound in the session."""
    return all(n.id in bound for n in ast.walk(node) if isinstance(n, ast.Name))


def redefined(code: str, reserved: Collection[str]) -> list[str]:
    """Reserved names (tools, final_answer) a step binds at module level: def, class, assignment,
    import, for/with/except targets, `global` in a function. Static and conservative: code that does
    not parse binds nothing."""
    if not code or not reserved:
        return []
    return sorted(name for name in _bound_at_module_level(code) if name in reserved)


@functools.lru_cache(maxsize=2048)
def _bound_at_module_level(code: str) -> frozenset[str]:
    """Every prompt shows every earlier step's observation: a step's code is parsed once."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return frozenset()
    found = set(_module_bindings(tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found |= set(node.names)
    return frozenset(found)


def redefinition_warning(names: list[str]) -> str:
    listed = ", ".join(names)
    return (
        f"Warning: this step redefined {listed}. These are the session's tools (and final_answer);"
        " your definition was discarded and the real ones are bound again before every step, so do"
        " not define, assign or import them: just call them."
    )


def _module_bindings(body: list[ast.stmt]) -> Iterator[str]:
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield stmt.name
            continue  # names inside a body are local to it
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                yield (alias.asname or alias.name).split(".")[0]
            continue
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
            targets = [stmt.target]
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
        for target in targets:
            yield from _target_names(target)
        for node in ast.walk(stmt):
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                yield node.target.id
        if isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                if handler.name:
                    yield handler.name
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list):
                stmts = [s for s in inner if isinstance(s, ast.stmt)]
                for h in inner:
                    if isinstance(h, ast.ExceptHandler):
                        stmts += h.body
                yield from _module_bindings(stmts)


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for elt in target.elts:
            yield from _target_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _parse_def(signature: str) -> ast.FunctionDef | None:
    text = signature.strip().removeprefix("async ").rstrip(":")
    if not text.startswith("def "):
        text = f"def {text}"
    try:
        tree = ast.parse(text + ": ...")
    except (SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.FunctionDef) else None


def _annotations(fn: ast.FunctionDef) -> list[ast.expr]:
    a = fn.args
    args = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    args += [x for x in (a.vararg, a.kwarg) if x is not None]
    anns = [x.annotation for x in args if x.annotation is not None]
    return anns + ([fn.returns] if fn.returns is not None else [])
