"""The registry: validation, calling, output capture and error location, shared by the tool host
and by tools served in the caller's process (the Python API), so both behave the same."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stubs; `signal.getsignal` is slow)
import asyncio
import concurrent.futures
import contextlib
import contextvars
import fnmatch
import inspect
import io
import logging
import os
import signal
import sys
import threading
import time
import types
from typing import Any

from . import _codec
from .describe import JSON, _pydantic
from .errors import (
    _IN_CALL,
    DEADLINE,
    ToolCancelled,
    ToolTimeout,
    _AsyncTimeout,
    _coroutine_location,
    _error,
    _on_alarm,
    error_location,
    shown,
    to_wire,
)
from .schema import Tool

_CANCELLED = {
    "name": "CancelledError",
    "module": "tools",
    "qualname": "CancelledError",
    "bases": [{"name": "Exception", "module": "builtins"}],
}
_HAS_ALARM = hasattr(signal, "setitimer")
_MAIN_THREAD = threading.main_thread().ident
_NOT_AWAITABLE = frozenset((str, int, float, bool, type(None), list, dict, tuple))
MAX_OUTPUT = 64 * 1024  # characters of a call's captured stdout/logging kept


_CURRENT: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "codeact_tool_output", default=None
)


class _StdoutProxy(io.TextIOBase):
    """`sys.stdout` while tools run: writes go to the running call's buffer (per thread and per
    asyncio task, through a context variable), everything else to the real stream. Calls can then
    run concurrently without a lock around `sys.stdout`."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, text: str) -> int:
        buf = _CURRENT.get()
        if buf is not None:
            return buf.write(text)
        return int(self.real.write(text) or 0)

    def flush(self) -> None:
        if _CURRENT.get() is None:
            with contextlib.suppress(Exception):
                self.real.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return int(self.real.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.real, "encoding", "utf-8"))


