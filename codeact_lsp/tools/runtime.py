"""The tool registry and the tool host's main loop: stdlib only, pydantic when available.

This file runs in two places: imported by the server process (`InProcessTools`, the Python API), and
launched *by path* with the workspace's own interpreter as the tool host. The workspace interpreter
may not have codeact_lsp or pydantic installed, so nothing here imports either at module level;
pydantic is used for schemas and validation only when that interpreter has it.

Host protocol (JSON lines on private descriptors; the tools' own stdout never reaches them):
  host -> client  {"op": "ready", "schemas": [...], "diagnostics": [...], "pydantic": bool}
  client -> host  {"id": n, "name": ..., "args": [...], "kwargs": {...}}
  host -> client  {"id": n, "ok": ..., "result": ..., "bound_args": ..., "error": ..., ...}
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import contextvars
import fnmatch
import functools
import importlib
import importlib.util
import inspect
import io
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import types
import typing
from typing import Any

JSON = typing.Dict[str, Any]  # noqa: UP006 - this file also runs on older interpreters
_THIS_FILE = os.path.abspath(__file__)
_MISSING = object()
_UNIONS = (typing.Union, getattr(types, "UnionType", typing.Union))
MAX_OUTPUT = 64 * 1024  # characters of a call's captured stdout/logging kept


def _pydantic() -> Any:
    try:
        import pydantic

        return pydantic
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# Describing a callable


def tool_kind(obj: Any) -> str:
    if isinstance(obj, functools.partial):
        return "partial"
    if inspect.ismethod(obj):
        return "async" if inspect.iscoroutinefunction(obj) else "method"
    if inspect.isbuiltin(obj) or isinstance(obj, (types.BuiltinMethodType,)):
        return "builtin"
    if inspect.iscoroutinefunction(obj):
        return "async"
    if inspect.isfunction(obj):
        return "function"
    return "callable"


def _is_async(obj: Any) -> bool:
    target = obj
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - callable instances
    return not inspect.isroutine(target) and call is not None and inspect.iscoroutinefunction(call)


def _code_target(obj: Any) -> Any:
    """The Python function whose source holds the tool's code (for file/line), if any."""
    seen = 0
    while seen < 10:
        seen += 1
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif inspect.ismethod(obj):
            obj = obj.__func__
        elif inspect.isfunction(obj):
            return inspect.unwrap(obj)
        elif inspect.isroutine(obj) or isinstance(obj, type):
            return None
        elif callable(obj):
            obj = getattr(type(obj), "__call__", None)  # noqa: B004
        else:
            return None
    return None


