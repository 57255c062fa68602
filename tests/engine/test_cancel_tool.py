"""Cancelling a run stops the tool it is waiting on: nothing keeps going behind the user's back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.tools import ToolHost

TOOLS = '''
import time
from pathlib import Path

MARKS = Path(__file__).parent / "marks"


def slow_booking(seat: str) -> str:
    """Book a seat (takes a while)."""
    (MARKS / "started").write_text(seat)
    time.sleep(20)
    (MARKS / "booked").write_text(seat)
    return seat


def ping() -> str:
    """Answer at once."""
    return "pong"
'''


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[Engine, ToolHost, Path]]:
    ws = tmp_path / "ws"
    (ws / "marks").mkdir(parents=True)
    (ws / "tools.py").write_text(TOOLS)
    (ws / "pyproject.toml").write_text('[tool.codeact]\ntools = ["tools.py"]\n')
    config = load_config(ws).config
    host = ToolHost.start(ws, config)
    assert host.problem is None, host.problem
    eng = Engine(config, host, workspace=ws, runs_dir=tmp_path / "runs")
    yield eng, host, ws
    await eng.close()
    host.close_sync()


async def test_cancel_interrupts_the_tool_in_flight(
    engine: tuple[Engine, ToolHost, Path], tmp_path: Path
) -> None:
    eng, host, ws = engine
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["```python\nslow_booking('12A')\n```"]))
    handle = await eng.start(RunRequest(task="book 12A", model=f"scripted:{replies}"))
    while not (ws / "marks" / "started").exists():  # the tool is running now
        await asyncio.sleep(0.01)
    assert handle.cancel()
    async for _ in handle.subscribe():
        pass
    traj = handle.trajectory
    assert traj.status == "cancelled"
    # the call's record may land after the run's end under load; when it is there, it says
    # what happened to the booking
    for call in traj.steps[0].tool_calls:
        assert call.name == "slow_booking" and (call.error or "").startswith("CancelledError")
    # the host serves one call at a time: had the booking gone on, this call would wait for it
    outcome = await asyncio.to_thread(host.call_sync, "ping", [], {})
    assert outcome.ok
    assert not (ws / "marks" / "booked").exists(), "the cancelled booking went on"


async def test_a_cancelled_call_waiting_its_turn_never_starts(
    engine: tuple[Engine, ToolHost, Path],
) -> None:
    """Runs share one tool host, which serves one call at a time: a call cancelled while it
    waits behind another run's call must not run once that one ends."""
    import threading

    _, host, ws = engine
    outcomes: dict[str, object] = {}

    def call(key: str, name: str, *args: object) -> None:
        outcomes[key] = host.call_sync(name, list(args), {})

    first = threading.Thread(target=call, args=("first", "slow_booking", "1A"))
    first.start()
    while not (ws / "marks" / "started").exists():
        await asyncio.sleep(0.01)
    queued = threading.Thread(target=call, args=("queued", "slow_booking", "2B"))
    queued.start()
    while queued.ident not in host._waiting:  # behind the first call
        await asyncio.sleep(0.01)
    host.cancel(queued.ident)
    host.cancel(first.ident)  # end the first one too, so the test does not wait for it
    await asyncio.to_thread(first.join)
    await asyncio.to_thread(queued.join)
    result = outcomes["queued"]
    assert getattr(result, "error").type == "CancelledError", result  # noqa: B009
    assert (ws / "marks" / "started").read_text() == "1A"  # 2B never started
    assert not (ws / "marks" / "booked").exists()
