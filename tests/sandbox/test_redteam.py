"""Red-team attacks beyond the basic attack suite (test_attacks.py), each asserted blocked.

Raw syscalls through ctypes (x32 and i386 entry points, clone variants, memfd, System V IPC,
inotify, pidfd, prctl, fcntl F_SETOWN), the worker's own channel (forged frames, tool calls
outside a step, forged stop / interrupt flags, malformed JSON), kernel-side memory the address-space
limit does not see, other sandboxes (their scratch, their pid) and state left for a later run.
Counted with the basic suite in the per-backend summary at the end of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
from collections.abc import Awaitable, Callable

import pytest
from conftest import ATTACK_RESULTS
from sandbox_helpers import Factory, Recorder
from test_attacks import BACKENDS, CANARY, Env, _label, env, failed, leaked_text  # noqa: F401

from codeact_lsp.sandbox import Sandbox

MEMORY_MB = 256

# ctypes prelude of the syscall attacks: `sc(nr, *args)` -> (return value, errno name or None)
SC = (
    "import ctypes, errno, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "def sc(*a):\n"
    "    r = libc.syscall(*[ctypes.c_long(x) if isinstance(x, int) else x for x in a])\n"
    "    return (r, errno.errorcode.get(ctypes.get_errno()) if r < 0 else None)\n"
)
# the worker's protocol descriptors (its argv says which) and a frame writer for forging
CHAN = (
    "import json, marshal, os, sys\n"
    "IN, OUT, CTL = map(int, sys.argv[1:4])\n"
    "def frame(tag, obj):\n"
    "    data = (tag + json.dumps(obj)).encode()\n"
    "    os.write(OUT, len(data).to_bytes(4, 'little') + data)\n"
    "def reply():\n"
    "    n = int.from_bytes(os.read(IN, 4), 'little')\n"
    "    data = b''\n"
    "    while len(data) < n:\n"
    "        data += os.read(IN, n - len(data))\n"
    "    return marshal.loads(data)\n"
)

Check = Callable[[Sandbox, Env], Awaitable[bool]]
REDTEAM: dict[str, Check] = {}


def attack(fn: Check) -> Check:
    REDTEAM[fn.__name__] = fn
    return fn


def all_denied(value: str | None) -> bool:
    """`value` is the repr of a tuple of `sc()` results: every call must have returned -1."""
    if value is None:
        return False
    import ast

    results = ast.literal_eval(value)
    return all(r[0] == -1 for r in results)


async def crashed_then_fresh(sb: Sandbox, r_error_type: str | None) -> bool:
    """A filter that kills the worker is a block too, if the next snippet gets a fresh worker."""
    after = await sb.execute("1")
    return r_error_type == "SandboxCrash" and after.value == "1"


# --- what the worker holds -------------------------------------------------------------------


@attack
async def leaked_descriptors(sb: Sandbox, e: Env) -> bool:
    """Only /dev/null on 0-2 and the three protocol pipes: no socket, file or directory of the
    server (an inherited descriptor would bypass Landlock, which checks at open time)."""
    r = await sb.execute(
        "import os, stat\n"
        "kinds = {}\n"
        "for fd in range(1024):\n"
        "    try:\n"
        "        st = os.fstat(fd)\n"
        "    except OSError:\n"
        "        continue\n"
        "    kinds[fd] = stat.S_IFMT(st.st_mode)\n"
        "kinds"
    )
    if r.error is not None or r.value is None:
        return False
    import ast
    import stat

    kinds: dict[int, int] = ast.literal_eval(r.value)
    std_ok = all(kinds.get(fd) == stat.S_IFCHR for fd in (0, 1, 2))
    others = [k for fd, k in kinds.items() if fd > 2]
    return std_ok and len(others) == 3 and all(k == stat.S_IFIFO for k in others)


@attack
async def proc_files_of_self_and_parent(sb: Sandbox, e: Env) -> bool:
    code = (
        "import os\n"
        "got = []\n"
        f"for p in ['/proc/self/environ', '/proc/self/maps', '/proc/{e.pid}/cmdline',\n"
        f"          '/proc/{e.pid}/root/{str(e.canary).lstrip('/')}', '/proc/{e.pid}/fd/0',\n"
        "          f'/proc/{os.getppid()}/environ', '/proc/thread-self/environ']:\n"
        "    try:\n"
        "        got.append(open(p, 'rb').read(200))\n"
        "    except OSError:\n"
        "        pass\n"
        f"for p in ['/proc/{e.pid}/cwd', '/proc/{e.pid}/exe', '/proc/{e.pid}/fd/0']:\n"
        "    try:\n"
        "        got.append(os.readlink(p))\n"
        "    except OSError:\n"
        "        pass\n"
        "got"
    )
    r = await sb.execute(code)
    return r.error is None and r.value == "[]"


@attack
async def shared_temp_directories(sb: Sandbox, e: Env) -> bool:
    name = f"codeact-redteam-{os.getpid()}"
    dirs = ["/dev/shm", "/tmp", "/var/tmp"]
    code = (
        "ok = []\n"
        f"for d in {dirs!r}:\n"
        "    try:\n"
        f"        open(d + '/{name}', 'w').write('x')\n"
        "        ok.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        "ok"
    )
    r = await sb.execute(code)
    leaked = [d for d in dirs if os.path.exists(f"{d}/{name}")]
    for d in leaked:
        os.unlink(f"{d}/{name}")
    return r.value == "[]" and not leaked


@attack
async def hardlink_and_rename_out_of_scratch(sb: Sandbox, e: Env) -> bool:
    """Hard links are not symlinks: a link to a file outside, or to a read-only library file,
    would make it readable or writable through scratch."""
    import pydantic

    lib = pydantic.__file__
    before = os.stat(lib).st_mtime_ns
    code = (
        SC + "import pydantic\n"
        "got = []\n"
        f"for src in [{str(e.canary)!r}, pydantic.__file__]:\n"
        "    for n, op in enumerate((os.link, os.rename)):\n"
        "        try:\n"
        "            op(src, f'h{n}')\n"
        "            got.append(open(f'h{n}', 'r+').read(20))\n"
        "        except OSError:\n"
        "            pass\n"
        "try:\n"  # an O_PATH descriptor is not checked by Landlock; linking it is
        f"    fd = os.open({str(e.canary)!r}, os.O_PATH)\n"
        "    got.append(libc.linkat(fd, b'', -100, b'h3', 0x1000))\n"  # AT_EMPTY_PATH
        "except OSError:\n"  # inside bubblewrap the file does not even exist
        "    got.append(-1)\n"
        "got"
    )
    r = await sb.execute(code)
    return (
        r.value == "[-1]"
        and e.canary.read_text() == CANARY
        and os.path.exists(lib)
        and os.stat(lib).st_mtime_ns == before
    )


@attack
async def metadata_of_files_outside_scratch(sb: Sandbox, e: Env) -> bool:
    """Landlock does not mediate chmod/chown/utime/xattrs: `chmod 0777` of a secret, `chmod 000`
    of the workspace, or a forged mtime would work on any file the server's user owns."""
    import pydantic

    lib = pydantic.__file__
    before = (os.stat(e.canary), os.stat(lib))
    import fcntl
    import struct

    fd = os.open(lib, os.O_RDONLY)
    try:
        flags = struct.unpack("q", fcntl.ioctl(fd, 0x80086601, bytes(8)))[0]
    finally:
        os.close(fd)
    code = (
        "import os, pydantic\n"
        f"p = {str(e.canary)!r}\n"
        "for op in (lambda: os.chmod(p, 0o777), lambda: os.utime(p, (0, 0)),"
        " lambda: os.chown(p, os.getuid(), os.getgid()),"
        " lambda: os.setxattr(p, 'user.pwned', b'1'),"
        " lambda: os.fchmod(os.open(pydantic.__file__, os.O_RDONLY), 0o600)):\n"
        "    try:\n"
        "        op()\n"
        "    except OSError:\n"
        "        pass\n"
        # inode flags through a read-only descriptor (set nodump, and put them back at once);
        # the flags are read by the host: reading them (FS_IOC_GETFLAGS) is refused in there too
        "import fcntl, struct\n"
        "fd = os.open(pydantic.__file__, os.O_RDONLY)\n"
        f"flags = {flags}\n"
        "try:\n"
        "    fcntl.ioctl(fd, 0x40086602, struct.pack('q', flags | 0x40))\n"
        "    fcntl.ioctl(fd, 0x40086602, struct.pack('q', flags))\n"
        "    setflags = True\n"
        "except OSError:\n"
        "    setflags = False\n"
        "setflags"
    )
    try:
        r = await sb.execute(code)
        after = (os.stat(e.canary), os.stat(lib))
        xattrs = os.listxattr(e.canary)
    finally:
        os.chmod(lib, before[1].st_mode)  # only changes anything if the attack worked
    return (
        all(
            (a.st_mode, a.st_mtime_ns, a.st_uid) == (b.st_mode, b.st_mtime_ns, b.st_uid)
            for a, b in zip(after, before, strict=True)
        )
        and "user.pwned" not in xattrs
        and r.value == "False"
    )