def _source_location(obj: Any) -> tuple[str | None, int | None]:
    fn = _code_target(obj)
    if fn is None:
        return None, None
    code = getattr(fn, "__code__", None)
    if code is None:
        return None, None
    return os.path.abspath(code.co_filename), int(code.co_firstlineno)


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations (strings from `from __future__ import annotations` evaluated)."""
    fn = _code_target(obj)
    if fn is None:
        return {}
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except TypeError:  # Python 3.8: no include_extras
        try:
            return typing.get_type_hints(fn)
        except Exception:
            return {}
    except Exception:
        return {}


def format_annotation(ann: Any) -> str:
    if ann is inspect.Parameter.empty:
        return ""
    if isinstance(ann, str):
        return ann
    if ann is type(None) or ann is None:
        return "None"
    if isinstance(ann, type) and not typing.get_args(ann):
        if ann.__module__ == "builtins":
            return ann.__qualname__
        return ann.__qualname__
    text = repr(ann)
    for prefix in ("typing.", "typing_extensions.", "collections.abc."):
        text = text.replace(prefix, "")
    return text


def render_signature(name: str, sig: inspect.Signature | None, hints: dict[str, Any]) -> str:
    """The stub the model sees: `def name(a: int, b: str = 'x') -> float` (always `def`: every tool
    is a plain synchronous call inside the sandbox, async ones included)."""
    if sig is None:
        return f"def {name}(*args, **kwargs)"
    parts: list[str] = []
    seen_kwonly_marker = False
    last_posonly = False
    for param in sig.parameters.values():
        if last_posonly and param.kind is not inspect.Parameter.POSITIONAL_ONLY:
            parts.append("/")
        last_posonly = param.kind is inspect.Parameter.POSITIONAL_ONLY
        ann = hints.get(param.name, param.annotation)
        text = param.name
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            text = "*" + text
            seen_kwonly_marker = True
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            text = "**" + text
        elif param.kind is inspect.Parameter.KEYWORD_ONLY and not seen_kwonly_marker:
            parts.append("*")
            seen_kwonly_marker = True
        ann_text = format_annotation(ann)
        if ann_text:
            text += f": {ann_text}"
        if param.default is not inspect.Parameter.empty:
            text += (" = " if ann_text else "=") + repr(param.default)
        parts.append(text)
    if last_posonly:
        parts.append("/")
    ret = hints.get("return", sig.return_annotation)
    ret_text = format_annotation(ret)
    return f"def {name}({', '.join(parts)})" + (f" -> {ret_text}" if ret_text else "")


# ---------------------------------------------------------------------------------------------
# Schemas and validation


_SIMPLE: dict[Any, JSON] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    list: {"type": "array"},
    dict: {"type": "object"},
    tuple: {"type": "array"},
}


_NAMED: JSON = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def _fallback_schema(ann: Any) -> JSON:
    if isinstance(ann, str):
        ann = _NAMED.get(ann.strip("'\""), Any)
    if ann is inspect.Parameter.empty or ann is Any:
        return {}
    if ann in _SIMPLE:
        return dict(_SIMPLE[ann])
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in _UNIONS:
        return {"anyOf": [_fallback_schema(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset):
        out: JSON = {"type": "array"}
        if args and args[-1] is not Ellipsis:
            out["items"] = _fallback_schema(args[0])
        return out
    if origin is dict:
        out = {"type": "object"}
        if len(args) == 2:
            out["additionalProperties"] = _fallback_schema(args[1])
        return out
    return {}


def _fallback_check(ann: Any, value: Any) -> tuple[bool, Any]:
    """Check simple annotations without pydantic; unknown annotations accept anything."""
    if isinstance(ann, str):  # unresolved (older interpreter): the plain names still help
        ann = _NAMED.get(ann.strip("'\""), Any)
    if ann is inspect.Parameter.empty or ann is Any:
        return True, value
    if ann is float and isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)
    if ann in (int, float) and isinstance(value, bool):
        return False, value
    if ann in _SIMPLE:
        return isinstance(value, ann), value
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in _UNIONS:
        for arg in args:
            ok, conv = _fallback_check(arg, value)
            if ok:
                return True, conv
        return False, value
    if origin is typing.Literal:
        return value in args, value
    if origin in (list, tuple, set, frozenset, dict):
        return isinstance(value, (dict if origin is dict else (list, tuple))), value
    return True, value


class _Param:
    __slots__ = ("adapter", "annotation", "name")

    def __init__(self, name: str, annotation: Any, adapter: Any) -> None:
        self.name = name
        self.annotation = annotation
        self.adapter = adapter


def _adapter(pyd: Any, ann: Any) -> Any:
    if pyd is None or ann is inspect.Parameter.empty or ann is Any or isinstance(ann, str):
        return None
    try:
        return pyd.TypeAdapter(ann)
    except Exception:
        return None


def _json_schema(adapter: Any, ann: Any, mode: str = "validation") -> JSON:
    if adapter is not None:
        try:
            return dict(adapter.json_schema(mode=mode))
        except Exception:
            pass
    return _fallback_schema(ann)


def _short_type(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


# ---------------------------------------------------------------------------------------------
# Results and errors


def to_json(value: Any) -> tuple[Any, bool]:
    """(JSON value, False) when the value has a faithful JSON form, else (repr, True)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value, False
    if kind is float and value == value and value not in (float("inf"), float("-inf")):
        return value, False
    try:
        json.dumps(value, allow_nan=False)
        return value, False
    except (TypeError, ValueError, RecursionError):
        pass
    pyd = _pydantic()
    if pyd is not None:
        try:
            converted = pyd.TypeAdapter(type(value)).dump_python(value, mode="json")
            json.dumps(converted, allow_nan=False)
            return converted, False
        except Exception:
            pass
    try:
        return repr(value), True
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {exc}>", True


