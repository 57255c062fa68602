"""The tool host: the fixture's tools imported by a real child interpreter and called over pipes."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.tools import ToolHost, ToolProvider

from .conftest import line_of


def call(host: ToolHost, name: str, *args: Any, **kwargs: Any) -> Any:
    out = host.call_sync(name, list(args), kwargs)
    assert out.ok, out.error
    return out.result


def test_is_a_tool_provider(host: ToolHost) -> None:
    assert isinstance(host, ToolProvider)


def test_schemas_for_every_kind(host: ToolHost, ws: Path) -> None:
    schemas = {s.name: s for s in host.schemas()}
    expected = {
        "add": ("def add(a: int, b: int) -> int", "function"),  # quality.add loads last and wins
        "fetch_async": ("def fetch_async(key: str, delay: float = 0.0) -> dict[str, str]", "async"),
        "increment": ("def increment(by: int = 1) -> int", "method"),
        "multiply": ("def multiply(x: float) -> float", "callable"),
        "power_of_two": ("def power_of_two(exponent: int) -> int", "partial"),
        "gcd": ("def gcd(*integers)", "builtin"),
        "to_snake": ("def to_snake(camel: str) -> str", "function"),
        "greet": ("def greet(name: str) -> str", "function"),
        "area": ("def area(rect: Rect) -> float", "function"),
        "loud": ("def loud(text: str) -> str", "function"),
    }
    for name, (signature, kind) in expected.items():
        assert schemas[name].signature == signature, name
        assert schemas[name].kind == kind, name
    fetch = schemas["fetch_async"]
    assert fetch.is_async
    assert fetch.parameters == {
        "type": "object",
        "properties": {"key": {"type": "string"}, "delay": {"type": "number", "default": 0.0}},
        "required": ["key"],
    }
    assert fetch.returns == {"type": "object", "additionalProperties": {"type": "string"}}
    rect = schemas["area"].parameters["properties"]["rect"]
    assert rect["title"] == "Rect" and rect["required"] == ["width", "height"]
    assert schemas["power_of_two"].doc == "`base` raised to `exponent`."
    assert schemas["multiply"].doc == "Multiply `x` by the configured factor."
    assert schemas["delete_everything"].confirm and not schemas["area"].confirm
    assert schemas["increment"].file == str(ws / "kinds.py")
    assert schemas["increment"].line == line_of(ws / "kinds.py", "def increment")
    assert schemas["gcd"].file is None
    assert "helper_tool" not in schemas and "never_loaded" not in schemas
    assert "check_positive" not in schemas  # imported into quality.py: not a tool there
    assert all(s.validated for s in schemas.values())


def test_calls_of_every_kind(host: ToolHost) -> None:
    assert call(host, "fetch_async", "k") == {"key": "k", "value": "K"}
    first = call(host, "increment")
    assert call(host, "increment", by=2) == first + 2  # state lives in the host between calls
    assert call(host, "multiply", 2) == 5.0
    assert call(host, "power_of_two", 10) == 1024
    assert call(host, "gcd", 12, 18) == 6
    assert call(host, "to_snake", "CamelCase") == "camel_case"
    assert call(host, "greet", "Ada") == "Hello, Ada!"
    assert call(host, "scaled", 2) == 6  # a module global
    assert call(host, "loud", "hi") == "HI!"


def test_results_typed_or_a_marked_stand_in(host: ToolHost) -> None:
    point = host.call_sync("point", [1, 2], {})
    assert point.ok and point.shown == {"x": 1.0, "y": 2.0} and not point.result_is_repr
    assert point.result["$"] == "dataclass" and point.result["type"] == "kinds.Point"
    assert (point.value.x, point.value.y) == (1.0, 2.0)
    out = host.call_sync("odd_result", [], {})
    assert out.ok and out.result_is_repr
    assert out.result == {"$": "opaque", "type": "kinds.Opaque", "repr": "<Opaque 3>"}
    assert repr(out.value) == "<unserialisable kinds.Opaque: <Opaque 3>>"


def test_arguments_validated_and_converted(host: ToolHost) -> None:
    assert call(host, "area", {"width": 2, "height": 3}) == 6.0  # dict -> pydantic model
    bad = host.call_sync("area", [{"width": "wide"}], {})
    assert not bad.ok and bad.error is not None
    assert bad.error.type == "TypeError"
    assert "'rect'" in bad.error.message and "area()" in bad.error.message
    assert bad.bound_args == {"rect": {"width": "wide"}}
    wrong = host.call_sync("divide", ["ten", 2], {})
    assert wrong.error is not None and "argument 'a' should be float" in wrong.error.message
    missing = host.call_sync("divide", [1], {})
    assert missing.error is not None and missing.error.type == "TypeError"
    assert "missing a required argument: 'b'" in missing.error.message
    assert "def divide(a: float, b: float) -> float" in missing.error.message
    unknown = host.call_sync("no_such_tool", [], {})
    assert unknown.error is not None and unknown.error.type == "NameError"


def test_bound_args_by_parameter_name(host: ToolHost) -> None:
    out = host.call_sync("fetch_async", ["k"], {"delay": 0})
    assert out.bound_args == {"key": "k", "delay": 0}


def test_error_location_inside_the_tool(host: ToolHost, ws: Path) -> None:
    out = host.call_sync("divide", [1, 0], {})
    assert out.error is not None
    assert out.error.type == "ZeroDivisionError"
    assert out.error.file == str(ws / "kinds.py")
    assert out.error.line == line_of(ws / "kinds.py", "return a / b")
    assert "Traceback" in out.error.traceback and "runtime.py" not in out.error.traceback
    # raised in a helper module of the workspace: the innermost workspace frame
    neg = host.call_sync("positive_root", [-1], {})
    assert neg.error is not None and neg.error.file == str(ws / "helpers.py")
    assert neg.error.line == line_of(ws / "helpers.py", "raise ValueError")


def test_stdout_and_logging_captured(host: ToolHost) -> None:
    out = host.call_sync("chatty", [7], {})
    assert out.ok and out.result == 7
    assert "working on 7" in out.stdout
    assert "WARNING:kinds:careful with 7" in out.stdout
    assert "raw fd write" not in out.stdout  # went to the host's stderr, not the channel
    assert call(host, "add", 1, 2) == 3  # the channel is intact


def test_oversized_result_and_output_are_bounded(host: ToolHost) -> None:
    pid = host.pid
    out = host.call_sync("huge", [20_000_000], {})
    assert (
        out.error is not None
        and "over the" in out.error.message
        and "KiB limit" in out.error.message
    )
    chatty = host.call_sync("huge", [1], {"printed": 1_000_000})
    assert chatty.ok and len(chatty.stdout) < 70_000 and "characters cut" in chatty.stdout
    assert host.pid == pid


def test_sys_exit_does_not_end_the_host(host: ToolHost) -> None:
    pid = host.pid
    out = host.call_sync("quit_host", [], {})
    assert out.error is not None and out.error.type == "SystemExit"
    assert host.pid == pid and call(host, "add", 1, 2) == 3


def test_import_failures_are_diagnostics_at_the_failing_line(host: ToolHost, ws: Path) -> None:
    diags = {Path(d.file).name: d for d in host.diagnostics if d.code == "import-error"}
    assert diags["importfail.py"].line == line_of(
        ws / "broken" / "importfail.py", "import not_a_real"
    )
    assert "ModuleNotFoundError" in diags["importfail.py"].message
    assert diags["raises.py"].line == line_of(ws / "broken" / "raises.py", "raise RuntimeError")
    assert diags["syntax.py"].line == 5
    assert all(d.severity == "error" and d.source == "runtime" for d in diags.values())


def test_concurrent_calls_from_threads(host: ToolHost) -> None:
    results: list[Any] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for j in range(20):
            out = host.call_sync("add", [i, j], {})
            with lock:
                results.append((i + j, out.result))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and all(a == b for a, b in results)


@pytest.fixture
def own_host(ws: Path) -> Any:
    h = ToolHost.start(ws, load_config(ws).config, timeout=5)
    yield h
    h.close_sync()


def test_hung_tool_interrupted_state_kept(own_host: ToolHost, ws: Path) -> None:
    base = call(own_host, "increment", by=5)
    pid = own_host.pid
    out = own_host.call_sync("nap", [30], {}, timeout=0.5)
    assert not out.ok and out.timed_out and not out.restarted and out.error is not None
    assert out.error.type == "TimeoutError" and "within 0.5 s" in out.error.message
    # where it hung: the sleeping line inside the tool
    assert out.error.file == str(ws / "kinds.py")
    assert out.error.line == line_of(ws / "kinds.py", "time.sleep(seconds)")
    assert own_host.pid == pid
    assert call(own_host, "increment") == base + 1  # same host, same state


def test_hung_async_tool_cancelled_at_its_await(own_host: ToolHost, ws: Path) -> None:
    out = own_host.call_sync("fetch_async", ["k", 30], {}, timeout=0.5)
    assert out.timed_out and not out.restarted and out.error is not None
    assert out.error.line == line_of(ws / "kinds.py", "await asyncio.sleep(delay)")
    assert call(own_host, "fetch_async", "k") == {"key": "k", "value": "K"}


def test_tool_ignoring_the_interrupt_gets_the_host_restarted(own_host: ToolHost, ws: Path) -> None:
    call(own_host, "increment", by=5)
    pid = own_host.pid
    own_host.grace = 0.3
    out = own_host.call_sync("stubborn", [30], {}, timeout=0.3)
    assert not out.ok and out.restarted and out.timed_out and out.error is not None
    assert out.error.type == "TimeoutError" and "restarted" in out.error.message
    assert "did not respond to the interrupt" in out.error.message
    assert out.error.file == str(ws / "kinds.py")
    stubborn = line_of(ws / "kinds.py", "def stubborn")
    assert out.error.line is not None and stubborn < out.error.line < stubborn + 9
    assert own_host.pid != pid
    assert call(own_host, "increment") == 1  # state was lost, and said so
    assert call(own_host, "nap", 0) == "rested"


def test_crashed_host_restarted_and_reported(own_host: ToolHost, ws: Path) -> None:
    out = own_host.call_sync("die", [], {})
    assert not out.ok and out.restarted and out.error is not None
    assert out.error.type == "ToolHostError"
    assert "SIGKILL" in out.error.message and "'die'" in out.error.message
    assert out.error.file == str(ws / "kinds.py") and out.error.line == line_of(
        ws / "kinds.py", "def die"
    )
    assert call(own_host, "add", 2, 2) == 4
    assert own_host.restarts == 1


def test_host_killed_between_calls_is_respawned(own_host: ToolHost) -> None:
    import os
    import signal

    assert own_host.pid is not None
    os.kill(own_host.pid, signal.SIGKILL)
    # Wait for the death to be observable; a call racing it is reported as failed, never retried
    # (a retry could run a side effect twice).
    assert own_host._proc is not None
    own_host._proc.wait(timeout=10)
    assert call(own_host, "add", 1, 1) == 2


def test_restart_and_close(own_host: ToolHost) -> None:
    call(own_host, "increment", by=3)
    own_host.restart()
    assert call(own_host, "increment") == 1
    own_host.close_sync()
    out = own_host.call_sync("add", [1, 1], {})
    assert out.error is not None and "closed" in out.error.message


def test_bad_interpreter_is_a_problem_not_a_crash(ws: Path) -> None:
    host = ToolHost.start(ws, CodeActConfig(python="/nonexistent/python"))
    try:
        assert host.problem is not None and "/nonexistent/python" in host.problem
        assert host.schemas() == []
        out = host.call_sync("add", [1, 2], {})
        assert out.error is not None and "/nonexistent/python" in out.error.message
    finally:
        host.close_sync()


async def test_async_start_and_close(ws: Path) -> None:
    host = await ToolHost.astart(ws, CodeActConfig(tools=["pkg/tools.py"]), sys.executable)
    assert [s.name for s in host.schemas()] == ["loud"]
    assert host.call_sync("loud", ["a"], {}).result == "A!"
    await host.close()


def test_changed_and_restart_with_new_config(fresh_ws: Path) -> None:
    host = ToolHost.start(fresh_ws, CodeActConfig(tools=["pkg/tools.py"]), timeout=5)
    try:
        assert not host.changed()
        tools_py = fresh_ws / "pkg" / "tools.py"
        tools_py.write_text(
            tools_py.read_text()
            + '\n\ndef quiet(text: str) -> str:\n    """Lower."""\n    return text.lower()\n'
        )
        st = tools_py.stat()
        os.utime(tools_py, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert host.changed()
        host.restart()
        assert {s.name for s in host.schemas()} == {"loud", "quiet"}
        assert not host.changed()
        host.restart(CodeActConfig(tools=["quality.py"]))
        assert "no_hints" in {s.name for s in host.schemas()}
    finally:
        host.close_sync()


def test_big_arguments_and_results_cross_the_pipe(host: ToolHost) -> None:
    out = host.call_sync("huge", [1_000_000], {})  # far beyond a pipe's buffer
    assert out.ok and len(out.result) == 1_000_000
    snake = host.call_sync("to_snake", ["A" + "b" * 300_000], {})
    assert snake.ok and len(snake.result) == 300_001


def test_package_reexports_served(host: ToolHost, ws: Path) -> None:
    refill = host.schema("refill")
    assert refill is not None and refill.module == "shop"
    assert refill.signature == "def refill(sku: str, units: int = 1) -> int"
    assert refill.file == str(ws / "shop" / "ops.py")
    assert call(host, "refill", "A", 2) == 2 and call(host, "stock_count", "A") == 2


def test_close_during_a_call_does_not_wait_for_it(own_host: ToolHost) -> None:
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(own_host.call_sync("nap", [30], {})))
    worker.start()
    while not box and own_host.pid is not None:  # wait until the call is in the host
        if own_host._lock.locked():
            break
    own_host.close_sync()
    worker.join(10)
    assert box and box[0].error is not None and not box[0].ok
    assert own_host.pid is None


def test_concurrent_callers_while_one_hangs_never_hang(own_host: ToolHost) -> None:
    own_host.grace = 0.2
    outcomes: list[Any] = []
    lock = threading.Lock()

    def caller(name: str, args: list[Any], timeout: float | None) -> None:
        out = own_host.call_sync(name, args, {}, timeout=timeout)
        with lock:
            outcomes.append((name, out))

    threads = [threading.Thread(target=caller, args=("stubborn", [30], 0.2))]
    threads += [threading.Thread(target=caller, args=("add", [i, 1], 5)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == 7
    hung = next(out for name, out in outcomes if name == "stubborn")
    assert hung.timed_out and hung.restarted
    # the others ran before or after the restart: every one of them answered correctly
    bad = [out for name, out in outcomes if name == "add" and not out.ok]
    assert not bad, bad


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_host_exits_when_the_server_dies_even_mid_call(ws: Path) -> None:
    import subprocess
    import time

    script = (
        "import sys, threading\n"
        "from codeact_lsp.config import CodeActConfig\n"
        "from codeact_lsp.tools import ToolHost\n"
        f"h = ToolHost.start({str(ws)!r}, CodeActConfig(tools=['kinds.py']), timeout=60)\n"
        "print(h.pid, flush=True)\n"
        "threading.Thread(target=h.call_sync, args=('nap', [60], {})).start()\n"
        "sys.stdin.read()\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    host_pid = int(server.stdout.readline())
    server.kill()
    server.wait()
    deadline = time.monotonic() + 15
    while not _gone(host_pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a process we cannot wait for (not our child)
    assert _gone(host_pid)


def test_cancel_interrupts_the_running_tool_and_keeps_the_host(
    own_host: ToolHost, ws: Path
) -> None:
    base = call(own_host, "increment")
    pid = own_host.pid
    own_host.cancel()  # nothing running: a no-op
    for name, args, line in (
        ("nap", [30], "time.sleep(seconds)"),
        ("fetch_async", ["k", 30], None),
    ):
        box: list[Any] = []
        started = threading.Event()

        def run(name: str, args: list[Any], box: list[Any], started: threading.Event) -> None:
            started.set()
            box.append(own_host.call_sync(name, args, {}, timeout=20))

        worker = threading.Thread(target=run, args=(name, args, box, started))
        worker.start()
        started.wait()
        while not box:  # cancel until the call is seen running (the request may still be in flight)
            own_host.cancel()
            worker.join(0.1)
        out = box[0]
        assert out.error is not None and out.error.type == "CancelledError", out.error
        if line is not None:
            assert out.error.line == line_of(ws / "kinds.py", line)
    assert own_host.pid == pid and call(own_host, "increment") == base + 1