# --- raw syscalls ----------------------------------------------------------------------------


@attack
async def x32_abi_syscall(sb: Sandbox, e: Env) -> bool:
    """The x32 ABI numbers (nr | 0x40000000) reach the same kernel code as the x86_64 ones: a
    filter that compares only the low numbers would let `socket` through."""
    r = await sb.execute(SC + "sc(0x40000000 | 41, 2, 1, 0)")  # x32 socket(AF_INET, SOCK_STREAM)
    return await crashed_then_fresh(sb, r.error.type if r.error else None)


@attack
async def i386_int80_syscall(sb: Sandbox, e: Env) -> bool:
    """`int 0x80` from a 64-bit process uses the i386 table (socket is 359 there): the filter
    must check the architecture, not only the number."""
    code = (
        SC + "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,"
        " ctypes.c_int, ctypes.c_long]\n"
        "page = libc.mmap(None, 4096, 7, 0x22, -1, 0)\n"  # RWX, MAP_PRIVATE|MAP_ANONYMOUS
        # push rbx; mov eax,359; mov ebx,2; mov ecx,1; xor edx,edx; int 0x80; pop rbx; ret
        "code = bytes.fromhex('53b867010000bb02000000b90100000031d2cd805bc3')\n"
        "ctypes.memmove(page, code, len(code))\n"
        "ctypes.CFUNCTYPE(ctypes.c_int)(page)()"
    )
    r = await sb.execute(code)
    if r.error is None:  # the kernel answered: only an error number is acceptable
        return r.value is not None and int(r.value) < 0
    return await crashed_then_fresh(sb, r.error.type)


