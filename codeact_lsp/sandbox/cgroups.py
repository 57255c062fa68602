"""A cgroup per worker: the memory limit that also holds for kernel memory, and a task cap for root.

RLIMIT_AS bounds the worker's address space only. Socket buffers, pipe pages, descriptors in flight,
kernel stacks of threads and the scratch tmpfs are kernel memory charged to the worker's memory
cgroup, not to its address space: measured here, 100 filled socketpairs held 23 MB of kernel memory
that RLIMIT_AS never saw. And RLIMIT_NPROC does not apply to root. So when the server may create
cgroups (root, or a delegated subtree), each worker goes into its own, with `memory` (address space
+ scratch + a margin for kernel objects) and `pids` limits; otherwise the seccomp caps are what
bound kernel memory (no fd passing, no socket/pipe buffer resizing, 256 descriptors), and the
isolation report says so.

cgroup v1 (one hierarchy per controller, as in many containers) and v2 (unified) are both handled;
under v2 the controllers must be delegable from the server's own cgroup (its subtree_control), which
the "no internal processes" rule forbids when the server's cgroup is not the root and holds
processes: then it is reported, not forced. Directories are `<server cgroup>/codeact-<server pid>/
w<worker pid>`; a worker's directory is removed once its tasks are gone (swept at the next attach
and at exit), and directories of servers that died are swept too.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

KERNEL_MARGIN_MB = 32  # kernel objects of a normal worker: page tables, stacks, a few buffers
MAX_TASKS = 256  # threads of one worker (its own included)
_PREFIX = "codeact-"


@dataclass(frozen=True)
class Hierarchy:
    """Where this server may create worker cgroups for one controller."""

    controller: str  # "memory" | "pids"
    path: Path  # the server's own cgroup directory in that hierarchy
    v2: bool


@dataclass
class WorkerCgroup:
    """The cgroup directories holding one worker, and the limits written into them."""

    dirs: list[Path] = field(default_factory=list)
    memory_mb: int | None = None
    tasks: int | None = None

    def remove(self) -> None:
        for d in self.dirs:
            with contextlib.suppress(OSError):
                d.rmdir()


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(root, mountpoint, fstype, super options) of every cgroup mount."""
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            parts, rparts = left.split(), right.split()
            if len(parts) < 5 or len(rparts) < 3 or rparts[0] not in ("cgroup", "cgroup2"):
                continue
            out.append((parts[3], parts[4], rparts[0], set(rparts[2].split(","))))
    return out


def _own_dir(mountroot: str, mountpoint: str, cgpath: str) -> Path:
    rel = cgpath
    if mountroot != "/" and (cgpath == mountroot or cgpath.startswith(mountroot + "/")):
        rel = cgpath[len(mountroot) :]
    return Path(mountpoint) / rel.lstrip("/")


@functools.cache
def hierarchies() -> tuple[Hierarchy, ...]:
    """The memory and pids hierarchies this process can create children in (probed once)."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return ()
    mounts = _mounts()
    found: dict[str, Hierarchy] = {}
    for line in lines:
        num, _, rest = line.partition(":")
        names, _, cgpath = rest.partition(":")
        if num == "0" and names == "":  # the unified hierarchy
            for root, point, fstype, _opts in mounts:
                if fstype != "cgroup2":
                    continue
                own = _own_dir(root, point, cgpath)
                try:
                    available = set((own / "cgroup.controllers").read_text().split())
                except OSError:
                    continue
                for ctl in ("memory", "pids"):
                    if ctl in available and os.access(own, os.W_OK):
                        found.setdefault(ctl, Hierarchy(ctl, own, v2=True))
                break
            continue
        for ctl in names.split(","):
            if ctl not in ("memory", "pids") or (ctl in found and not found[ctl].v2):
                continue
            for root, point, fstype, opts in mounts:
                if fstype == "cgroup" and ctl in opts:
                    own = _own_dir(root, point, cgpath)
                    if own.is_dir() and os.access(own, os.W_OK):
                        found[ctl] = Hierarchy(ctl, own, v2=False)  # v1 wins: no delegation rule
                    break
    return tuple(found.values())


_LOCK = threading.Lock()
_PARENTS: dict[tuple[Path, str], bool] = {}  # (our codeact-<pid> dir, controller) -> usable


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _parent(h: Hierarchy) -> Path | None:
    """`codeact-<our pid>` under the server's cgroup, made once (controllers delegated for v2)."""
    parent = h.path / f"{_PREFIX}{os.getpid()}"
    key = (parent, h.controller)
    with _LOCK:
        if key in _PARENTS:
            return parent if _PARENTS[key] else None
        ok = True
        try:
            _sweep_dead_servers(h.path)
            if h.v2:
                with contextlib.suppress(OSError):  # already delegated is fine too
                    _write(h.path / "cgroup.subtree_control", f"+{h.controller}")
            parent.mkdir(exist_ok=True)
            if h.v2:
                _write(parent / "cgroup.subtree_control", f"+{h.controller}")
        except OSError:
            ok = False
            with contextlib.suppress(OSError):
                parent.rmdir()
        _PARENTS[key] = ok
        if ok and len(_PARENTS) == 1:
            atexit.register(_sweep_all)
        return parent if ok else None


