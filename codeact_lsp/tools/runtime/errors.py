"""Results and errors of a tool call: faithful values, and where in the tool's code it raised."""

from __future__ import annotations

import json
import os
import time
import traceback
from typing import Any

from . import _codec
from .describe import JSON, _pydantic

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


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


def to_wire(value: Any, max_depth: int | None = None) -> tuple[Any, bool]:
    """(wire value, lossy): the typed codec's form of a result; lossy when some part of it had
    no faithful form and became a marked stand-in (type name and repr)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value, False
    enc = _codec.codec.Encoder(max_depth=max_depth or _codec.codec.MAX_DEPTH)
    try:
        wire = enc.encode(value)
    except Exception as exc:  # a hostile __getattr__, a dataclass field that raises, ...
        return {
            "$": "opaque",
            "type": type(value).__name__,
            "repr": f"<encoding failed: {exc}>",
        }, True
    return wire, enc.lossy


def shown(wire: Any) -> Any:
    """What a person reads for a wire value (trajectory args): plain JSON."""
    return _codec.codec.preview(wire)


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
    frames = [f for f in frames if os.path.dirname(os.path.abspath(f.filename)) != _PKG_DIR]
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
        "exception": _codec.codec.exception_tree(type(exc)),
    }


def _error(type_: str, message: str, file: str | None = None, line: int | None = None) -> JSON:
    return {"type": type_, "message": message, "file": file, "line": line, "traceback": ""}


def result_too_big(size: int, limit: int) -> JSON:
    """The error of a call whose encoded result is `size` bytes, over the reply cap `limit`: one
    text for the server's route and the direct route, so the model reads the same advice."""
    return _error(
        "ValueError",
        f"the tool's result is {size // 1024} KiB, over the {limit // 1024} KiB limit; "
        "return less (a summary, a page, or a file path)",
    )


class ToolTimeout(BaseException):
    """Raised inside a tool that outlived its timeout (a BaseException, so that a tool's own
    `except Exception` does not swallow it); reported as a TimeoutError."""


class _Deadline:
    """When the running call must end, for a host whose watchdog thread raises the alarm
    (`watched`): arming an interval timer costs two system calls per call, which is a fifth of a
    small tool call. Unwatched (the Python API, a host without the direct route) setitimer is
    used and every alarm counts."""

    __slots__ = ("at", "watched")

    def __init__(self) -> None:
        self.at = 0.0
        self.watched = False


DEADLINE = _Deadline()


def _on_alarm(signum: int, frame: Any) -> None:
    if DEADLINE.watched:
        at = DEADLINE.at
        if not at or time.monotonic() < at:
            return  # late: meant for a call that has ended since
    raise ToolTimeout()


class ToolCancelled(BaseException):
    """Raised inside a running tool when the caller cancels the call (the run was cancelled)."""


class _Flag:
    """A plain flag (set and read in the main thread, by the tool's call and by the signal
    handler): a `threading.Event` costs a lock and a notify on every call."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False

    def set(self) -> None:
        self.on = True

    def clear(self) -> None:
        self.on = False

    def is_set(self) -> bool:
        return self.on


_IN_CALL = _Flag()  # a tool is running in the main thread: a cancel may interrupt it


class _Cancel:
    """Whose call a cancel is for: `current` names the caller of the running call (0: the
    server's own request, N: direct-route connection N), `target` the one to interrupt (None:
    whatever runs). A cancel meant for one run never interrupts another run's call."""

    __slots__ = ("current", "target")

    def __init__(self) -> None:
        self.current: int | None = None
        self.target: int | None = None


_CANCEL = _Cancel()


def _on_cancel(signum: int, frame: Any) -> None:
    if not _IN_CALL.is_set():
        return
    target = _CANCEL.target
    if target is not None and target != _CANCEL.current:
        return
    _CANCEL.target = None
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


class _AsyncTimeout(Exception):
    def __init__(self, file: str | None, line: int | None) -> None:
        super().__init__(file, line)
        self.file = file
        self.line = line
