"""The sandbox worker: runs untrusted snippets, one after another, in persistent globals.

Started with the tools' interpreter as ``python -I -S -c BOOT DIR IN_FD OUT_FD CTL_FD PARENT_PID
[TMPFS_MB MAX_FILES [DIN_FD DOUT_FD]]`` (MAX_FILES 0: no private tmpfs), where BOOT imports this module from DIR (so it loads from its cached .pyc
instead of being compiled as a script on every start) and calls `main`; ``python -I -S worker.py
...`` works too. Stdlib-only, and it imports as little as possible (cold start is a product
metric). Protocol: frames of a 4-byte little-endian length and a payload. Parent -> worker payloads
are ``marshal`` (the parent is trusted, and marshal is built in and fast); worker -> parent payloads
are JSON, because the parent must never unmarshal what untrusted code may have forged.

DIN/DOUT (optional) are the direct route to the tool host: the server hands their far ends to the
host, and during a step the server opened there (``exec`` says ``direct``) calls of the host's
tools go over them with the same frames, answered by the host itself (see tools/runtime/direct.py).

Interrupts arrive as single bytes on CTL_FD, read by a small thread that raises KeyboardInterrupt
in the main thread with ``pthread_kill`` — the worker signals itself, so this works inside
bubblewrap and under a seccomp filter that forbids signalling anyone else.
"""

from __future__ import annotations

