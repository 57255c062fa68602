"""The confinement attack table (issue 12's classes), shared by the in-process suite
(test_confinement.py, as the server's own user) and the unprivileged run (confinement_runner.py,
started as `nobody` when the tests run as root).

Each family is a list of variants: snippet code (raw syscalls through ctypes, so a library's own
checks prove nothing) plus what the host checks afterwards with its own eyes (the victim process's
scheduling, the files' metadata, the host socket's queue). A variant is blocked when every call
the snippet made failed *and* nothing changed on the host.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import fcntl
import os
import re
import resource
import socket
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact_lsp.sandbox import ExecResult

SECRET = "canary-5e1f0b"

SC = (
    "import ctypes, errno, os, struct, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "def sc(*a):\n"
    "    r = libc.syscall(*[ctypes.c_long(x) if isinstance(x, int) else x for x in a])\n"
    "    return (r, errno.errorcode.get(ctypes.get_errno()) if r < 0 else None)\n"
    "buf = ctypes.create_string_buffer(4096)\n"
    "def fd_of(p):\n"  # read-only where Landlock grants it (site-packages), else O_PATH
    "    try:\n"
    "        return os.open(p, os.O_RDONLY)\n"
    "    except OSError:\n"
    "        return os.open(p, os.O_PATH)\n"
)


@dataclass
class ConfEnv:
    """What the attacks aim at, made by (and owned by) the user running the server."""

    tmp: Path
    victim: subprocess.Popen[bytes]  # an unrelated process of the server's user
    secret: Path  # a file outside scratch
    dotenv: Path  # the workspace's .env
    library: Path  # a file of the server's site-packages (only checked, never expected to change)
    link: Path  # a symlink outside scratch whose target is the secret's name
    dgram: socket.socket  # a host pathname unix datagram socket
    dgram_path: Path
    server_pid: int = field(default_factory=os.getpid)

    @property
    def vars(self) -> dict[str, Any]:
        return {
            "server": self.server_pid,
            "victim": self.victim.pid,
            "uid": os.getuid(),
            "secret": str(self.secret),
            "dotenv": str(self.dotenv),
            "library": str(self.library),
            "link": str(self.link),
            "dgram": str(self.dgram_path),
        }

    def close(self) -> None:
        self.victim.kill()
        self.victim.wait()
        self.dgram.close()


def make_env(tmp: Path) -> ConfEnv:
    tmp.mkdir(parents=True, exist_ok=True)
    secret = tmp / "secret.txt"
    secret.write_text(SECRET)
    ws = tmp / "workspace"
    ws.mkdir(exist_ok=True)
    dotenv = ws / ".env"
    dotenv.write_text(f"API_KEY={SECRET}\n")
    for f in (secret, dotenv):
        with contextlib.suppress(OSError):  # a filesystem without user xattrs: still checked
            os.setxattr(f, "user.note", SECRET.encode())
    link = tmp / "link"
    link.symlink_to(f"/nonexistent/{SECRET}")
    import pydantic

    path = tmp / "host.sock"
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(str(path))
    os.chmod(path, 0o777)
    dgram.setblocking(False)
    victim = subprocess.Popen(["sleep", "infinity"])
    return ConfEnv(tmp, victim, secret, dotenv, Path(pydantic.__file__), link, dgram, path)


# --- what the host sees ------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _ioprio(pid: int) -> int:
    return int(_libc.syscall(ctypes.c_long(252), ctypes.c_long(1), ctypes.c_long(pid)))


def _sched(pid: int) -> tuple[Any, ...]:
    return (
        sorted(os.sched_getaffinity(pid)),
        os.sched_getscheduler(pid),
        os.getpriority(os.PRIO_PROCESS, pid),
        _ioprio(pid),
        resource.prlimit(pid, resource.RLIMIT_NOFILE),
        resource.prlimit(pid, resource.RLIMIT_AS),
    )


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return int(struct.unpack("l", fcntl.ioctl(fd, 0x80086601, bytes(8)))[0])
    except OSError:
        return -1
    finally:
        os.close(fd)


def _meta(path: Path) -> tuple[Any, ...]:
    st = os.stat(path)
    try:
        xattrs = sorted((n, os.getxattr(path, n)) for n in os.listxattr(path))
    except OSError:
        xattrs = []
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_atime_ns, xattrs, _flags(path))


def snapshot(e: ConfEnv) -> tuple[Any, ...]:
    """Everything an attack of these families could change on the host."""
    try:
        queued = e.dgram.recv(65536)
    except BlockingIOError:
        queued = b""
    return (
        _sched(e.victim.pid),
        _sched(e.server_pid),
        [_meta(p) for p in (e.secret, e.dotenv, e.library)],
        queued,
    )


def restore(e: ConfEnv, before: tuple[Any, ...]) -> None:
    """Undo what a *leaked* attack changed on files the test does not own (site-packages)."""
    mode = before[2][2][0]
    with contextlib.suppress(OSError):
        os.chmod(e.library, mode & 0o7777)


# --- the table ---------------------------------------------------------------------------------


def all_failed(r: ExecResult) -> bool:
    """The snippet's value is a tuple of `sc()` results: every call must have returned -1."""
    if r.error is not None or r.value is None:
        return False
    results = ast.literal_eval(r.value)
    if results and not isinstance(results[0], tuple):
        results = (results,)
    return all(res[0] == -1 for res in results)


