"""The parent's side of one worker: the OS process, its pipes, and the thread serving its tool calls.

Tool calls are answered on a plain thread (never the event loop): the reader thread receives a call,
runs the blocking handler inline and writes the reply, which is what makes ~50k round trips/s
possible. When an interrupt arrives while a handler is still busy, a second reader takes over the
pipe so the worker's "done" is not stuck behind a slow tool (the first reader retires after its
call). Everything the worker sends is untrusted: frames are size-capped and JSON-decoded.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import json
import json.scanner
import marshal
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact_lsp.sandbox import codec
from codeact_lsp.sandbox.models import (
    DirectConn,
    DirectSink,
    ErrorLocation,
    ToolHandler,
    ToolReply,
    ToolRequest,
)

WORKER_PATH = str(Path(__file__).with_name("worker.py"))
# Imported, not run as a script: a script is compiled on every start (~5 ms idle, 30 ms on a busy
# machine), an imported module comes from its cached .pyc.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); import worker; del sys.path[0]; "
    "worker.main(sys.argv)"
)
MAX_FRAME = 64 * 1024 * 1024
_HEADER = 4


_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


@dataclass
class ChannelLimits:
    """Caps of what one worker may send (bytes; calls per snippet), from SandboxSettings."""

    frame: int = MAX_FRAME  # any one message: over it, the worker is killed
    args: int = 1024 * 1024  # one call's arguments: over it, the call fails in the snippet
    calls: int = 10_000  # tool calls per snippet
    backlog: int = 2 * MAX_FRAME  # bytes waiting for a worker that does not read its channel


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_HEADER, "little") + payload


def _refuse(cid: int | None, kind: str, message: str) -> bytes:
    return marshal.dumps(("r", cid, None, (kind, message, None, None), False))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WorkerDied(RuntimeError):
    """The worker process ended (or broke the protocol) while we were waiting for it."""


@dataclass(frozen=True)
class SpawnSpec:
    """Everything fixed at process start; workers with equal specs are interchangeable spares."""

    python: str
    backend: str  # "landlock" | "bwrap" | "none"
    bwrap: str | None = None
    binds: tuple[str, ...] = ()  # read-only binds inside bubblewrap
    disk_mb: int = 64
    max_files: int = 0  # > 0: the worker mounts its private tmpfs at start (off the critical path)
    env: tuple[tuple[str, str], ...] = field(default=())


def _minimal_env(scratch: str) -> dict[str, str]:
    # MALLOC_ARENA_MAX: glibc gives each concurrently allocating thread its own arena, and every
    # arena reserves 64 MB of address space; under RLIMIT_AS (memory_mb) that let only ~13
    # threads start at 512 MB. Two arenas keep threads usable within the memory limit.
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "MALLOC_ARENA_MAX": "2",
    }


def _bwrap_argv(spec: SpawnSpec, scratch: str) -> list[str]:
    assert spec.bwrap is not None
    argv = [
        spec.bwrap,
        "--die-with-parent",
        "--unshare-user",
        "--unshare-pid",
        "--as-pid-1",
        "--unshare-ipc",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for d in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        argv += ["--ro-bind-try", f, f]
    # /proc of the sandbox's own pid namespace: the worker needs /proc/self to map its private
    # tmpfs namespace; Landlock hides all of /proc from generated code afterwards
    argv += ["--dev", "/dev", "--proc", "/proc"]
    argv += ["--perms", "0700", "--size", str(spec.disk_mb * 1024 * 1024), "--tmpfs", scratch]
    for b in spec.binds:
        if os.path.exists(b) and not b.startswith("/usr/"):
            argv += ["--ro-bind", b, b]
    argv += ["--chdir", scratch, "--clearenv"]
    for k, v in _minimal_env(scratch).items():
        argv += ["--setenv", k, v]
    argv.append("--")
    return argv


class WorkerProcess:
    """A started worker. `ready` resolves with the worker's hello; `request` sends one command."""

    def __init__(self, spec: SpawnSpec) -> None:
        self.spec = spec
        self.scratch = tempfile.mkdtemp(prefix="codeact-sb-")
        self.handler: ToolHandler | None = None
        self.tool_names: frozenset[str] = frozenset()  # a forged frame may name anything else
        self.ready: cf.Future[dict[str, Any]] = cf.Future()
        self.pid: int | None = None  # the worker's pid on the host (inside bwrap: bwrap's child)
        self.dead = False
        self.death: str = ""
        self._lock = threading.Lock()
        # Outgoing bytes: written without ever blocking (the pipe is non-blocking); what the pipe
        # does not take now waits in `_backlog` for the drain thread. `_out_lock` is held only
        # around non-blocking calls, so the event loop never waits behind a full pipe.
        self._out_lock = threading.Lock()
        self._backlog: collections.deque[bytes] = collections.deque()
        self._backlog_size = 0
        self._drain_wake = threading.Event()
        self._drainer: threading.Thread | None = None
        self._pending: cf.Future[dict[str, Any]] | None = None
        self._rbuf = bytearray()  # what the readers received and have not used yet
        self._gen = 0
        self.limits = ChannelLimits()
        self.confirm_names: frozenset[str] = frozenset()  # tools that need the step's approval
        self.confirmed = False  # a person approved the snippet in flight (confirm tools may run)
        self._calls = 0  # tool calls answered during the snippet in flight
        self.refusals: list[dict[str, Any]] = []  # confirm tools refused during that snippet
        self.broken: str | None = None  # why the channel is unusable (then the worker is killed)
        self._readers = 0
        self._in_call = False
        # What the host itself saw during the current snippet. The worker's own report is written
        # by the process that runs untrusted code, which can forge any frame on its channel: these
        # are what `stopped` / `cancelled` and tool-call admission are decided from.
        self.executing = False  # an "exec" is in flight: only then are tool calls answered
        self.stop_replied = False  # a tool reply said stop (final_answer) during this snippet
        self.interrupted = False  # we asked the worker to interrupt this snippet
        self._nonce = ""  # random id of the snippet in flight: its "done" must echo it
        # The direct route (see tools/runtime/direct.py): a second pipe pair whose far ends are
        # handed to the tool host when a sandbox is configured (`take_direct_fds`).
        self.direct: DirectConn | None = None  # attached to a tool host
        self.direct_nonce: str | None = None  # the step open on the host, while one is
        self.direct_sink: DirectSink | None = None  # where that step's call records go
        self.direct_cancelled = False  # the step open there was cancelled (see Sandbox)
        self.direct_broken: str | None = None  # why the host cut it off its direct route
        self.direct_broken_reported = False  # a result said state_lost for it
        self._flush_lock = threading.Lock()  # see flush_direct
        p2w_r, self._to = os.pipe()  # not inheritable (PEP 446): only pass_fds reach the child
        self._from, w2p_w = os.pipe()
        ctl_r, self._ctl = os.pipe()
        h2w_r, h2w_w = os.pipe()
        w2h_r, w2h_w = os.pipe()
        self._direct_fds: tuple[int, int] | None = (w2h_r, h2w_w)
        child_fds = (p2w_r, w2p_w, ctl_r, h2w_r, w2h_w)
        parent = 0 if spec.backend == "bwrap" else os.getpid()
        argv = [spec.python, "-I", "-S", "-c", _BOOT, str(Path(WORKER_PATH).parent)]
        argv += [str(p2w_r), str(w2p_w), str(ctl_r), str(parent)]
        argv += [str(spec.disk_mb), str(spec.max_files), str(h2w_r), str(w2h_w)]
        if spec.backend == "bwrap":
            argv = _bwrap_argv(spec, self.scratch) + argv
        try:
            self.proc = subprocess.Popen(
                argv,
                pass_fds=child_fds,
                env=_minimal_env(self.scratch),
                cwd=self.scratch,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            for fd in (*child_fds, self._to, self._from, self._ctl, w2h_r, h2w_w):
                os.close(fd)
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        for fd in child_fds:
            os.close(fd)
        os.set_blocking(self._to, False)
        os.set_blocking(self._ctl, False)
        self._start_reader()

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self.dead

    def kill(self, why: str = "killed") -> None:
        """SIGKILL the whole process group (bwrap and the worker in it); idempotent. The scratch
        directory goes too: at interpreter exit the reader thread may not get to remove it."""
        with self._lock:
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            if not self.death:
                self.death = why
        self._close_direct_fds()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def flush_direct(self, nonce: str) -> None:
        """Hand the host's records of the open step so far to the sink (blocking, bounded; from
        a thread). Serialised: records reach the sink in the order the host made them."""
        with self._flush_lock:
            conn, sink = self.direct, self.direct_sink
            if conn is None or sink is None or self.direct_nonce != nonce:
                return
            calls, omitted = conn.flush(nonce)
            if calls or omitted:
                sink(calls, omitted)

    def take_direct_fds(self) -> tuple[int, int] | None:
        """The host's ends of the direct pipes (read calls, write replies), once: the caller hands
        them to the tool host and closes them here, so the worker sees EOF when the host dies."""
        with self._lock:
            fds, self._direct_fds = self._direct_fds, None
        return fds

    def _close_direct_fds(self) -> None:
        fds = self.take_direct_fds()
        for fd in fds or ():
            with contextlib.suppress(OSError):
                os.close(fd)

    def interrupt(self) -> None:
        """Ask the worker to raise KeyboardInterrupt in the running snippet (keeps its globals)."""
        with self._lock:
            if self.dead:
                return
            self.interrupted = True
            if self._in_call:  # the reader is busy in a handler: let a fresh reader take over
                self._in_call = False
                self._start_reader()
        with contextlib.suppress(OSError):  # non-blocking: a full control pipe already says it
            os.write(self._ctl, b"i")

    def _host_pid(self) -> int:
        """The worker's pid as we see it (not as it reports it): inside bwrap, bwrap's child."""
        if self.spec.backend != "bwrap":
            return self.proc.pid
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as fh:
                kids = fh.read().split()
            return int(kids[0])
        except (OSError, IndexError, ValueError):
            return self.proc.pid

    def cpu_seconds(self) -> float | None:
        """CPU time the worker used so far (read from /proc, so generated code cannot fake it)."""
        pid = self.pid or self.proc.pid
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    # --- requests -------------------------------------------------------------------------------

    def request(self, msg: dict[str, Any], *, confirmed: bool = False) -> cf.Future[dict[str, Any]]:
        """Send one command; never blocks (see `_write`). `confirmed`: a person approved this
        snippet, so tools flagged `confirm` may be served while it runs."""
        fut: cf.Future[dict[str, Any]] = cf.Future()
        with self._lock:
            if self.dead:
                fut.set_exception(WorkerDied(self.death or "the worker is not running"))
                return fut
            self._pending = fut
            self.executing = msg.get("t") == "exec"
            self.stop_replied = self.interrupted = False
            self.confirmed = confirmed and self.executing
            self._calls = 0
            self.refusals = []
            if self.executing:
                # each snippet's "done" must echo its nonce: after a forged early "done", the
                # real one of that snippet would otherwise be taken as the next snippet's result,
                # and a thread left from an earlier snippet cannot know the next one's
                self._nonce = secrets.token_hex(8)
                msg = {**msg, "seq": self._nonce}
        self._write(_frame(marshal.dumps(msg)))
        return fut

    def _write(self, data: bytes) -> None:
        """Queue `data` for the worker without ever blocking: write what the pipe takes now, leave
        the rest to the drain thread. A worker that stops reading is killed once its backlog
        passes the cap (it cannot make the server hold its messages forever)."""
        over = False
        with self._out_lock:
            if self.dead:
                return
            if not self._backlog:
                try:
                    n = os.write(self._to, data)
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    self._kill_later(f"channel broken: {exc}")
                    return
                if n == len(data):
                    return
                data = data[n:]
            self._backlog.append(data)
            self._backlog_size += len(data)
            over = self._backlog_size > self.limits.backlog
            if over:
                self.broken = (
                    f"the worker stopped reading its channel ({self._backlog_size} bytes waiting)"
                )
            if self._drainer is None and not over:
                self._drainer = threading.Thread(
                    target=self._drain, name=f"sandbox-drain-{self.proc.pid}", daemon=True
                )
                self._drainer.start()
        if over:
            self._kill_later(self.broken or "the worker stopped reading its channel")
        else:
            self._drain_wake.set()

    def _kill_later(self, why: str) -> None:
        threading.Thread(target=self.kill, args=(why,), daemon=True).start()

    def _drain(self) -> None:
        """Write the backlog as the pipe drains (the only place that waits on the pipe)."""
        fd = self._to
        while not self.dead:
            self._drain_wake.wait(1.0)
            self._drain_wake.clear()
            while self._backlog and not self.dead:
                try:
                    _, ready, _ = select.select([], [fd], [], 1.0)
                except (OSError, ValueError):
                    return
                if not ready:
                    continue
                with self._out_lock:
                    if not self._backlog:
                        break
                    chunk = self._backlog[0]
                    try:
                        n = os.write(fd, chunk[: 1 << 16])
                    except BlockingIOError:
                        continue
                    except OSError:
                        return
                    self._backlog_size -= n
                    if n == len(chunk):
                        self._backlog.popleft()
                    else:
                        self._backlog[0] = chunk[n:]

    # --- the reader thread ------------------------------------------------------------------------

    def _start_reader(self) -> None:
        self._gen += 1
        self._readers += 1
        t = threading.Thread(
            target=self._serve,
            args=(self._gen,),
            name=f"sandbox-worker-{self.proc.pid}",
            daemon=True,
        )
        t.start()

    def _serve(self, gen: int) -> None:
        try:
            self._serve_loop(gen)
        finally:
            with self._lock:
                self._readers -= 1
                last = self._readers == 0 and self.dead
            if last:  # only now: a retired reader may still write a late reply to these fds
                for fd in (self._to, self._from, self._ctl):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _serve_loop(self, gen: int) -> None:
        # The hot path of every tool call: locals instead of attribute lookups, no helper calls.
        # Reads are linear in the frame size (a bytearray that grows by amortised appends, used
        # up by an offset and compacted now and then).
        read, scan, rfd = os.read, _SCAN, self._from
        limits = self.limits
        buf = self._rbuf
        pos = 0
        try:
            while True:
                while len(buf) - pos < _HEADER:
                    chunk = read(rfd, 65536)
                    if not chunk:
                        raise EOFError
                    buf += chunk
                n = int.from_bytes(buf[pos : pos + _HEADER], "little")
                if n > limits.frame:
                    raise WorkerDied(
                        f"the worker sent an oversized message ({n} bytes, the limit is "
                        f"{limits.frame})"
                    )
                end = pos + _HEADER + n
                while len(buf) < end:
                    chunk = read(rfd, min(max(65536, end - len(buf)), 1 << 20))
                    if not chunk:
                        raise EOFError
                    buf += chunk
                # strict: the worker's JSON is ASCII; raw UTF-8 surrogates can only be forged
                try:
                    text = buf[pos + _HEADER : end].decode("utf-8")
                except UnicodeDecodeError:
                    raise WorkerDied("the worker sent malformed text (not UTF-8)") from None
                pos = end
                if pos == len(buf) or pos > 1 << 20:
                    del buf[:pos]
                    pos = 0
                try:
                    msg, stop = scan(text, 1)
                    if "\\u" in text:  # lone surrogates come only as \u escapes: ASCII skips this
                        msg = codec.scrub(msg)
                except (StopIteration, RecursionError):  # RecursionError: `[[[[...]]]]` forged
                    raise WorkerDied("the worker sent malformed JSON") from None
                if stop != len(text):
                    raise WorkerDied("the worker broke the protocol")
                tag = text[:1]
                if tag == "C":
                    del buf[:pos]  # a reader that takes over meanwhile starts from here
                    pos = 0
                    self._in_call = True
                    reply = self._call(msg, n)
                    with self._lock:  # atomically: leave the call, and retire if replaced
                        self._in_call = False
                        retired = gen != self._gen
                    self._write(_frame(reply))
                    if self.broken:  # no more calls served for a worker that does not read
                        raise WorkerDied(self.broken)
                    if retired:
                        return
                    continue
                if tag != "J" or not isinstance(msg, dict):
                    raise WorkerDied("the worker broke the protocol")
                kind = msg.get("t")
                if kind == "ready":
                    self.pid = self._host_pid()
                    if not self.ready.done():
                        self.ready.set_result(msg)
                elif kind in ("done", "configured", "fatal"):
                    if kind == "done" and msg.get("seq") != self._nonce:
                        continue  # the late "done" of a snippet that forged an early one
                    with self._lock:
                        fut, self._pending = self._pending, None
                        self.executing = False
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                else:
                    raise WorkerDied(
                        f"the worker broke the protocol (message {_clip(repr(kind), 80)})"
                    )
        except (EOFError, OSError, ValueError, WorkerDied) as exc:
            self._finish(exc)

    def _call(self, msg: Any, size: int) -> bytes:
        """Run the handler for one call; the reply is ("r", id, result, error|None, stop), error
        being (type, message, exception tree, "file:line")."""
        try:
            cid, name, line, args, kwargs = msg
        except (TypeError, ValueError):
            return marshal.dumps(("r", None, None, ("TypeError", "malformed tool call"), False))
        handler = self.handler
        if type(cid) is not int:
            cid = None
        if (
            not isinstance(name, str)
            or len(name) > 200
            or not isinstance(args, list)
            or not isinstance(kwargs, dict)
            or not (line is None or type(line) is int)
        ):
            return marshal.dumps(("r", cid, None, ("TypeError", "malformed tool call"), False))
        if handler is None or name not in self.tool_names:
            return marshal.dumps(("r", cid, None, ("NameError", f"no tool named {name!r}"), False))
        limits = self.limits
        if size > limits.args:
            return _refuse(
                cid,
                "ValueError",
                f"{name}(): the arguments are {size // 1024} KiB, over the "
                f"{limits.args // 1024} KiB limit (sandbox.max_args_kb); pass less, or a path",
            )
        self._calls += 1
        if self._calls > limits.calls:
            return _refuse(
                cid,
                "RuntimeError",
                f"{name}(): this step already made {limits.calls} tool calls, the limit "
                "(sandbox.max_tool_calls); do the rest in a later step or in fewer calls",
            )
        if name in self.confirm_names and not self.confirmed:
            # enforced here, where the call is served: an alias, getattr, globals(), eval or a
            # frame written straight to the channel all end up here
            message = (
                f"{name}() needs a person's approval and this step was not approved; call "
                f"{name}(...) by name in a step of its own, so the step is shown for approval"
            )
            if len(self.refusals) < 100:
                self.refusals.append({"name": name, "line": line, "message": message})
            return _refuse(cid, "PermissionError", message)
        if self.stop_replied:
            # final_answer's reply said stop; the stub refuses further calls itself, but the
            # snippet can swallow `Stop`, reset the worker's flag, or write frames directly
            return marshal.dumps(
                ("r", cid, None, ("RuntimeError", "final_answer() has ended the run"), True)
            )
        if not self.executing:
            # A frame written straight to the channel by a thread left running, or after a forged
            # "done": no step is running, so nobody would record the call in the trajectory.
            return marshal.dumps(
                ("r", cid, None, ("RuntimeError", "tools can only be called during a step"), False)
            )
        conn, nonce = self.direct, self.direct_nonce
        if conn is not None and nonce is not None:
            # host tools of this step were served by the host itself: record them first, so the
            # trajectory keeps the order of the calls
            self.flush_direct(nonce)
        try:
            reply = handler(ToolRequest.checked(name, args, kwargs, line))
            if not isinstance(reply, ToolReply):
                reply = ToolReply.model_validate(reply)
        except BaseException as exc:  # even SystemExit: this thread must answer the worker
            reply = ToolReply(error=ErrorLocation(type=type(exc).__name__, message=str(exc)))
        err = reply.error
        if reply.stop:
            self.stop_replied = True
            if conn is not None and nonce is not None:
                conn.halt(nonce)  # the host refuses the step's further calls too
        error = None
        if err is not None:
            where = f"{os.path.basename(err.file)}:{err.line}" if err.file and err.line else None
            error = (err.type, err.message, err.exception, where)
        out: tuple[Any, ...] = ("r", cid, reply.result, error, reply.stop)
        try:
            return marshal.dumps(out)
        except ValueError:  # not marshal-able: a handler that answered with a Python object
            result: Any = codec.encode(reply.result)
            try:
                return marshal.dumps((*out[:2], result, *out[3:]))
            except ValueError:
                return marshal.dumps((*out[:2], None, ("TypeError", "unencodable result"), False))

    def _finish(self, exc: BaseException) -> None:
        self._drain_wake.set()
        self._finish_inner(exc)

    def _finish_inner(self, exc: BaseException) -> None:
        """The channel ended: make sure the process is gone, reap it, fail whoever waits."""
        self.kill("channel closed" if isinstance(exc, EOFError) else str(exc))
        with self._lock:
            code = self.proc.wait()
            self.dead = True
            if code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = str(-code)
                detail = f"killed by {name}"
            else:
                detail = f"exited with status {code}"
            if self.death in ("", "channel closed"):
                self.death = detail
            elif detail not in self.death:
                self.death = f"{self.death} ({detail})"
            fut, self._pending = self._pending, None
        err = WorkerDied(self.death)
        if fut is not None and not fut.done():
            fut.set_exception(err)
        if not self.ready.done():
            self.ready.set_exception(err)
        shutil.rmtree(self.scratch, ignore_errors=True)