@attack
async def raw_clone_variants(sb: Sandbox, e: Env) -> bool:
    code = SC + (
        "args = ctypes.create_string_buffer(88)\n"
        "(sc(56, 17, 0, 0, 0, 0),"  # clone(SIGCHLD): a fork by another name
        " sc(56, 0x10000000 | 0x10000 | 0x800 | 0x100, 0, 0, 0, 0),"  # a thread in a new userns
        " sc(435, args, 88),"  # clone3: flags in memory, cannot be filtered
        " sc(58), sc(57))"  # vfork, fork
    )
    r = await sb.execute(code)
    return r.error is None and all_denied(r.value) and "ENOSYS" in (r.value or "")


@attack
async def exec_via_execveat_and_memfd(sb: Sandbox, e: Env) -> bool:
    code = SC + (
        "argv = (ctypes.c_char_p * 2)(b'sh', None)\n"
        "(sc(319, b'x', 0),"  # memfd_create: an anonymous file to write an ELF into
        " sc(322, -100, b'/bin/sh', argv, None, 0),"  # execveat
        " sc(59, b'/bin/sh', argv, None))"  # execve, bypassing the os module
    )
    r = await sb.execute(code)
    return r.error is None and all_denied(r.value)


@attack
async def steal_parent_fds_with_pidfd(sb: Sandbox, e: Env) -> bool:
    code = SC + f"(sc(434, {e.pid}, 0), sc(438, 3, 0, 0), sc(312, {e.pid}, os.getpid(), 0, 0, 0))"
    r = await sb.execute(code)  # pidfd_open, pidfd_getfd, kcmp
    return r.error is None and all_denied(r.value)


@attack
async def memory_outside_the_address_space_limit(sb: Sandbox, e: Env) -> bool:
    """memfd pages are not mapped, so RLIMIT_AS does not count them: 40 x 8 MB > 256 MB."""
    code = (
        "import os\n"
        "held, fds = 0, []\n"
        "try:\n"
        "    for _ in range(40):\n"
        "        fd = os.memfd_create('m')\n"
        "        fds.append(fd)\n"
        "        for _ in range(8):\n"
        "            held += os.write(fd, b'x' * (1 << 20))\n"
        "except OSError:\n"
        "    pass\n"
        "for fd in fds:\n"
        "    os.close(fd)\n"
        "held >> 20"
    )
    r = await sb.execute(code)
    return r.error is None and r.value is not None and int(r.value) < MEMORY_MB


