"""Choosing an isolation backend and telling the truth about what it enforces.

`auto` picks the strongest backend that needs no privilege and no extra package: Landlock + seccomp
installed by the worker on itself (plus a private size-limited tmpfs in a user namespace). `bwrap`
additionally wraps the worker in bubblewrap (fresh mount/net/ipc/uts namespaces, only the
interpreter's directories mounted, a size-limited tmpfs scratch) and keeps Landlock + seccomp inside.
A layer that cannot be had is listed in `SandboxInfo.not_enforced` — loudly, never silently — and
`require_isolation` turns any such gap into a refusal.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import cgroups, confine
from codeact_lsp.sandbox.models import IsolationUnavailable, SandboxInfo
from codeact_lsp.sandbox.process import SpawnSpec, WorkerProcess

MAX_FILES = 4096  # inodes in the scratch tmpfs: "many small files" stops here
MAX_THREADS = cgroups.MAX_TASKS  # tasks of one worker (pids cgroup; RLIMIT_NPROC in its userns)
MAX_FDS = 256  # RLIMIT_NOFILE of a worker: with seccomp's caps, what bounds its kernel objects

# what each layer means, as reported in SandboxInfo (stable identifiers: "<layer>:<mechanism>")
CORE_LAYERS = ("filesystem", "environment", "network", "processes", "signals", "namespaces")


@dataclass(frozen=True)
class Kernel:
    landlock_abi: int
    seccomp: bool
    bwrap: str | None


@functools.cache
def probe() -> Kernel:
    """What this machine offers; probed once per process."""
    linux = sys.platform.startswith("linux")
    return Kernel(
        landlock_abi=confine.landlock_abi() if linux else 0,
        seccomp=linux and confine.seccomp_supported(),
        bwrap=shutil.which("bwrap") if linux else None,
    )


@dataclass(frozen=True)
class Plan:
    spec: SpawnSpec
    landlock: bool
    seccomp: bool
    tmpfs: bool
    notes: tuple[str, ...]  # degradations known before the worker starts


def _python_dirs(python: str) -> list[str]:
    """Directories bubblewrap must mount for `python` to start: its venv and its base install."""
    exe = Path(python)
    dirs: list[str] = []
    venv = exe.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        dirs.append(str(venv))
    real = exe.resolve()
    dirs.append(str(real.parent.parent))
    return list(dict.fromkeys(dirs))


def make_plan(
    settings: SandboxSettings,
    python: str,
    extra_paths: list[str],
    kernel: Kernel | None = None,
    workspace: str | None = None,
) -> Plan:
    """What to start and enforce; `kernel` defaults to this machine's (tests pass an older one)."""
    kernel = kernel or probe()
    notes: list[str] = []
    if workspace:
        ws = Path(workspace).resolve()
        for granted in [*settings.read_paths, *extra_paths]:
            g = Path(granted).resolve()
            if ws == g or g in ws.parents:
                notes.append(
                    f"workspace: {granted!r} is granted, which contains the whole workspace "
                    "(its .env and secrets are readable by generated code)"
                )
    backend = settings.backend
    if backend == "bwrap" and kernel.bwrap is None:
        notes.append(
            "bwrap: bubblewrap is not installed (Debian package `bubblewrap`); using landlock"
        )
        backend = "landlock"
    if backend == "auto":
        backend = "landlock" if (kernel.landlock_abi or kernel.seccomp) else "none"
    use_landlock = backend != "none" and kernel.landlock_abi > 0
    use_seccomp = backend != "none" and kernel.seccomp
    machine = os.uname().machine
    if backend != "none" and not use_landlock:
        notes.append(
            "filesystem: Landlock is not available on this kernel"
            if confine.seccomp_supported() or not sys.platform.startswith("linux")
            else f"filesystem: Landlock is not used on {machine} (the worker's syscall table is "
            "x86_64-only)"
        )
    if backend != "none" and not use_seccomp:
        notes.append(
            f"seccomp: no filter for this platform ({sys.platform}/{machine}): fork/exec, "
            "sockets, signals, file metadata and other processes' scheduling are not blocked"
        )
    if backend == "none":
        notes.append("isolation: backend 'none' — generated code runs with the server's rights")
    binds: tuple[str, ...] = ()
    if backend == "bwrap":
        worker_dir = str(Path(__file__).parent)
        binds = tuple(
            dict.fromkeys([*_python_dirs(python), worker_dir, *extra_paths, *settings.read_paths])
        )
    spec = SpawnSpec(
        python=python,
        backend=backend,
        bwrap=kernel.bwrap if backend == "bwrap" else None,
        binds=binds,
        disk_mb=settings.disk_mb if backend != "none" else 0,
        max_files=MAX_FILES if backend != "none" else 0,
    )
    return Plan(
        spec=spec,
        landlock=use_landlock,
        seccomp=use_seccomp,
        tmpfs=backend != "none",
        notes=tuple(notes),
    )


