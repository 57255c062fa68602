"""Static tool-quality checks: what leaves the model guessing about a tool (no docstring, no or
vague annotations, varargs), and names that cannot or should not be tools."""

from __future__ import annotations

import ast
import builtins

from codeact_lsp.tools.discovery.bindings import Resolved, source_text
from codeact_lsp.tools.models import ToolDiagnostic

RESERVED = frozenset({"final_answer"})
BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
_UNHELPFUL = frozenset({"Any", "typing.Any", "object", "t.Any"})


def quality(name: str, res: Resolved, file: str, line: int, diags: list[ToolDiagnostic]) -> None:
    """Diagnostics for what leaves the model guessing: no docstring, no or vague annotations."""
    func = res.func
    if func is None:
        return

    def add(
        code: str, message: str, node: ast.AST | None = None, severity: str = "warning"
    ) -> None:
        ln = getattr(node, "lineno", line) if node is not None else line
        col = getattr(node, "col_offset", 0) if node is not None else 0
        diags.append(
            ToolDiagnostic(
                file=file,
                line=ln,
                column=col,
                severity=severity,  # type: ignore[arg-type]
                message=message,
                code=code,
                tool=name,
            )
        )

    if not ast.get_docstring(func):
        add(
            "tool-no-docstring",
            f"tool {name!r} has no docstring: the model sees only its signature; say what it "
            "does, what it returns and in which unit",
            func,
        )
    a = func.args
    positional = [*a.posonlyargs, *a.args][res.drop :]
    for arg in [*positional, *a.kwonlyargs]:
        if arg.arg in res.kw_bound:
            continue
        if arg.annotation is None:
            add(
                "tool-no-annotation",
                f"parameter {arg.arg!r} of tool {name!r} has no type annotation: the model has to "
                "guess what to pass, and arguments cannot be validated",
                arg,
            )
        elif source_text(arg.annotation).strip("'\"") in _UNHELPFUL:
            add(
                "tool-any-annotation",
                f"parameter {arg.arg!r} of tool {name!r} is annotated "
                f"{source_text(arg.annotation)}: that tells the model nothing; use a concrete type",
                arg,
            )
    stars = [f"{pre}{arg.arg}" for arg, pre in ((a.vararg, "*"), (a.kwarg, "**")) if arg]
    if stars:
        add(
            "tool-varargs",
            f"tool {name!r} takes {' and '.join(stars)}: the model cannot know which arguments "
            "it accepts; list the parameters explicitly",
            a.vararg or a.kwarg,
        )
    if func.returns is None:
        add(
            "tool-no-return-annotation",
            f"tool {name!r} has no return annotation: the model cannot know what it gets back",
            func,
            "info",
        )
    elif source_text(func.returns).strip("'\"") in _UNHELPFUL:
        add(
            "tool-any-annotation",
            f"tool {name!r} returns {source_text(func.returns)}: say what it returns",
            func.returns,
        )


def name_checks(name: str, file: str, line: int, diags: list[ToolDiagnostic]) -> None:
    """A tool name the model cannot call (reserved) or that hides a builtin in its code."""
    if name in RESERVED:
        diags.append(
            ToolDiagnostic(
                file=file,
                line=line,
                severity="error",
                code="tool-reserved-name",
                message=f"{name!r} is reserved by CodeAct (it ends the run); rename the tool",
                tool=name,
            )
        )
    elif name in BUILTIN_NAMES:
        diags.append(
            ToolDiagnostic(
                file=file,
                line=line,
                severity="warning",
                code="tool-shadows-builtin",
                message=f"tool {name!r} shadows the Python builtin {name}() in the model's "
                "code; give it a more specific name",
                tool=name,
            )
        )
