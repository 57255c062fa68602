"""Describing a callable: its kind, source location, signature as the model sees it."""

from __future__ import annotations

import functools
import inspect
import os
import types
import typing
from typing import Any

JSON = typing.Dict[str, Any]  # noqa: UP006 - this file also runs on older interpreters
_UNIONS = (typing.Union, getattr(types, "UnionType", typing.Union))


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
