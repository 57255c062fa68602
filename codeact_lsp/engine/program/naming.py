"""Names and types the accepted function is written with: readable, valid, and honest about types."""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from typing import Any

# Words that carry no meaning in a function name ("What is the price of ..." -> price).
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "much",
        "many",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "their",
        "them",
        "they",
        "me",
        "my",
        "i",
        "you",
        "your",
        "we",
        "our",
        "us",
        "please",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "tell",
        "give",
        "find",
        "get",
        "show",
        "let",
        "make",
        "compute",
        "calculate",
        "answer",
        "question",
        "task",
        "if",
        "then",
        "than",
        "so",
        "as",
        "into",
        "about",
        "each",
        "all",
        "any",
        "some",
    ]
)
_TYPING_NAMES = frozenset({"Any", "Optional", "Union", "Literal", "List", "Dict", "Tuple"})


def identifier(text: str, fallback: str = "run_task") -> str:
    """A snake_case name for `text` (an explicit name or a task), never a keyword or builtin clash."""
    words = re.findall(r"[a-z][a-z0-9]*", text.lower())
    chosen = [w for w in words if w not in _FILLER][:4] or words[:4]
    name = "_".join(chosen)
    if not name.isidentifier():
        name = fallback
    if keyword.iskeyword(name) or hasattr(builtins, name) or name == "final_answer":
        name += "_"
    return name


def explicit_identifier(text: str) -> str:
    """A name the user chose: kept as written when it is valid, else made valid."""
    text = text.strip()
    if text.isidentifier() and not keyword.iskeyword(text):
        return text
    return identifier(text)


def class_name(function: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in function.split("_") if p) + "Result"


def docstring(task: str, limit: int = 88) -> str:
    """The task's first line as a one-line docstring body (quotes and backslashes made safe)."""
    line = next((ln.strip() for ln in task.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    line = line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if line.endswith('"'):
        line = line[:-1] + '\\"'
    return line


def type_of_value(value: Any) -> str | None:
    """An annotation for a JSON value the run produced or was given (None: nothing sensible)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    for t in (int, float, str):
        if isinstance(value, t):
            return t.__name__
    if isinstance(value, list):
        inner = {type_of_value(v) for v in value}
        return f"list[{inner.pop()}]" if len(inner) == 1 and None not in inner else "list[Any]"
    if isinstance(value, dict):
        inner = {type_of_value(v) for v in value.values()}
        return (
            f"dict[str, {inner.pop()}]"
            if len(inner) == 1 and None not in inner
            else "dict[str, Any]"
        )
    return None


def typing_names(annotation: str) -> set[str]:
    """Names from `typing` an annotation needs imported (`Optional[int]` -> {"Optional"})."""
    try:
        tree = ast.parse(annotation, mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in _TYPING_NAMES}
