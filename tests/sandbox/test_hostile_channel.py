"""The tool channel under attack from the snippet (issue 11): pipe games, oversized and malformed
frames, forged results from leftover threads, deep and huge arguments.

Every attack runs while a second sandbox is asked for a trivial snippet: that request must be
answered within 1 s (the server's event loop and threads are never stuck behind the attacker),
and each case asserts what must not happen did not (the tool did not run, the result was not
forged) and that the attacked sandbox still works afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sandbox_helpers import Factory, Recorder
from test_redteam import CHAN

from codeact_lsp.sandbox import ExecResult, Sandbox, ToolReply, ToolRequest

RESPONSIVE_S = 1.0


async def while_responsive(
    make_sandbox: Factory, attack: Callable[[], Awaitable[ExecResult]]
) -> ExecResult:
    """Run `attack`; meanwhile another sandbox must answer trivial snippets within 1 s each."""
    other = await make_sandbox()
    assert (await other.execute("1")).value == "1"  # warm
    task = asyncio.ensure_future(attack())
    slowest = 0.0
    answered = 0
    while not task.done() or answered == 0:
        t = time.perf_counter()
        r = await other.execute("2 + 2")
        slowest = max(slowest, time.perf_counter() - t)
        assert r.value == "4"
        answered += 1
        await asyncio.sleep(0.05)
    assert slowest < RESPONSIVE_S, f"another request waited {slowest:.2f} s during the attack"
    return await task


async def still_works(sb: Sandbox) -> None:
    r = await sb.execute("add(2, 3)")
    assert r.error is None and r.value == "5", r


class BigReplies(Recorder):
    """`add` as usual; `big` answers with 1 MiB (what a worker that does not read piles up)."""

    def __call__(self, req: ToolRequest) -> ToolReply:
        if req.name == "big":
            self.calls.append(req)
            return ToolReply(result="x" * (1024 * 1024))
        return super().__call__(req)


async def test_flood_of_calls_whose_replies_are_never_read(make_sandbox: Factory) -> None:
    """Forged calls with big replies while the snippet stops reading: the replies wait in a
    bounded backlog (never a blocking write), then the worker is killed and the step says why."""
    from codeact_lsp.sandbox import ToolStub

    handler = BigReplies()
    tools = [ToolStub(name="add"), ToolStub(name="big")]
    sb = await make_sandbox(handler, tools=tools, max_result_kb=1024)
    code = CHAN + (
        "for i in range(40):\n"
        "    frame('C', [1000 + i, 'big', 1, [], {}])\n"
        "import time\n"
        "time.sleep(30)\n"
    )
    r = await while_responsive(make_sandbox, lambda: sb.execute(code, timeout=20))
    assert r.error is not None and r.error.type == "SandboxCrash"
    assert "stopped reading its channel" in r.error.message
    assert len(handler.calls) < 40  # it was stopped long before the flood ended
    assert r.duration_ms < 15_000
    await still_works(sb)  # a fresh worker, said out loud
    assert (await sb.execute("1")).state_lost is False


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("os.write(OUT, (2**31).to_bytes(4, 'little'))", "oversized message"),
        ("os.write(OUT, (5).to_bytes(4, 'little') + b'Jnot!')", "malformed JSON"),
        ("os.write(OUT, (3).to_bytes(4, 'little') + b'X{}')", "broke the protocol"),
        ("os.write(OUT, (3).to_bytes(4, 'little') + b'J\\xff\\xfe')", "malformed text"),
        (
            "frame('J', {'t': 'x' * 100000})",
            "message 'xxxx",
        ),
    ],
    ids=["oversized-header", "not-json", "unknown-tag", "bad-utf8", "huge-kind"],
)
async def test_malformed_frames_end_the_worker_with_the_reason(
    make_sandbox: Factory, payload: str, reason: str
) -> None:
    handler = Recorder()
    sb = await make_sandbox(handler)
    code = CHAN + payload + "\nimport time\ntime.sleep(30)\n"
    r = await while_responsive(make_sandbox, lambda: sb.execute(code, timeout=20))
    assert r.error is not None and r.error.type == "SandboxCrash", r.error
    assert reason in r.error.message
    assert len(r.error.message) < 1000  # echoed text is capped
    assert handler.calls == []
    await still_works(sb)


async def test_a_huge_frame_is_read_in_linear_time(make_sandbox: Factory) -> None:
    """A 48 MB frame (under the cap) costs the server one pass, not seconds of CPU: the other
    sandbox keeps its answers coming while it arrives."""
    handler = Recorder()
    sb = await make_sandbox(handler, memory_mb=1024)
    code = CHAN + (
        "data = b'J' + b'\"' + b'a' * (48 * 1024 * 1024) + b'\"'\n"
        "os.write(OUT, len(data).to_bytes(4, 'little') + data)\n"
        "import time\n"
        "time.sleep(30)\n"
    )
    r = await while_responsive(make_sandbox, lambda: sb.execute(code, timeout=20))
    assert r.error is not None and "broke the protocol" in r.error.message  # not a dict
    await still_works(sb)


async def test_leftover_thread_cannot_forge_the_next_steps_result(make_sandbox: Factory) -> None:
    """A thread from an earlier step writes "done" frames for every sequence number it could
    guess: results belong to a random per-request nonce, so the real result wins."""
    sb = await make_sandbox()
    await sb.execute(
        CHAN + "import threading\n"
        "go = threading.Event()\n"
        "def forge():\n"
        "    go.wait()\n"
        "    for seq in range(200):\n"
        "        frame('J', {'t': 'done', 'value': \"'forged'\", 'seq': seq})\n"
        "threading.Thread(target=forge, daemon=True).start()"
    )

    async def attack() -> ExecResult:
        return await sb.execute("go.set()\nimport time\ntime.sleep(0.3)\n'real'")

    r = await while_responsive(make_sandbox, attack)
    assert r.value == "'real'"
    assert (await sb.execute("40 + 2")).value == "42"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "deep = []\nfor _ in range(500):\n    deep = [deep]\nadd(deep)",
            "nested deeper than 64 levels",
        ),
        ("add('z' * (2 * 1024 * 1024))", "over the 1024 KiB limit"),
        ("add(lambda: 1)", "a function cannot be passed to a tool"),
        ("add(iter([1, 2]))", "list_iterator cannot be passed to a tool"),
    ],
    ids=["deep", "huge", "function", "iterator"],
)
async def test_deep_huge_and_unpassable_arguments_fail_in_the_snippet(
    make_sandbox: Factory, code: str, message: str
) -> None:
    handler = Recorder()
    sb = await make_sandbox(handler)
    r = await while_responsive(make_sandbox, lambda: sb.execute(code))
    assert r.error is not None and message in r.error.message, r.error
    assert handler.calls == []  # the tool never ran
    await still_works(sb)


async def test_forged_huge_call_frame_is_refused_before_the_tool(make_sandbox: Factory) -> None:
    """Written straight to the channel, past the stub's own size check."""
    handler = Recorder()
    sb = await make_sandbox(handler)
    code = CHAN + "frame('C', [7, 'add', 1, ['z' * (3 * 1024 * 1024)], {}])\nreply()"
    r = await while_responsive(make_sandbox, lambda: sb.execute(code))
    assert r.value is not None and "over the 1024 KiB limit" in r.value
    assert handler.calls == []


