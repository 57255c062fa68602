"""Tool-quality rules: what leaves the model guessing about a tool, decided in one place.

Two readers describe tools: static discovery reads a module's `ast` (tools/discovery), and the
runtime describes a live callable (the Python API's in-process tools, `schema.tool_quality`).
Each turns what it sees into a `Shape` and asks `check`; each places the findings (a line, an
AST node) itself. So a rule, its code and its words are the same whichever side found it.

Standard library only, like the rest of this package: it is loaded by path in the workspace's
interpreter too (see `__init__.BOOT`).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

RESERVED = frozenset({"final_answer"})  # ends the run: the model calls CodeAct's, never a tool
BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
# annotations that tell the model nothing (as written in source, or as the runtime formats them)
UNHELPFUL = frozenset({"Any", "typing.Any", "t.Any", "object"})

# A runtime diagnostic that says again what a static one already said (same code family, same
# place): code -> (the static code, the fields that must agree). `report.merge_diagnostics`
# keeps the static one, which has the better position.
ECHOES: dict[str, tuple[str, tuple[str, ...]]] = {
    "not-callable": ("all-undefined", ("file", "tool")),  # listed in __all__, not defined
    "tool-name-collision": ("tool-name-collision", ("tool",)),
    "import-error": ("syntax-error", ("file", "line")),  # the import failed on that syntax error
}


@dataclass(frozen=True)
class Param:
    """One parameter the model may pass: its annotation as text (None: not annotated)."""

    name: str
    annotation: str | None
    star: str = ""  # "*" for *args, "**" for **kwargs


@dataclass(frozen=True)
class Shape:
    """What a reader saw of a tool. `returns` is the return annotation's text (None: none)."""

    name: str
    documented: bool
    params: list[Param] = field(default_factory=list)
    returns: str | None = None
    has_signature: bool = True  # False: nothing to say about parameters (e.g. a builtin)


@dataclass(frozen=True)
class Finding:
    """One problem: `param` names the parameter it is about, `on_return` the return annotation;
    neither: the tool itself."""

    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    param: str | None = None
    on_return: bool = False


def _unhelpful(text: str) -> bool:
    return text.strip("'\"") in UNHELPFUL


def check(shape: Shape) -> list[Finding]:
    """Everything that leaves the model guessing about `shape`, in a stable order."""
    name = shape.name
    out: list[Finding] = []
    if not shape.documented:
        out.append(
            Finding(
                "tool-no-docstring",
                "warning",
                f"tool {name!r} has no docstring: the model sees only its signature; say what it "
                "does, what it returns and in which unit",
            )
        )
    if not shape.has_signature:
        return out
    for p in shape.params:
        if p.star:
            continue
        if p.annotation is None:
            out.append(
                Finding(
                    "tool-no-annotation",
                    "warning",
                    f"parameter {p.name!r} of tool {name!r} has no type annotation: the model "
                    "has to guess what to pass, and arguments cannot be validated",
                    param=p.name,
                )
            )
        elif _unhelpful(p.annotation):
            out.append(
                Finding(
                    "tool-any-annotation",
                    "warning",
                    f"parameter {p.name!r} of tool {name!r} is annotated {p.annotation}: that "
                    "tells the model nothing; use a concrete type",
                    param=p.name,
                )
            )
    stars = [p for p in shape.params if p.star]
    if stars:
        out.append(
            Finding(
                "tool-varargs",
                "warning",
                f"tool {name!r} takes {' and '.join(p.star + p.name for p in stars)}: the model "
                "cannot know which arguments it accepts; list the parameters explicitly",
                param=stars[0].name,
            )
        )
    if shape.returns is None:
        out.append(
            Finding(
                "tool-no-return-annotation",
                "info",
                f"tool {name!r} has no return annotation: the model cannot know what it gets back",
                on_return=True,
            )
        )
    elif _unhelpful(shape.returns):
        out.append(
            Finding(
                "tool-any-annotation",
                "warning",
                f"tool {name!r} returns {shape.returns}: say what it returns",
                on_return=True,
            )
        )
    return out


def check_name(name: str) -> Finding | None:
    """A name the model cannot call as a tool (reserved), or one that hides a builtin."""
    if name in RESERVED:
        return Finding(
            "tool-reserved-name",
            "error",
            f"{name!r} is reserved by CodeAct (it ends the run); rename the tool",
        )
    if name in BUILTIN_NAMES:
        return Finding(
            "tool-shadows-builtin",
            "warning",
            f"tool {name!r} shadows the Python builtin {name}() in the model's code; give it a "
            "more specific name",
        )
    return None