def leaked(r: ExecResult) -> bool:
    return SECRET in f"{r.stdout}{r.stderr}{r.value}{r.error}"


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    code: str  # formatted with ConfEnv.vars; `sc(...)` results as the value
    ok: Callable[[ExecResult], bool] = all_failed
    memory_mb: int = 256
    bounded: bool = False  # the value is MB pinned: at most the limit the isolation report gives

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"


CASES: list[Case] = []


def case(family: str, name: str, code: str, **kw: Any) -> None:
    CASES.append(Case(family, name, code, **kw))


# 1. other processes' scheduling, affinity, priority, limits, I/O class: only our own pid
for who in ("victim", "server"):
    P = "{" + who + "}"
    case("scheduling", f"setaffinity-{who}", f"sc(203, {P}, 8, struct.pack('Q', 1))")
    case("scheduling", f"getaffinity-{who}", f"sc(204, {P}, 128, buf)")
    case(
        "scheduling",
        f"setscheduler-{who}",
        f"(sc(144, {P}, 5, struct.pack('i', 0)), sc(144, {P}, 3, struct.pack('i', 0)))",
    )  # SCHED_IDLE, SCHED_BATCH
    case("scheduling", f"setparam-getparam-{who}", f"(sc(142, {P}, buf), sc(143, {P}, buf))")
    case("scheduling", f"getscheduler-rr-interval-{who}", f"(sc(145, {P}), sc(148, {P}, buf))")
    case(
        "scheduling",
        f"sched-attr-{who}",  # struct sched_attr, size 56: SCHED_IDLE
        f"(sc(314, {P}, struct.pack('IIQiIQQQII', 56, 5, 0, 0, 0, 0, 0, 0, 0, 0), 0),"
        f" sc(315, {P}, buf, 56, 0))",
    )
    case(
        "scheduling",
        f"priority-{who}",
        f"(sc(141, 0, {P}, 19), sc(140, 0, {P}), sc(141, 1, 0, 19), sc(141, 2, {{uid}}, 19),"
        " sc(140, 2, {uid}))",
    )  # PRIO_PROCESS, PRIO_PGRP, PRIO_USER
    case(
        "scheduling",
        f"prlimit-{who}",
        f"(sc(302, {P}, 7, struct.pack('QQ', 1, 1), None), sc(302, {P}, 7, None, buf),"
        f" sc(302, {P}, 9, None, buf))",
    )  # RLIMIT_NOFILE set/get, RLIMIT_AS get
    case(
        "scheduling",
        f"ioprio-{who}",
        f"(sc(251, 1, {P}, 3 << 13), sc(252, 1, {P}), sc(251, 3, {{uid}}, 3 << 13),"
        " sc(252, 3, {uid}), sc(251, 2, 0, 3 << 13))",
    )  # IOPRIO_WHO_PROCESS/USER/PGRP, class IDLE
    case(
        "scheduling",
        f"robust-list-numa-{who}",
        f"(sc(274, {P}, buf, buf), sc(256, {P}, 8, buf, buf), sc(279, {P}, 1, buf, buf, buf, 0))",
    )  # get_robust_list, migrate_pages, move_pages
case(
    "scheduling",
    "own-scheduling-still-works",
    "import os\n(sorted(os.sched_getaffinity(0)) != [], os.getpriority(os.PRIO_PROCESS, 0) >= -20)",
    ok=lambda r: r.value == "(True, True)",
)