def without_bwrap(plan: Plan, settings: SandboxSettings, why: str) -> Plan:
    """The plan to fall back to when bubblewrap is installed but fails to start."""
    fallback = make_plan(
        settings.model_copy(update={"backend": "landlock"}), plan.spec.python, [], None
    )
    note = f"bwrap: bubblewrap failed to start ({why}); using landlock"
    kept = tuple(n for n in plan.notes if n.startswith("workspace:"))
    return dataclasses.replace(fallback, notes=(note, *kept, *fallback.notes))


@dataclass(frozen=True)
class Containment:
    """What the host put around one worker from outside: its cgroups, and what failed."""

    cgroup: cgroups.WorkerCgroup | None = None
    problems: tuple[str, ...] = ()


def contain(worker: WorkerProcess, settings: SandboxSettings, plan: Plan) -> Containment:
    """The cgroups of a worker about to be configured (no untrusted code run yet): made when it
    said it was ready (pool.py), the memory limit of these settings written now."""
    if plan.spec.backend == "none" or worker.pid is None or not sys.platform.startswith("linux"):
        return Containment()
    cg, problems = cgroups.take(worker.pid, worker.pid, settings.memory_mb, settings.disk_mb)
    return Containment(cg, tuple(problems))


def _caps_bound_mb() -> int:
    """Kernel memory one worker can pin through the seccomp caps: every descriptor a socket with
    a full default send buffer, plus the one buffer a send may overshoot it by (measured: 228 KB
    per 208 KB socket); sizes cannot be raised and nothing can be passed in flight."""
    try:
        with open("/proc/sys/net/core/wmem_default") as fh:
            per_socket = int(fh.read())
    except (OSError, ValueError):
        per_socket = 212992
    return -(-(MAX_FDS * (per_socket + 65536)) // (1 << 20))


def describe(
    plan: Plan,
    applied: list[str],
    problems: list[str],
    contained: Containment | None = None,
) -> SandboxInfo:
    """Turn what the worker reports it installed into the trajectory's isolation record."""
    got = set(applied)
    bw = plan.spec.backend == "bwrap"
    enforced: list[str] = []
    missing: list[str] = list(plan.notes)
    ll_fs = "filesystem" in got
    sec = "seccomp" in got

    def layer(name: str, ok: bool, how: str, why: str) -> None:
        if ok:
            enforced.append(f"{name}:{how}")
        elif not any(m.startswith(f"{name}:") for m in missing):
            missing.append(f"{name}: {why}")

    fs = "+".join(m for m, ok in (("bwrap", bw), ("landlock", ll_fs)) if ok)
    # the known gaps of Landlock alone (docs/sandbox.md), said where the layer is reported
    gaps = (
        " (not covered: stat/access and advisory locks outside scratch)" if fs == "landlock" else ""
    )
    layer("filesystem", bool(fs), fs + gaps, "any file the server can read is readable")
    layer(
        "environment",
        bool(fs),
        f"scrubbed+{fs}",
        "the server's environment is readable via /proc/<ppid>/environ",
    )
    net = [m for m, ok in (("bwrap", bw), ("seccomp", sec), ("landlock-tcp", "tcp" in got)) if ok]
    layer("network", bool(net), "+".join(net), "sockets can be opened")
    layer("processes", sec, "seccomp", "fork/exec of other programs is possible")
    sig = [m for m, ok in (("seccomp", sec), ("landlock-scope", "signal-scope" in got)) if ok]
    layer("signals", sec, "+".join(sig), "other processes of this user can be signalled or ptraced")
    layer("namespaces", sec, "seccomp", "namespaces and mounts can be created")
    layer("memory", "memory" in got, "rlimit", "no address-space limit")
    cg = contained.cgroup if contained else None
    if cg is not None and cg.memory_mb:
        enforced.append(
            f"kernel-memory:cgroup {cg.memory_mb} MB in all (address space, scratch tmpfs, "
            "socket and pipe buffers, kernel stacks)"
        )
    elif sec:
        why = (
            next((p for p in contained.problems if p.startswith("memory")), "") if contained else ""
        )
        enforced.append(
            f"kernel-memory:seccomp caps (no descriptor passing, default socket and pipe buffers, "
            f"{MAX_FDS} descriptors: at most ~{_caps_bound_mb()} MB beyond the address space"
            + (f"; no cgroup: {why}" if why else "")
            + ")"
        )
    elif plan.spec.backend != "none":
        missing.append("kernel-memory: socket and pipe buffers are outside the memory limit")
    enforced.append("cpu:watchdog+lifetime-rlimit" if "cpu-total" in got else "cpu:watchdog")
    enforced.append("timeout:interrupt+kill")
    enforced.append("output:head+tail cap")
    layer("file-size", "file-size" in got, "rlimit", "no per-file size limit")
    disk = [m for m, ok in (("bwrap-tmpfs", bw), ("tmpfs", "disk" in got)) if ok]
    layer("disk", bool(disk), "+".join(disk), "scratch shares the host disk (per-file limit only)")
    if cg is not None and cg.tasks:
        enforced.append(f"threads:cgroup {cg.tasks} tasks")
    elif "threads" in got:  # not for a root server: RLIMIT_NPROC does not apply to root
        enforced.append("threads:rlimit")
    elif plan.spec.backend != "none":
        why = "no cgroup, and RLIMIT_NPROC does not apply to root" if os.getuid() == 0 else "none"
        missing.append(f"threads: no task cap ({why}); their kernel stacks are outside the limit")
    enforced.append("orphans:pdeathsig+process-group")
    for p in problems:
        if p not in missing:
            missing.append(p)
    return SandboxInfo(
        backend=plan.spec.backend,
        isolation=enforced,
        not_enforced=missing,
    )


def refuse_if_required(settings: SandboxSettings, info: SandboxInfo) -> None:
    if not settings.require_isolation:
        return
    missing = list(info.not_enforced)
    if info.backend == "none" and not missing:
        missing = ["isolation: backend 'none'"]
    if missing:
        raise IsolationUnavailable(missing)


def config_message(
    settings: SandboxSettings,
    plan: Plan,
    scratch: str,
    tools: list[dict[str, Any]],
    extra_paths: list[str],
) -> dict[str, Any]:
    return {
        "t": "config",
        "scratch": scratch,
        "output_limit": settings.output_kb * 1024,
        "value_limit": 20000,
        "memory_mb": settings.memory_mb,
        # the per-step CPU limit is watched from outside; this lifetime cap (rlimit) also stops
        # a thread left spinning between steps, when nobody is watching
        "cpu_total": int((settings.cpu_seconds or settings.timeout) * 20 + 60),
        "disk_mb": settings.disk_mb,
        "max_files": MAX_FILES,
        "max_threads": MAX_THREADS,
        "import_paths": [os.path.abspath(p) for p in extra_paths],
        "read_paths": [os.path.abspath(os.path.expanduser(p)) for p in settings.read_paths],
        "site_packages": settings.allow_site_packages,
        "landlock": plan.landlock,
        "seccomp": plan.seccomp,
        "tmpfs": plan.tmpfs,
        "tools": tools,
    }
