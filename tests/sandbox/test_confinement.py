"""Issue 12's confinement classes, each as a family of attacks against the default backend.

1-4 (other processes' scheduling, file metadata outside scratch, host sockets and the abstract
namespace, kernel memory outside the memory limit) are the table in confinement_cases.py: run
here as the server's user, and again as `nobody` when that user is root. 5 (code that outlives
its step) is checked on the worker's process state. Counted in the attack summary per backend.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confinement_cases import CASES, Case, ConfEnv, make_env, run_case
from conftest import ATTACK_RESULTS
from sandbox_helpers import TOOLS, Factory, Recorder

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool

HERE = Path(__file__).parent


@pytest.fixture
def cenv(tmp_path: Path) -> Iterator[ConfEnv]:
    e = make_env(tmp_path / "host")
    yield e
    e.close()


def _record(sb: Sandbox, name: str, blocked: bool) -> None:
    ATTACK_RESULTS.setdefault(sb.info.backend, {})[name] = blocked


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("backend", ["auto", "bwrap"])
async def test_confinement_attack_is_blocked(
    backend: str, case: Case, make_sandbox: Factory, cenv: ConfEnv
) -> None:
    sb = await make_sandbox(backend=backend, timeout=30, memory_mb=case.memory_mb, disk_mb=8)
    blocked, detail = await run_case(case, sb, cenv)
    _record(sb, case.id, blocked)
    assert blocked, f"{case.id} got through: {detail}"


@pytest.mark.parametrize("backend", ["auto", "bwrap"])
async def test_the_reported_memory_limit_is_the_one_in_force(
    backend: str, make_sandbox: Factory
) -> None:
    """The trajectory's kernel-memory entry names the limit that holds: with a cgroup, the one
    written in the worker's own cgroup (the worker itself in it, also inside bubblewrap); without
    one, the seccomp caps and their bound."""
    sb = await make_sandbox(backend=backend, memory_mb=100, disk_mb=10)
    entry = next(x for x in sb.info.isolation if x.startswith("kernel-memory:"))
    cg = sb._cgroup
    if entry.startswith("kernel-memory:cgroup"):
        assert cg is not None and cg.memory_mb == 100 + 10 + 32
        assert f"{cg.memory_mb} MB" in entry
        limits = [d / f for d in cg.dirs for f in ("memory.max", "memory.limit_in_bytes")]
        limit_file = next(f for f in limits if f.exists())
        assert int(limit_file.read_text()) == cg.memory_mb << 20
        for d in cg.dirs:  # memory and pids: the worker's own pid is in each
            assert str(sb.pid) in (d / "cgroup.procs").read_text().split()
    else:
        assert entry.startswith("kernel-memory:seccomp caps")
        assert cg is None or cg.memory_mb is None


async def test_threads_are_capped_without_a_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the server may create no cgroup (many CI containers) the thread cap still holds,
    also for a root server, which RLIMIT_NPROC normally exempts: the worker then gets a real uid of
    its own (its effective uid, and so its file access, unchanged)."""
    from codeact_lsp.sandbox import cgroups
    from codeact_lsp.sandbox.confine import TASK_UID_BASE

    monkeypatch.setattr(cgroups, "hierarchies", lambda: ())
    case = next(c for c in CASES if c.id == "kernel-memory:threads-kernel-stacks")
    pool = SandboxPool(spares=0)
    sb = await Sandbox.start(SandboxSettings(timeout=30), TOOLS, Recorder(), pool=pool)
    try:
        assert "threads:rlimit" in sb.info.isolation, sb.info
        r = await sb.execute(case.code, timeout=30)
        assert case.ok(r), r
        with open(f"/proc/{sb.pid}/status") as fh:
            real, effective = (int(x) for x in fh.read().split("Uid:")[1].split()[:2])
        if os.geteuid() == 0:
            assert (real, effective) == (TASK_UID_BASE + sb.pid, 0)
        wrote = await sb.execute("open('kept.txt', 'w').write('x')")
        assert wrote.value == "1", wrote
    finally:
        await sb.close()
        pool._kill_all()


