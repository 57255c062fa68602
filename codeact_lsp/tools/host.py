"""The tool host: the workspace's tools imported and served by the workspace's own interpreter.

Tools are trusted user code with their own libraries, globals and state, so they run where they
live (not copied into the sandbox). The host is a child process that loads the `runtime` package by
path; calls go over pipes as JSON lines, values in the typed codec's wire form. A call that
outlives its timeout, or a host that dies, gets the host killed and restarted, and the call comes
back as an error outcome: the server never hangs on a tool. Sandbox workers can also be attached
to the host and call it directly (`attach`, `tools/hostlink.py`: the direct route).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeact_lsp.config import CodeActConfig, resolve_python
from codeact_lsp.sandbox.models import DirectConn, DirectRoute
from codeact_lsp.tools import runtime
from codeact_lsp.tools.hostlink import HostLink
from codeact_lsp.tools.models import ToolDiagnostic, ToolOutcome, ToolSchema
from codeact_lsp.tools.targets import resolve_targets
from codeact_lsp.trajectory import ErrorLocation

RUNTIME_DIR = runtime.PACKAGE_DIR
_STACK_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


class HostError(Exception):
    """The host died or did not answer in time."""


class ToolHost:
    """A `ToolProvider` whose tools run in a child process of the workspace's interpreter."""

    def __init__(
        self,
        workspace: Path,
        config: CodeActConfig,
        python: str,
        timeout: float,
        start_timeout: float,
    ) -> None:
        self.workspace = workspace
        self.config = config
        self.python = python
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.diagnostics: list[ToolDiagnostic] = []
        self.problem: str | None = None  # why the host is not serving, when it is not
        self.has_pydantic = False
        self.exceptions: list[dict[str, Any]] = []  # exception classes of the tool modules
        self.restarts = 0
        self._schemas: list[ToolSchema] = []
        self._by_name: dict[str, ToolSchema] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._link: HostLink | None = None  # the direct route's control socket
        self._buf = bytearray()
        self._next_id = 0
        self._lock = threading.Lock()
        self._serving: int | None = None  # the thread whose call the host runs now
        self._waiting: set[int] = set()  # threads whose call waits for another to end
        self._cancelled: set[int] = set()  # ...and were cancelled meanwhile: they must not start
        self._serving_lock = threading.Lock()  # `cancel` signals only the call it checked
        self._stack_file: str | None = None
        self._closed = False
        self.grace = 1.0  # seconds past a call's timeout before the host is killed
        self._loaded_mtimes: dict[str, int] = {}
        # bytes of one reply; a bigger result is an error the snippet sees
        self.max_reply = config.sandbox.max_result_kb * 1024

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workspace: str | os.PathLike[str],
        config: CodeActConfig,
        python: str | None = None,
        *,
        client_python: str | None = None,
        timeout: float | None = None,
        start_timeout: float = 60.0,
    ) -> ToolHost:
        """Start the host and wait until it has imported the tools (blocking; see `astart`).

        Never raises for a broken workspace: import failures are `diagnostics`, and a host that
        cannot start at all sets `problem` (calls then return that as their error).
        """
        ws = Path(workspace).resolve()
        interp = python or resolve_python(ws, config, client_python)
        host = cls(ws, config, interp, timeout or config.sandbox.timeout, start_timeout)
        with host._lock:
            host._spawn()
        return host

    @classmethod
    async def astart(
        cls,
        workspace: str | os.PathLike[str],
        config: CodeActConfig,
        python: str | None = None,
        **kw: Any,
    ) -> ToolHost:
        return await asyncio.to_thread(cls.start, workspace, config, python, **kw)

    def _spec(self) -> dict[str, Any]:
        targets, _problems = resolve_targets(self.workspace, self.config.tools)
        paths: list[str] = [str(self.workspace)]
        for t in targets:
            if t.root and t.root not in paths and not t.by_path:
                paths.append(t.root)
        if (self.workspace / "src").is_dir():
            paths.append(str(self.workspace / "src"))
        return {
            "workspace": str(self.workspace),
            "paths": paths,
            "confirm": list(self.config.confirm),
            "targets": [
                {"module": t.module, "file": t.file, "by_path": t.by_path} for t in targets
            ],
            "stack_file": self._stack_file,
            "max_reply": self.max_reply,
            "max_depth": self.config.sandbox.max_depth,
        }

    def _spawn(self) -> None:
        self._kill()
        self._buf = bytearray()
        if self._closed:
            self.problem = "the tool host is closed"
            return
        if self._stack_file is None:
            fd, self._stack_file = tempfile.mkstemp(prefix="codeact-host-", suffix=".stack")
            os.close(fd)
        spec = self._spec()
        self._loaded_mtimes = _mtimes([t["file"] for t in spec["targets"] if t["file"]])
        env = dict(os.environ)
        env.pop("PYTHONSTARTUP", None)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = env.get("PYTHONDONTWRITEBYTECODE", "1")
        # the direct route's control socket (sandbox workers' pipes are handed over on it)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        spec["control_fd"] = theirs.fileno()
        try:
            self._proc = subprocess.Popen(
                [self.python, "-c", runtime.BOOT, RUNTIME_DIR, json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=str(self.workspace),
                env=env,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        except OSError as exc:
            ours.close()
            theirs.close()
            self._proc = None
            self.problem = f"cannot start the tool host with {self.python!r}: {exc}"
            self._set_ready({"schemas": [], "diagnostics": []})
            return
        theirs.close()
        self._link = HostLink(ours)
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)  # partial writes, bounded by select
        try:
            ready = self._read(self.start_timeout)
        except HostError as exc:
            code = self._proc.poll() if self._proc else None
            self._kill()
            self.problem = f"the tool host did not start ({exc}; exit code {code})"
            self._set_ready({"schemas": [], "diagnostics": []})
            return
        self.problem = None
        self._set_ready(ready)

    def _set_ready(self, ready: dict[str, Any]) -> None:
        self._schemas = [ToolSchema.model_validate(s) for s in ready.get("schemas", [])]
        self._by_name = {s.name: s for s in self._schemas}
        self.diagnostics = [ToolDiagnostic.model_validate(d) for d in ready.get("diagnostics", [])]
        self.has_pydantic = bool(ready.get("pydantic"))
        self.exceptions = [e for e in ready.get("exceptions", []) if isinstance(e, dict)]

    def _kill(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()  # its connections are dead: those sandboxes use call_sync from now on
        proc = self._proc
        self._proc = None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        # unkillable for now (uninterruptible I/O)? do not hang the caller on it
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def restart(self, config: CodeActConfig | None = None) -> None:
        """Start a fresh host (tool state is lost), with a new configuration if given; the tool
        list is resolved again, so new and edited tool modules are picked up."""
        with self._lock:
            if config is not None:
                self.config = config
            self.restarts += 1
            self._spawn()

    def cancel(self, thread: int | None = None) -> None:
        """Interrupt the tool running now, if any (e.g. its run was cancelled): that call returns
        a CancelledError at the line it was at; the host and its state stay. Safe from any
        thread; a no-op when nothing runs. `thread`: only if the running call was made from that
        thread (another run's call on the same host is left alone)."""
        with self._serving_lock:
            proc = self._proc
            if thread is not None and self._serving != thread:
                if thread in self._waiting:  # its turn has not come yet: it never will
                    self._cancelled.add(thread)
                return
            if proc is not None and proc.poll() is None and self._lock.locked():
                link = self._link
                # through the control socket the host interrupts our request only, not a
                # sandbox's direct call it may be running meanwhile
                if link is not None and link.send({"op": "cancel", "conn": 0}):
                    return
                with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                    os.kill(proc.pid, signal.SIGUSR2)

    def changed(self) -> bool:
        """True when a tool module file changed (or appeared/vanished) since the host loaded it:
        a cheap check before a run, to restart only when needed."""
        targets, _ = resolve_targets(self.workspace, self.config.tools)
        return _mtimes([t.file for t in targets if t.file]) != self._loaded_mtimes

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Stop the host now, even in the middle of a call (that call returns an error)."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        if not self._lock.acquire(timeout=10):
            return
        try:
            self._kill()
            if self._stack_file:
                with contextlib.suppress(OSError):
                    os.unlink(self._stack_file)
                self._stack_file = None
        finally:
            self._lock.release()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(proc.pid, signal.SIGKILL)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- the direct route (sandbox workers call the host without the server in between) -------

    @property
    def direct_route(self) -> DirectRoute | None:
        """This host as a `DirectRoute` while it serves; None when it is not running."""
        return self if self._link is not None and self._link.alive else None

    def direct_names(self) -> frozenset[str]:
        """The tools the host serves itself (its own: MCP and final_answer stay the server's)."""
        return frozenset(self._by_name)

    def attach(
        self,
        fds: tuple[int, int],
        names: list[str],
        confirm: list[str],
        limits: dict[str, int],
        on_broken: Callable[[str], None],
    ) -> DirectConn | None:
        """Hand a worker's pipe ends to the host (closed here either way)."""
        link = self._link
        if link is None or not link.alive or self._proc is None:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            return None
        caps = {**limits, "max_reply": self.max_reply}
        return link.attach(fds, names, confirm, caps, on_broken)

    # -- ToolProvider ---------------------------------------------------------------------------

    def schemas(self) -> list[ToolSchema]:
        return list(self._schemas)

    def schema(self, name: str) -> ToolSchema | None:
        return self._by_name.get(name)

    def call_sync(
        self, name: str, args: list[Any], kwargs: dict[str, Any], timeout: float | None = None
    ) -> ToolOutcome:
        """Run one tool call; thread-safe (calls are serialised), bounded by `timeout`."""
        limit = self.timeout if timeout is None else timeout
        started = time.perf_counter()
        me = threading.get_ident()
        with self._serving_lock:
            self._waiting.add(me)
        # Waiting for another call is bounded by that call's own timeout.
        got = self._lock.acquire(timeout=limit + self.start_timeout + 5)
        with self._serving_lock:
            self._waiting.discard(me)
            cancelled = me in self._cancelled
            self._cancelled.discard(me)
            if got and not cancelled:
                self._serving = me
        if not got:
            return self._failed(name, "TimeoutError", "the tool host is busy; try again", started)
        if cancelled:
            self._lock.release()
            return self._failed(name, "CancelledError", "cancelled before it started", started)
        try:
            if self._closed:
                return self._failed(name, "RuntimeError", "the tool host is closed", started)
            if self._proc is None or self._proc.poll() is not None:
                self.restarts += 1
                self._spawn()
            if self._proc is None:
                return self._failed(name, "RuntimeError", self.problem or "no tool host", started)
            return self._roundtrip(name, args, kwargs, limit, started)
        finally:
            with self._serving_lock:
                self._serving = None
            self._lock.release()

    def _roundtrip(
        self, name: str, args: list[Any], kwargs: dict[str, Any], limit: float, started: float
    ) -> ToolOutcome:
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        req_id = self._next_id
        try:
            data = json.dumps(
                {"id": req_id, "name": name, "args": args, "kwargs": kwargs, "timeout": limit}
            )
        except (TypeError, ValueError) as exc:
            return self._failed(
                name, "TypeError", f"arguments of {name}() must be JSON values: {exc}", started
            )
        try:
            _write_all(self._proc.stdin.fileno(), data.encode() + b"\n", limit + self.grace)
            # The host interrupts the tool itself at `limit`; the grace covers a tool that
            # does not let itself be interrupted (C code, swallowed interrupts): then kill.
            reply = self._read(limit + self.grace)
            while reply.get("id") != req_id:  # a stale answer can never be taken for this one
                reply = self._read(limit + self.grace)
        except HostError as exc:
            why = str(exc)
            if why.startswith("timed out"):
                why = f"timed out after {limit:g} s and did not respond to the interrupt"
            return self._host_failed(name, why, started)
        except (BrokenPipeError, OSError) as exc:
            return self._host_failed(name, f"lost the tool host: {exc}", started)
        return _outcome(reply)

    def _read(self, limit: float) -> dict[str, Any]:
        """The next JSON line from the host, or HostError on timeout / exit. Linear in the size
        of the reply: each chunk is searched once for the end of line."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + limit
        buf = self._buf
        start = 0
        while (nl := buf.find(b"\n", start)) < 0:
            start = len(buf)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HostError(f"timed out after {limit:g} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)  # a bigger buffer costs an mmap per read
            if not chunk:
                code = proc.poll()
                if code is None:
                    code = proc.wait()
                raise HostError(_exit_text(code))
            buf += chunk
            if len(buf) > self.max_reply + 65536:
                raise HostError("the tool host sent an oversized reply")
        line = bytes(buf[:nl])
        del buf[: nl + 1]
        result: dict[str, Any] = json.loads(line)
        return result

    def _host_failed(self, name: str, why: str, started: float) -> ToolOutcome:
        """Kill and restart after a hang or a crash; say where the tool was when it hung."""
        timed_out = why.startswith("timed out")
        file, line = self._hung_at() if timed_out else (None, None)
        schema = self._by_name.get(name)
        if file is None and schema is not None:
            file, line = schema.file, schema.line
        self.restarts += 1
        self._spawn()
        state = (
            "restarted (tool state was lost)"
            if self.problem is None
            else (f"could not be restarted: {self.problem}")
        )
        if timed_out:
            err_type = "TimeoutError"
            msg = f"tool {name!r} {why}; the tool host was {state}"
        else:
            err_type = "ToolHostError"
            msg = f"the tool host died while running {name!r} ({why}); it was {state}"
        out = self._failed(name, err_type, msg, started, file, line)
        out.restarted = True
        out.timed_out = timed_out
        return out

    def _hung_at(self) -> tuple[str | None, int | None]:
        """Ask the hung host for its stacks (faulthandler on SIGUSR1), pick the tool's frame."""
        proc, path = self._proc, self._stack_file
        if proc is None or path is None or proc.poll() is not None:
            return None, None
        try:
            with open(path, "w"):
                pass
            os.kill(proc.pid, signal.SIGUSR1)
        except OSError:
            return None, None
        ws = str(self.workspace) + os.sep

        def tool_frame(text: str) -> tuple[str | None, int | None]:
            # faulthandler prints each thread innermost frame first: the first workspace frame
            for m in _STACK_RE.finditer(text):
                f = m.group("file")
                if (
                    f.startswith(ws)
                    and "site-packages" not in f
                    and not f.startswith(RUNTIME_DIR + os.sep)
                ):
                    return f, int(m.group("line"))
            return None, None

        # The dump is written while we read it: poll until a tool frame shows up, or the main
        # thread's stack (dumped last, ending at the host's `<module>`) is complete.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                text = Path(path).read_text(errors="replace")
            except OSError:
                break
            found = tool_frame(text)
            if found[0] is not None:
                return found
            if "Current thread" in text and " in <module>\n" in text.split("Current thread")[-1]:
                break
            time.sleep(0.005)
        return None, None

    @staticmethod
    def _failed(
        name: str,
        type_: str,
        message: str,
        started: float,
        file: str | None = None,
        line: int | None = None,
    ) -> ToolOutcome:
        return ToolOutcome(
            ok=False,
            error=ErrorLocation(type=type_, message=message, file=file, line=line),
            duration_ms=(time.perf_counter() - started) * 1000,
        )


def _exit_text(code: int | None) -> str:
    if code is None:
        return "the tool host closed its channel"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _write_all(fd: int, data: bytes, limit: float) -> None:
    """Write a request; a host that stops reading (a big request while it is stuck) cannot block
    the caller past `limit`."""
    try:  # the common case: the pipe takes the whole request now, no select needed
        n = os.write(fd, data)
    except BlockingIOError:
        n = 0
    if n == len(data):
        return
    view = memoryview(data)[n:]
    deadline = time.monotonic() + limit
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HostError(f"timed out after {limit:g} s sending the call")
        _, ready, _ = select.select([], [fd], [], remaining)
        if ready:
            try:
                n = os.write(fd, view[: 1 << 16])
            except BlockingIOError:
                continue
            view = view[n:]


def _mtimes(files: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in files:
        try:
            out[f] = os.stat(f).st_mtime_ns
        except OSError:
            out[f] = -1
    return out


def _outcome(reply: dict[str, Any]) -> ToolOutcome:
    """Build the outcome without re-validating what our own registry produced (the hot path)."""
    err = reply.get("error")
    try:
        return ToolOutcome.model_construct(
            ok=bool(reply["ok"]),
            result=reply.get("result"),
            result_is_repr=bool(reply.get("result_is_repr", False)),
            bound_args=reply.get("bound_args") or {},
            error=ErrorLocation.model_validate(err) if err else None,
            stdout=reply.get("stdout") or "",
            duration_ms=float(reply.get("duration_ms") or 0.0),
            restarted=False,
            timed_out=bool(reply.get("timed_out", False)),
        )
    except (KeyError, TypeError, ValueError):
        reply.pop("id", None)
        return ToolOutcome.model_validate(reply)