async def test_calls_per_step_are_capped(make_sandbox: Factory) -> None:
    handler = Recorder()
    sb = await make_sandbox(handler, max_tool_calls=50)
    r = await sb.execute("for i in range(60):\n    add(i, 1)")
    assert r.error is not None and "limit (sandbox.max_tool_calls)" in r.error.message
    assert len(handler.calls) == 50
    assert (await sb.execute("add(1, 1)")).value == "2"  # the count is per step


async def test_confirm_tools_need_the_steps_approval_however_reached(
    make_sandbox: Factory,
) -> None:
    """Served only while an approved snippet runs: by alias, getattr, globals(), eval, a forged
    frame, or a leftover thread, an unapproved step never reaches the tool."""
    from codeact_lsp.sandbox import ToolStub

    handler = Recorder()
    tools = [ToolStub(name="add"), ToolStub(name="add_danger", confirm=True)]
    sb = await make_sandbox(handler, tools=tools)
    ways: list[tuple[str, Any]] = [
        ("add_danger(1, 2)", "PermissionError"),
        ("f = globals()['add_' + 'danger']\nf(1, 2)", "PermissionError"),
        ("eval('add_' + 'danger(1, 2)')", "PermissionError"),
        ("[v for k, v in globals().items() if k.endswith('danger')][0](1, 2)", "PermissionError"),
    ]
    for code, kind in ways:
        r = await sb.execute(code)
        assert r.error is not None and r.error.type == kind, (code, r.error)
        assert "needs a person's approval" in r.error.message
    r = await sb.execute(CHAN + "frame('C', [5, 'add_danger', 1, [1, 2], {}])\nreply()")
    assert r.value is not None and "PermissionError" in r.value
    assert handler.calls == []
    approved = await sb.execute("add_danger(1, 2)", confirmed=True)
    assert approved.error is None and [c.name for c in handler.calls] == ["add_danger"]