class _Capture(logging.Handler):
    """One long-lived root handler that writes into the running call's buffer (creating and
    registering a handler per call costs more than a small tool call)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        target = _CURRENT.get()
        if target is not None:
            with contextlib.suppress(Exception):
                target.write(self.format(record) + "\n")


class Registry:
    """Validation, calling, output capture and error location: one code path for the tool host and
    for tools served in the caller's process, so both behave the same."""

    def __init__(
        self,
        confirm: list[str] | None = None,
        workspace: str | None = None,
        *,
        max_depth: int | None = None,
    ) -> None:
        self.confirm = list(confirm or [])
        self.workspace = os.path.abspath(workspace) if workspace else None
        self.tools: dict[str, Tool] = {}
        self.diagnostics: list[JSON] = []
        self._pyd = _pydantic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self._capture = _Capture()
        self.modules: set[str] = set()  # tool modules: their dataclasses may be rebuilt from args
        self.max_depth = int(max_depth or _codec.codec.MAX_DEPTH)
        self._decoder = _codec.codec.Decoder(self._resolve, self.max_depth)

    @property
    def has_pydantic(self) -> bool:
        return self._pyd is not None

    def needs_confirm(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.confirm)

    def add(self, name: str, obj: Any, module: str = "") -> Tool:
        tool = Tool(name, obj, module, self.needs_confirm(name), self._pyd)
        self.tools[name] = tool
        return tool

    def schemas(self) -> list[JSON]:
        return [t.schema() for t in self.tools.values()]

    def note_module(self, module: types.ModuleType) -> None:
        """A module whose tools are served: its dataclasses are rebuilt from arguments (instead of
        stand-ins), and its exception classes are announced to the snippet's side."""
        self.modules.add(module.__name__)

    def _resolve(self, path: str) -> type | None:
        """The dataclass a wire value names, if it lives in a tool module already imported: no
        import is ever triggered by what the sandbox sent."""
        for modname in self.modules:
            if not path.startswith(modname + "."):
                continue
            obj: Any = sys.modules.get(modname)
            for part in path[len(modname) + 1 :].split("."):
                obj = getattr(obj, part, None)
            if isinstance(obj, type) and hasattr(obj, "__dataclass_fields__"):
                return obj
        return None

    def exception_types(self) -> list[JSON]:
        """Exception classes defined in the tool modules (public names), as trees the sandbox
        rebuilds so that `except InsufficientFunds:` works in generated code."""
        out: list[JSON] = []
        for modname in sorted(self.modules):
            module = sys.modules.get(modname)
            if module is None:
                continue
            for name, value in list(vars(module).items()):
                if (
                    not name.startswith("_")
                    and isinstance(value, type)
                    and issubclass(value, BaseException)
                    and value.__module__ == modname
                ):
                    out.append(_codec.codec.exception_tree(value))
        return out

    def _show(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        return shown(to_wire(value)[0])

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """One long-lived loop in its own thread, so async tools keep loop-bound state (sessions,
        clients) between calls."""
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="codeact-tools-loop", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop

    def _invoke(
        self,
        tool: Tool,
        bound: inspect.BoundArguments | None,
        args: list[Any],
        kwargs: JSON,
        buf: io.StringIO,
        timeout: float | None,
    ) -> Any:
        # A soft timeout: in the main thread an alarm interrupts the tool where it is (the host
        # and its state survive); the client kills the host only if that does not work.
        alarm = (
            timeout is not None
            and timeout > 0
            and _HAS_ALARM
            and threading.get_ident() == _MAIN_THREAD
        )
        if alarm:
            # once (a tool may reset it); `_signal`: `signal.getsignal` builds an enum each time
            if _signal.getsignal(signal.SIGALRM) is not _on_alarm:
                signal.signal(signal.SIGALRM, _on_alarm)
            if DEADLINE.watched:
                DEADLINE.at = time.monotonic() + float(timeout or 0)
            else:
                signal.setitimer(signal.ITIMER_REAL, float(timeout or 0))
            _IN_CALL.set()
        try:
            if bound is None:
                value = tool.obj(*args, **kwargs)
            elif tool.keywords_only_ok:
                # every parameter is positional-or-keyword: `BoundArguments.args/kwargs` would
                # rebuild the call on each access, which costs more than a small tool
                value = tool.obj(**bound.arguments)
            else:
                value = tool.obj(*bound.args, **bound.kwargs)
        finally:
            if alarm:
                if DEADLINE.watched:
                    DEADLINE.at = 0.0
                else:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                _IN_CALL.clear()
        if type(value) in _NOT_AWAITABLE or not inspect.isawaitable(value):
            return value
        coro = value

        async def _await() -> Any:
            _CURRENT.set(buf)  # this task's own context: its prints are this call's output
            return await coro

        future = asyncio.run_coroutine_threadsafe(_await(), self._event_loop())
        if alarm:
            _IN_CALL.set()
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            where = _coroutine_location(coro, self.workspace)
            future.cancel()
            raise _AsyncTimeout(*where) from None
        except ToolCancelled:
            future.cancel()
            raise
        finally:
            _IN_CALL.clear()

    def call(self, name: str, args: list[Any], kwargs: JSON, timeout: float | None = None) -> JSON:
        started = time.perf_counter()
        out: JSON = {
            "ok": False,
            "result": None,
            "result_is_repr": False,
            "bound_args": {},
            "error": None,
            "stdout": "",
            "duration_ms": 0.0,
        }
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            out["error"] = _error("NameError", f"no tool named {name!r} (tools: {known})")
            return out
        try:
            dec = self._decoder.decode
            args = [dec(a) for a in args]
            if kwargs:
                kwargs = {str(k): dec(v) for k, v in kwargs.items()}
        except (ValueError, TypeError, RecursionError) as exc:
            out["error"] = _error("TypeError", f"{name}(): malformed argument: {exc}")
            return out
        try:
            bound, named = tool.bind(args, kwargs)
            show = self._show
            out["bound_args"] = {k: show(v) for k, v in named.items()}
            tool.validate(bound)
        except TypeError as exc:
            out["error"] = _error("TypeError", str(exc))
            out["duration_ms"] = (time.perf_counter() - started) * 1000
            return out
        buf = io.StringIO()
        root = logging.root  # (getLogger() is a locked lookup: a tenth of a small call)
        if self._capture not in root.handlers:  # user code may reconfigure logging
            root.addHandler(self._capture)
        if not isinstance(sys.stdout, _StdoutProxy):
            sys.stdout = _StdoutProxy(sys.stdout)
        token = _CURRENT.set(buf)
        try:
            value = self._invoke(tool, bound, args, kwargs, buf, timeout)
            out["result"], out["result_is_repr"] = to_wire(value, self.max_depth)
            out["ok"] = True
        except KeyboardInterrupt:
            raise
        except ToolCancelled as exc:
            loc = error_location(exc, self.workspace, tool.file)
            loc["type"] = "CancelledError"
            loc["message"] = f"the call of {name!r} was cancelled"
            tb = str(loc["traceback"]).rsplit("\n", 2)[0]
            loc["traceback"] = f"{tb}\nCancelledError: {loc['message']}\n"
            loc["exception"] = _CANCELLED
            out["error"] = loc
        except (ToolTimeout, _AsyncTimeout) as exc:
            loc = error_location(exc, self.workspace, tool.file)
            if isinstance(exc, _AsyncTimeout) and exc.file:
                loc["file"], loc["line"] = exc.file, exc.line
            loc["type"] = "TimeoutError"
            loc["message"] = (
                f"tool {name!r} did not finish within {timeout:g} s and was interrupted "
                "(the tool host kept running, with its state)"
            )
            tb = str(loc["traceback"]).rsplit("\n", 2)[0] if isinstance(exc, ToolTimeout) else ""
            if isinstance(exc, _AsyncTimeout) and exc.file:
                tb = f'  File "{exc.file}", line {exc.line} (awaiting)'
            loc["traceback"] = (tb + "\n" if tb else "") + f"TimeoutError: {loc['message']}\n"
            loc["exception"] = {"name": "TimeoutError", "module": "builtins"}
            out["error"] = loc
            out["timed_out"] = True
        except BaseException as exc:  # SystemExit too: a tool must not end the host
            out["error"] = error_location(exc, self.workspace, tool.file)
        finally:
            _CURRENT.reset(token)
        text = buf.getvalue()
        if len(text) > MAX_OUTPUT:
            cut = len(text) - MAX_OUTPUT
            text = (
                text[: MAX_OUTPUT // 2]
                + f"\n... [{cut} characters cut] ...\n"
                + text[-MAX_OUTPUT // 2 :]
            )
        out["stdout"] = text
        out["duration_ms"] = (time.perf_counter() - started) * 1000
        return out
