"""A workspace whose tools have side effects and count their real calls (the tests' oracle).

Each real call appends one JSON line to `calls.log` next to the tools, written by the tool itself
in the tool host process; the tests compare that file, not anything the engine reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from codeact_lsp.engine import RetryPolicy

TOOLS = '''\
"""Stateful tools: a booking with memory, a price lookup; every real call is logged."""

import json
from pathlib import Path

LOG = Path(__file__).with_name("calls.log")
_booked: list[str] = []


def _log(name: str, arg: object) -> None:
    with LOG.open("a", encoding="utf-8") as f:
        f.write(json.dumps([name, arg]) + "\\n")


def reserve(seat: str) -> list[str]:
    """Book `seat`; returns every seat this tool process has booked so far."""
    _log("reserve", seat)
    if seat in _booked:
        raise ValueError(f"seat {seat} is already booked")
    _booked.append(seat)
    return list(_booked)


def price(seat: str) -> int:
    """The price of `seat` in EUR."""
    _log("price", seat)
    return 10 + len(seat)


def booked() -> list[str]:
    """The seats this tool process has booked so far."""
    _log("booked", None)
    return list(_booked)
'''


def make_workspace(root: Path, extra_config: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tools.py").write_text(TOOLS, encoding="utf-8")
    (root / "codeact.toml").write_text('tools = ["tools.py"]\n' + extra_config, encoding="utf-8")
    return root


def real_calls(ws: Path) -> list[list[object]]:
    """Every real tool call so far, in order: [name, argument]."""
    log = ws / "calls.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def reset_calls(ws: Path) -> None:
    (ws / "calls.log").unlink(missing_ok=True)


def fast_retry() -> RetryPolicy:
    """Model retries that do not wait (the scripted model fails fast)."""
    return RetryPolicy(timeout=5.0, retries=3, base_delay=0.001, max_delay=0.01)