def _in_dir(path: str, root: str | None) -> bool:
    if not root:
        return False
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def error_location(
    exc: BaseException, workspace: str | None, tool_file: str | None, skip_frames: int = 0
) -> JSON:
    """Type, message and the file/line inside the tool's code where it raised.

    The innermost frame in the workspace wins (the user's own code, even when the exception came
    from a library the tool called); then the innermost frame in the tool's file; then the innermost
    frame that is not this registry.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__)][skip_frames:]
    frames = [f for f in frames if os.path.abspath(f.filename) != _THIS_FILE]
    chosen = None
    for pick in (
        lambda p: _in_dir(p, workspace) and "site-packages" not in p,
        lambda p: tool_file is not None and p == tool_file,
        lambda p: True,
    ):
        for frame in reversed(frames):
            if pick(os.path.abspath(frame.filename)):
                chosen = frame
                break
        if chosen is not None:
            break
    message = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        message = str(exc.args[0])
    text = "".join(traceback.format_list(frames)) if frames else ""
    text = "Traceback (most recent call last):\n" + text if text else ""
    text += "".join(traceback.format_exception_only(type(exc), exc))
    return {
        "type": type(exc).__name__,
        "message": message,
        "file": os.path.abspath(chosen.filename) if chosen else tool_file,
        "line": chosen.lineno if chosen else None,
        "traceback": text,
    }


def _error(type_: str, message: str, file: str | None = None, line: int | None = None) -> JSON:
    return {"type": type_, "message": message, "file": file, "line": line, "traceback": ""}


class ToolTimeout(BaseException):
    """Raised inside a tool that outlived its timeout (a BaseException, so that a tool's own
    `except Exception` does not swallow it); reported as a TimeoutError."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise ToolTimeout()


class ToolCancelled(BaseException):
    """Raised inside a running tool when the caller cancels the call (the run was cancelled)."""


_IN_CALL = threading.Event()  # a tool is running in the main thread: a cancel may interrupt it


def _on_cancel(signum: int, frame: Any) -> None:
    if _IN_CALL.is_set():
        raise ToolCancelled()


def _coroutine_location(coro: Any, workspace: str | None) -> tuple[str | None, int | None]:
    """Where a suspended coroutine waits: the innermost frame of its await chain in the workspace."""
    found: tuple[str | None, int | None] = (None, None)
    seen = 0
    while coro is not None and seen < 50:
        seen += 1
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            path = os.path.abspath(frame.f_code.co_filename)
            if _in_dir(path, workspace) and "site-packages" not in path:
                found = (path, frame.f_lineno)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found


# ---------------------------------------------------------------------------------------------
# The registry


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