@attack
async def sysv_ipc_outlives_the_worker(sb: Sandbox, e: Env) -> bool:
    """System V objects live in the host's IPC namespace: memory and a channel between runs that
    survive the worker. (If one gets created anyway, it is removed right away.)"""
    code = SC + (
        "made = (sc(29, 0, 1 << 20, 0o1600), sc(68, 0, 0o1600), sc(64, 0, 1, 0o1600),"
        " sc(240, b'q', 0o102, 0o600, None))\n"  # shmget, msgget, semget, mq_open(O_CREAT|O_RDWR)
        "for (ret, _), rm in zip(made[:3], ((31, 0), (71, 0), (66, 0, 0))):\n"
        "    if ret >= 0:\n"
        "        sc(rm[0], ret, *rm[1:], 0)\n"  # IPC_RMID
        "made"
    )
    r = await sb.execute(code)
    return r.error is None and all_denied(r.value)


@attack
async def host_wide_aio_contexts_and_mount_table(sb: Sandbox, e: Env) -> bool:
    code = SC + (
        "ctx = ctypes.c_ulong(0)\n"
        "buf = ctypes.create_string_buffer(4096)\n"
        "(sc(206, 65536, ctypes.byref(ctx)),"  # io_setup: host-wide aio-max-nr
        " sc(458, buf, buf, 16, 0))"  # listmount
    )
    r = await sb.execute(code)
    return r.error is None and all_denied(r.value)


@attack
async def watch_files_outside_with_inotify(sb: Sandbox, e: Env) -> bool:
    code = SC + f"fd = sc(294, 0)\n(fd, sc(254, fd[0], {str(e.canary).encode()!r}, 0xFFF))"
    r = await sb.execute(code)
    return r.error is None and r.value is not None and r.value.startswith("((-1")


@attack
async def sigio_to_the_server(sb: Sandbox, e: Env) -> bool:
    """F_SETOWN makes the kernel itself send SIGIO (or the F_SETSIG signal) to any pid."""
    code = (
        "import fcntl, os, signal\n"
        "r, w = os.pipe()\n"
        "steps = []\n"
        f"for cmd, arg in ((fcntl.F_SETOWN, {e.pid}), (10, int(signal.SIGUSR2)),"
        " (fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)):\n"
        "    try:\n"
        "        fcntl.fcntl(r, cmd, arg)\n"
        "        steps.append(cmd)\n"
        "    except OSError:\n"
        "        pass\n"
        "os.write(w, b'x')\n"
        "steps"
    )
    r = await sb.execute(code)
    await sb.execute("1")  # a round trip: a signal sent meanwhile has been handled by now
    return r.error is None and not e.signals and "8" not in (r.value or "")


@attack
async def clear_parent_death_signal(sb: Sandbox, e: Env) -> bool:
    """Without PDEATHSIG (and with its control pipe replaced) a worker outlives a killed server."""
    r = await sb.execute(
        SC + "u = ctypes.c_ulong\nlibc.prctl(1, u(0), u(0), u(0), u(0)), ctypes.get_errno()"
    )
    return r.error is None and r.value == "(-1, 1)"


@attack
async def personality_and_limits(sb: Sandbox, e: Env) -> bool:
    code = SC + (
        "import resource\n"
        "new = (ctypes.c_uint64 * 2)(2 ** 62, 2 ** 62)\n"
        "(sc(135, 0x0400000),"  # personality(READ_IMPLIES_EXEC)
        " sc(302, 0, resource.RLIMIT_AS, new, None),"  # prlimit64 raising our own limit
        f" sc(302, {e.pid}, resource.RLIMIT_NOFILE, new, None))"
    )
    r = await sb.execute(code)
    return r.error is None and all_denied(r.value)


