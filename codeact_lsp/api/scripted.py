"""Replay fixed replies instead of calling a model: for tests, demos and docs only.

The engine's stand-in is `model="scripted:PATH"`. `scripted([...])` writes the list to a temporary
file and returns that model string, so a test can keep its replies next to its assertions. Nothing
ever falls back to it: it is used only when a caller spells it out, and the trajectory is marked
`scripted: true` wherever it appears.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable

_made: list[str] = []


def scripted(replies: Iterable[str]) -> str:
    """Return a `scripted:PATH` model string that replays `replies` in order."""
    items = list(replies)
    if not all(isinstance(r, str) for r in items):
        raise TypeError("scripted replies must be strings (the model's whole reply text)")
    fd, path = tempfile.mkstemp(prefix="codeact-scripted-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(items, fh)
    _made.append(path)
    return f"scripted:{path}"


@atexit.register
def _cleanup() -> None:
    for path in _made:
        with contextlib.suppress(OSError):
            os.unlink(path)
