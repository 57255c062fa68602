"""Which statements of the run the accepted function keeps.

The model explores: it prints values to look at them, evaluates a name to see it, assigns results it
never uses. None of that changes the answer, and a developer would delete it by hand. What is
dropped here must provably not matter, so the rules are conservative: a statement goes only when
it is free of side effects (no tool call, no call of anything not known to be pure, no store into
an object) and defines nothing read later. A print is the one side effect that goes: its output was
for the model's eyes; any tool call inside its arguments stays as a statement of its own.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable
from dataclasses import dataclass

# Builtins whose call cannot reach the tools or change state (their arguments are checked too).
PURE_BUILTINS = frozenset(
    [
        "abs",
        "all",
        "any",
        "ascii",
        "bin",
        "bool",
        "bytes",
        "callable",
        "chr",
        "complex",
        "dict",
        "divmod",
        "enumerate",
        "float",
        "format",
        "frozenset",
        "hash",
        "hex",
        "int",
        "isinstance",
        "issubclass",
        "len",
        "list",
        "max",
        "min",
        "oct",
        "ord",
        "pow",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "slice",
        "sorted",
        "str",
        "sum",
        "tuple",
        "type",
        "zip",
    ]
)
# Methods of str/dict/list values that only read (a user object's method of the same name is the
# risk taken; it only matters when the result is unused, which is when these rules apply).
PURE_METHODS = frozenset(
    [
        "get",
        "keys",
        "values",
        "items",
        "copy",
        "count",
        "index",
        "upper",
        "lower",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "join",
        "replace",
        "startswith",
        "endswith",
        "format",
        "title",
        "capitalize",
        "casefold",
        "find",
        "rfind",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "islower",
        "isupper",
        "zfill",
        "center",
        "ljust",
        "rjust",
        "partition",
        "rpartition",
        "encode",
        "decode",
    ]
)
PRINTS = frozenset({"print", "pprint", "pp"})
# Reading these means names are used in ways liveness cannot see: keep every assignment.
_INTROSPECTION = frozenset({"locals", "vars", "globals", "eval", "exec", "dir"})


@dataclass
class Item:
    """A top-level statement of a step, and whether the run depends on it unconditionally.

    `optional` statements (from a step that failed after running them) stay only when a later
    statement reads what they define: the model's retry usually redoes them, sometimes it relies
    on them.
    """

    node: ast.stmt
    source: str  # the step's code, for rendering unchanged statements as written
    step: int
    optional: bool = False
    verbatim: bool = True  # the node is still the statement as written (render its source)


class Purity:
    """Decides whether evaluating an expression can do anything but compute a value."""

    def __init__(self, impure_names: Iterable[str]) -> None:
        # tools and functions the program defines: referencing one may call it later
        self.impure_names = frozenset(impure_names)

    def expr(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr):
                return False
            if isinstance(sub, ast.Name) and sub.id in self.impure_names:
                return False
            if isinstance(sub, ast.Call) and not self._pure_callee(sub.func):
                return False
        return True

    def _pure_callee(self, func: ast.expr) -> bool:
        if isinstance(func, ast.Name):
            return func.id in PURE_BUILTINS and func.id not in self.impure_names
        if isinstance(func, ast.Attribute):
            return func.attr in PURE_METHODS
        return False

    def stmt(self, node: ast.stmt) -> bool:
        """A statement whose only effect is binding names (so it may go if they are unused)."""
        if isinstance(node, ast.Expr | ast.Pass):
            return self.expr(node)
        if isinstance(node, ast.Assign):
            return all(_name_targets(t) for t in node.targets) and self.expr(node.value)
        if isinstance(node, ast.AnnAssign):
            return isinstance(node.target, ast.Name) and (
                node.value is None or self.expr(node.value)
            )
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            header = [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
            return not node.decorator_list and all(self.expr(d) for d in header)
        if isinstance(node, ast.ClassDef):
            body = [
                s for s in node.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            return (
                not node.decorator_list
                and not node.keywords
                and all(isinstance(b, ast.Name) for b in node.bases)
                and all(self.stmt(s) for s in body)
            )
        if isinstance(node, ast.If | ast.For | ast.While):
            parts: list[ast.AST] = [node.test] if not isinstance(node, ast.For) else [node.iter]
            if isinstance(node, ast.For) and not _name_targets(node.target):
                return False
            return all(self.expr(p) for p in parts) and all(
                self.stmt(s) for s in [*node.body, *node.orelse]
            )
        return False  # with, try, raise, return, assert, del, global, imports, match, ...


def _name_targets(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, ast.Tuple | ast.List):
        return all(_name_targets(e) for e in target.elts)
    if isinstance(target, ast.Starred):
        return _name_targets(target.value)
    return False


def reads(node: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)
    }


def binds(node: ast.AST) -> set[str]:
    """Every name the statement may bind (anywhere inside it, nested scopes aside)."""
    out: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(cur.name)
            if cur is not node:
                continue
            stack.extend(d for d in cur.decorator_list)
            continue
        if isinstance(cur, ast.Name) and isinstance(cur.ctx, ast.Store):
            out.add(cur.id)
        elif isinstance(cur, ast.alias):
            out.add((cur.asname or cur.name).split(".")[0])
        if isinstance(cur, ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(cur))
    return out


def kills(node: ast.stmt) -> set[str]:
    """Names certainly rebound by the statement (so what was assigned before is superseded)."""
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return {node.target.id}
    return set()


def _is_print(node: ast.stmt) -> ast.Call | None:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return None
    call = node.value
    func = call.func
    named = (isinstance(func, ast.Name) and func.id in PRINTS) or (
        isinstance(func, ast.Attribute)
        and func.attr in PRINTS
        and isinstance(func.value, ast.Name)
        and func.value.id == "pprint"
    )
    if not named:
        return None
    for kw in call.keywords:
        if kw.arg == "file" and not _is_std_stream(kw.value):
            return None  # writing to a file is an effect, not exploration
    return call


def _is_std_stream(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
        and node.attr in {"stdout", "stderr"}
    )


def effects_of(expr: ast.AST, purity: Purity) -> list[ast.expr]:
    """The outermost calls inside `expr` that do something (what a dropped print keeps)."""
    if isinstance(expr, ast.expr) and purity.expr(expr):
        return []
    if isinstance(expr, ast.Call | ast.Await | ast.NamedExpr):
        return [expr]
    out: list[ast.expr] = []
    for child in ast.iter_child_nodes(expr):
        out += effects_of(child, purity)
    return out


def strip_prints(stmts: list[ast.stmt], purity: Purity) -> list[ast.stmt]:
    """Replace each print by the effects in its arguments, at every depth; empty bodies get `pass`."""
    out: list[ast.stmt] = []
    for stmt in stmts:
        call = _is_print(stmt)
        if call is not None:
            args = [*call.args, *(k.value for k in call.keywords if k.arg != "file")]
            for arg in args:
                for effect in effects_of(arg, purity):
                    out.append(ast.copy_location(ast.Expr(value=effect), stmt))
            continue
        for field in ("body", "orelse", "finalbody"):
            body = getattr(stmt, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    continue  # a helper the model wrote is its own business
                new = strip_prints(body, purity)
                if field == "body" and not new:
                    new = [ast.copy_location(ast.Pass(), stmt)]
                setattr(stmt, field, new)
        if isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                handler.body = strip_prints(handler.body, purity) or [
                    ast.copy_location(ast.Pass(), handler)
                ]
        out.append(stmt)
    return out


def prune(items: list[Item], purity: Purity, live_at_end: set[str]) -> list[Item]:
    """Drop prints, then, walking backwards, statements without effect whose names are dead."""
    staged: list[Item] = []
    for item in items:
        before = ast.dump(item.node)
        nodes = strip_prints([copy.deepcopy(item.node)], purity)
        same = len(nodes) == 1 and ast.dump(nodes[0]) == before
        for node in nodes:
            staged.append(Item(node, item.source, item.step, item.optional, item.verbatim and same))
    everything = [i.node for i in staged]
    if any(reads(n) & _INTROSPECTION for n in everything):
        return [i for i in staged if not i.optional]
    # names read inside functions the program defines: a call may come at any point, so they are
    # live everywhere
    late = set[str]()
    for n in everything:
        for sub in ast.walk(n):
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                late |= reads(sub)
    live = set(live_at_end) | late
    kept: list[Item] = []
    for item in reversed(staged):
        node = item.node
        dead = not (binds(node) & live)
        if isinstance(node, ast.Pass) or (dead and (item.optional or purity.stmt(node))):
            continue
        kept.append(item)
        live = (live - kills(node)) | reads(node) | late
    kept.reverse()
    return kept
