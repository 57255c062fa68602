"""Reading the code out of a model reply (DESIGN.md §3, "the action format").

Models wrap code in many ways; a parser that is strict about the wrapping wastes steps. But it must
never judge the code itself: anything inside a fence or `<execute>` tag runs as written.
"""

from __future__ import annotations

import re
import textwrap

_CODE_LANGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}

# A fence opens with ``` (or more) and an optional info string; it closes with a fence of at least
# the same length, or at the end of the reply (a model cut off mid-block still meant that code).
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_EXECUTE = re.compile(r"<execute>(.*?)(?:</execute>|\Z)", re.S | re.I)

NO_CODE_HINT = (
    "No code found in your reply. Each step must contain Python code in a ```python fenced block"
    " (or <execute>...</execute> tags); it runs in a persistent Python session where the tools are"
    " plain functions. Call final_answer(...) from code when you are done."
)


def extract_code(reply: str) -> str | None:
    """All code blocks of a reply, in order, joined into one snippet; None when there is none."""
    text = reply.replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[tuple[int, str]] = []
    for match in _EXECUTE.finditer(text):
        inner = match.group(1)
        fenced = _fenced_blocks(inner)
        body = "\n\n".join(b for _, b in fenced) if fenced else inner
        blocks.append((match.start(), body))
    # blank out the tags but keep their lines, so blocks of both kinds sort by line number
    outside = _EXECUTE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    ordered = [(text.count("\n", 0, pos), body) for pos, body in blocks]
    ordered += _fenced_blocks(outside)
    ordered.sort(key=lambda item: item[0])
    codes = [textwrap.dedent(body).strip("\n") for _, body in ordered]
    codes = [c for c in codes if c.strip()]
    return "\n\n".join(codes) if codes else None


def _fenced_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of each Python-ish fenced block."""
    lines = text.split("\n")
    out: list[tuple[int, str]] = []
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
        if lang in _CODE_LANGS or lang.startswith("python"):
            out.append((start, "\n".join(body)))
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