class Tool:
    """One callable plus what is needed to validate a call and describe it."""

    def __init__(
        self, name: str, obj: Any, module: str, confirm: bool, pyd: Any, doc: str | None = None
    ) -> None:
        self.name = name
        self.obj = obj
        self.module = module
        self.confirm = confirm
        self.kind = tool_kind(obj)
        self.is_async = _is_async(obj)
        self.sig = _signature(obj)
        hints = _hints(obj)
        self.file, self.line = _source_location(obj)
        self.doc = doc if doc is not None else (inspect.getdoc(obj) or "")
        if isinstance(obj, functools.partial) and doc is None:
            self.doc = inspect.getdoc(_code_target(obj) or obj.func) or ""
        if self.kind == "callable" and self.doc == (inspect.getdoc(type(obj)) or "") and not doc:
            call_doc = inspect.getdoc(getattr(type(obj), "__call__", None))  # noqa: B004
            self.doc = call_doc or self.doc
        self.signature = render_signature(name, self.sig, hints)
        self.params: dict[str, _Param] = {}
        properties: JSON = {}
        required: list[str] = []
        defs: JSON = {}
        if self.sig is not None:
            for param in self.sig.parameters.values():
                ann = hints.get(param.name, param.annotation)
                if param.kind is inspect.Parameter.VAR_POSITIONAL:
                    ann = typing.List[ann] if ann is not inspect.Parameter.empty else list  # type: ignore[valid-type]  # noqa: UP006
                elif param.kind is inspect.Parameter.VAR_KEYWORD:
                    ann = typing.Dict[str, ann] if ann is not inspect.Parameter.empty else dict  # type: ignore[valid-type]  # noqa: UP006
                adapter = _adapter(pyd, ann)
                self.params[param.name] = _Param(param.name, ann, adapter)
                schema = _json_schema(adapter, ann)
                # "#/$defs/X" references resolve from the document root: hoist the definitions.
                defs.update(schema.pop("$defs", {}))
                if param.default is not inspect.Parameter.empty:
                    default, is_repr = to_json(param.default)
                    if not is_repr:
                        schema["default"] = default
                elif param.kind not in (
                    inspect.Parameter.VAR_POSITIONAL,
                    inspect.Parameter.VAR_KEYWORD,
                ):
                    required.append(param.name)
                properties[param.name] = schema
        self.parameters: JSON = {"type": "object", "properties": properties}
        if required:
            self.parameters["required"] = required
        if defs:
            self.parameters["$defs"] = defs
        if self.sig is None:
            self.parameters["additionalProperties"] = True
        ret = hints.get(
            "return", self.sig.return_annotation if self.sig else inspect.Parameter.empty
        )
        self.returns: JSON | None = (
            None
            if ret is inspect.Parameter.empty
            else _json_schema(_adapter(pyd, ret), ret, "serialization")
        )
        self.validated = pyd is not None
        plain = self.sig is not None and all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in self.sig.parameters.values()
        )
        self._plain: list[str] | None = list(self.params) if plain else None
        self._required = frozenset(required)

    def schema(self) -> JSON:
        return {
            "name": self.name,
            "module": self.module,
            "signature": self.signature,
            "doc": self.doc,
            "parameters": self.parameters,
            "returns": self.returns,
            "confirm": self.confirm,
            "is_async": self.is_async,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "validated": self.validated,
        }

    def bind(self, args: list[Any], kwargs: JSON) -> tuple[inspect.BoundArguments | None, JSON]:
        """Bind the call to parameter names; TypeError (with the signature) when it does not fit."""
        if self.sig is None:
            return None, ({"args": list(args), **kwargs} if args else dict(kwargs))
        names = self._plain
        if names is not None and len(args) <= len(names):
            # Fast path for the common shape (positional-or-keyword parameters only).
            arguments = dict(zip(names, args))  # noqa: B905 - runs on Python < 3.10 too
            if not any(k in arguments or k not in self.params for k in kwargs):
                arguments.update(kwargs)
                if self._required.issubset(arguments):
                    return inspect.BoundArguments(self.sig, arguments), dict(arguments)
        try:
            bound = self.sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}; signature: {self.signature}") from None
        return bound, dict(bound.arguments)

    def validate(self, bound: inspect.BoundArguments | None) -> None:
        """Validate (and convert) bound arguments; TypeError naming the parameter otherwise."""
        if bound is None:
            return
        arguments = bound.arguments
        for pname, value in arguments.items():
            param = self.params.get(pname)
            if param is not None:
                arguments[pname] = self._validate(param, value)

    def _validate(self, param: _Param, value: Any) -> Any:
        if param.adapter is not None:
            try:
                return param.adapter.validate_python(value)
            except Exception as exc:
                errors = getattr(exc, "errors", None)
                detail = str(exc)
                if callable(errors):
                    try:
                        first = errors()[0]
                        loc = "".join(f"[{p!r}]" for p in first.get("loc", ()))
                        detail = f"{first.get('msg', detail)}{' at ' + loc if loc else ''}"
                    except Exception:
                        pass
                raise TypeError(
                    f"{self.name}(): argument '{param.name}' should be "
                    f"{format_annotation(param.annotation)}, got {_short_type(value)}: {detail}"
                ) from None
        ok, converted = _fallback_check(param.annotation, value)
        if not ok:
            raise TypeError(
                f"{self.name}(): argument '{param.name}' should be "
                f"{format_annotation(param.annotation)}, got {_short_type(value)}"
            )
        return converted


