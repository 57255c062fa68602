"""Text from a run, made safe for a terminal: control sequences are shown, never interpreted.

Everything a run produces (the model's code, tool results, errors, the answer) is untrusted. Raw on
a terminal, an escape sequence in it can write the clipboard (OSC 52), retitle the window, move the
cursor to overwrite lines (hiding part of a step's code in the approval prompt), or reorder what is
shown (Unicode bidi overrides, "Trojan Source"). `visible` turns each such character into a
backslash escape, so the reviewer sees exactly what is there. Newlines and tabs stay. Only output
to a terminal is changed: pipes, files and `--json` get the exact text.
"""

from __future__ import annotations

from typing import TextIO

# bidi embeddings/overrides/isolates and marks, line/paragraph separators, BOM: they change how
# the text around them is displayed without being visible themselves
_FORMAT = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)
_FORMAT += (0xFEFF,)


def _table() -> dict[int, str]:
    table = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
    for keep in ("\n", "\t"):
        del table[ord(keep)]
    table.update({c: f"\\u{c:04x}" for c in _FORMAT})
    return table


_TABLE = _table()
_UNSAFE = frozenset(chr(c) for c in _TABLE)


def visible(text: str) -> str:
    """`text` with every control or display-reordering character written as an escape."""
    if text.isascii() and text.isprintable():  # the common case: nothing to do
        return text
    if _UNSAFE.isdisjoint(text):
        return text
    return text.translate(_TABLE)


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or exotic streams
        return False


def for_stream(text: str, stream: TextIO) -> str:
    """What to write to `stream`: made visible on a terminal, exact anywhere else."""
    return visible(text) if is_terminal(stream) else text