import _thread
import builtins
import marshal
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` would cost cold-start time
    import signal
    from collections.abc import Callable
    from types import CodeType, ModuleType
    from typing import Any
else:  # not `signal`: its IntEnum wrappers import enum and functools (~3 ms of cold start)
    import _signal as signal

FILENAME = "<snippet>"
_PyCF_ONLY_AST = 0x400
_PyCF_ALLOW_TOP_LEVEL_AWAIT = 0x2000
_CO_COROUTINE = 0x80
_HEADER = 4


# --------------------------------------------------------------------------------------------
# JSON encoding without importing the `json` package (it pulls in `re`: ~8 ms of cold start)


def _no_default(obj: object) -> object:
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _make_dumps() -> Callable[[object], str]:
    try:
        import _json

        enc = _json.make_encoder(
            {}, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
        )

        def dumps(obj: object) -> str:
            return "".join(enc(obj, 0))

        if dumps({"a": [1, 2.5, None, True, "é"]}) == '{"a":[1,2.5,null,true,"\\u00e9"]}':
            return dumps
    except Exception:
        pass
    import json

    def dumps_slow(obj: object) -> str:
        return json.dumps(obj, separators=(",", ":"), default=_no_default)

    return dumps_slow


_dumps = _make_dumps()
_PLAIN = (str, int, bool, type(None))


def _load_codec() -> ModuleType:
    """codec.py (our sibling) by path, then forgotten: user code must not find it by name."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    try:
        import codec  # type: ignore[import-not-found]
    finally:
        sys.path.remove(here)
    sys.modules.pop("codec", None)
    return codec  # type: ignore[no-any-return]


_codec = _load_codec()


# --------------------------------------------------------------------------------------------
# the channel


# How long a wait for the tool host's reply spins before it sleeps. A reply that arrives while
# the worker is asleep costs a cross-CPU wake-up (~20 us on these VMs, more than the call
# itself), so a tight loop of small calls runs at about twice the rate; a slower tool costs at
# most this much CPU per call more.
SPIN_S = 50e-6


class Channel:
    def __init__(self, rfd: int, wfd: int, spin: bool = False) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.buf = b""
        self.spin = spin  # wait for a reply by polling a little, then sleeping in poll()
        self._ready: Any = None

    def _read(self, size: int) -> bytes:
        if not self.spin:
            return os.read(self.rfd, size)
        ready = self._ready
        if ready is None:  # (lazily: `select` is not on the cold start's path)
            import select

            poller = select.poll()
            poller.register(self.rfd, select.POLLIN)
            ready = self._ready = poller.poll
        if not ready(0):  # a poll that finds nothing costs far less than a failed read
            clock = time.perf_counter
            until = clock() + SPIN_S
            while not ready(0):
                if clock() > until:
                    ready()  # a slow tool: sleep until the reply (or EOF) is there
                    break
        return os.read(self.rfd, size)

    def recv(self) -> Any:
        """The next message: a dict command, or a ("r", id, result, error, stop) reply tuple."""
        buf = self.buf
        while True:
            if len(buf) >= _HEADER:
                n = int.from_bytes(buf[:_HEADER], "little")
                end = _HEADER + n
                if len(buf) >= end:
                    self.buf = buf[end:]
                    return marshal.loads(buf[_HEADER:end])
                chunk = self._read(max(65536, end - len(buf)))
            else:
                chunk = self._read(65536)
            if not chunk:
                raise EOFError
            buf = self.buf = buf + chunk

    def send_raw(self, text: str, tag: str = "J") -> None:
        """Tag "J": a JSON object; tag "C": a tool call, `[id, name, line, args, kwargs]`."""
        data = (tag + text).encode("utf-8", "surrogatepass")
        data = len(data).to_bytes(_HEADER, "little") + data
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]


# --------------------------------------------------------------------------------------------
# output capture: keep the head and the tail, count what was cut


class Capture:
    """A text stream that keeps at most ``limit`` characters: the first half and the last half."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        self.head: list[str] = []
        self.head_len = 0
        self.tail: list[str] = []
        self.tail_len = 0
        self.total = 0

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        self.total += n
        half = self.limit // 2
        if self.head_len < half:
            take = s[: half - self.head_len]
            self.head.append(take)
            self.head_len += len(take)
            s = s[len(take) :]
            if not s:
                return n
        self.tail.append(s)
        self.tail_len += len(s)
        keep = self.limit - half
        if self.tail_len > 2 * keep + 4096:
            joined = "".join(self.tail)[-keep:]
            self.tail = [joined]
            self.tail_len = len(joined)
        return n

    @property
    def buffer(self) -> _Bytes:
        return _Bytes(self)

    def writelines(self, lines: object) -> None:
        for line in lines:  # type: ignore[attr-defined]
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("captured stream has no file descriptor")

    @property
    def closed(self) -> bool:
        return False

    def take(self, budget: int) -> tuple[str, bool]:
        """The text (at most `budget` characters kept: head and tail, the cut marked); resets."""
        head = "".join(self.head)
        tail = "".join(self.tail)
        total = self.total
        self.reset()
        if total <= budget:
            return head + tail, False
        h = budget // 2
        t = budget - h
        if total == len(head) + len(tail):  # nothing was dropped yet: cut the whole text
            head = tail = head + tail
        first, last = head[:h], (tail[-t:] if t else "")
        return f"{first}\n… [{total - len(first) - len(last)} characters cut] …\n{last}", True


class _Bytes:
    """`sys.stdout.buffer`: bytes written here are decoded into the text capture."""

    def __init__(self, text: Capture) -> None:
        self.text = text

    def write(self, data: bytes) -> int:
        self.text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# the worker


class Stop(BaseException):
    """Raised by a stub whose reply says stop (final_answer); not an Exception, so `except
    Exception` in generated code does not swallow it."""


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:
        try:
            return repr(exc)
        except BaseException:
            return f"<unprintable {type(exc).__name__} object>"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} … [{len(text) - 2 * half} characters cut] … {text[-half:]}"


class Worker:
    def __init__(self, chan: Channel, ctl_fd: int, direct: Channel | None = None) -> None:
        self.chan = chan
        self.direct = direct or chan  # the pipe pair to the tool host (see call_tool)
        self.direct_names: frozenset[str] = frozenset()
        self.direct_now = False  # the snippet in flight may call the host directly
        self.ctl_fd = ctl_fd
        self.output_limit = 256 * 1024
        self.out = Capture(self.output_limit)
        self.err = Capture(self.output_limit)
        self.value_limit = 20000
        self.globals: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
        self.bound: dict[str, object] = {}  # the tool stubs, bound again before every snippet
        self.running = False
        self.interrupt_requested = False
        self.stopped = False
        self.call_id = 0
        self.source_lines: list[str] = []
        self.exc_types = _codec.ExceptionTypes()
        self.encode = _codec.Encoder(strict=True).encode
        self.decode = _codec.Decoder(max_depth=256).decode
        self.max_args = 1024 * 1024
        self.loop: object = None
        self.main_ident = _thread.get_ident()
        self.tmpfs_done = False
        self.call_lock = _thread.allocate_lock()
        self.tmpfs_problem: str | None = None

    # --- interrupts -------------------------------------------------------------------------

    def on_sigint(self, signum: int, frame: object) -> None:
        if self.running:
            raise KeyboardInterrupt
        # an interrupt that arrives after the snippet finished is dropped

    def control_loop(self) -> None:
        while True:
            try:
                data = os.read(self.ctl_fd, 64)
            except OSError:
                data = b""
            if not data:
                os._exit(0)  # the parent is gone
            if self.running:
                self.interrupt_requested = True
                try:  # noqa: SIM105 (contextlib would cost cold-start time)
                    signal.pthread_kill(self.main_ident, signal.SIGINT)
                except OSError:
                    pass

    # --- configuration ----------------------------------------------------------------------

    def configure(self, cfg: dict) -> dict:  # type: ignore[type-arg]
        applied: list[str] = []
        problems: list[str] = []
        scratch = cfg["scratch"]
        self.output_limit = cfg["output_limit"]
        self.out = Capture(self.output_limit)
        self.err = Capture(self.output_limit)
        self.value_limit = cfg["value_limit"]
        for p in cfg["import_paths"]:
            if p not in sys.path:
                sys.path.append(p)
        site = _site_packages() if cfg["site_packages"] else []
        for p in site:
            if p not in sys.path:
                sys.path.append(p)
        confine: Any
        try:
            confine = _confine()
        except ImportError as exc:  # an interpreter built without ctypes: say so, keep rlimits
            problems.append(f"confinement unavailable in this interpreter ({exc})")
            cfg = {**cfg, "tmpfs": False, "landlock": False, "seccomp": False}
            confine = None
        timings: dict[str, float] = {}
        t = time.perf_counter()
        try:
            confine.die_with_parent()  # again: a spare may be configured long after it started
        except (OSError, AttributeError):
            problems.append("orphans: PR_SET_PDEATHSIG unavailable (the pipes still end us)")
        if self.tmpfs_problem is not None:  # tried at start (see main)
            problems.append(self.tmpfs_problem)
        elif self.tmpfs_done:
            applied.append("disk")
        elif cfg["tmpfs"]:
            problems.append("disk: no private tmpfs; only the per-file size limit")
        timings["tmpfs"] = time.perf_counter() - t
        _limits(cfg, applied, problems, self.tmpfs_done)
        timings["rlimits"] = time.perf_counter() - t
        if cfg["landlock"]:
            reads = _read_paths(cfg, site)
            try:
                applied += confine.landlock(reads, [scratch], ["/dev/null"], confine.landlock_abi())
            except OSError as exc:
                problems.append(f"filesystem: Landlock failed ({exc})")
        timings["landlock"] = time.perf_counter() - t
        if cfg["seccomp"]:
            try:
                confine.seccomp(os.getpid())
                applied.append("seccomp")
            except OSError as exc:
                problems.append(f"seccomp failed ({exc})")
        timings["seccomp"] = time.perf_counter() - t
        _thread.stack_size(256 * 1024)
        _thread.start_new_thread(self.control_loop, ())
        _thread.stack_size(0)  # threads of generated code get the default stack again
        depth = int(cfg.get("max_depth") or _codec.MAX_DEPTH)
        self.encode = _codec.Encoder(strict=True, max_depth=depth).encode
        self.max_args = int(cfg.get("max_args") or self.max_args)
        for tree in cfg.get("exceptions", ()):  # the tool modules' exception classes, by name
            name = tree.get("name") if type(tree) is dict else None
            if isinstance(name, str) and name.isidentifier() and not hasattr(builtins, name):
                self.globals.setdefault(name, self.exc_types.build(tree))
        self.direct_names = frozenset(str(n) for n in cfg.get("direct", ()))
        if not self.direct_names and self.direct is not self.chan:  # no direct route: free them
            for fd in (self.direct.rfd, self.direct.wfd):
                try:  # noqa: SIM105
                    os.close(fd)
                except OSError:
                    pass
            self.direct = self.chan
        for tool in cfg["tools"]:
            local = _codec.local_callable(tool.get("local"))  # min, sorted...: run here
            self.bound[tool["name"]] = (
                local if local is not None else self.make_stub(tool["name"], tool.get("doc", ""))
            )
        self.globals.update(self.bound)
        timings["total"] = time.perf_counter() - t
        return {
            "t": "configured",
            "applied": applied,
            "problems": problems,
            "ms": {k: round(v * 1000, 3) for k, v in timings.items()},  # cumulative
        }

    # --- tool stubs ---------------------------------------------------------------------------

    def make_stub(self, name: str, doc: str):  # type: ignore[no-untyped-def]
        call = self.call_tool

        def stub(*args: object, **kwargs: object) -> object:
            return call(name, args, kwargs)

        stub.__name__ = stub.__qualname__ = name
        stub.__doc__ = doc or None
        stub.__module__ = "tools"
        return stub

    def call_tool(self, name: str, args: tuple, kwargs: dict) -> object:  # type: ignore[type-arg]
        if self.stopped:
            raise Stop
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename != FILENAME:
            frame = frame.f_back  # type: ignore[assignment]
        self.call_id = cid = self.call_id + 1
        enc = self.encode
        try:  # plain scalars are their own wire form: skip the walk for the common call
            wargs = [a if type(a) in _PLAIN else enc(a) for a in args]
            wkw = (
                {k: v if type(v) in _PLAIN else enc(v) for k, v in kwargs.items()} if kwargs else {}
            )
            body = _dumps([cid, name, frame.f_lineno if frame else None, wargs, wkw])
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(f"{name}(): {exc}") from None
        data = ("C" + body).encode("utf-8", "surrogatepass")
        if len(data) > self.max_args:
            raise ValueError(
                f"{name}(): the arguments are {len(data) // 1024} KiB, over the "
                f"{self.max_args // 1024} KiB limit (sandbox.max_args_kb); pass less, or a path"
            )
        data = len(data).to_bytes(_HEADER, "little") + data
        # the direct route: a host tool, in a step the server opened on the tool host, goes
        # straight to the host; everything else (final_answer, MCP, replayed steps) to the server
        chan = self.direct if self.direct_now and name in self.direct_names else self.chan
        with self.call_lock:  # one call on the channel at a time, whichever thread makes it
            if not self.running:  # a thread left running by an earlier step
                raise RuntimeError(f"{name}(): tools can only be called while a step is running")
            wfd = chan.wfd
            try:
                while data:
                    data = data[os.write(wfd, data) :]
                recv = chan.recv
                while True:  # replies are ("r", id, result, error, stop); stale ones are dropped
                    reply = recv()
                    if type(reply) is tuple and reply[1] == cid:
                        break
            except (EOFError, OSError) as exc:
                if chan is self.chan:
                    raise
                # the tool host went away (crashed, restarted): the server serves later steps
                self.direct_now = False
                raise RuntimeError(
                    f"{name}(): the tool host stopped while serving this call ({exc!r}); "
                    "the call may or may not have run"
                ) from None
        if reply[4]:
            self.stopped = True
            raise Stop
        if reply[3]:
            raise self.tool_exception(name, reply[3])
        result = reply[2]
        if type(result) in _PLAIN or type(result) is float:
            return result
        return self.decode(result)

    def tool_exception(self, tool: str, err: tuple) -> BaseException:  # type: ignore[type-arg]
        """A look-alike of the tool's exception: same name, same bases (builtin ones are the real
        builtins), so `except InsufficientFunds` and `except ValueError` both catch it."""
        type_name, message = str(err[0] or "Exception"), str(err[1] or "")
        tree = err[2] if len(err) > 2 else None
        if tree is None:
            tree = {"name": type_name.rsplit(".", 1)[-1], "module": "builtins"}
            if not isinstance(getattr(builtins, tree["name"], None), type):
                tree = {"name": tree["name"], "module": "tools", "bases": []}
        exc: BaseException = self.exc_types.make(tree, message)
        where = err[3] if len(err) > 3 else None
        if where and hasattr(exc, "add_note"):
            exc.add_note(f"(raised by tool {tool}() at {where})")
        return exc

    # --- execution -----------------------------------------------------------------------------

    def execute(self, code: str) -> dict[str, object]:
        t0 = time.perf_counter()
        out, err = self.out, self.err
        sys.stdout, sys.stderr = out, err
        self.source_lines = code.splitlines()
        self.stopped = False
        self.interrupt_requested = False
        value = None
        error = None
        g = self.globals
        g.update(self.bound)  # a snippet that redefined a tool (or final_answer) cannot keep it
        try:
            first, last = self.compile(code)
        except SyntaxError as exc:
            error = self.syntax_error(exc)
        except BaseException as exc:
            error = self.error(exc)
        else:
            self.running = True
            try:
                if first is not None:
                    if first.co_flags & _CO_COROUTINE:
                        self.run_async(eval(first, g))
                    else:
                        exec(first, g)
                if last is not None:
                    obj = eval(last, g)
                    if last.co_flags & _CO_COROUTINE:
                        obj = self.run_async(obj)
                    if obj is not None:
                        g["_"] = obj
                        # still interruptible: a __repr__ is user code and may not terminate
                        value = _clip(self.safe_repr(obj), self.value_limit)
            except Stop:
                pass
            except BaseException as exc:
                self.running = False
                error = self.error(exc)
            finally:
                self.running = False
        sys.stdout, sys.stderr = out, err
        # output_kb is the budget of stdout and stderr together: a short stream keeps all of it
        limit = self.output_limit
        n_out, n_err = out.total, err.total
        if n_out + n_err <= limit:
            b_out, b_err = n_out, n_err
        elif min(n_out, n_err) <= limit // 2:
            b_out, b_err = (n_out, limit - n_out) if n_out <= n_err else (limit - n_err, n_err)
        else:
            b_out = b_err = limit // 2
        stdout, cut_out = out.take(b_out)
        stderr, cut_err = err.take(b_err)
        result: dict[str, object] = {
            "t": "done",
            "duration_ms": (time.perf_counter() - t0) * 1000.0,
        }
        # only what is not the default: a smaller message is faster on both sides
        if stdout:
            result["stdout"] = stdout
        if stderr:
            result["stderr"] = stderr
        if value is not None:
            result["value"] = value
        if error is not None:
            result["error"] = error
        if self.stopped:
            result["stopped"] = True
        if self.interrupt_requested:
            result["interrupted"] = True
        if cut_out or cut_err:
            result["truncated"] = True
        return result

    def compile(self, code: str) -> tuple[CodeType | None, CodeType | None]:
        flags = _PyCF_ALLOW_TOP_LEVEL_AWAIT
        try:  # the whole snippet is one expression: the common `x` / `f(1)` case, no AST needed
            return None, compile(code, FILENAME, "eval", flags, dont_inherit=True)
        except SyntaxError:
            pass
        tree = compile(code, FILENAME, "exec", flags | _PyCF_ONLY_AST, dont_inherit=True)
        body = tree.body
        if body and type(body[-1]).__name__ == "Expr":
            import _ast

            last_expr = body.pop()
            last = compile(
                _ast.Expression(last_expr.value), FILENAME, "eval", flags, dont_inherit=True
            )
            first = compile(tree, FILENAME, "exec", flags, dont_inherit=True) if body else None
            return first, last
        return compile(tree, FILENAME, "exec", flags, dont_inherit=True), None

    def run_async(self, coro: object) -> object:
        if self.loop is None:
            import asyncio

            self.loop = asyncio.new_event_loop()
        return self.loop.run_until_complete(coro)  # type: ignore[attr-defined]

    def safe_repr(self, value: object) -> str:
        try:
            return repr(value)
        except BaseException as exc:
            return f"<repr failed: {type(exc).__name__}: {_safe_str(exc)}>"

    def source(self, line: int) -> str:
        if 1 <= line <= len(self.source_lines):
            return self.source_lines[line - 1].strip()
        return ""

    def error(self, exc: BaseException) -> dict:  # type: ignore[type-arg]
        tb = exc.__traceback__
        frames: list[str] = []
        line = None
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename == FILENAME:
                line = tb.tb_lineno
                frames.append(f'  File "{FILENAME}", line {line}, in {code.co_name}')
                src = self.source(line)
                if src:
                    frames.append(f"    {src}")
            tb = tb.tb_next
        # clipped: `raise ValueError("x" * 50_000_000)` must not bypass the output limit
        name = _clip(type(exc).__name__, 200)
        message = _clip(_safe_str(exc), self.value_limit)
        head = "Traceback (most recent call last):\n" if frames else ""
        text = (
            head + "".join(f + "\n" for f in frames) + (f"{name}: {message}" if message else name)
        )
        notes = getattr(exc, "__notes__", None)
        if type(notes) is list:
            text += "".join("\n" + _clip(str(n), 500) for n in notes[:5] if type(n) is str)
        exc.__traceback__ = None
        return {"type": name, "message": message, "line": line, "traceback": text}

    def syntax_error(self, exc: SyntaxError) -> dict:  # type: ignore[type-arg]
        line = exc.lineno if exc.filename == FILENAME else None
        msg = _clip(exc.msg or _safe_str(exc), self.value_limit)
        parts = [f'  File "{FILENAME}", line {line}']
        if exc.text is not None:
            text = _clip(exc.text.rstrip("\n"), self.value_limit)
            stripped = text.lstrip()
            parts.append(f"    {stripped}")
            if exc.offset:
                col = max(0, exc.offset - 1 - (len(text) - len(stripped)))
                parts.append("    " + " " * col + "^")
        parts.append(f"{type(exc).__name__}: {msg}")
        return {
            "type": type(exc).__name__,
            "message": msg,
            "line": line,
            "traceback": "\n".join(parts),
        }

    def serve(self) -> None:
        chan = self.chan
        lock = self.call_lock
        while True:
            try:
                with lock:  # no thread of an earlier step reads the channel meanwhile
                    msg = chan.recv()
            except EOFError:
                os._exit(0)
            if type(msg) is not dict:
                continue  # a reply to a call that was interrupted: stale
            kind = msg.get("t")
            if kind == "exec":
                self.direct_now = bool(msg.get("direct")) and self.direct is not self.chan
                result = self.execute(msg["code"])
                self.direct_now = False
                result["seq"] = msg.get("seq")
                try:
                    text = _dumps(result)
                except (TypeError, ValueError):
                    result["value"] = "<unencodable>"
                    text = _dumps(result)
                chan.send_raw(text)
            elif kind == "config":
                try:
                    reply = self.configure(msg)
                except BaseException as exc:
                    reply = {"t": "fatal", "error": self.error(exc)}
                chan.send_raw(_dumps(reply))
            elif kind == "exit":
                os._exit(0)


_confine_mod: ModuleType | None = None


def _confine() -> ModuleType:
    """Import confine.py (our sibling) by path, then forget the path: user code must not see it."""
    global _confine_mod
    if _confine_mod is None:
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        try:
            import confine  # type: ignore[import-not-found]
        finally:
            sys.path.remove(here)
        sys.modules.pop("confine", None)
        _confine_mod = confine
    return _confine_mod


def _site_packages() -> list[str]:
    """The interpreter's own site-packages, as `site` would add them (a venv's own only, unless
    it includes the system's). .pth files are deliberately not read: their path lines often
    point into the user's workspace (editable installs) and their import lines run code."""
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    prefixes = [sys.prefix]
    # with -S, nothing has applied pyvenv.cfg (site.py does that): find the venv ourselves
    bindir = os.path.dirname(sys.executable)
    for venv in (bindir, os.path.dirname(bindir)):
        try:
            with open(os.path.join(venv, "pyvenv.cfg")) as fh:
                cfg = fh.read().lower().replace(" ", "")
        except OSError:
            continue
        prefixes = [venv]
        if "include-system-site-packages=true" in cfg:
            prefixes.append(sys.base_prefix)
        break
    found: list[str] = []
    for prefix in prefixes:
        for cand in (
            os.path.join(prefix, "lib", ver, "site-packages"),
            os.path.join(prefix, "lib64", ver, "site-packages"),
            os.path.join(prefix, "local", "lib", ver, "dist-packages"),
            os.path.join(prefix, "lib", "python3", "dist-packages"),
        ):
            if os.path.isdir(cand) and cand not in found:
                found.append(cand)
    real: dict[str, str] = {}
    for p in found:  # lib64 is often a symlink to lib
        real.setdefault(os.path.realpath(p), p)
    return list(real.values())


_SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/lib",
    "/lib64",
    "/usr/local/lib",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
)


def _read_paths(cfg: dict, site: list[str]) -> list[str]:  # type: ignore[type-arg]
    paths = [p for p in sys.path if p]
    paths += site + list(cfg["import_paths"]) + list(cfg["read_paths"]) + list(_SYSTEM_READ)
    return list(dict.fromkeys(paths))


def _limits(cfg: dict, applied: list[str], problems: list[str], own_userns: bool) -> None:  # type: ignore[type-arg]
    import resource  # already imported by main(), while the spare was idle

    def setlim(res: int, value: int, name: str) -> None:
        try:
            resource.setrlimit(res, (value, value))
            applied.append(name)
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: setrlimit failed ({exc})")

    setlim(resource.RLIMIT_AS, cfg["memory_mb"] * 1024 * 1024, "memory")
    setlim(resource.RLIMIT_FSIZE, cfg["disk_mb"] * 1024 * 1024, "file-size")
    setlim(resource.RLIMIT_CORE, 0, "no-core")
    setlim(resource.RLIMIT_NOFILE, 256, "open-files")
    # Threads: each is a pid of the whole machine (pid_max is often 32768), and 4000 threads with
    # 16 KB stacks fit in any address-space limit. RLIMIT_NPROC counts per user *per user
    # namespace*: in our private one it counts only this worker's own threads. Outside one it
    # would count all the user's processes, and for root it does not apply at all (not claimed).
    if cfg.get("max_threads") and own_userns and os.getuid() != 0:
        setlim(resource.RLIMIT_NPROC, int(cfg["max_threads"]), "threads")
    if cfg.get("cpu_total"):  # backstop for a thread left spinning between steps
        setlim(resource.RLIMIT_CPU, int(cfg["cpu_total"]), "cpu-total")


def main(argv: list[str]) -> None:
    in_fd, out_fd, ctl_fd, parent = (int(a) for a in argv[1:5])
    if parent:
        try:  # noqa: SIM105
            _confine().die_with_parent()
        except (OSError, AttributeError, ImportError):
            pass
        if os.getppid() != parent:
            os._exit(0)  # the parent died before we could ask to die with it
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # may be inherited as SIG_IGN across exec
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_IGN)  # EPIPE / EFBIG instead of dying
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):  # protocol is on other fds: os.write(1, ...) cannot forge a frame
        os.dup2(devnull, fd)
    os.close(devnull)
    direct = Channel(int(argv[7]), int(argv[8]), spin=True) if len(argv) > 8 else None
    worker = Worker(Channel(in_fd, out_fd), ctl_fd, direct)
    import resource  # noqa: F401  (for configure: loading it now keeps it off the critical path)

    # the private scratch tmpfs: mounted now, while a spare is still idle
    if len(argv) > 6 and int(argv[6]) > 0:
        try:
            _confine().private_tmpfs(os.getcwd(), int(argv[5]), int(argv[6]))
            worker.tmpfs_done = True
        except (OSError, ImportError) as exc:
            worker.tmpfs_problem = f"disk: no private tmpfs ({exc}); only the per-file size limit"
    signal.signal(signal.SIGINT, worker.on_sigint)
    worker.chan.send_raw(
        _dumps(
            {
                "t": "ready",
                "pid": os.getpid(),
                "version": list(sys.version_info[:3]),
                "executable": sys.executable,
            }
        )
    )
    worker.serve()


if __name__ == "__main__":
    main(sys.argv)
