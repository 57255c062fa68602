"""The direct route, host side: sandbox workers call the host's tools without the server in between.

The server spawns every sandbox worker with a second pipe pair and hands the far ends to this host
over the control socket (`socket.send_fds`, see `Control`). Each attached worker is a `Conn`.
One poll loop in the main thread (`Hub.run`) serves them all, and the server's own requests on
stdin: tools keep running in the main thread, so their SIGALRM timeout and the SIGUSR2 cancel work
as before, and calls stay one at a time.

Everything a worker writes is untrusted (it runs generated code). Reads never block and are linear
in the frame size; every frame is size-capped and parsed as strict JSON; replies are written
without blocking, and what the pipe does not take waits in a bounded backlog. A worker that breaks
the protocol, sends an oversized frame or stops reading its replies is cut off, and the server is
told at once (`{"op": "broken"}`) so it kills the worker: it cannot stall the host for the others.

Calls are served only while the server has opened a step on the connection (`open`: the step's
nonce, whether a person approved it, and its caps); `close` returns the step's call records,
clipped exactly as the server's own handler records them (`codec.recorded_*`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import json.scanner
import marshal
import os
import select
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from . import _codec
from .describe import JSON
from .errors import _CANCEL, DEADLINE, result_too_big
from .registry import Registry

_HEADER = 4
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
HUNG_GRACE = 2.0  # seconds past a direct call's timeout before the host gives itself up
STALE_PARTIAL = 0.2  # seconds without bytes after which an unfinished frame is abandoned
SPIN_S = 50e-6  # how long the host waits awake for a worker's next call (see Hub._readable)
STREAK = 256  # calls of one worker served in a row before the others are polled


def _closed(exc: OSError) -> str:
    """Why writing to a worker failed (a dead worker is killed already: the kill is idempotent)."""
    if isinstance(exc, BrokenPipeError):
        return "the worker closed its tool channel"
    return f"channel broken: {exc}"


def _refuse(cid: Any, kind: str, message: str, stop: bool = False) -> bytes:
    return marshal.dumps(("r", cid, None, (kind, message, None, None), stop))


class Broken(Exception):
    """The worker broke the protocol: its connection is cut and the server kills it."""


class StepState:
    """One open step of one connection: its caps and what it did."""

    __slots__ = (
        "calls",
        "confirm",
        "confirmed",
        "halted",
        "max_args",
        "max_calls",
        "max_recorded",
        "nonce",
        "omitted",
        "record_chars",
        "recorded",
        "records",
        "refused",
        "timeout",
    )

    def __init__(self, msg: JSON) -> None:
        self.nonce = str(msg.get("nonce", ""))
        self.confirmed = bool(msg.get("confirmed"))
        self.confirm = frozenset(str(n) for n in msg.get("confirm", ()))  # this run's too
        self.max_calls = int(msg.get("max_calls") or 10_000)
        self.max_args = int(msg.get("max_args") or 1 << 20)
        self.timeout = float(msg.get("timeout") or 60.0)
        self.record_chars = int(msg.get("record_chars") or 2048)
        self.max_recorded = int(msg.get("max_recorded") or 1000)
        self.calls = 0
        self.halted = False
        self.records: list[JSON] = []
        self.recorded = 0
        self.omitted = 0
        self.refused: list[JSON] = []


if TYPE_CHECKING:  # (this module runs on the workspace's Python too: 3.8 has no tuple[...])
    # a served call still to be recorded: its step, name, line, args, kwargs, the registry's out
    _Pending = tuple[StepState, str, Any, list[Any], JSON, JSON]


class Conn:
    """One attached worker: its two pipe ends, its read buffer, its backlog, its open step."""

    def __init__(self, cid: int, rfd: int, wfd: int, msg: JSON) -> None:
        self.id = cid
        self.rfd = rfd
        self.wfd = wfd
        self.names = frozenset(str(n) for n in msg.get("names", []))
        self.confirm = frozenset(str(n) for n in msg.get("confirm", []))
        self.max_frame = int(msg.get("max_frame") or 64 << 20)
        self.max_backlog = int(msg.get("backlog") or 8 << 20)
        self.lock = threading.Lock()  # the step, against the control thread
        self.step: StepState | None = None
        self.buf = bytearray()
        self.backlog: collections.deque[bytes] = collections.deque()
        self.backlog_size = 0
        self.closed = False
        self.broken: str | None = None  # why the host cut it off (the server kills the worker)
        self.last_read = 0.0  # when bytes last arrived (a partial frame left since is stale)
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        self.ready = poller.poll  # this worker's next call is there (see Hub._readable)

    def close_fds(self) -> None:
        if not self.closed:
            self.closed = True
            for fd in (self.rfd, self.wfd):
                with contextlib.suppress(OSError):
                    os.close(fd)


class Hub:
    """The host's main loop: the server's requests on stdin and every attached worker."""

    def __init__(self, registry: Registry, max_reply: int) -> None:
        self.registry = registry
        self.max_reply = max_reply
        self.conns: dict[int, Conn] = {}  # by connection id
        self._by_fd: dict[int, Conn] = {}
        self._lock = threading.Lock()  # conns, against the control thread
        self._changes: list[tuple[str, Conn]] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.control: Control | None = None
        self.busy_until = 0.0  # a direct call runs until then, at the latest (see `watch`)
        self.serving: Conn | None = None  # whose direct call runs now

    def watch(self) -> None:
        """The host's timer: raises the alarm in the main thread when a call passes its deadline
        (`errors.DEADLINE`, checked every 50 ms instead of an interval timer armed per call).
        And a tool that ignores that interrupt would hold every worker of this host: the host
        ends itself then, the worker's call fails, and the server starts a fresh host (as it does
        for a hung call of its own)."""
        fired = 0.0
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            at = DEADLINE.at
            if at and now >= at and at != fired:
                fired = at
                with contextlib.suppress(OSError):
                    os.kill(os.getpid(), signal.SIGALRM)
            until = self.busy_until
            if until and now > until:
                try:
                    os.write(2, b"codeact tool host: a tool ignored its timeout; exiting\n")
                finally:
                    os._exit(70)

    # --- called from the control thread ------------------------------------------------------

    def attach(self, conn: Conn) -> None:
        with self._lock:
            old = self.conns.pop(conn.id, None)
            self.conns[conn.id] = conn
            if old is not None:
                self._changes.append(("drop", old))
            self._changes.append(("add", conn))
        self._wake()

    def detach(self, cid: int) -> None:
        with self._lock:
            conn = self.conns.pop(cid, None)
            if conn is not None:
                self._changes.append(("drop", conn))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is already pending
            os.write(self._wake_w, b"w")

    # --- the loop (main thread) ---------------------------------------------------------------

    def run(self, rfd: int, on_line: Any) -> None:
        """Serve until the server closes stdin. `on_line(bytes)` answers one request line."""
        poller = select.poll()
        pin, pout = select.POLLIN | select.POLLHUP | select.POLLERR, select.POLLOUT
        poller.register(rfd, pin)
        poller.register(self._wake_r, select.POLLIN)
        os.set_blocking(rfd, False)
        lines = bytearray()
        by_fd = self._by_fd
        while True:
            if self._changes:
                with self._lock:
                    changes, self._changes = self._changes, []
                for what, conn in changes:
                    if what == "add":
                        by_fd[conn.rfd] = conn
                        poller.register(conn.rfd, pin)
                    else:
                        self._drop(poller, conn)
            for fd, _ in poller.poll():
                if fd == rfd:
                    try:
                        chunk = os.read(rfd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        return
                    lines += chunk
                    start = 0
                    while (nl := lines.find(b"\n", start)) >= 0:
                        line = bytes(lines[start:nl])
                        start = nl + 1
                        if line.strip():
                            on_line(line)
                    del lines[:start]
                elif fd == self._wake_r:
                    with contextlib.suppress(OSError):
                        os.read(fd, 4096)
                else:
                    found = by_fd.get(fd)
                    if found is None or found.closed:
                        continue
                    conn = found
                    try:
                        if fd == conn.wfd:  # writable, or an error (the reader is gone)
                            self._drain(conn)
                            if not conn.backlog:
                                poller.unregister(fd)
                                del by_fd[fd]
                        else:
                            had = bool(conn.backlog)
                            self._readable(conn)
                            if conn.backlog and not had and not conn.closed:
                                by_fd[conn.wfd] = conn
                                poller.register(conn.wfd, pout)
                    except Broken as exc:
                        self._cut(poller, conn, str(exc))

    def _drop(self, poller: select.poll, conn: Conn) -> None:
        for fd in (conn.rfd, conn.wfd):
            if self._by_fd.get(fd) is conn:
                del self._by_fd[fd]
                with contextlib.suppress(KeyError, ValueError):
                    poller.unregister(fd)
        conn.close_fds()

    def _cut(self, poller: select.poll, conn: Conn, why: str) -> None:
        """A worker that misbehaved (or is gone): stop serving it, and have the server kill it.
        The connection stays known until the server detaches it, so its step's records are not
        lost."""
        with conn.lock:
            conn.broken = why or "the worker closed its channel"
        self._drop(poller, conn)
        if self.control is not None and why:
            self.control.send({"op": "broken", "conn": conn.id, "why": why[:500]})

    def _readable(self, conn: Conn) -> None:
        """Serve the calls a worker sent. Then, while it keeps calling (a loop of small calls),
        read its next call for a moment (SPIN_S) instead of sleeping in poll: a call that finds
        the host asleep pays a cross-CPU wake-up, which costs more than serving it. At most
        STREAK calls in a row, then back to poll, so the other workers and the server's own
        requests are served too."""
        chunk = self._read(conn)
        streak = 0
        clock = time.perf_counter
        ready = conn.ready
        while chunk:
            streak += self._frames(conn, chunk)
            if conn.backlog or streak >= STREAK:
                return
            until = clock() + SPIN_S
            while not ready(0):  # (a poll that finds nothing costs far less than a failed read)
                if clock() > until:
                    return
            chunk = self._read(conn)

    @staticmethod
    def _read(conn: Conn) -> bytes | None:
        try:
            chunk = os.read(conn.rfd, 1 << 16)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise Broken(f"channel broken: {exc}") from None
        if not chunk:
            raise Broken("")  # the worker is gone (killed, or exited): nothing to report
        conn.last_read = time.monotonic()
        return chunk

    def _frames(self, conn: Conn, chunk: bytes) -> int:
        """Serve the complete frames in the buffer; returns how many."""
        served = 0
        buf = conn.buf
        buf += chunk
        while len(buf) >= _HEADER:
            n = int.from_bytes(buf[:_HEADER], "little")
            if n > conn.max_frame:
                raise Broken(
                    f"the worker sent an oversized message ({n} bytes, the limit is "
                    f"{conn.max_frame})"
                )
            end = _HEADER + n
            if len(buf) < end:
                break
            try:
                text = buf[_HEADER:end].decode("utf-8")
            except UnicodeDecodeError:
                raise Broken("the worker sent malformed text (not UTF-8)") from None
            # used up before the call runs: what stays in the buffer is an unfinished frame
            del buf[:end]
            if text[:1] != "C":
                raise Broken("the worker broke the protocol (not a tool call)")
            try:
                msg, stop = _SCAN(text, 1)
                if "\\u" in text:
                    msg = _codec.codec.scrub(msg)
            except (StopIteration, RecursionError):
                raise Broken("the worker sent malformed JSON") from None
            if stop != len(text):
                raise Broken("the worker broke the protocol")
            pending, payload = self._call(conn, msg, n)
            if pending is None:  # refused: nothing ran, nothing to record
                self._send(conn, payload)
            else:
                self._reply_then_record(conn, payload, pending)
            served += 1
        # a frame still arriving is bounded by max_frame (checked above on its header)
        return served

    def _reply_then_record(self, conn: Conn, payload: bytes, pending: _Pending) -> None:
        """The worker gets its reply before the call's record is built, so it goes on with its
        next call meanwhile. Both happen under the lock a closing `take` needs: the step cannot be
        taken between the reply (after which the worker may end it) and the record."""
        try:
            with conn.lock:
                try:
                    self._send(conn, payload)
                finally:
                    if conn.step is pending[0]:
                        self._record(*pending)
        finally:
            self.serving = None

    def _send(self, conn: Conn, payload: bytes) -> None:
        data = len(payload).to_bytes(_HEADER, "little") + payload
        if not conn.backlog:
            try:
                n = os.write(conn.wfd, data)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                raise Broken(_closed(exc)) from None
            if n == len(data):
                return
            data = data[n:]
        conn.backlog.append(data)
        conn.backlog_size += len(data)
        if conn.backlog_size > conn.max_backlog:
            raise Broken(
                f"the worker stopped reading its channel ({conn.backlog_size} bytes waiting)"
            )

    def _drain(self, conn: Conn) -> None:
        while conn.backlog:
            chunk = conn.backlog[0]
            try:
                n = os.write(conn.wfd, chunk[: 1 << 16])
            except BlockingIOError:
                return
            except OSError as exc:
                raise Broken(_closed(exc)) from None
            conn.backlog_size -= n
            if n == len(chunk):
                conn.backlog.popleft()
            else:
                conn.backlog[0] = chunk[n:]

    def _call(self, conn: Conn, msg: Any, size: int) -> tuple[_Pending | None, bytes]:
        """One call, with the caps and checks of the server's own channel (sandbox/process.py):
        (its record still to build, or None when it was refused; the reply frame)."""
        try:
            cid, name, line, args, kwargs = msg
        except (TypeError, ValueError):
            return None, _refuse(None, "TypeError", "malformed tool call")
        if type(cid) is not int:
            cid = None
        if (
            not isinstance(name, str)
            or len(name) > 200
            or not isinstance(args, list)
            or not isinstance(kwargs, dict)
            or not (line is None or type(line) is int)
        ):
            return None, _refuse(cid, "TypeError", "malformed tool call")
        if name not in conn.names:
            return None, _refuse(cid, "NameError", f"no tool named {name!r}")
        with conn.lock:
            step = conn.step
            if step is None:
                # a thread left running by an earlier step, or a frame after the step ended:
                # nobody would record the call
                return None, _refuse(cid, "RuntimeError", "tools can only be called during a step")
            if step.halted:
                return None, _refuse(cid, "RuntimeError", "final_answer() has ended the run", True)
            if size > step.max_args:
                return None, _refuse(
                    cid,
                    "ValueError",
                    f"{name}(): the arguments are {size // 1024} KiB, over the "
                    f"{step.max_args // 1024} KiB limit (sandbox.max_args_kb); pass less, or a "
                    "path",
                )
            step.calls += 1
            if step.calls > step.max_calls:
                return None, _refuse(
                    cid,
                    "RuntimeError",
                    f"{name}(): this step already made {step.max_calls} tool calls, the limit "
                    "(sandbox.max_tool_calls); do the rest in a later step or in fewer calls",
                )
            if (name in conn.confirm or name in step.confirm) and not step.confirmed:
                message = (
                    f"{name}() needs a person's approval and this step was not approved; call "
                    f"{name}(...) by name in a step of its own, so the step is shown for approval"
                )
                if len(step.refused) < 100:
                    step.refused.append({"name": name, "line": line, "message": message})
                return None, _refuse(cid, "PermissionError", message)
            timeout = step.timeout
        self.busy_until = time.monotonic() + timeout + HUNG_GRACE
        self.serving = conn  # until the call is recorded: a close waiting for it keeps it
        _CANCEL.current = conn.id
        try:
            out = self.registry.call(name, args, kwargs, timeout)
            return self._answer(step, cid, name, line, args, kwargs, out)
        except BaseException:
            self.serving = None
            raise
        finally:
            _CANCEL.current = None
            self.busy_until = 0.0

    def _answer(
        self,
        step: StepState,
        cid: Any,
        name: str,
        line: Any,
        args: list[Any],
        kwargs: JSON,
        out: JSON,
    ) -> tuple[_Pending, bytes]:
        """A served call's record still to build (after the reply is sent), and its reply frame
        (the result capped)."""
        result = out["result"]
        if out["ok"]:
            error = None
            try:
                payload = marshal.dumps(("r", cid, result, None, False))
            except ValueError:
                result = _codec.codec.encode(result)
                payload = marshal.dumps(("r", cid, result, None, False))
            if len(payload) > self.max_reply:
                out["ok"] = False
                out["result"] = result = None
                out["error"] = result_too_big(len(payload), self.max_reply)
        if not out["ok"]:
            err = out["error"] or {"type": "RuntimeError", "message": "tool failed"}
            file, eline = err.get("file"), err.get("line")
            where = f"{os.path.basename(file)}:{eline}" if file and eline else None
            error = (err.get("type"), err.get("message"), err.get("exception"), where)
            payload = marshal.dumps(("r", cid, None, error, False))
        return (step, name, line, args, kwargs, out), payload

    @staticmethod
    def _record(
        step: StepState, name: str, line: Any, args: list[Any], kwargs: JSON, out: JSON
    ) -> None:
        if step.recorded >= step.max_recorded:
            step.omitted += 1  # the record stays bounded however many calls a loop makes
            return
        step.recorded += 1  # (flushes hand `records` over and empty it: count separately)
        codec = _codec.codec
        limit = step.record_chars
        err = out["error"]
        rec: JSON = {
            "name": name,
            "args": codec.recorded_args(out["bound_args"], args, kwargs, limit),
            "line": line,
            "duration_ms": out["duration_ms"],
        }
        if out["ok"]:
            rec["result"], rec["wire"] = codec.recorded_result(out["result"], limit)
        elif err:
            rec["error"] = f"{err.get('type')}: {err.get('message')}"
            rec["error_detail"] = err
        if out["stdout"]:
            rec["stdout"] = out["stdout"]
        step.records.append(rec)

    # --- steps (control thread) ----------------------------------------------------------------

    def open_step(self, msg: JSON) -> bool:
        conn = self.conns.get(int(msg.get("conn", -1)))
        if conn is None:
            return False
        with conn.lock:
            if conn.broken:  # cut off: the server serves this step (and is killing the worker)
                return False
            conn.step = StepState(msg)
        return True

    def take(self, msg: JSON, close: bool) -> JSON:
        """The records so far (flush) or all of them, ending the step (close). `wait`: seconds
        a call of this connection still running may take to end (a cancelled one), so that its
        record is not lost."""
        conn = self.conns.get(int(msg.get("conn", -1)))
        if conn is None:
            return {"calls": [], "gone": True}
        deadline = time.monotonic() + float(msg.get("wait") or 0)
        while self.serving is conn and time.monotonic() < deadline:
            time.sleep(0.005)
        with conn.lock:
            step = conn.step
            if step is None or step.nonce != str(msg.get("nonce", "")):
                return {"calls": [], "omitted": 0, "refused": []}
            if (
                close
                and conn.buf
                and not conn.broken
                and time.monotonic() - conn.last_read > STALE_PARTIAL
            ):
                # the step ended with half a message on the channel (a snippet that stopped
                # writing, or an interrupt in the middle of a write): the next call would be
                # read as its continuation, so the channel cannot be used any more
                conn.broken = "the worker left an unfinished message on its tool channel"
            records, step.records = step.records, []
            out: JSON = {"calls": records}
            if conn.broken:
                out["broken"] = conn.broken
            if close:
                conn.step = None
                out["omitted"] = step.omitted
                out["refused"] = step.refused
                out["calls_made"] = step.calls
        return out

    def halt(self, msg: JSON) -> None:
        conn = self.conns.get(int(msg.get("conn", -1)))
        if conn is not None:
            with conn.lock:
                if conn.step is not None:
                    conn.step.halted = True

    def cancel(self, msg: JSON) -> None:
        """The run was cancelled: its step serves no more calls, and its call running now (if
        it is that connection's, or with conn 0 the server's own request) is interrupted."""
        cid = int(msg.get("conn", -1))
        if cid:
            self.halt(msg)
        running = self.serving.id if self.serving is not None else _CANCEL.current
        if running == cid:
            _CANCEL.target = cid
            with contextlib.suppress(OSError):
                os.kill(os.getpid(), signal.SIGUSR2)


class Control:
    """The control socket: the server attaches workers, opens and closes their steps.

    Frames are a 4-byte little-endian length and JSON; the server is trusted. Requests with an
    "id" get a reply with the same id; the host also sends `{"op": "broken"}` on its own."""

    def __init__(self, sock: socket.socket, hub: Hub) -> None:
        self.sock = sock
        self.hub = hub
        self._send_lock = threading.Lock()
        hub.control = self

    def send(self, msg: JSON) -> None:
        data = json.dumps(msg, default=repr).encode()
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(len(data).to_bytes(_HEADER, "little") + data)

    def start(self) -> None:
        DEADLINE.watched = True  # from now on `Hub.watch` raises the calls' alarms
        threading.Thread(target=self._loop, name="codeact-direct-control", daemon=True).start()
        threading.Thread(target=self.hub.watch, name="codeact-direct-watch", daemon=True).start()

    def _loop(self) -> None:
        buf = bytearray()
        fds: collections.deque[int] = collections.deque()
        flags = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
        while True:
            try:
                data, got, _, _ = socket.recv_fds(self.sock, 1 << 16, 8, flags)
            except OSError:
                return
            for fd in got:
                os.set_inheritable(fd, False)  # a tool's subprocess must not hold a worker's pipe
            fds.extend(got)
            if not data:
                return
            buf += data
            while len(buf) >= _HEADER:
                n = int.from_bytes(buf[:_HEADER], "little")
                if len(buf) < _HEADER + n:
                    break
                msg = json.loads(bytes(buf[_HEADER : _HEADER + n]))
                del buf[: _HEADER + n]
                self._handle(msg, fds)

    def _handle(self, msg: JSON, fds: collections.deque[int]) -> None:
        op = msg.get("op")
        reply: JSON | None = None
        if op == "attach":
            if len(fds) >= 2:
                rfd, wfd = fds.popleft(), fds.popleft()
                self.hub.attach(Conn(int(msg["conn"]), rfd, wfd, msg))
                reply = {"ok": True}
            else:
                reply = {"ok": False}
        elif op == "open":
            reply = {"ok": self.hub.open_step(msg)}
        elif op == "flush":
            reply = self.hub.take(msg, close=False)
        elif op == "close":
            reply = self.hub.take(msg, close=True)
        elif op == "halt":
            self.hub.halt(msg)
        elif op == "cancel":
            self.hub.cancel(msg)
        elif op == "detach":
            self.hub.detach(int(msg.get("conn", -1)))
        if reply is not None and "id" in msg:
            reply["id"] = msg["id"]
            self.send(reply)