# --- 5. code that outlives its step ------------------------------------------------------------


def _states(pid: int) -> set[str]:
    """The scheduler state of every thread of `pid` (T: stopped)."""
    states = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as fh:
            states.add(fh.read().rsplit(")", 1)[1].split()[0])
    return states


LEFTOVERS = {
    "spinning-thread": "import threading\n"
    "def spin():\n"
    "    while True:\n"
    "        pass\n"
    "threading.Thread(target=spin, daemon=True).start()",
    "thread-writing-files": "import threading, itertools\n"
    "def write():\n"
    "    for n in itertools.count():\n"
    "        open(f'f{n % 50}', 'w').write('x' * 1000)\n"
    "threading.Thread(target=write, daemon=True).start()",
    "interval-timer": "import signal\n"
    "ticks = []\n"
    "signal.signal(signal.SIGALRM, lambda *a: ticks.append(1))\n"
    "signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)",
    "thread-after-final-answer": "import threading\n"
    "def spin():\n"
    "    while True:\n"
    "        pass\n"
    "threading.Thread(target=spin, daemon=True).start()\n"
    "final_answer(42)",
    "many-threads": "import threading\n"
    "def spin():\n"
    "    while True:\n"
    "        pass\n"
    "for _ in range(4):\n"
    "    threading.Thread(target=spin, daemon=True).start()",
}


@pytest.mark.parametrize("name", list(LEFTOVERS))
async def test_nothing_runs_between_steps(name: str, make_sandbox: Factory) -> None:
    """Whatever a step leaves behind (threads, timers), the idle worker is stopped as a whole as
    soon as the step's result is in, and runs again only for the next step."""
    sb = await make_sandbox(timeout=10)
    r = await sb.execute(LEFTOVERS[name])
    assert r.error is None, r.error
    pid = sb.pid
    assert pid is not None
    # SIGSTOP lands asynchronously: wait for the group stop to complete (WNOWAIT leaves the
    # event for anyone else), then look at every thread
    await asyncio.to_thread(os.waitid, os.P_PID, pid, os.WSTOPPED | os.WNOWAIT)
    states = _states(pid)
    cpu = sb._worker.cpu_seconds() if sb._worker else None
    # the host does unrelated work meanwhile (another sandbox starts and runs): the CPU time of
    # a stopped worker does not move
    other = await make_sandbox()
    assert (await other.execute("sum(range(10 ** 5))")).value == str(sum(range(10**5)))
    cpu_after = sb._worker.cpu_seconds() if sb._worker else None
    after = await sb.execute("'next step runs'")
    blocked = states == {"T"} and cpu == cpu_after and after.value == "'next step runs'"
    _record(sb, f"outlives-step:{name}", blocked)
    assert blocked, (states, cpu, cpu_after, after)


async def test_an_idle_sandbox_is_ended_after_idle_timeout(make_sandbox: Factory) -> None:
    sb = await make_sandbox(idle_timeout=0.2)
    assert (await sb.execute("x = 41")).error is None
    pid = sb.pid
    assert pid is not None
    pidfd = os.pidfd_open(pid)
    try:  # the worker exits by itself, without anyone calling the sandbox
        ready = await asyncio.to_thread(select.select, [pidfd], [], [], 20)
    finally:
        os.close(pidfd)
    r = await sb.execute("x + 1 if 'x' in globals() else 'fresh'")
    ended = bool(ready[0]) and r.state_lost and r.value == "'fresh'" and sb.pid != pid
    _record(sb, "outlives-step:idle-timeout", ended)
    assert ended, (ready, r)


async def test_idle_timeout_none_keeps_the_worker(make_sandbox: Factory) -> None:
    sb = await make_sandbox(idle_timeout=None)
    await sb.execute("x = 1")
    assert sb._parking._timer is None
    assert (await sb.execute("x")).value == "1"


# --- the same table as an unprivileged user ----------------------------------------------------


def _site_dirs() -> list[str]:
    import pydantic

    return [str(Path(pydantic.__file__).parents[1]), str(HERE.parents[1])]


