"""What generated code sees: persistent globals, values, errors at the right line, tool stubs."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from sandbox_helpers import Factory, Recorder

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import (
    ErrorLocation,
    Sandbox,
    SandboxPool,
    ToolReply,
    ToolRequest,
    ToolStub,
)


async def test_state_persists_across_snippets(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    assert (await sb.execute("x = 41\ndef inc(v):\n    return v + 1")).error is None
    r = await sb.execute("inc(x)")
    assert r.value == "42"


async def test_last_expression_value_and_none(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("a = [1, 2]\na + [3]")
    assert r.value == "[1, 2, 3]"
    assert (await sb.execute("a.append(9)")).value is None
    assert (await sb.execute("x = 1")).value is None
    assert (await sb.execute("_")).value == "[1, 2, 3]"


async def test_error_line_and_trimmed_traceback(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    code = "def f(d):\n    return d['missing']\n\nprint('before')\nf({})\nprint('after')"
    r = await sb.execute(code)
    assert r.stdout == "before\n"
    assert r.error is not None
    assert r.error.type == "KeyError"
    assert r.error.message == "'missing'"
    assert r.error.line == 2
    assert r.error.traceback.splitlines() == [
        "Traceback (most recent call last):",
        '  File "<snippet>", line 5, in <module>',
        "    f({})",
        '  File "<snippet>", line 2, in f',
        "    return d['missing']",
        "KeyError: 'missing'",
    ]
    assert "worker.py" not in r.error.traceback


async def test_stderr_is_captured(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("import sys\nprint('oops', file=sys.stderr)\nsys.stdout.write('x')")
    assert r.stderr == "oops\n"
    assert r.stdout == "x"


async def test_unserialisable_and_unprintable_exceptions(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    code = (
        "class Weird(Exception):\n"
        "    def __str__(self):\n"
        "        raise RuntimeError('no str')\n"
        "    def __repr__(self):\n"
        "        raise RuntimeError('no repr')\n"
        "raise Weird(object(), lambda: 1)"
    )
    r = await sb.execute(code)
    assert r.error is not None
    assert r.error.type == "Weird"
    assert r.error.line == 6
    assert "unprintable" in r.error.message
    r = await sb.execute("raise ValueError(object())")
    assert r.error is not None and r.error.message.startswith("<object object")
    assert (await sb.execute("1 + 1")).value == "2"


async def test_repr_failure_is_reported_not_fatal(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("class R:\n    def __repr__(self):\n        raise ValueError('x')\nR()")
    assert r.error is None
    assert r.value == "<repr failed: ValueError: x>"


async def test_syntax_error_message_and_line(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("x = 1\nif x\n    print(x)")
    assert r.error is not None
    assert r.error.type == "SyntaxError"
    assert r.error.line == 2
    assert "expected ':'" in r.error.message
    assert "^" in r.error.traceback


async def test_tool_round_trip_and_call_line(make_sandbox: Factory) -> None:
    rec = Recorder()
    sb = await make_sandbox(rec)
    r = await sb.execute("x = 2\ny = add(x, 3)\ny")
    assert r.value == "5"
    assert [(c.name, c.args, c.line) for c in rec.calls] == [("add", [2, 3], 2)]
    r = await sb.execute("echo(1, 'a', [None, True], k={'n': 1.5})")
    assert r.value == "{'args': [1, 'a', [None, True]], 'kwargs': {'k': {'n': 1.5}}}"


async def test_tool_stub_has_name_and_doc(make_sandbox: Factory) -> None:
    tools = [ToolStub(name="convert", signature="(x: int) -> int", doc="Convert money.")]
    sb = await make_sandbox(tools=tools)
    r = await sb.execute("(convert.__name__, convert.__doc__)")
    assert r.value == "('convert', 'Convert money.')"


async def test_tool_error_raises_at_the_calling_line(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("a = 1\nfail(\"unknown currency 'XYZ'\")")
    assert r.error is not None
    assert (r.error.type, r.error.message, r.error.line) == (
        "ValueError",
        "unknown currency 'XYZ'",
        2,
    )
    assert r.error.traceback.endswith("ValueError: unknown currency 'XYZ'")
    # the model can catch it like any ValueError
    r = await sb.execute("try:\n    fail('bad')\nexcept ValueError as e:\n    out = str(e)\nout")
    assert r.value == "'bad'"


async def test_tool_error_of_a_custom_type(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("fail('no stock', kind='shop.errors.OutOfStock')")
    assert r.error is not None
    assert (r.error.type, r.error.message) == ("OutOfStock", "no stock")
    r = await sb.execute(
        "try:\n    fail('x', kind='OutOfStock')\nexcept Exception as e:\n    n = type(e).__name__\nn"
    )
    assert r.value == "'OutOfStock'"


async def test_non_json_arguments_fail_inside_the_snippet(make_sandbox: Factory) -> None:
    rec = Recorder()
    sb = await make_sandbox(rec)
    r = await sb.execute("x = 1\nadd(object())")
    assert r.error is not None
    assert r.error.type == "TypeError"
    assert "add()" in r.error.message and "cannot be passed to a tool" in r.error.message
    assert r.error.line == 2
    assert rec.calls == []


async def test_handler_exception_becomes_a_tool_error(make_sandbox: Factory) -> None:
    def handler(req: ToolRequest) -> ToolReply:
        raise LookupError("handler broke")

    sb = await make_sandbox(handler)
    r = await sb.execute("add(1)")
    assert r.error is not None and (r.error.type, r.error.message) == (
        "LookupError",
        "handler broke",
    )


async def test_stop_ends_the_snippet_cleanly(make_sandbox: Factory) -> None:
    rec = Recorder()
    sb = await make_sandbox(rec)
    r = await sb.execute(
        "print('a')\ntry:\n    final_answer(42)\nexcept Exception:\n    print('caught')\nprint('b')"
    )
    assert r.stopped is True
    assert r.error is None
    assert r.stdout == "a\n"
    assert [c.name for c in rec.calls] == ["final_answer"]
    r = await sb.execute("1")
    assert r.stopped is False and r.value == "1"


async def test_result_that_has_no_wire_form_comes_back_as_a_marked_stand_in(
    make_sandbox: Factory,
) -> None:
    def handler(req: ToolRequest) -> ToolReply:
        return ToolReply(
            result={"when": object.__new__(type("Stamp", (), {"__repr__": lambda s: "Stamp()"}))}
        )

    sb = await make_sandbox(handler)
    assert (
        await sb.execute("add()")
    ).value == "{'when': <unserialisable test_behaviour.Stamp: Stamp()>}"


async def test_top_level_await_and_asyncio(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute(
        "import asyncio\nasync def f():\n    await asyncio.sleep(0)\n    return 7\nawait f()"
    )
    assert r.error is None and r.value == "7"
    r = await sb.execute("asyncio.run(f())")
    assert r.error is None and r.value == "7"


async def test_threads_tempfile_sqlite_work(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    code = (
        "import threading, tempfile, sqlite3, hashlib, zoneinfo, os\n"
        "out = []\n"
        "t = threading.Thread(target=lambda: out.append(1)); t.start(); t.join()\n"
        "with tempfile.NamedTemporaryFile('w', delete=False) as fh:\n"
        "    fh.write('hi')\n"
        "db = sqlite3.connect('db.sqlite'); db.execute('create table t(x)'); db.commit()\n"
        "(out, open(fh.name).read(), hashlib.sha256(b'').hexdigest()[:8],\n"
        " str(zoneinfo.ZoneInfo('Europe/Paris')), os.environ.get('HOME') == os.getcwd())"
    )
    r = await sb.execute(code)
    assert r.error is None, r.error
    assert r.value == "([1], 'hi', 'e3b0c442', 'Europe/Paris', True)"


async def test_site_packages_importable_by_default(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("import pydantic\npydantic.BaseModel.__name__")
    assert r.error is None, r.error
    r = await sb.execute(
        "import pydantic, os\nopen(os.path.join(os.path.dirname(pydantic.__file__), 'x'), 'w')"
    )
    assert r.error is not None and r.error.type in ("PermissionError", "OSError")


async def test_site_packages_can_be_disallowed(make_sandbox: Factory) -> None:
    sb = await make_sandbox(allow_site_packages=False)
    r = await sb.execute("import pydantic")
    assert r.error is not None and r.error.type == "ModuleNotFoundError"
    assert (await sb.execute("import json, sqlite3\n1")).value == "1"


async def test_extra_paths_importable_and_read_paths_readable(
    make_sandbox: Factory, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helper_mod.py").write_text("VALUE = 'from helper'\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "table.csv").write_text("a,b\n1,2\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    sb = await make_sandbox(extra_paths=(str(lib),), read_paths=[str(data)])
    r = await sb.execute(
        f"import helper_mod\n(helper_mod.VALUE, open({str(data / 'table.csv')!r}).read())"
    )
    assert r.error is None, r.error
    assert r.value == "('from helper', 'a,b\\n1,2\\n')"
    r = await sb.execute(f"open({str(data / 'new.txt')!r}, 'w')")
    assert r.error is not None and r.error.type == "PermissionError"
    r = await sb.execute(f"open({str(secret)!r}).read()")
    assert r.error is not None and r.error.type == "PermissionError"


async def test_output_is_capped_head_and_tail(make_sandbox: Factory) -> None:
    sb = await make_sandbox(output_kb=4)
    r = await sb.execute("for i in range(20000):\n    print(f'line {i}')")
    assert r.truncated is True
    assert r.stdout.startswith("line 0\nline 1\n")
    assert r.stdout.endswith("line 19999\n")
    assert "characters cut]" in r.stdout
    assert len(r.stdout) < 4 * 1024 + 100
    r = await sb.execute("print('small')")
    assert (r.stdout, r.truncated) == ("small\n", False)


async def test_long_value_repr_is_clipped(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("'x' * 1_000_000")
    assert r.value is not None and len(r.value) < 25_000 and "characters cut" in r.value


async def test_timeout_interrupts_and_keeps_state(make_sandbox: Factory) -> None:
    sb = await make_sandbox(timeout=1.0)
    await sb.execute("kept = 'yes'")
    t0 = time.monotonic()
    r = await sb.execute("n = 0\nwhile True:\n    n += 1")
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0 + 0.5
    assert r.timed_out is True and r.state_lost is False
    assert r.error is not None and r.error.type == "TimeoutError"
    assert r.error.line in (2, 3)
    r = await sb.execute("(kept, n > 0)")
    assert r.value == "('yes', True)"


async def test_per_call_timeout_overrides_setting(make_sandbox: Factory) -> None:
    sb = await make_sandbox(timeout=30)
    t0 = time.monotonic()
    r = await sb.execute("import time\ntime.sleep(60)", timeout=0.5)
    assert time.monotonic() - t0 < 0.5 + 0.5
    assert r.timed_out and r.error is not None and r.error.line == 2


async def test_timeout_that_swallows_the_interrupt_kills_and_restarts(
    make_sandbox: Factory,
) -> None:
    sb = await make_sandbox(timeout=0.5)
    await sb.execute("kept = 1")
    t0 = time.monotonic()
    r = await sb.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"
    )
    assert time.monotonic() - t0 < 0.5 + 0.5
    assert r.timed_out and r.state_lost
    assert r.error is not None and r.error.type == "TimeoutError" and "lost" in r.error.message
    r = await sb.execute("'kept' in globals()")
    assert (r.value, r.state_lost) == ("False", False)


async def test_timeout_during_a_slow_tool_call_keeps_state(make_sandbox: Factory) -> None:
    import threading

    gate = threading.Event()

    def handler(req: ToolRequest) -> ToolReply:
        gate.wait(10)
        return ToolReply(result=1)

    sb = await make_sandbox(handler, timeout=0.5)
    await sb.execute("kept = 2")
    r = await sb.execute("slow = add()")
    gate.set()
    assert r.timed_out and not r.state_lost
    assert r.error is not None and r.error.line == 1
    assert (await sb.execute("kept")).value == "2"


@pytest.mark.parametrize("backend", ["landlock", "bwrap"])
async def test_cpu_limit_is_enforced(make_sandbox: Factory, backend: str) -> None:
    sb = await make_sandbox(timeout=20, cpu_seconds=0.3, backend=backend)
    r = await sb.execute("x = 0\nwhile True:\n    x += 1")
    assert r.timed_out and r.error is not None and "CPU" in r.error.message


async def test_crash_is_reported_and_next_snippet_gets_a_fresh_worker(
    make_sandbox: Factory,
) -> None:
    sb = await make_sandbox()
    await sb.execute("kept = 1")
    old = sb.pid
    r = await sb.execute("print('bye')\nimport os\nos._exit(3)")
    assert r.state_lost is True
    assert r.error is not None and r.error.type == "SandboxCrash" and "status 3" in r.error.message
    r = await sb.execute("'kept' in globals()")
    assert r.value == "False" and r.error is None
    assert sb.pid != old


async def test_crash_by_signal(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert r.state_lost and r.error is not None and "SIGSEGV" in r.error.message
    assert (await sb.execute("2")).value == "2"


async def test_cancel_interrupts_and_sandbox_stays_usable(make_sandbox: Factory) -> None:
    loop = asyncio.get_running_loop()
    running = asyncio.Event()

    def handler(req: ToolRequest) -> ToolReply:
        loop.call_soon_threadsafe(running.set)  # the snippet is inside its loop from here on
        return ToolReply(result=None)

    sb = await make_sandbox(handler)
    await sb.execute("kept = 3")
    task = asyncio.create_task(sb.execute("import time\nadd()\nwhile True: time.sleep(0.01)"))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await sb.execute("kept")
    assert r.value == "3" and not r.state_lost


async def test_interrupt_method(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    calls: list[str] = []

    def handler(req: ToolRequest) -> ToolReply:
        calls.append(req.name)
        sb.interrupt()  # from the handler thread: the snippet is running for sure
        return ToolReply(result=None)

    sb.handler = handler
    assert sb._worker is not None
    sb._worker.handler = handler
    r = await sb.execute("add()\nwhile True: pass")
    assert r.cancelled and r.error is not None and r.error.type == "KeyboardInterrupt"
    assert r.error.line in (1, 2)  # in the tool call, or just after it


async def test_info_reports_enforced_layers(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    info = sb.info
    assert info.backend in ("landlock", "bwrap")
    layers = {item.split(":")[0] for item in info.isolation}
    assert {
        "filesystem",
        "environment",
        "network",
        "processes",
        "signals",
        "memory",
        "disk",
    } <= layers
    assert "cpu:watchdog+lifetime-rlimit" in info.isolation
    r = await sb.execute("1")
    assert r.sandbox == info


async def test_backend_none_degrades_loudly_and_require_isolation_refuses(
    make_sandbox: Factory,
) -> None:
    from codeact_lsp.sandbox import IsolationUnavailable

    sb = await make_sandbox(backend="none")
    assert sb.info.backend == "none"
    assert any(x.startswith("filesystem") for x in sb.info.not_enforced)
    assert (await sb.execute("1+1")).value == "2"
    with pytest.raises(IsolationUnavailable) as exc:
        await make_sandbox(backend="none", require_isolation=True)
    assert "filesystem" in str(exc.value)


async def test_close_kills_the_worker_and_removes_scratch(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    pid = sb.pid
    scratch = sb.scratch
    assert pid is not None and scratch is not None and os.path.isdir(scratch)
    fd = os.pidfd_open(pid)
    await sb.close()
    import select

    assert select.select([fd], [], [], 5)[0] == [fd]  # readable when the process has exited
    os.close(fd)
    with pytest.raises(Exception, match="closed"):
        await sb.execute("1")


async def test_many_sandboxes_in_parallel_are_independent(make_sandbox: Factory) -> None:
    boxes = await asyncio.gather(*(make_sandbox() for _ in range(4)))
    await asyncio.gather(*(b.execute(f"v = {i}") for i, b in enumerate(boxes)))
    results = await asyncio.gather(*(b.execute("v") for b in boxes))
    assert [r.value for r in results] == ["0", "1", "2", "3"]
    assert len({b.pid for b in boxes}) == 4


async def test_worker_on_error_keeps_running_after_system_exit(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute("import sys\nsys.exit(5)")
    assert r.error is not None and r.error.type == "SystemExit"
    assert (await sb.execute("3")).value == "3"


async def test_handler_is_called_off_the_event_loop(make_sandbox: Factory) -> None:
    import threading

    seen: list[str] = []

    def handler(req: ToolRequest) -> ToolReply:
        seen.append(threading.current_thread().name)
        return ToolReply(result=ErrorLocation(type="x", message="y").model_dump()["type"])

    sb = await make_sandbox(handler)
    assert (await sb.execute("add()")).value == "'x'"
    assert seen and seen[0] != threading.main_thread().name


async def test_forged_call_for_an_unknown_tool_is_refused(make_sandbox: Factory) -> None:
    rec = Recorder()
    sb = await make_sandbox(rec)
    code = (
        "import gc, json\n"
        "ch = [o for o in gc.get_objects() if type(o).__name__ == 'Worker'][0].chan\n"
        "ch.send_raw(json.dumps([999, 'not_a_tool', 1, [], {}]), 'C')\n"
        "ch.recv()[3]"
    )
    r = await sb.execute(code)
    assert r.value == "('NameError', \"no tool named 'not_a_tool'\")"
    assert rec.calls == []


async def test_stdout_buffer_and_print_flush(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    r = await sb.execute(
        "import sys\nsys.stdout.buffer.write('é\\n'.encode())\nprint('x', flush=True)"
    )
    assert r.error is None and r.stdout == "é\nx\n"


async def test_handler_raising_system_exit_is_a_tool_error(make_sandbox: Factory) -> None:
    def handler(req: ToolRequest) -> ToolReply:
        raise SystemExit("tool called exit")

    sb = await make_sandbox(handler)
    r = await sb.execute("add()")
    assert r.error is not None and (r.error.type, r.error.message) == (
        "SystemExit",
        "tool called exit",
    )
    assert (await sb.execute("add.__name__")).value == "'add'"


async def test_cancel_of_a_stubborn_snippet_reports_state_lost_next(make_sandbox: Factory) -> None:
    loop = asyncio.get_running_loop()
    running = asyncio.Event()

    def handler(req: ToolRequest) -> ToolReply:
        loop.call_soon_threadsafe(running.set)
        return ToolReply(result=None)

    sb = await make_sandbox(handler)
    await sb.execute("kept = 1")
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nadd()\nwhile True: pass"
    task = asyncio.create_task(sb.execute(code))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await sb.execute("'kept' in globals()")
    assert (r.value, r.state_lost) == ("False", True)
    assert (await sb.execute("1")).state_lost is False


async def test_missing_interpreter_is_a_clear_error(make_sandbox: Factory) -> None:
    from codeact_lsp.sandbox import SandboxError

    with pytest.raises(SandboxError, match="/nonexistent/python"):
        await make_sandbox(python="/nonexistent/python")


async def test_a_repr_that_never_returns_is_still_interrupted(make_sandbox: Factory) -> None:
    sb = await make_sandbox(timeout=0.5)
    r = await sb.execute("class Slow:\n    def __repr__(self):\n        while True: pass\nSlow()")
    assert not r.state_lost
    assert r.value is not None and "repr failed: KeyboardInterrupt" in r.value
    assert (await sb.execute("Slow.__name__")).value == "'Slow'"


async def test_relative_read_paths_resolve_in_the_workspace(
    pool: SandboxPool, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "prices.csv").write_text("eur,1\n")
    (ws / ".env").write_text("KEY=secret\n")
    settings = SandboxSettings(read_paths=["data"])
    sb = await Sandbox.start(settings, [], Recorder(), pool=pool, workspace=str(ws))
    try:
        assert sb.info.not_enforced == []
        r = await sb.execute(f"open({str(ws / 'data' / 'prices.csv')!r}).read()")
        assert r.value == "'eur,1\\n'"
        r = await sb.execute(f"open({str(ws / '.env')!r}).read()")
        assert r.error is not None and r.error.type == "PermissionError"
    finally:
        await sb.close()


async def test_granting_the_whole_workspace_is_reported(pool: SandboxPool, tmp_path: Path) -> None:
    settings = SandboxSettings(read_paths=["."])
    sb = await Sandbox.start(settings, [], Recorder(), pool=pool, workspace=str(tmp_path))
    try:
        assert any(m.startswith("workspace:") for m in sb.info.not_enforced)
    finally:
        await sb.close()


async def test_parallel_sandboxes_with_many_tool_calls(make_sandbox: Factory) -> None:
    def handler(req: ToolRequest) -> ToolReply:
        return ToolReply(result=[req.args[0], req.args[1] * 2])

    boxes = await asyncio.gather(*(make_sandbox(handler) for _ in range(4)))
    code = (
        "out = [add({i}, n) for n in range(300)]\nall(o == [{i}, 2 * n] for n, o in enumerate(out))"
    )
    results = await asyncio.gather(*(b.execute(code.format(i=i)) for i, b in enumerate(boxes)))
    assert [r.value for r in results] == ["True"] * 4


async def test_large_code_arguments_and_results(make_sandbox: Factory) -> None:
    def handler(req: ToolRequest) -> ToolReply:
        return ToolReply(result="y" * (3 * 1024 * 1024) + str(len(req.args[0])))

    sb = await make_sandbox(handler, memory_mb=1024, max_args_kb=8192)
    big_code = "x = 1\n" + "# filler\n" * 200_000 + "x + 1"
    assert (await sb.execute(big_code)).value == "2"
    r = await sb.execute("r = add('z' * (5 * 1024 * 1024))\n(len(r), r[-7:])")
    assert r.error is None and r.value == "(3145735, '5242880')"
    capped = await make_sandbox(handler, memory_mb=1024)  # the default cap: 1 MiB of arguments
    r = await capped.execute("add('z' * (5 * 1024 * 1024))")
    assert r.error is not None and r.error.type == "ValueError"
    assert "over the 1024 KiB limit (sandbox.max_args_kb)" in r.error.message


async def test_output_budget_is_shared_by_stdout_and_stderr(make_sandbox: Factory) -> None:
    sb = await make_sandbox(output_kb=4)
    r = await sb.execute("import sys\nprint('o' * 10000)\nprint('e' * 10000, file=sys.stderr)")
    assert r.truncated
    marker = len("\n… [00000 characters cut] …\n")
    assert len(r.stdout) + len(r.stderr) <= 4096 + 2 * marker
    assert r.stdout.startswith("ooo") and r.stderr.endswith("eee\n")
    r = await sb.execute("import sys\nprint('o' * 10000)\nprint('short', file=sys.stderr)")
    assert r.stderr == "short\n"  # a short stream keeps all of it; the long one gets the rest
    assert len(r.stdout) <= 4096 - len("short\n") + marker


async def test_thread_left_running_cannot_steal_the_channel(make_sandbox: Factory) -> None:
    sb = await make_sandbox(timeout=5)
    code = (
        "import threading\n"
        "res = []\n"
        "def f():\n"
        "    for i in range(300):\n"
        "        try:\n"
        "            res.append(add(i))\n"
        "        except RuntimeError as e:\n"
        "            res.append('refused')\n"
        "t = threading.Thread(target=f)\n"
        "t.start()\n"
        "add(1)"
    )
    assert (await sb.execute(code)).value == "1"
    for _ in range(3):  # steps keep working while the thread is still calling
        r = await sb.execute("len(res) >= 0")
        assert (r.value, r.state_lost, r.timed_out) == ("True", False, False)
    r = await sb.execute("t.join()\n(len(res), 'refused' in res or len(set(res)) > 1)")
    assert r.value == "(300, True)"


async def test_deep_nesting_in_a_thread_works(make_sandbox: Factory) -> None:
    sb = await make_sandbox()
    code = (
        "import threading, json\n"
        "out = []\n"
        "def f():\n"
        "    x = []\n"
        "    for _ in range(900):\n"
        "        x = [x]\n"
        "    out.append(len(json.dumps(x)))\n"
        "t = threading.Thread(target=f); t.start(); t.join()\n"
        "out"
    )
    r = await sb.execute(code)
    assert (r.value, r.state_lost) == ("[1802]", False)


THREADS_THAT_ALLOCATE = """
import threading
stop = threading.Event()
ok = []
def work():
    ok.append(len([bytearray(200) for _ in range(2000)]))
    stop.wait()
started = 0
try:
    for _ in range(40):
        threading.Thread(target=work, daemon=True).start()
        started += 1
except RuntimeError:
    pass
stop.set()
started
"""


async def test_threads_that_allocate_start_within_the_memory_limit(make_sandbox: Factory) -> None:
    """Each allocating thread used to get its own 64 MB malloc arena of address space, so only
    about 13 could start under memory_mb=512; the worker caps glibc's arenas."""
    sb = await make_sandbox(memory_mb=512)
    r = await sb.execute(THREADS_THAT_ALLOCATE)
    assert r.error is None, r.error
    assert r.value == "40"