# 2. metadata of files outside scratch: every syscall and ioctl that changes or reads it
for target in ("secret", "dotenv", "library"):
    T = "{" + target + "}"
    case(
        "metadata",
        f"mode-owner-times-{target}",
        f"p = {T}.encode()\n"
        "fd = fd_of(p)\n"
        "ts = struct.pack('qqqq', 0, 0, 0, 0)\n"
        "before = os.stat(p)\n"
        "calls = (sc(90, p, 0o777), sc(91, fd, 0o777), sc(268, -100, p, 0o777),"
        " sc(452, -100, p, 0o777, 0), sc(92, p, 0, 0), sc(93, fd, 0, 0),"
        " sc(260, -100, p, 0, 0, 0), sc(280, -100, p, ts, 0), sc(280, fd, None, ts, 0),"
        " sc(235, p, ts), sc(132, p, ts))\n"
        "after = os.stat(p)\n"
        # chmod & co. are no-ops that report success: what counts is that nothing changed
        "(before.st_mode, before.st_mtime_ns) == (after.st_mode, after.st_mtime_ns)",
        ok=lambda r: r.value == "True",
    )
    case(
        "metadata",
        f"xattr-write-{target}",
        f"p = {T}.encode()\n"
        "fd = fd_of(p)\n"
        "one = ctypes.create_string_buffer(b'1')\n"
        "args = struct.pack('QII', ctypes.addressof(one), 1, 0)\n"  # struct xattr_args
        "(sc(188, p, b'user.pwned', b'1', 1, 0), sc(189, p, b'user.pwned', b'1', 1, 0),"
        " sc(190, fd, b'user.pwned', b'1', 1, 0), sc(463, -100, p, 0, b'user.pwned', args, 16),"
        " sc(197, p, b'user.note'), sc(199, fd, b'user.note'), sc(466, -100, p, 0, b'user.note'))",
    )
    case(
        "metadata",
        f"xattr-read-{target}",
        f"p = {T}.encode()\n"
        "fd = fd_of(p)\n"
        "args = struct.pack('QII', ctypes.addressof(buf), 4096, 0)\n"
        "(sc(191, p, b'user.note', buf, 4096), sc(192, p, b'user.note', buf, 4096),"
        " sc(193, fd, b'user.note', buf, 4096), sc(194, p, buf, 4096), sc(195, p, buf, 4096),"
        " sc(196, fd, buf, 4096), sc(464, -100, p, 0, b'user.note', args, 16),"
        " sc(465, -100, p, 0, buf, 4096))",
        ok=lambda r: all_failed(r) and not leaked(r),
    )
    case(
        "metadata",
        f"file-attr-syscalls-{target}",  # file_getattr / file_setattr (6.17): struct file_attr
        f"p = {T}.encode()\n"
        "fa = struct.pack('QIIII', 0x80, 0, 0, 0, 0)\n"  # FS_XFLAG_NODUMP
        "(sc(469, -100, p, fa, 24, 0), sc(468, -100, p, buf, 24, 0))",
    )
    # the flag, version and fsxattr ioctls and their filesystem-specific aliases, set and get,
    # through a descriptor opened read-only
    ioctls = {
        "FS_IOC_SETFLAGS": 0x40086602,
        "FS_IOC32_SETFLAGS": 0x40046602,
        "FS_IOC_FSSETXATTR": 0x401C5820,
        "FS_IOC_SETVERSION": 0x40087602,
        "FS_IOC32_SETVERSION": 0x40047602,
        "EXT4_IOC_SETVERSION": 0x40086604,
        "EXT4_IOC32_SETVERSION": 0x40046604,
        "FS_IOC_SETFSLABEL": 0x41009432,
        "FS_IOC_GETFLAGS": 0x80086601,
        "FS_IOC_FSGETXATTR": 0x801C581F,
        "FS_IOC_GETVERSION": 0x80087601,
        "EXT4_IOC_GETVERSION": 0x80086603,
        "FS_IOC_GETFSLABEL": 0x81009431,
    }
    calls = ", ".join(f"sc(16, fd, {v:#x}, flags)" for v in ioctls.values())
    case(
        "metadata",
        f"inode-ioctls-{target}",
        f"fd = fd_of({T})\n"
        f"flags = struct.pack('q', {{flags_{target}}})\n"  # its own flags: a leak changes nothing
        f"({calls})",
        ok=lambda r: all_failed(r) and set(re.findall(r"'(E[A-Z]+)'", r.value or "")) == {"ENOTTY"},
    )