@attack
async def host_clock_hostname_scheduler(sb: Sandbox, e: Env) -> bool:
    code = SC + (
        "ts = (ctypes.c_long * 2)(0, 0)\n"
        "prio = ctypes.c_int(50)\n"
        "(sc(227, 0, ts), sc(164, ts, None), sc(170, b'pwned', 5),"
        " sc(144, 0, 1, ctypes.byref(prio)))"  # sched_setscheduler(SCHED_FIFO)
    )
    r = await sb.execute(code)
    return r.error is None and all_denied(r.value)


@attack
async def mmap_noreserve_8_gib(sb: Sandbox, e: Env) -> bool:
    code = SC + (
        "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,"
        " ctypes.c_int, ctypes.c_long]\n"
        "libc.mmap(None, 8 << 30, 3, 0x22 | 0x4000, -1, 0) in (None, 2 ** 64 - 1)"
    )
    r = await sb.execute(code)
    return r.error is None and r.value == "True"


# --- the worker's own channel ------------------------------------------------------------------


@attack
async def huge_exception_message(sb: Sandbox, e: Env) -> bool:
    r = await sb.execute("raise ValueError('x' * 30_000_000)")
    r2 = await sb.execute("raise type('E' * 1_000_000, (Exception,), {})()")
    cap = 64 * 1024 * 2
    return (
        r.error is not None
        and len(r.error.message) <= cap
        and r2.error is not None
        and len(r2.error.type) <= 1000
    )


@attack
async def unencodable_text_breaks_the_trajectory(sb: Sandbox, e: Env) -> bool:
    """A lone surrogate cannot be encoded as UTF-8: in stdout, an exception or a tool argument it
    would make every JSON encoding of the trajectory (and of LSP messages) fail afterwards."""
    assert isinstance(sb.handler, Recorder)
    code = (
        "import sys\n"
        "bad = '\\ud800'\n"
        "print('out' + bad)\n"
        "print('err' + bad, file=sys.stderr)\n"
        "echo('arg' + bad, **{'key' + bad: ['v' + bad]})\n"
        "raise type('E' + bad, (Exception,), {})('msg' + bad)"
    )
    r = await sb.execute(code)
    v = await sb.execute("'\\udfff' + '\\U0001F600'")
    try:
        r.model_dump_json()
        v.model_dump_json()
        json.dumps([c.model_dump() for c in sb.handler.calls], ensure_ascii=False).encode()
    except ValueError:
        return False
    return "out" in r.stdout and r.error is not None and v.value is not None and "😀" in v.value


@attack
async def deeply_nested_forged_frame(sb: Sandbox, e: Env) -> bool:
    """The host's JSON decoder recurses: a forged `[[[[...` must end the worker, not the reader
    thread (which would leave the step hanging until its timeout, and leak the pipes)."""
    code = CHAN + (
        "data = b'J' + b'[' * 200_000\n"
        "os.write(OUT, len(data).to_bytes(4, 'little') + data)\n"
        "import time\n"
        "time.sleep(60)"
    )
    r = await sb.execute(code)
    return await crashed_then_fresh(sb, r.error.type if r.error else None)


@attack
async def forged_call_to_unexposed_tool(sb: Sandbox, e: Env) -> bool:
    assert isinstance(sb.handler, Recorder)
    r = await sb.execute(CHAN + "frame('C', [999, 'secret_tool', 1, [], {}])\nreply()")
    names = [c.name for c in sb.handler.calls]
    return r.value is not None and "NameError" in r.value and names == []


@attack
async def tool_call_after_a_forged_done(sb: Sandbox, e: Env) -> bool:
    """A forged "done" ends the step early; calls the snippet makes after it would run with no
    step to record them in the trajectory, so the host must refuse them. (The test starts no
    other step meanwhile: it waits for the worker to exit, which it does after the answer.)"""
    assert isinstance(sb.handler, Recorder)
    code = CHAN + (
        "seq = sys._getframe(2).f_locals['msg'].get('seq')\n"  # serve() -> execute() -> here
        "frame('J', {'t': 'done', 'value': \"'forged'\", 'seq': seq})\n"
        "frame('C', [999, 'add', 1, [1, 2], {}])\n"
        "answer = reply()\n"
        "os._exit(0)"
    )
    pid = sb.pid
    assert pid is not None
    pidfd = os.pidfd_open(pid)
    try:
        r = await sb.execute(code)
        # the idle worker is stopped as soon as the (forged) result is in; continue it here, as
        # if it had got past that, to see the host refuse what it sends after its step. It may
        # have got past that on its own (refused, answered and exited before the stop reached
        # it) and be reaped already: the pidfd still reports its exit
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        exited: tuple[list[int], list[int], list[int]] = await asyncio.to_thread(
            select.select, [pidfd], [], [], 10
        )
    finally:
        os.close(pidfd)
    return r.value == "'forged'" and bool(exited[0]) and sb.handler.calls == []


