"""The direct route (issue 11): generated code calls the tool host's tools without the server in
between, and keeps every property of the server's own channel.

Real processes throughout: a real tool host on a small workspace, real sandbox workers attached
to it. Hostile cases run while a second sandbox on the same host must get a host tool's answer
within 1 s, and each asserts what must not happen did not (the tool did not run, the record
stayed bounded) and that the attacked sandbox works afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeact_lsp.config import CodeActConfig, SandboxSettings
from codeact_lsp.sandbox import (
    ExecResult,
    Sandbox,
    SandboxPool,
    ToolReply,
    ToolRequest,
    ToolStub,
)
from codeact_lsp.tools import ToolHost

TOOLS_PY = '''
import os
import time

COUNT = {"n": 0}
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deleted.log")


class OutOfStock(ValueError):
    """Raised when nothing is left."""


def add(a: int, b: int) -> int:
    """Add two numbers."""
    COUNT["n"] += 1
    return a + b


def calls() -> int:
    """How many times add ran."""
    return COUNT["n"]


def big(n: int) -> str:
    """A string of n characters."""
    return "x" * n


def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "slept"


def take(item: str) -> int:
    """Take an item from stock."""
    raise OutOfStock(f"no {item} left")


def pair(x: int) -> tuple:
    """A tuple (stays a tuple in the snippet)."""
    return (x, str(x))


def delete_item(name: str) -> str:
    """Delete an item (needs a person's approval)."""
    with open(LOG, "a") as fh:
        fh.write(name + "\\n")
    return "deleted " + name
'''
NAMES = ("add", "calls", "big", "slow", "take", "pair", "delete_item")
# the worker's direct descriptors, for frames forged by the snippet itself
DIRECT = (
    "import gc, json, marshal, os\n"
    "W = [o for o in gc.get_objects() if type(o).__name__ == 'Worker'][0]\n"
    "DIN, DOUT = W.direct.rfd, W.direct.wfd\n"
    "def dframe(tag, obj):\n"
    "    data = (tag + json.dumps(obj)).encode()\n"
    "    os.write(DOUT, len(data).to_bytes(4, 'little') + data)\n"
    "def dreply():\n"
    "    n = int.from_bytes(os.read(DIN, 4), 'little')\n"
    "    data = b''\n"
    "    while len(data) < n:\n"
    "        data += os.read(DIN, n - len(data))\n"
    "    return marshal.loads(data)\n"
)
RESPONSIVE_S = 1.0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("direct_ws")
    (ws / "tools.py").write_text(TOOLS_PY)
    return ws


@pytest.fixture(scope="module")
def host(workspace: Path) -> Iterator[ToolHost]:
    cfg = CodeActConfig(tools=["tools.py"], confirm=["delete_*"])
    h = ToolHost.start(workspace, cfg, python=sys.executable, timeout=2.0)
    assert h.problem is None, h.problem
    yield h
    h.close_sync()


class Seen:
    """The server's side of one sandbox: calls its handler served (forwarded to the host, as the
    engine does) and the records the direct route delivered, in one ordered log."""

    def __init__(self, host: ToolHost) -> None:
        self.host = host
        self.log: list[tuple[str, str]] = []
        self.handled: list[ToolRequest] = []
        self.records: list[dict[str, Any]] = []
        self.omitted = 0

    def handler(self, req: ToolRequest) -> ToolReply:
        self.handled.append(req)
        self.log.append(("handler", req.name))
        if req.name == "final_answer":
            return ToolReply(stop=True)
        out = self.host.call_sync(req.name, req.args, req.kwargs)
        return ToolReply(result=out.result, error=out.error)

    def sink(self, calls: list[dict[str, Any]], omitted: int) -> None:
        self.records.extend(calls)
        self.omitted += omitted
        self.log.extend(("direct", c["name"]) for c in calls)


Make = Callable[..., Awaitable[tuple[Sandbox, Seen]]]


@pytest.fixture
async def make(host: ToolHost) -> AsyncIterator[Make]:
    pool = SandboxPool(spares=0)
    made: list[Sandbox] = []

    async def make_one(**settings: Any) -> tuple[Sandbox, Seen]:
        seen = Seen(host)
        stubs = [ToolStub(name=n, confirm=n.startswith("delete_")) for n in NAMES]
        stubs.append(ToolStub(name="final_answer"))
        sb = await Sandbox.start(
            SandboxSettings(**settings),
            stubs,
            seen.handler,
            python=sys.executable,
            pool=pool,
            direct=host.direct_route,
            on_direct=seen.sink,
            exceptions=host.exceptions,
        )
        made.append(sb)
        return sb, seen

    yield make_one
    for sb in made:
        await sb.close()
    pool._kill_all()


async def while_responsive(make: Make, attack: Callable[[], Awaitable[ExecResult]]) -> ExecResult:
    """Run `attack`; meanwhile another sandbox on the same host must get a host tool's answer
    within 1 s each time (neither the server nor the host is stuck behind the attacker)."""
    other, _ = await make()
    assert (await other.execute("add(1, 1)", direct=True)).value == "2"  # warm
    task = asyncio.ensure_future(attack())
    slowest = 0.0
    answered = 0
    while not task.done() or answered == 0:
        t = time.perf_counter()
        r = await other.execute("add(2, 2)", direct=True)
        slowest = max(slowest, time.perf_counter() - t)
        assert r.value == "4", r
        answered += 1
        await asyncio.sleep(0.05)
    assert slowest < RESPONSIVE_S, f"another request waited {slowest:.2f} s during the attack"
    return await task


async def still_works(sb: Sandbox) -> None:
    r = await sb.execute("add(2, 3)", direct=True)
    assert r.error is None and r.value == "5", r


# --- behaviour -----------------------------------------------------------------------------------


async def test_host_tools_are_served_by_the_host_and_recorded_in_call_order(make: Make) -> None:
    sb, seen = await make()
    r = await sb.execute("x = add(2, 3)\ny = pair(x)\nfinal_answer(y)", direct=True)
    assert r.error is None and r.stopped
    # the server's handler saw only final_answer; the host's calls came back as records, first
    assert [q.name for q in seen.handled] == ["final_answer"]
    assert seen.log == [("direct", "add"), ("direct", "pair"), ("handler", "final_answer")]
    add, pair = seen.records
    assert add["args"] == {"a": 2, "b": 3} and add["result"] == 5 and add["line"] == 1
    assert add.get("wire") is None and add["duration_ms"] >= 0
    assert pair["result"] == [5, "5"] and pair["wire"] == {"$": "tuple", "v": [5, "5"]}
    r = await sb.execute("type(y).__name__", direct=True)
    assert r.value == "'tuple'"  # the typed codec, on this route too


async def test_a_step_run_without_direct_goes_through_the_handler(make: Make) -> None:
    """Replayed steps (answered from the record) and the prelude run this way."""
    sb, seen = await make()
    r = await sb.execute("add(20, 22)")
    assert r.value == "42"
    assert [q.name for q in seen.handled] == ["add"] and seen.records == []


async def test_a_tool_error_keeps_its_class_and_location(make: Make, workspace: Path) -> None:
    sb, seen = await make()
    code = (
        "try:\n"
        "    take('apples')\n"
        "except OutOfStock as exc:\n"
        "    caught = ('OutOfStock', isinstance(exc, ValueError), str(exc))\n"
        "caught"
    )
    r = await sb.execute(code, direct=True)
    assert r.value == "('OutOfStock', True, 'no apples left')", r
    (rec,) = seen.records
    assert rec["error"] == "OutOfStock: no apples left"
    assert rec["error_detail"]["file"] == str(workspace / "tools.py")
    assert rec["line"] == 2


async def test_confirm_tools_are_refused_unless_the_step_was_approved(
    make: Make, workspace: Path
) -> None:
    log = workspace / "deleted.log"
    log.unlink(missing_ok=True)
    sb, seen = await make()
    code = (
        "out = []\n"
        "name = 'delete_' + 'item'\n"
        "for way in (lambda: globals()[name]('a'), lambda: eval(name + \"('b')\")):\n"
        "    try:\n"
        "        way()\n"
        "    except PermissionError as exc:\n"
        "        out.append(str(exc)[:40])\n"
        "out"
    )
    r = await sb.execute(code, direct=True)
    assert r.value is not None and r.value.count("needs a person's approval") == 2, r
    assert not log.exists()  # the tool never ran
    assert [x["name"] for x in r.refused] == ["delete_item", "delete_item"]
    assert seen.records == [] and seen.handled == []
    # a frame written straight to the host's pipe is refused the same way
    forged = DIRECT + "dframe('C', [777, 'delete_item', 1, ['c'], {}])\ndreply()[3][0]"
    r = await sb.execute(forged, direct=True)
    assert r.value == "'PermissionError'", r
    assert not log.exists()
    r = await sb.execute("delete_item('d')", direct=True, confirmed=True)
    assert r.value == "'deleted d'" and log.read_text() == "d\n"
    assert [x["name"] for x in seen.records] == ["delete_item"]


async def test_per_step_call_cap_and_bounded_record(make: Make) -> None:
    sb, seen = await make(max_tool_calls=5, max_recorded_calls=3)
    code = "n = 0\ntry:\n    for _ in range(10):\n        add(1, 1)\n        n += 1\nexcept RuntimeError as e:\n    msg = str(e)\n(n, msg[:60])"
    r = await sb.execute(code, direct=True)
    assert r.value is not None and r.value.startswith(
        "(5, 'add(): this step already made 5 tool"
    ), r
    assert len(seen.records) == 3 and seen.omitted == 2
    r = await sb.execute("add(1, 2)", direct=True)  # the cap is per step
    assert r.value == "3"


async def test_the_record_cap_counts_across_live_flushes(make: Make) -> None:
    """Records handed over while a step runs still count toward max_recorded_calls."""
    sb, seen = await make(max_recorded_calls=3)
    code = "import time\nfor i in range(8):\n    add(i, 0)\n    time.sleep(0.3)\n"
    r = await sb.execute(code, direct=True)
    assert r.error is None, r
    assert [x["result"] for x in seen.records] == [0, 1, 2] and seen.omitted == 5


async def test_records_are_clipped_like_the_servers_own(make: Make) -> None:
    sb, seen = await make(record_kb=1)
    r = await sb.execute("len(big(5000))", direct=True)
    assert r.value == "5000"
    (rec,) = seen.records
    assert isinstance(rec["result"], str) and "[clipped: " in rec["result"]
    assert len(rec["result"]) < 1200


async def test_a_result_over_the_hosts_reply_cap_is_an_error_the_step_survives(
    make: Make, host: ToolHost
) -> None:
    """The host's reply cap (sandbox.max_result_kb) holds on the direct route too: the snippet
    gets the same advice as on the server's route, the call is recorded as failed, and the
    step goes on."""
    sb, seen = await make()
    over = host.max_reply + 1024
    code = f"try:\n    big({over})\nexcept ValueError as exc:\n    why = str(exc)\n(why, add(1, 2))"
    r = await sb.execute(code, direct=True)
    assert r.error is None, r.error
    limit = f"over the {host.max_reply // 1024} KiB limit; return less"
    assert r.value is not None and limit in r.value and r.value.endswith(", 3)"), r.value
    assert [c["name"] for c in seen.records] == ["big", "add"]
    assert limit in seen.records[0]["error"] and "result" not in seen.records[0]


async def test_calls_outside_a_step_are_refused_by_the_host(make: Make, host: ToolHost) -> None:
    """A frame on the host's pipe while no step is open there (a step run without direct, or a
    thread left from an earlier step) does not run the tool: nobody would record it."""
    sb, _seen = await make()
    before = host.call_sync("calls", [], {}).result
    r = await sb.execute(DIRECT + "dframe('C', [1, 'add', 1, [1, 2], {}])\ndreply()[3]")
    assert r.value == "('RuntimeError', 'tools can only be called during a step', None, None)", r
    assert host.call_sync("calls", [], {}).result == before


async def test_a_timeout_while_a_host_call_is_in_flight(make: Make) -> None:
    sb, _ = await make(timeout=2)  # also each host call's own limit on this route
    t = time.perf_counter()
    r = await sb.execute("slow(30)", timeout=0.5, direct=True)
    assert r.error is not None and r.error.type == "TimeoutError", r.error
    assert time.perf_counter() - t < 10  # the step ended long before the tool would have
    # the host interrupts the tool at its own limit (2 s) and serves again, state kept
    r = await sb.execute("add(1, 1)", timeout=20, direct=True)
    assert r.value == "2", r


async def test_cancelling_while_a_host_call_is_in_flight(make: Make) -> None:
    sb, _ = await make()
    task = asyncio.ensure_future(sb.execute("slow(1.5)", direct=True))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await sb.execute("add(1, 1)", direct=True)
    assert r.value == "2", r


async def test_a_restarted_host_falls_back_to_the_handler(make: Make, host: ToolHost) -> None:
    sb, seen = await make()
    assert (await sb.execute("add(1, 1)", direct=True)).value == "2"
    host.restart()
    r = await sb.execute("add(2, 2)", direct=True)
    assert r.value == "4", r
    assert [q.name for q in seen.handled] == ["add"]  # the server served it


# --- hostile -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("os.write(DOUT, (2**31).to_bytes(4, 'little'))", "oversized message"),
        ("os.write(DOUT, (5).to_bytes(4, 'little') + b'Cnot!')", "malformed JSON"),
        ("dframe('J', {'t': 'done'})", "not a tool call"),
        ("os.write(DOUT, (3).to_bytes(4, 'little') + b'C\\xff\\xfe')", "malformed text"),
    ],
    ids=["oversized-header", "not-json", "not-a-call", "bad-utf8"],
)
async def test_malformed_frames_on_the_host_pipe_end_the_worker(
    make: Make, payload: str, reason: str
) -> None:
    sb, _seen = await make()
    code = DIRECT + payload + "\nimport time\ntime.sleep(30)\n"
    r = await while_responsive(make, lambda: sb.execute(code, timeout=20, direct=True))
    assert r.error is not None and r.error.type == "SandboxCrash", r.error
    assert reason in r.error.message
    assert r.duration_ms < 10_000
    await still_works(sb)


async def test_a_flood_whose_replies_are_never_read_is_cut_off(make: Make) -> None:
    sb, _ = await make(max_result_kb=1024)
    code = DIRECT + (
        "for i in range(60):\n"
        "    dframe('C', [1000 + i, 'big', 1, [1 << 20], {}])\n"
        "import time\n"
        "time.sleep(30)\n"
    )
    r = await while_responsive(make, lambda: sb.execute(code, timeout=20, direct=True))
    assert r.error is not None and r.error.type == "SandboxCrash", r.error
    assert "stopped reading its channel" in r.error.message
    assert r.duration_ms < 15_000
    await still_works(sb)


async def test_deep_and_huge_arguments_on_the_direct_route(make: Make) -> None:
    sb, seen = await make(max_args_kb=64)
    code = (
        "out = []\n"
        "deep = []\n"
        "for _ in range(5000):\n"
        "    deep = [deep]\n"
        "for arg in (deep, 'x' * 200_000):\n"
        "    try:\n"
        "        add(arg, 1)\n"
        "    except (TypeError, ValueError) as exc:\n"
        "        out.append(type(exc).__name__)\n"
        "out"
    )
    r = await sb.execute(code, direct=True)
    assert r.value == "['TypeError', 'ValueError']", r
    # a forged frame over the argument cap is refused by the host itself
    forged = DIRECT + "dframe('C', [5, 'add', 1, ['x' * 100_000, 1], {}])\ndreply()[3][0]"
    r = await sb.execute(forged, direct=True)
    assert r.value == "'ValueError'", r
    assert seen.records == []


async def test_an_unfinished_frame_stalls_nobody_and_ends_the_worker(make: Make) -> None:
    """Half a call, then silence: the host reads without blocking (others are served), the
    step times out, and the channel that cannot be used any more gets the worker replaced."""
    sb, _ = await make()
    code = DIRECT + (
        "os.write(DOUT, (1000).to_bytes(4, 'little') + b'C[1, \"add\"')\n"
        "import time\n"
        "time.sleep(30)\n"
    )
    r = await while_responsive(make, lambda: sb.execute(code, timeout=1, direct=True))
    assert r.error is not None and r.error.type == "TimeoutError", r.error
    assert r.state_lost  # the worker was replaced at the end of the step, and it says so
    await still_works(sb)


async def test_the_runs_own_confirm_names_are_enforced_by_the_host(
    make: Make, host: ToolHost
) -> None:
    """A tool the run flags (its `confirm` globs) but the tool layer did not: refused on this
    route too unless the step was approved, and the tool does not run."""
    sb, _ = await make()
    before = host.call_sync("calls", [], {}).result
    r = await sb.execute("f = add\nf(1, 2)", direct=True, flagged={"add"})
    assert r.error is not None and r.error.type == "PermissionError", r
    assert [x["name"] for x in r.refused] == ["add"]
    assert host.call_sync("calls", [], {}).result == before
    r = await sb.execute("add(1, 2)", direct=True, flagged={"add"}, confirmed=True)
    assert r.value == "3", r


async def test_a_long_step_delivers_its_records_while_it_runs(make: Make) -> None:
    """The live view sees the host's calls during a long step, not only at its end; none is
    delivered twice."""
    sb, seen = await make()
    task = asyncio.ensure_future(
        sb.execute("add(1, 1)\nadd(2, 2)\nimport time\ntime.sleep(30)", direct=True)
    )
    for _ in range(500):
        if len(seen.records) == 2 or task.done():
            break
        await asyncio.sleep(0.02)
    assert not task.done() and [r["result"] for r in seen.records] == [2, 4]
    sb.interrupt()
    r = await task
    assert r.cancelled
    assert [r["result"] for r in seen.records] == [2, 4]


async def test_a_worker_that_closes_its_end_of_the_host_pipe_is_replaced(make: Make) -> None:
    """The host's reply then cannot be written: the connection is cut and the worker replaced
    (no busy loop on the dead pipe, others served meanwhile)."""
    sb, _ = await make()
    code = DIRECT + "os.close(DIN)\nadd(1, 1)\n"
    r = await while_responsive(make, lambda: sb.execute(code, timeout=20, direct=True))
    assert r.error is not None, r
    # the cut may land before or after this step answered: one of the two steps says so
    after = await sb.execute("add(2, 3)", direct=True)
    assert after.value == "5" and (r.state_lost or after.state_lost), (r, after)