case(
    "metadata",
    "symlink-targets-outside",
    "p = {link}.encode()\n(sc(89, p, buf, 4096), sc(267, -100, p, buf, 4096), buf.value)",
    ok=lambda r: r.value is not None and "-1" in r.value and "canary" not in r.value,
)
case(
    "metadata",
    "newer-syscalls-fail-closed",
    "(sc(471, 0, 0, 0), sc(480), sc(511), sc(1000), sc(0x3FFFFFFF), sc(470, 0, 0, 0, 0))",
    ok=lambda r: all_failed(r) and (r.value or "").count("ENOSYS") >= 5,
)

# 3. datagrams and descriptors to host sockets, names in the abstract namespace
_DGRAM = "import socket\na, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
_ADDR = (
    "path = {dgram}.encode()\n"
    "addr = struct.pack('H', 1) + path + bytes(108 - len(path))\n"  # sockaddr_un
)
case(
    "sockets",
    "sendto-host-path",
    _DGRAM + _ADDR + "(sc(44, a.fileno(), b'pwned', 5, 0, addr, len(addr)),)",
)
case(
    "sockets",
    "sendmsg-with-address-and-fds",
    _DGRAM + "import array\n"
    "try:\n"
    "    socket.send_fds(a, [b'pwned'], [a.fileno(), b.fileno()], 0, {dgram})\n"
    "    got = ((0, None),)\n"
    "except OSError as exc:\n"
    "    got = ((-1, exc.errno),)\n"
    "try:\n"  # descriptors in flight to our own peer: kernel memory outside every limit
    "    a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,"
    " array.array('i', [a.fileno()] * 200))])\n"
    "    got += ((0, None),)\n"
    "except OSError as exc:\n"
    "    got += ((-1, exc.errno),)\n"
    "got",
)
case(
    "sockets",
    "sendmmsg",
    _DGRAM + "(sc(307, a.fileno(), buf, 1, 0),)",
)
case(
    "sockets",
    "connect-host-path",
    _DGRAM + _ADDR + "(sc(42, a.fileno(), addr, len(addr)),)",
)
case(
    "sockets",
    "bind-abstract-and-path",
    _DGRAM + "abstract = struct.pack('H', 1) + b'\\0codeact-squat'\n"
    "here = struct.pack('H', 1) + b'bound.sock\\0'\n"
    "(sc(49, a.fileno(), abstract, len(abstract)), sc(49, b.fileno(), here, len(here)),"
    " sc(49, a.fileno(), struct.pack('H', 1), 2))",  # autobind
)
case(
    "sockets",
    "signal-owner-ioctls",  # FIOSETOWN / SIOCSPGRP: F_SETOWN by another name (SIGIO to any pid)
    "import socket\na, b = socket.socketpair()\n"
    "pid = struct.pack('i', {server})\n"
    "(sc(16, a.fileno(), 0x8901, pid), sc(16, a.fileno(), 0x8902, pid))",
)
case(
    "sockets",
    "listen-accept",
    "import socket\na, b = socket.socketpair()\n"
    "(sc(50, a.fileno(), 1), sc(43, a.fileno(), None, None), sc(288, a.fileno(), None, None, 0))",
)
case(
    "sockets",
    "new-sockets-any-family",
    "tuple(sc(41, fam, 2, 0) for fam in (1, 2, 10, 16, 17, 40))",  # unix inet inet6 netlink...
)
case(
    "sockets",
    "socketpair-still-works",
    "import socket\na, b = socket.socketpair()\na.setblocking(False)\na.send(b'ok')\nb.recv(2)",
    ok=lambda r: r.value == "b'ok'",
)

