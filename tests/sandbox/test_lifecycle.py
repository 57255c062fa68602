"""Nothing outlives the server: workers and spares die with it, even when it is SIGKILLed."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox_helpers import Factory, Recorder

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool

HERE = Path(__file__).parent


def _wait_exit(pid: int, timeout: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.mark.parametrize("hostile", [False, True], ids=["idle", "hostile"])
@pytest.mark.parametrize("backend", ["landlock", "bwrap"])
def test_workers_die_when_the_server_is_killed(backend: str, hostile: bool) -> None:
    """`hostile`: the running snippet clears its PDEATHSIG and patches its exit first."""
    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "orphan_server.py"),
            backend,
            *(["hostile"] if hostile else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) >= 2, line
    fds = [os.pidfd_open(p) for p in pids]
    try:
        server.send_signal(signal.SIGKILL)
        server.wait()
        for pid, fd in zip(pids, fds, strict=True):
            assert select.select([fd], [], [], 10)[0] == [fd], f"worker {pid} outlived the server"
    finally:
        for fd in fds:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)  # a survivor of a failed run
            os.close(fd)


async def test_pool_close_kills_spares() -> None:
    pool = SandboxPool(spares=1)
    sb = await Sandbox.start(SandboxSettings(), [], Recorder(), pool=pool)
    spares = await pool.warmed()
    assert spares
    pids = [w.proc.pid for w in spares]
    await pool.close()
    assert all(_wait_exit(p, 10) for p in pids)
    # sandboxes already handed out keep working until closed
    assert (await sb.execute("1 + 1")).value == "2"
    await sb.close()


async def test_start_uses_the_warm_spare(make_sandbox: Factory, pool: SandboxPool) -> None:
    first = await make_sandbox()
    spares = await pool.warmed()
    spare_pids = {w.proc.pid for w in spares}
    second = await make_sandbox()
    assert second._worker is not None and second._worker.proc.pid in spare_pids
    assert first.pid != second.pid


async def test_other_interpreter(make_sandbox: Factory) -> None:
    system = "/usr/bin/python3"
    if not os.path.exists(system):  # the image always has it; keep the test meaningful anyway
        system = sys.executable
    sb = await make_sandbox(python=system)
    r = await sb.execute("import sys\nsys.executable")
    assert r.error is None and r.value == repr(system)
    assert (await sb.execute("add(2, 3)")).value == "5"


async def test_prewarm_starts_a_spare_for_those_settings() -> None:
    pool = SandboxPool(spares=1)
    try:
        pool.prewarm(SandboxSettings(timeout=5))
        spares = await pool.warmed()
        assert len(spares) == 1
        sb = await Sandbox.start(SandboxSettings(timeout=5), [], Recorder(), pool=pool)
        assert sb._worker is spares[0]
        await sb.close()
    finally:
        await pool.close()
