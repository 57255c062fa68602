"""Static checks of a step's code before it runs (a pending step in review mode, or an edit).

They catch what would otherwise cost a sandbox round trip and a model turn: a syntax error, a
call to a tool that does not exist, argument names the tool's schema does not have, and calls to
tools that will stop and ask for confirmation. Everything here is `ast` only — no execution.
"""

from __future__ import annotations

import ast
import builtins
import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

from codeact_lsp.config import matches_glob

Severity = Literal["error", "warning", "info"]

_BUILTINS = frozenset(dir(builtins)) | {"final_answer"}


@dataclass(frozen=True)
class ToolSig:
    """What the checks need to know about one tool, taken from its JSON schema."""

    name: str
    params: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    open_kwargs: bool = False  # **kwargs: any keyword is accepted
    open_args: bool = False  # *args: any number of positional values
    confirm: bool = False


@dataclass(frozen=True)
class Finding:
    line: int  # 1-based, in the step's code
    col: int  # 0-based
    end_col: int
    severity: Severity
    message: str
    code: str


@dataclass
class CheckContext:
    tools: dict[str, ToolSig] = field(default_factory=dict)
    known_names: set[str] = field(default_factory=set)  # defined by earlier steps
    confirm_globs: list[str] = field(default_factory=list)
    tools_known: bool = True  # False while the tool list is not loaded: skip "unknown name"


def sig_from_schema(schema: Any) -> ToolSig:
    """Build a ToolSig from a `ToolSchema`-like object (name, parameters, confirm)."""
    params_schema: dict[str, Any] = getattr(schema, "parameters", None) or {}
    props = params_schema.get("properties") or {}
    required = params_schema.get("required") or []
    extra = params_schema.get("additionalProperties", False)
    var_args = bool(params_schema.get("x-var-positional") or params_schema.get("x-varargs"))
    return ToolSig(
        name=str(getattr(schema, "name", "")),
        params=tuple(str(p) for p in props),
        required=tuple(str(r) for r in required),
        open_kwargs=extra not in (False, None),
        open_args=var_args,
        confirm=bool(getattr(schema, "confirm", False)),
    )


def defined_names(code: str) -> set[str]:
    """Names a snippet binds at top level (they stay defined for later steps)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def check_code(code: str, ctx: CheckContext) -> list[Finding]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = max((exc.offset or 1) - 1, 0)
        return [Finding(line, col, col + 1, "error", f"SyntaxError: {exc.msg}", "syntax")]
    local = defined_names(code) | ctx.known_names
    findings: list[Finding] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        name = node.func.id
        where = (node.lineno, node.col_offset, node.func.end_col_offset or node.col_offset + 1)
        tool = ctx.tools.get(name)
        if tool is None:
            if ctx.tools_known and name not in local and name not in _BUILTINS:
                close = difflib.get_close_matches(name, list(ctx.tools), n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                findings.append(
                    Finding(
                        *where,
                        "error",
                        f"`{name}` is not a tool, a builtin or a name from an earlier step{hint}",
                        "unknown-tool",
                    )
                )
            continue
        findings += _check_call(node, tool, where)
        if tool.confirm or matches_glob(name, ctx.confirm_globs):
            findings.append(
                Finding(
                    *where,
                    "info",
                    f"`{name}` needs your confirmation before it runs",
                    "confirm-tool",
                )
            )
    findings.sort(key=lambda f: (f.line, f.col))
    return findings


def _check_call(node: ast.Call, tool: ToolSig, where: tuple[int, int, int]) -> list[Finding]:
    out: list[Finding] = []
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        kw.arg is None for kw in node.keywords
    ):
        return out  # *args / **kwargs at the call site: cannot tell statically
    if len(node.args) > len(tool.params) and not tool.open_args:
        out.append(
            Finding(
                *where,
                "error",
                f"`{tool.name}` takes {len(tool.params)} argument(s) "
                f"({', '.join(tool.params)}), got {len(node.args)} positional",
                "tool-args",
            )
        )
    given = set(tool.params[: len(node.args)])
    for kw in node.keywords:
        assert kw.arg is not None
        if kw.arg not in tool.params and not tool.open_kwargs:
            close = difflib.get_close_matches(kw.arg, list(tool.params), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            out.append(
                Finding(
                    kw.lineno,
                    kw.col_offset,
                    kw.end_col_offset or kw.col_offset + len(kw.arg),
                    "error",
                    f"`{tool.name}` has no parameter `{kw.arg}` "
                    f"(parameters: {', '.join(tool.params) or 'none'}){hint}",
                    "tool-args",
                )
            )
        given.add(kw.arg)
    missing = [p for p in tool.required if p not in given]
    if missing:
        out.append(
            Finding(
                *where,
                "error",
                f"`{tool.name}` is missing required argument(s): {', '.join(missing)}",
                "tool-args",
            )
        )
    return out