# 4. kernel memory outside the memory limit (64 MB here): what the snippet manages to pin
_PIN = (
    "import os, socket, fcntl\n"
    "held, keep = 0, []\n"
    "def fill(send):\n"
    "    n = 0\n"
    "    try:\n"
    "        while n < (64 << 20):\n"
    "            n += send(b'x' * 65536)\n"
    "    except OSError:\n"
    "        pass\n"
    "    return n\n"
)
case(
    "kernel-memory",
    "socket-buffers-raised",
    _PIN + "try:\n"
    "    while True:\n"
    "        a, b = socket.socketpair()\n"
    "        keep += [a, b]\n"
    "        for s in (a, b):\n"
    "            try:\n"
    "                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)\n"
    "            except OSError:\n"
    "                pass\n"
    "            s.setblocking(False)\n"
    "            held += fill(s.send)\n"
    "except OSError:\n"
    "    pass\n"
    "held >> 20",
    ok=lambda r: r.value is not None,
    memory_mb=64,
    bounded=True,
)
case(
    "kernel-memory",
    "pipe-buffers-raised",
    _PIN + "try:\n"
    "    while True:\n"
    "        r, w = os.pipe()\n"
    "        keep += [r, w]\n"
    "        try:\n"
    "            fcntl.fcntl(w, 1031, 1 << 20)\n"  # F_SETPIPE_SZ
    "        except OSError:\n"
    "            pass\n"
    "        os.set_blocking(w, False)\n"
    "        held += fill(lambda d: os.write(w, d))\n"
    "except OSError:\n"
    "    pass\n"
    "held >> 20",
    ok=lambda r: r.value is not None,
    memory_mb=64,
    bounded=True,
)
case(
    "kernel-memory",
    "descriptors-in-flight",
    "import socket, array\n"
    "a, b = socket.socketpair()\n"
    "sent = 0\n"
    "try:\n"
    "    for _ in range(10000):\n"
    "        x, y = socket.socketpair()\n"
    "        a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,"
    " array.array('i', [x.fileno(), y.fileno()]))])\n"
    "        x.close(); y.close()\n"
    "        sent += 2\n"
    "except OSError:\n"
    "    pass\n"
    "sent",
    ok=lambda r: r.value == "0",
)
case(
    "kernel-memory",
    "threads-kernel-stacks",
    "import threading\n"
    "stop = threading.Event()\n"
    "n = 0\n"
    "threading.stack_size(32768)\n"
    "try:\n"
    "    for n in range(4000):\n"
    "        threading.Thread(target=stop.wait, daemon=True).start()\n"
    "except RuntimeError:\n"
    "    pass\n"
    "stop.set()\n"
    "n",
    ok=lambda r: r.value is not None and int(r.value) <= 256,
)
case(
    "kernel-memory",
    "descriptors",
    "fds = []\n"
    "try:\n"
    "    while len(fds) < 100000:\n"
    "        fds.append(os.open('/dev/null', os.O_RDONLY))\n"
    "except OSError:\n"
    "    pass\n"
    "n = len(fds)\n"
    "for fd in fds:\n"
    "    os.close(fd)\n"
    "n",
    ok=lambda r: r.value is not None and int(r.value) <= 256,
)


def reported_bound_mb(isolation: list[str], memory_mb: int) -> int | None:
    """The memory bound the isolation report claims: the cgroup's total, or the address space
    plus what the seccomp caps let kernel objects pin."""
    for item in isolation:
        if item.startswith("kernel-memory:cgroup"):
            return int(re.search(r"(\d+) MB", item).group(1))  # type: ignore[union-attr]
        if item.startswith("kernel-memory:seccomp"):
            return memory_mb + int(re.search(r"~(\d+) MB", item).group(1))  # type: ignore[union-attr]
    return None


def code_for(c: Case, e: ConfEnv) -> str:
    values = dict(e.vars)
    for target in ("secret", "dotenv", "library"):
        values[f"flags_{target}"] = max(0, _flags(getattr(e, target)))
    values = {k: (repr(v) if isinstance(v, str) else v) for k, v in values.items()}
    return SC + c.code.format(**values)


async def run_case(c: Case, sb: Any, e: ConfEnv) -> tuple[bool, str]:
    """(blocked, detail): the snippet's own outcome and the host's before/after comparison."""
    before = snapshot(e)
    try:
        r = await sb.execute(code_for(c, e), timeout=30)
        after = snapshot(e)
    finally:
        restore(e, before)
    same = before == after
    # inside bubblewrap the host's files do not even exist: nothing to attack is a block too
    unseen = r.error is not None and r.error.type == "FileNotFoundError"
    ok = (c.ok(r) or unseen) and same
    detail = f"value={r.value!r} error={r.error and r.error.message!r} host unchanged={same}"
    if c.bounded:
        bound = reported_bound_mb(sb.info.isolation, c.memory_mb)
        ok = ok and bound is not None and r.value is not None and int(r.value) <= bound
        detail += f" reported bound={bound} MB"
    if not same:
        detail += f" before={before!r} after={after!r}"
    return ok, detail