def tool_quality(tool: Tool) -> list[JSON]:
    """Runtime counterpart of the static checks, for tools with no module to read (the Python
    API's callables): what leaves the model guessing."""
    out: list[JSON] = []

    def add(code: str, message: str, severity: str = "warning") -> None:
        out.append(
            {
                "file": tool.file or "",
                "line": tool.line or 1,
                "severity": severity,
                "message": message,
                "code": code,
                "tool": tool.name,
                "source": "runtime",
            }
        )

    if not tool.doc.strip():
        add(
            "tool-no-docstring",
            f"tool {tool.name!r} has no docstring: the model sees only its signature; say what "
            "it does, what it returns and in which unit",
        )
    if tool.sig is None:
        return out
    for param in tool.sig.parameters.values():
        ann = tool.params[param.name].annotation if param.name in tool.params else None
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            add(
                "tool-varargs",
                f"tool {tool.name!r} takes {'*' if param.kind is inspect.Parameter.VAR_POSITIONAL else '**'}"
                f"{param.name}: the model cannot know which arguments it accepts",
            )
        elif param.annotation is inspect.Parameter.empty:
            add(
                "tool-no-annotation",
                f"parameter {param.name!r} of tool {tool.name!r} has no type annotation: the "
                "model has to guess what to pass, and arguments cannot be validated",
            )
        elif ann is Any or ann is object:
            add(
                "tool-any-annotation",
                f"parameter {param.name!r} of tool {tool.name!r} is annotated "
                f"{format_annotation(ann)}: that tells the model nothing; use a concrete type",
            )
    if tool.name == "final_answer":
        add("tool-reserved-name", "'final_answer' is reserved by CodeAct; rename the tool", "error")
    elif tool.name in dir(builtins) and not tool.name.startswith("_"):
        add(
            "tool-shadows-builtin",
            f"tool {tool.name!r} shadows the Python builtin {tool.name}() in the model's code",
        )
    return out


class _AsyncTimeout(Exception):
    def __init__(self, file: str | None, line: int | None) -> None:
        super().__init__(file, line)
        self.file = file
        self.line = line


class Registry:
    """Validation, calling, output capture and error location: one code path for the tool host and
    for tools served in the caller's process, so both behave the same."""

    def __init__(self, confirm: list[str] | None = None, workspace: str | None = None) -> None:
        self.confirm = list(confirm or [])
        self.workspace = os.path.abspath(workspace) if workspace else None
        self.tools: dict[str, Tool] = {}
        self.diagnostics: list[JSON] = []
        self._pyd = _pydantic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self._capture = _Capture()
        self.json_args = False  # True in the host: arguments arrive as JSON, already serialisable

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
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )
        if alarm:
            if signal.getsignal(signal.SIGALRM) is not _on_alarm:  # once (a tool may reset it)
                signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, float(timeout or 0))
        if alarm:
            _IN_CALL.set()
        try:
            if bound is None:
                value = tool.obj(*args, **kwargs)
            else:
                value = tool.obj(*bound.args, **bound.kwargs)
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _IN_CALL.clear()
        if not inspect.isawaitable(value):
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
            bound, shown = tool.bind(list(args), dict(kwargs))
            # In the host the arguments came over the wire as JSON: already serialisable.
            out["bound_args"] = (
                shown if self.json_args else {k: to_json(v)[0] for k, v in shown.items()}
            )
            tool.validate(bound)
        except TypeError as exc:
            out["error"] = _error("TypeError", str(exc))
            out["duration_ms"] = (time.perf_counter() - started) * 1000
            return out
        buf = io.StringIO()
        root = logging.getLogger()
        if self._capture not in root.handlers:  # user code may reconfigure logging
            root.addHandler(self._capture)
        if not isinstance(sys.stdout, _StdoutProxy):
            sys.stdout = _StdoutProxy(sys.stdout)
        token = _CURRENT.set(buf)
        try:
            value = self._invoke(tool, bound, args, kwargs, buf, timeout)
            out["result"], out["result_is_repr"] = to_json(value)
            out["ok"] = True
        except KeyboardInterrupt:
            raise
        except ToolCancelled as exc:
            loc = error_location(exc, self.workspace, tool.file)
            loc["type"] = "CancelledError"
            loc["message"] = f"the call of {name!r} was cancelled"
            tb = str(loc["traceback"]).rsplit("\n", 2)[0]
            loc["traceback"] = f"{tb}\nCancelledError: {loc['message']}\n"
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