def _unprivileged_argv() -> tuple[list[str], str, dict[str, str]]:
    """How to run the table unprivileged: as `nobody` when we are root, else as ourselves.

    Our own interpreter may sit where nobody cannot reach it (pyenv under /root): then a system
    interpreter of the same version runs the runner, with our packages on PYTHONPATH."""
    runner = str(HERE / "confinement_runner.py")
    if os.geteuid() != 0:
        return [sys.executable, runner], pwd.getpwuid(os.geteuid()).pw_name, {}
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run the table as nobody"
    nobody = pwd.getpwnam("nobody")
    drop = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    extra = {"PYTHONPATH": os.pathsep.join(_site_dirs())}
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for python in dict.fromkeys(
        [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
    ):
        probe = subprocess.run(
            # the runner starts workers with its own sys.executable: that must work too
            [
                *drop,
                "--",
                python,
                "-c",
                "import codeact_lsp.sandbox, subprocess, sys; "
                "subprocess.run([sys.executable, '-I', '-c', ''], check=True)",
            ],
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", **extra},
            cwd="/",
        )
        if probe.returncode == 0:
            return [*drop, "--", python, runner], "nobody", extra
    pytest.skip(f"no {version} interpreter that nobody may run (this one: {sys.executable})")


@pytest.fixture
def unprivileged_dir() -> Iterator[Path]:
    """A directory the unprivileged user owns, outside root's private pytest temp tree."""
    work = Path(tempfile.mkdtemp(prefix="codeact-unprivileged-"))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def test_the_table_is_blocked_for_an_unprivileged_server(unprivileged_dir: Path) -> None:
    argv, who, extra = _unprivileged_argv()
    work = unprivileged_dir
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"}
    env.update(extra)
    out = subprocess.run(
        [*argv, str(work / "host")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=work,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    verdicts = report["verdicts"]
    assert set(verdicts) == {c.id for c in CASES}
    label = f"landlock as {who}"
    for name, v in verdicts.items():
        ATTACK_RESULTS.setdefault(label, {})[name] = v["blocked"]
    leaks = {k: v["detail"] for k, v in verdicts.items() if not v["blocked"]}
    assert not leaks, f"as {who}: {json.dumps(leaks, indent=1)}\n{report['isolation']}"


def _pids_limit(pid: int) -> str | None:
    """The pids.max of the cgroup `pid` is in (None: no pids cgroup of its own)."""
    from codeact_lsp.sandbox import cgroups

    for h in cgroups.hierarchies():
        if h.controller != "pids":
            continue
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            ident, ctls, path = line.split(":", 2)
            if (h.v2 and ident == "0") or "pids" in ctls.split(","):
                f = h.path / path.lstrip("/") / "pids.max"
                return f.read_text().strip() if f.exists() else None
    return None


def _prepare_at(go: threading.Barrier, pid: int) -> None:
    from codeact_lsp.sandbox import cgroups

    go.wait()
    cgroups.prepare(pid)


def test_a_spare_taken_while_its_cgroups_are_being_made_keeps_its_caps() -> None:
    """A spare can be handed out while its `prepare` still runs: `take` and `prepare` then ran at
    once on the same directories, and the worker could end up without its task cap (4 000
    threads were started under load). Both are run at once here, many times."""
    from codeact_lsp.sandbox import cgroups

    if not any(h.controller == "pids" for h in cgroups.hierarchies()):
        pytest.skip("no writable pids cgroup on this machine")  # the table covers the fallback
    for _ in range(40):
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        go = threading.Barrier(2)
        cg = None
        try:
            t = threading.Thread(target=_prepare_at, args=(go, child.pid))
            t.start()
            go.wait()
            cg, problems = cgroups.take(child.pid, child.pid, 64, 8)
            t.join()
            assert not problems, problems
            assert _pids_limit(child.pid) == str(cgroups.MAX_TASKS)
        finally:
            child.kill()
            child.wait()
            if cg is not None:
                cg.remove()
