"""Sync calls from scripts, threads and running event loops; async calls; closing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from codeact_lsp.api import CodeAct

from .conftest import factorial


def test_sync_call_inside_a_running_event_loop(make_act: Callable[..., CodeAct]) -> None:
    """A notebook cell runs inside an event loop; the sync call must still work there."""
    act = make_act("n: int -> factorial: int", [factorial], "factorial")

    async def cell() -> int:
        asyncio.get_running_loop()  # a loop is running, as in Jupyter
        return int(act(n=5).factorial)

    assert asyncio.run(cell()) == 120


async def test_acall_and_concurrent_runs(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    results = await asyncio.gather(act.acall(n=3), act.acall(n=4), act.acall(n=5))
    assert [r.factorial for r in results] == [6, 24, 120]
    batch = await act.abatch([{"n": 2}, {"n": 6}], concurrency=2)
    assert [r.factorial for r in batch] == [2, 720]


def test_sync_calls_from_threads(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    out: dict[int, int] = {}

    def worker(n: int) -> None:
        out[n] = act(n=n).factorial

    threads = [threading.Thread(target=worker, args=(n,)) for n in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {3: 6, 4: 24}


def test_plain_script_with_context_manager(tmp_path: object) -> None:
    """The seed's example as a standalone script, in a fresh interpreter."""
    from .conftest import scripted_model

    script = f"""
from codeact_lsp import CodeAct

def factorial(n: int) -> int:
    "n! for n >= 0."
    return 1 if n <= 1 else n * factorial(n - 1)

with CodeAct("n: int -> factorial: int", tools=[factorial], model={scripted_model("factorial")!r}) as act:
    print(act(n=5).factorial)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "120"


def test_close_ends_the_object(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("n: int -> factorial: int", [factorial], "factorial")
    assert act(n=3).factorial == 6
    act.close()
    act.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        act(n=3)


def test_sandbox_timeout_is_real(make_act: Callable[..., CodeAct]) -> None:
    act = make_act("task -> answer: int", [factorial], "timeout", timeout=1.0)
    result = act(task="spin")
    assert result.ok, result.error
    assert result.answer == 0
    first = result.steps[0]
    assert first.error is not None
    assert first.status == "error"


def test_importing_the_api_stays_light() -> None:
    code = (
        "import sys\n"
        "from codeact_lsp import CodeAct, scripted\n"
        "heavy = [m for m in ('litellm', 'pygls', 'lsprotocol') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


async def test_cancelling_the_caller_cancels_the_run(make_act: Callable[..., CodeAct]) -> None:
    from codeact_lsp.api import PendingStep

    waiting = asyncio.Event()
    caller_loop = asyncio.get_running_loop()

    async def never_decides(step: PendingStep) -> None:
        caller_loop.call_soon_threadsafe(waiting.set)
        await asyncio.Event().wait()

    act = make_act("n: int -> factorial: int", [factorial], "factorial", approval=never_decides)
    call = asyncio.ensure_future(act.acall(n=5))
    await waiting.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # the run stopped before the cancellation reached us, and its record says so
    assert [r.status for r in act.history] == ["cancelled"]


def test_ctrl_c_in_a_script_cancels_the_run() -> None:
    """Ctrl-C during a sync call stops the run (kept in history) and the script can exit."""
    from .conftest import scripted_model

    script = f"""
import faulthandler, os, signal, threading
faulthandler.dump_traceback_later(40, exit=True)  # a hang shows where it is
from codeact_lsp import CodeAct

asked = threading.Event()

def review(step):
    asked.set()
    while True:  # a person who never answers (in short waits: a signal that lands between
        threading.Event().wait(0.05)  # CPython's check and its blocking call is not lost)

def press_ctrl_c():
    asked.wait()
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=press_ctrl_c, daemon=True).start()
act = CodeAct("n: int -> f: int", tools=[abs], model={scripted_model("factorial")!r}, approval=review)
try:
    act(n=5)
except KeyboardInterrupt:
    print("interrupted", [r.status for r in act.history])
act.close()
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupted ['cancelled']", proc.stderr


def test_tool_timeout_is_reported_in_the_step(make_act: Callable[..., CodeAct]) -> None:
    release = threading.Event()

    def slow() -> int:
        """Waits for a release that does not come in time."""
        release.wait(30)
        return 0

    act = make_act("task -> answer: int", [slow], "slow_tool", tool_timeout=0.3)
    try:
        result = act(task="call the slow tool")
    finally:
        release.set()
    assert result.ok, result.error
    first = result.steps[0]
    assert first.error is not None and first.error.type == "TimeoutError"
    assert first.tool_calls[0].error is not None and "0.3" in first.tool_calls[0].error


def test_a_forgotten_codeact_is_closed_when_collected() -> None:
    import gc

    from .conftest import scripted_model

    before = {t.ident for t in threading.enumerate() if t.name == "codeact-api"}
    act = CodeAct("n: int -> factorial: int", tools=[factorial], model=scripted_model("factorial"))
    assert act(n=3).factorial == 6
    loop_threads = [
        t for t in threading.enumerate() if t.name == "codeact-api" and t.ident not in before
    ]
    assert len(loop_threads) == 1
    del act
    gc.collect()
    loop_threads[0].join(timeout=30)
    assert not loop_threads[0].is_alive()


def test_generated_code_cannot_read_the_callers_secrets(
    make_act: Callable[..., CodeAct], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tools run in this process, generated code does not: it sees neither our environment nor
    our memory, even though the tools it calls do."""
    monkeypatch.setenv("CODEACT_API_SECRET", "s3cr3t-value")
    act = make_act("task -> answer: int", [factorial], "peek")
    result = act(task="peek")
    step = result.steps[0]
    assert "s3cr3t-value" not in step.stdout + step.stderr
    assert step.stdout.splitlines()[0] == "None"
    lines = step.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("refused") for line in lines[1:]), lines
    assert result.trajectory.sandbox.backend != "none"
    assert result.trajectory.sandbox.isolation


def test_on_event_sees_the_run_as_it_happens(make_act: Callable[..., CodeAct]) -> None:
    from codeact_lsp.engine import RunEvent

    seen: list[tuple[str, int | None]] = []
    threads: set[int] = set()

    def watch(event: RunEvent) -> None:
        seen.append((event.kind, event.step))
        threads.add(threading.get_ident())

    act = make_act("n: int -> factorial: int", [factorial], "factorial", on_event=watch)
    result = act(n=5)
    assert result.ok
    kinds = [k for k, _ in seen]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    for kind in ("step_proposed", "executing", "tool_called", "step_finished"):
        assert kind in kinds
    assert kinds.index("step_proposed") < kinds.index("executing") < kinds.index("step_finished")
    assert threads == {threading.get_ident()}, "sync calls deliver events on the caller's thread"

    def broken(event: RunEvent) -> None:
        raise RuntimeError("display crashed")

    act.on_event = broken
    with pytest.warns(RuntimeWarning, match="display crashed"):
        assert act(n=3).factorial == 6