def _sweep(parent: Path) -> None:
    """Remove the directories of workers that are gone. Only those: a directory made a moment ago
    is still empty until its worker is written into it, and rmdir would succeed on it."""
    with contextlib.suppress(OSError):
        for d in parent.iterdir():
            pid = d.name[1:]
            if d.name.startswith("w") and pid.isdigit() and not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    d.rmdir()


class _Sweeper:
    """Removes the directories of workers that are gone, on a thread of its own: removing a memory
    cgroup can take milliseconds (tens under load), which the spawn path must not wait for."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        if self._thread is None:
            with _LOCK:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="sandbox-cgroup-sweeper", daemon=True
                    )
                    self._thread.start()
        self._event.set()

    def _run(self) -> None:
        while True:
            self._event.wait()
            self._event.clear()
            with _LOCK:
                parents = [parent for (parent, _c), ok in _PARENTS.items() if ok]
            for parent in dict.fromkeys(parents):
                _sweep(parent)


_SWEEPER = _Sweeper()


def _sweep_dead_servers(base: Path) -> None:
    with contextlib.suppress(OSError):
        for d in base.iterdir():
            if not d.name.startswith(_PREFIX) or not d.name[len(_PREFIX) :].isdigit():
                continue
            pid = int(d.name[len(_PREFIX) :])
            if pid == os.getpid() or Path(f"/proc/{pid}").exists():
                continue
            _sweep(d)
            with contextlib.suppress(OSError):
                d.rmdir()


def _sweep_all() -> None:
    for (parent, _ctl), ok in list(_PARENTS.items()):
        if ok:
            _sweep(parent)
            with contextlib.suppress(OSError):
                parent.rmdir()


def memory_limit_mb(memory_mb: int, disk_mb: int) -> int:
    """What the cgroup allows: the address space, the scratch tmpfs (RAM), kernel objects."""
    return memory_mb + disk_mb + KERNEL_MARGIN_MB


_PREPARED: dict[int, tuple[WorkerCgroup, list[str]]] = {}  # worker pid -> its cgroups
_TAKEN: set[int] = set()  # workers `take` contained before their `prepare` ran
# One worker's cgroups are made by one side at a time. A spare can be handed out while its
# `prepare` still runs (that callback runs after the waiters of `ready` are woken); when both
# made the same directory at once, one side's clean-up removed the other's, and the worker ran
# without its caps (seen: 4 000 threads under load, against a cap of 256).
_ATTACH = threading.Lock()


def prepare(pid: int, tasks: int = MAX_TASKS) -> None:
    """When a spare is ready, off the critical path: cgroups for a worker that has not been
    configured yet (the memory limit comes with its settings, in `take`). Its threads inherit
    them."""
    with _ATTACH:
        if pid in _TAKEN:  # contained already
            _TAKEN.discard(pid)
            return
        cg, problems = attach(pid, None, 0, tasks)
        with _LOCK:
            if len(_PREPARED) > 64:  # spares that died unconfigured
                for old in [p for p in _PREPARED if not Path(f"/proc/{p}").exists()]:
                    _PREPARED.pop(old)
            _PREPARED[pid] = (cg, problems)


def take(
    spawned: int, pid: int, memory_mb: int, disk_mb: int, tasks: int = MAX_TASKS
) -> tuple[WorkerCgroup, list[str]]:
    """The cgroups of worker `pid` (spawned as `spawned`: bwrap's pid inside bubblewrap), with the
    memory limit of its settings written; made now if they were not prepared, or do not hold it."""
    with _ATTACH:
        with _LOCK:
            pre = _PREPARED.pop(spawned, None)
        if pre is not None:
            cg, problems = pre
            if spawned == pid or all(_holds(d, pid) for d in cg.dirs):
                return cg, problems + _set_memory(cg, memory_mb, disk_mb)
            cg.remove()  # bwrap's child was created before bwrap was moved: do it the slow way
        elif len(_TAKEN) < 4096:  # (a spare's `prepare` may still come: it then does nothing)
            _TAKEN.add(spawned)
        return attach(pid, memory_mb, disk_mb, tasks)


def _holds(d: Path, pid: int) -> bool:
    try:
        return str(pid) in (d / "cgroup.procs").read_text().split()
    except OSError:
        return False


def _set_memory(cg: WorkerCgroup, memory_mb: int, disk_mb: int) -> list[str]:
    mem = next((d for d in cg.dirs if _is_memory(d)), None)
    if mem is None:
        return []
    limit = memory_limit_mb(memory_mb, disk_mb)
    try:
        _limit_memory(mem, limit << 20, (mem / "memory.max").exists())
    except OSError as exc:
        return [f"memory: cgroup limit failed ({exc.strerror or exc})"]
    cg.memory_mb = limit
    return []


def _is_memory(d: Path) -> bool:
    return (d / "memory.max").exists() or (d / "memory.limit_in_bytes").exists()


def attach(
    pid: int, memory_mb: int | None, disk_mb: int, tasks: int = MAX_TASKS
) -> tuple[WorkerCgroup, list[str]]:
    """Put worker `pid` (not yet running untrusted code) into cgroups of its own; `memory_mb`
    None: the memory cgroup without a limit yet (see `take`).

    Returns what was applied and, for each controller that could not be used, why."""
    cg = WorkerCgroup()
    problems: list[str] = []
    by_ctl = {h.controller: h for h in hierarchies()}
    limit = memory_limit_mb(memory_mb, disk_mb) if memory_mb is not None else None
    for ctl in ("memory", "pids"):
        h = by_ctl.get(ctl)
        if h is None:
            problems.append(f"{ctl}: no writable cgroup hierarchy")
            continue
        parent = _parent(h)
        if parent is None:
            problems.append(f"{ctl}: cannot create cgroups under {h.path}")
            continue
        d = parent / f"w{pid}"
        fresh = d not in cg.dirs  # under v2 both controllers share one directory
        if fresh:
            _SWEEPER.wake()
        try:
            if fresh:
                d.mkdir()
            if ctl == "memory":
                if limit is not None:
                    _limit_memory(d, limit << 20, h.v2)
            else:
                _write(d / "pids.max", str(tasks))
            _write(d / "cgroup.procs", str(pid))
        except OSError as exc:
            if fresh:
                with contextlib.suppress(OSError):
                    d.rmdir()
            problems.append(f"{ctl}: cgroup setup failed ({exc.strerror or exc})")
            continue
        if fresh:
            cg.dirs.append(d)
        if ctl == "memory":
            cg.memory_mb = limit
        else:
            cg.tasks = tasks
    return cg, problems


def _limit_memory(d: Path, limit: int, v2: bool) -> None:
    if v2:
        _write(d / "memory.max", str(limit))
        with contextlib.suppress(OSError):  # no swap accounting: then there is no swap to limit
            _write(d / "memory.swap.max", "0")
        return
    _write(d / "memory.limit_in_bytes", str(limit))
    with contextlib.suppress(OSError):  # memsw exists only with swap accounting
        _write(d / "memory.memsw.limit_in_bytes", str(limit))
    with contextlib.suppress(OSError):
        _write(d / "memory.swappiness", "0")