@attack
async def tool_call_from_a_leftover_thread(sb: Sandbox, e: Env) -> bool:
    """A thread that outlives its step and writes call frames straight to the channel."""
    assert isinstance(sb.handler, Recorder)
    code = CHAN + (
        "import threading\n"
        "go = threading.Event()\n"
        "def later():\n"
        "    go.wait()\n"
        "    frame('C', [998, 'add', 1, [1, 2], {}])\n"
        "threading.Thread(target=later, daemon=True).start()"
    )
    await sb.execute(code)
    # the next step releases it and ends at once: the frame arrives around the "done"
    await sb.execute("go.set()")
    await sb.execute("1")
    calls = [c.name for c in sb.handler.calls]
    return calls in ([], ["add"])  # during a step it is an ordinary (recorded) call


@attack
async def forged_stop_and_interrupt_flags(sb: Sandbox, e: Env) -> bool:
    """`stopped` means final_answer's reply said stop; `cancelled` means we interrupted: both are
    what the host saw, never what the worker says."""
    forged = {
        "t": "done",
        "stopped": True,
        "interrupted": True,
        "error": {"type": "KeyboardInterrupt", "message": "", "line": 1, "traceback": ""},
    }
    r1 = await sb.execute(
        CHAN + f"forged = {forged!r}\n"
        "forged['seq'] = sys._getframe(2).f_locals['msg'].get('seq')\n"
        "frame('J', forged)\n"
        "import time\n"
        "time.sleep(0.2)"
    )
    await sb.execute("1")
    # the worker's own flag, set from inside through its frame
    r2 = await sb.execute("import sys\nsys._getframe(1).f_locals['self'].stopped = True")
    return not r1.stopped and not r1.cancelled and not r2.stopped


@attack
async def forged_done_shifts_later_results(sb: Sandbox, e: Env) -> bool:
    """A snippet can end its own step early with a forged "done" (it runs in the process that
    speaks the protocol), but its real "done" must not become the next step's result."""
    code = CHAN + (
        "import time\n"
        "seq = sys._getframe(2).f_locals['msg'].get('seq')\n"  # serve() -> execute() -> here
        "frame('J', {'t': 'done', 'value': \"'forged'\", 'seq': seq})\n"
        "time.sleep(0.3)\n"
        "'real'"
    )
    await sb.execute(code)
    results = [(await sb.execute(f"{n} * 10")).value for n in range(3)]
    return results == ["0", "10", "20"]


@attack
async def tool_calls_after_final_answer(sb: Sandbox, e: Env) -> bool:
    """final_answer ends the run: swallowing its `Stop` and resetting the worker's own flag must
    not let the snippet go on calling tools."""
    assert isinstance(sb.handler, Recorder)
    code = (
        "import sys\n"
        "worker = sys._getframe().f_back.f_locals['self']\n"
        "try:\n"
        "    final_answer(1)\n"
        "except BaseException:\n"
        "    pass\n"
        "worker.stopped = False\n"
        "try:\n"
        "    add(1, 2)\n"
        "except BaseException as exc:\n"
        "    refused = type(exc).__name__\n"
        "refused"
    )
    r = await sb.execute(code)
    return r.stopped and [c.name for c in sb.handler.calls] == ["final_answer"]


@attack
async def patched_stub_fakes_a_result(sb: Sandbox, e: Env) -> bool:
    """Generated code can lie to itself (patch a stub), but the trajectory records calls where
    the host answered them: a faked call is not recorded, a real one is."""
    assert isinstance(sb.handler, Recorder)
    r = await sb.execute(
        "real = add\n"
        "call = next(c.cell_contents for c in add.__closure__ if callable(c.cell_contents))\n"
        "call.__func__.__code__ = (lambda self, name, args, kwargs: 999).__code__\n"
        "(add(1, 2), final_answer('fake'), real is add)"
    )
    return r.value == "(999, 999, True)" and not r.stopped and sb.handler.calls == []


