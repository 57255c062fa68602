"""Reading the code out of a model reply (docs/contracts.md, "the action format").

Models wrap code in many ways; a parser that is strict about the wrapping wastes steps. A block the
model *labelled* as Python (or put in `<execute>` tags) runs as written: the parser never judges
that code. Unlabelled fences are where real replies go wrong: small models put the output they
expect ("This script will output:" and a fence), an answer ("Answer: 100") or an error message in
bare fences. So a bare fence counts as code only when no labelled block is present and it looks like
code: it parses, and it does more than state a value. Everything skipped is reported, so the model
can be told why nothing ran.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

_LABELLED_LANGS = {"python", "py", "python3", "py3", "ipython", "pycon"}

# A fence opens with ``` (or more) and an optional info string; it closes with a fence of at least
# the same length, or at the end of the reply (a model cut off mid-block still meant that code).
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_EXECUTE = re.compile(r"<execute>(.*?)(?:</execute>|\Z)", re.S | re.I)
# Lines of what a run prints when it fails: a labelled block made only of these is an echo of an
# observation (a real reply quoted "NameError: name 'Any' is not defined" in a python fence).
_OUTPUT_LINE = re.compile(
    r"^\s*(File \".*\", line \d+.*"
    r"|[A-Za-z_][\w.]*(Error|Exception|Warning|Interrupt|Exit)(: .*)?|\^+|Output:.*|Observation.*)\s*$"
)

NO_CODE_HINT = (
    "No code found in your reply. Each step must contain Python code in a ```python fenced block"
    " (or <execute>...</execute> tags); it runs in a persistent Python session where the tools are"
    " plain functions. Call final_answer(...) from code when you are done."
)
SKIPPED_HINT = (
    "Fences without the python label that look like output or prose (or that come next to a"
    " ```python block) are not run."
)


@dataclass
class ParsedReply:
    """The code of a reply, and the fenced blocks that were deliberately not run (and why)."""

    code: str | None
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Block:
    line: int
    body: str
    labelled: bool


def extract_code(reply: str) -> str | None:
    """All code blocks of a reply, in order, joined into one snippet; None when there is none."""
    return parse_reply(reply).code


def parse_reply(reply: str) -> ParsedReply:
    """The code of a reply (see the module docstring for which blocks count) and what was skipped."""
    text = reply.replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[_Block] = []
    for match in _EXECUTE.finditer(text):
        inner = match.group(1)
        fenced = _fenced_blocks(inner)
        line = text.count("\n", 0, match.start())
        if fenced:  # tags are an explicit label: every fence inside is code
            blocks += [_Block(line, b.body, True) for b in fenced]
        else:
            blocks.append(_Block(line, inner, True))
    # blank out the tags but keep their lines, so blocks of both kinds sort by line number
    outside = _EXECUTE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    blocks += _fenced_blocks(outside)
    blocks.sort(key=lambda b: b.line)
    for b in blocks:
        b.body = textwrap.dedent(b.body).strip("\n")
    blocks = [b for b in blocks if b.body.strip()]
    any_labelled = any(b.labelled for b in blocks)
    codes: list[str] = []
    skipped: list[str] = []
    for b in blocks:
        why = _skip_reason(b, any_labelled)
        if why is None:
            codes.append(b.body)
        else:
            skipped.append(why)
    return ParsedReply("\n\n".join(codes) if codes else None, skipped)


def _skip_reason(block: _Block, any_labelled: bool) -> str | None:
    """Why a block must not run, or None when it is code."""
    if block.labelled:
        return "an error message or output, not code" if _is_output_echo(block.body) else None
    if any_labelled:
        return "an unlabelled fence next to a ```python block"
    try:
        tree = ast.parse(block.body)
    except (SyntaxError, ValueError):
        return "an unlabelled fence that is not Python (output or prose)"
    if all(_states_a_value(stmt) for stmt in tree.body):
        return "an unlabelled fence that only states a value (output or an answer)"
    return None


def _is_output_echo(body: str) -> bool:
    """A labelled block that does not parse and is a traceback or only error/output lines."""
    try:
        ast.parse(body)
    except (SyntaxError, ValueError):
        lines = [ln for ln in body.split("\n") if ln.strip()]
        if any(ln.strip() == "Traceback (most recent call last):" for ln in lines):
            return True
        return bool(lines) and all(_OUTPUT_LINE.match(ln) for ln in lines)
    return False


def _states_a_value(stmt: ast.stmt) -> bool:
    """`Answer: 100`, `76.9`, `[1, 2]`, `done`: statements that compute and change nothing, as
    printed output and answers do when they happen to parse."""
    if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
        return isinstance(stmt.target, ast.Name)
    if isinstance(stmt, ast.Expr):
        return _inert(stmt.value)
    return False


def _inert(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.UnaryOp):
        return _inert(node.operand)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_inert(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _inert(k) for k in node.keys) and all(
            _inert(v) for v in node.values
        )
    return False


def _fenced_blocks(text: str) -> list[_Block]:
    """Each Python-ish fenced block: labelled python, or unlabelled (other languages are dropped)."""
    lines = text.split("\n")
    out: list[_Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        ticks = m.group("ticks")
        info = m.group("info").strip().lower()
        lang = info.split()[0] if info else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(ticks[0] * len(ticks)) and stripped.strip(ticks[0]) == "":
                break
            if ticks[0] == "`" and stripped.endswith(ticks) and not stripped.endswith("`" * 4):
                # `print(x)```: the model closed the fence at the end of the last code line
                body.append(lines[i].rstrip()[: -len(ticks)])
                break
            body.append(lines[i])
            i += 1
        i += 1  # skip the closing fence (or run past the end)
        labelled = lang in _LABELLED_LANGS or lang.startswith("python")
        if labelled or lang == "":
            out.append(_Block(start, "\n".join(body), labelled))
    return out


def reply_thought(reply: str, limit: int = 600) -> str:
    """The prose of a reply without its code (what the model said it would do)."""
    text = reply.replace("\r\n", "\n")
    text = _EXECUTE.sub("", text)
    lines = text.split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m:
            ticks = m.group("ticks")
            i += 1
            while i < len(lines) and not (
                lines[i].strip().startswith(ticks) and lines[i].strip().strip(ticks[0]) == ""
            ):
                i += 1
            i += 1
            continue
        kept.append(lines[i])
        i += 1
    thought = "\n".join(kept).strip()
    thought = re.sub(r"\n{3,}", "\n\n", thought)
    return thought if len(thought) <= limit else thought[: limit - 3] + "..."