# ---------------------------------------------------------------------------------------------
# Loading tool modules (host side)


def is_tool_value(name: str, value: Any, module: types.ModuleType) -> bool:
    """Without `__all__`: public callables defined in the module (functions imported from elsewhere
    and classes are not tools; bound methods, partials and callable objects made here are)."""
    if name.startswith("_") or isinstance(value, (type, types.ModuleType)):
        return False
    if not callable(value):
        return False
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return getattr(value, "__module__", None) == module.__name__
    return not typing.get_origin(value) and type(value).__module__ != "typing"


def module_tools(module: types.ModuleType) -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, value) pairs of a module's tools, and names of `__all__` that are not callable."""
    names = getattr(module, "__all__", None)
    bad: list[str] = []
    found: list[tuple[str, Any]] = []
    if names is not None:
        for name in list(names):
            value = getattr(module, str(name), _MISSING)
            if value is _MISSING or not callable(value) or isinstance(value, type):
                bad.append(str(name))
            else:
                found.append((str(name), value))
        return found, bad
    for name, value in vars(module).items():
        if is_tool_value(name, value, module):
            found.append((name, value))
    return found, bad


def _all_line(file: str | None) -> int:
    if file is None:
        return 1
    try:
        with open(file, encoding="utf-8") as fh:
            for number, text in enumerate(fh, 1):
                if text.startswith("__all__"):
                    return number
    except (OSError, UnicodeDecodeError):
        pass
    return 1


def _failure_line(exc: BaseException, file: str | None) -> int:
    if (
        isinstance(exc, SyntaxError)
        and exc.lineno
        and (file is None or not exc.filename or os.path.abspath(exc.filename) == file)
    ):
        return int(exc.lineno)
    line = 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if file is not None and os.path.abspath(frame.filename) == file and frame.lineno:
            line = frame.lineno
    return line


def load_targets(registry: Registry, targets: list[JSON]) -> None:
    """Import each target ({"module": name, "file": path|None}); a failure becomes a diagnostic at
    the failing line of that module and the other modules still load."""
    for target in targets:
        modname = str(target["module"])
        file = os.path.abspath(target["file"]) if target.get("file") else None
        try:
            if file is not None and target.get("by_path"):
                spec = importlib.util.spec_from_file_location(modname, file)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {file}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[modname] = module
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(modname)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            where = file or getattr(exc, "filename", None) or ""
            registry.diagnostics.append(
                {
                    "file": where,
                    "line": _failure_line(exc, file),
                    "severity": "error",
                    "message": f"importing {modname} failed: {type(exc).__name__}: {exc}",
                    "code": "import-error",
                    "tool": None,
                    "source": "runtime",
                }
            )
            continue
        mod_file = getattr(module, "__file__", None)
        file = file or (os.path.abspath(mod_file) if isinstance(mod_file, str) else None)
        found, bad = module_tools(module)
        for name in bad:
            value = getattr(module, name, _MISSING)
            if isinstance(value, type):
                continue  # an exported class: not a tool, and not a mistake (static analysis says so)
            registry.diagnostics.append(
                {
                    "file": file or "",
                    "line": _all_line(file),
                    "severity": "error",
                    "message": f"{name!r} is listed in __all__ but "
                    + ("is not defined" if value is _MISSING else "is not callable"),
                    "code": "not-callable",
                    "tool": name,
                    "source": "runtime",
                }
            )
        for name, value in found:
            if name in registry.tools and registry.tools[name].module != modname:
                other = registry.tools[name].module
                registry.diagnostics.append(
                    {
                        "file": file or "",
                        "line": 1,
                        "severity": "error",
                        "message": f"tool {name!r} is also defined in {other}; this one wins",
                        "code": "tool-name-collision",
                        "tool": name,
                        "source": "runtime",
                    }
                )
            try:
                registry.add(name, value, modname)
            except Exception as exc:
                registry.diagnostics.append(
                    {
                        "file": file or "",
                        "line": 1,
                        "severity": "error",
                        "message": f"cannot describe tool {name!r}: {type(exc).__name__}: {exc}",
                        "code": "schema-error",
                        "tool": name,
                        "source": "runtime",
                    }
                )


