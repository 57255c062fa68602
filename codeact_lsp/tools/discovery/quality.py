"""Static tool-quality checks: the rules of `tools/runtime/quality.py`, applied to what the `ast`
shows of a tool, with each finding placed on its node (the parameter, the return annotation)."""

from __future__ import annotations

import ast

from codeact_lsp.tools.discovery.bindings import Resolved, source_text
from codeact_lsp.tools.models import ToolDiagnostic
from codeact_lsp.tools.runtime.quality import (
    BUILTIN_NAMES,
    RESERVED,
    Finding,
    Param,
    Shape,
    check_name,
)
from codeact_lsp.tools.runtime.quality import check as check_shape

__all__ = ["BUILTIN_NAMES", "RESERVED", "name_checks", "quality"]


def _diagnostic(
    finding: Finding, name: str, file: str, line: int, node: ast.AST | None
) -> ToolDiagnostic:
    return ToolDiagnostic(
        file=file,
        line=getattr(node, "lineno", line) if node is not None else line,
        column=getattr(node, "col_offset", 0) if node is not None else 0,
        severity=finding.severity,  # type: ignore[arg-type]
        message=finding.message,
        code=finding.code,
        tool=name,
    )


def quality(name: str, res: Resolved, file: str, line: int, diags: list[ToolDiagnostic]) -> None:
    """Diagnostics for what leaves the model guessing: no docstring, no or vague annotations."""
    func = res.func
    if func is None:
        return
    a = func.args
    positional = [*a.posonlyargs, *a.args][res.drop :]
    nodes: dict[str, ast.arg] = {}
    params: list[Param] = []
    for arg in [*positional, *a.kwonlyargs]:
        if arg.arg in res.kw_bound:
            continue
        nodes[arg.arg] = arg
        ann = source_text(arg.annotation) if arg.annotation is not None else None
        params.append(Param(arg.arg, ann))
    for star_arg, star in ((a.vararg, "*"), (a.kwarg, "**")):
        if star_arg is not None:
            nodes[star_arg.arg] = star_arg
            params.append(Param(star_arg.arg, None, star))
    returns = source_text(func.returns) if func.returns is not None else None
    shape = Shape(name, documented=bool(ast.get_docstring(func)), params=params, returns=returns)
    for finding in check_shape(shape):
        node: ast.AST = func
        if finding.param is not None:
            node = nodes[finding.param]
        elif finding.on_return and func.returns is not None:
            node = func.returns
        diags.append(_diagnostic(finding, name, file, line, node))


def name_checks(name: str, file: str, line: int, diags: list[ToolDiagnostic]) -> None:
    """A tool name the model cannot call (reserved) or that hides a builtin in its code."""
    finding = check_name(name)
    if finding is not None:
        diags.append(_diagnostic(finding, name, file, line, None))
