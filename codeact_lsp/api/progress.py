"""A one-line progress bar for `batch()`, drawn only on a terminal.

A dependency (tqdm, rich) for one line of text is not worth its import time or version pinning; and
logs, CI output and notebooks captured to files must stay free of carriage-return noise.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_WIDTH = 24


class Progress:
    """Counts finished items; redraws a single line on `stream` when it is a TTY."""

    def __init__(
        self, total: int, *, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.enabled = _is_tty(self._stream) if enabled is None else enabled
        if self.enabled:
            self._draw()

    def advance(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            if not ok:
                self.failed += 1
            if self.enabled:
                self._draw()

    def close(self) -> None:
        if self.enabled:
            with self._lock:
                self._stream.write("\n")
                self._stream.flush()

    def line(self) -> str:
        filled = _WIDTH * self.done // self.total if self.total else _WIDTH
        bar = "#" * filled + "." * (_WIDTH - filled)
        elapsed = time.monotonic() - self._started
        fail = f" · {self.failed} failed" if self.failed else ""
        return f"codeact [{bar}] {self.done}/{self.total}{fail} · {elapsed:.1f}s"

    def _draw(self) -> None:
        self._stream.write("\r" + self.line())
        self._stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