# ---------------------------------------------------------------------------------------------
# Host main loop


def _die_with_parent() -> None:
    """Exit when the server goes away, even while a tool runs (an idle host sees EOF instead).

    Not PR_SET_PDEATHSIG: that fires when the *thread* that spawned us ends, and hosts are
    (re)started from short-lived caller threads.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="codeact-parent-watch", daemon=True).start()


def serve(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    _die_with_parent()
    # Protocol on private descriptors; fd 0/1 become /dev/null and stderr, so a tool that prints
    # or writes to fd 1 directly cannot corrupt the channel.
    rfd = os.dup(0)
    wfd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    if spec.get("stack_file"):
        try:
            import faulthandler

            stack = open(spec["stack_file"], "w")  # noqa: SIM115
            faulthandler.register(signal.SIGUSR1, file=stack, all_threads=True)
        except Exception:
            pass
    reader = os.fdopen(rfd, "rb", buffering=1 << 16)
    writer = os.fdopen(wfd, "wb", buffering=0)

    here = os.path.dirname(_THIS_FILE)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    for path in reversed(spec.get("paths", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    workspace = spec.get("workspace")
    if workspace:
        with contextlib.suppress(OSError):
            os.chdir(workspace)
    registry = Registry(spec.get("confirm", []), workspace)
    registry.json_args = True
    if hasattr(signal, "SIGUSR2"):
        signal.signal(signal.SIGUSR2, _on_cancel)  # ToolHost.cancel(): interrupt the running tool
    load_targets(registry, spec.get("targets", []))

    limit = int(spec.get("max_reply", 16 * 1024 * 1024))

    def send(msg: JSON) -> None:
        try:
            data = json.dumps(msg, default=repr).encode() + b"\n"
        except ValueError:
            data = json.dumps(to_json(msg)[0], default=repr).encode() + b"\n"
        if len(data) > limit and "id" in msg:
            size = len(data)
            msg.update(
                ok=False, result=None, result_is_repr=False, stdout=msg.get("stdout", "")[:4096]
            )
            msg["error"] = _error(
                "ValueError",
                f"the tool's result is {size // 1024} KiB, over the {limit // 1024} KiB limit; "
                "return less (a summary, a page, or a file path)",
            )
            data = json.dumps(msg, default=repr).encode() + b"\n"
        writer.write(data)

    send(
        {
            "op": "ready",
            "schemas": registry.schemas(),
            "diagnostics": registry.diagnostics,
            "pydantic": registry.has_pydantic,
            "python": sys.executable,
            "version": sys.version.split()[0],
        }
    )
    for line in reader:
        if not line.strip():
            continue
        req = json.loads(line)
        reply = registry.call(
            req["name"], req.get("args", []), req.get("kwargs", {}), req.get("timeout")
        )
        reply["id"] = req.get("id")
        send(reply)
    return 0


def main() -> None:
    sys.exit(serve(sys.argv[1:]))


if __name__ == "__main__":
    main()