@attack
async def hijacked_control_pipe(sb: Sandbox, e: Env) -> bool:
    """The snippet replaces the interrupt pipe with its own and ignores SIGINT: the host must
    still get control back (kill) within the time limit."""
    code = CHAN + (
        "import signal\n"
        "r, w = os.pipe()\n"
        "os.dup2(r, CTL)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass"
    )
    r = await sb.execute(code, timeout=1.0)
    after = await sb.execute("1")
    return r.timed_out and r.state_lost and after.value == "1"


# --- per backend -------------------------------------------------------------------------------


async def _start(make_sandbox: Factory, backend: str) -> Sandbox:
    return await make_sandbox(
        backend=backend, timeout=5, memory_mb=MEMORY_MB, disk_mb=8, output_kb=64
    )


def _record(backend: str, sb: Sandbox, name: str, blocked: bool) -> None:
    ATTACK_RESULTS.setdefault(_label(backend, sb), {})[name] = blocked


@pytest.mark.parametrize("name", list(REDTEAM))
@pytest.mark.parametrize("backend", BACKENDS)
async def test_redteam_attack_is_blocked(
    backend: str,
    name: str,
    make_sandbox: Factory,
    env: Env,  # noqa: F811
) -> None:
    sb = await _start(make_sandbox, backend)
    blocked = await REDTEAM[name](sb, env)
    _record(backend, sb, name, blocked)
    assert blocked, f"attack {name!r} was not blocked by {sb.info.backend}"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_other_sandboxes_are_out_of_reach(
    backend: str,
    make_sandbox: Factory,
    env: Env,  # noqa: F811
) -> None:
    """Another run's scratch and its worker: not readable, not signalable."""
    victim = await _start(make_sandbox, backend)
    attacker = await _start(make_sandbox, backend)
    assert (await victim.execute(f"open('loot', 'w').write({CANARY!r})")).error is None
    assert victim.scratch is not None and victim.pid is not None
    loot = os.path.join(victim.scratch, "loot")
    r1 = await attacker.execute(f"open({loot!r}).read()")
    r2 = await attacker.execute(f"import os\nos.listdir({victim.scratch!r})")
    r3 = await attacker.execute(
        SC + f"(sc(62, {victim.pid}, 9), sc(234, {victim.pid}, "
        f"{victim.pid}, 9), sc(129, {victim.pid}, 9, None))"
    )
    alive = await victim.execute("open('loot').read()")
    blocked = (
        failed(r1)
        and CANARY not in leaked_text(r1)
        and failed(r2)
        and all_denied(r3.value)
        and alive.value == repr(CANARY)
    )
    _record(backend, attacker, "other_sandboxes_scratch_and_pid", blocked)
    assert blocked


@pytest.mark.parametrize("backend", BACKENDS)
async def test_next_run_starts_clean(backend: str, make_sandbox: Factory) -> None:
    """A run that poisons everything it can reach in its worker (globals, builtins, sys.modules,
    environment, scratch files, sys.path) leaves nothing for the next run: each run gets a worker
    that has never run code (the warm spare), and the old one is killed with its run."""
    first = await _start(make_sandbox, backend)
    poison = (
        "import builtins, os, sys, types\n"
        "secret_global = 'left over'\n"
        "builtins.print = lambda *a, **k: None\n"
        "builtins.poisoned = True\n"
        "sys.modules['json'] = types.ModuleType('json')\n"
        "os.environ['POISON'] = '1'\n"
        "open('left-over.txt', 'w').write('x')\n"
        "sys.path.insert(0, os.getcwd())\n"
        "open('hashlib.py', 'w').write('POISONED = True')"
    )
    assert (await first.execute(poison)).error is None
    await first.close()
    second = await _start(make_sandbox, backend)
    r = await second.execute(
        "import builtins, hashlib, json, os\n"
        "print('visible')\n"
        "('secret_global' in globals(), hasattr(builtins, 'poisoned'), hasattr(json, 'dumps'),"
        " 'POISON' in os.environ, os.listdir('.'), hasattr(hashlib, 'POISONED'))"
    )
    clean = r.stdout == "visible\n" and r.value == "(False, False, True, False, [], False)"
    _record(backend, second, "poison_the_next_run", clean)
    assert clean, r
