"""JSON schemas of parameters and results, argument validation (pydantic when the
interpreter has it, a stdlib fallback otherwise), and `Tool`: one callable ready to be called."""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any

from . import _codec, quality
from .describe import (
    _UNIONS,
    JSON,
    _code_target,
    _hints,
    _is_async,
    _signature,
    _source_location,
    format_annotation,
    render_signature,
    tool_kind,
)
from .errors import to_json

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


# Annotations whose validation leaves a value of exactly that type as it is: such a value needs
# no validator call (about a microsecond each, a sixth of a small tool call).
_AS_IS = (str, int, float, bool)


class _Param:
    __slots__ = ("adapter", "annotation", "as_is", "name")

    def __init__(self, name: str, annotation: Any, adapter: Any) -> None:
        self.name = name
        self.annotation = annotation
        self.adapter = adapter
        # (by identity: an annotation object's own __eq__ may do anything)
        self.as_is = next((t for t in _AS_IS if annotation is t), None)


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
        self.keywords_only_ok = plain  # a call may pass every argument by name
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
            # a pure stdlib callable runs in the sandbox itself (never one that needs approval)
            "local": None if self.confirm else _codec.codec.local_name(self.obj),
        }

    def bind(self, args: list[Any], kwargs: JSON) -> tuple[inspect.BoundArguments | None, JSON]:
        """Bind the call to parameter names; TypeError (with the signature) when it does not fit."""
        if self.sig is None:
            return None, ({"args": list(args), **kwargs} if args else dict(kwargs))
        names = self._plain
        if names is not None and len(args) <= len(names):
            # Fast path for the common shape (positional-or-keyword parameters only).
            arguments = dict(zip(names, args))  # noqa: B905 - runs on Python < 3.10 too
            if not kwargs or not any(k in arguments or k not in self.params for k in kwargs):
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
            if param is not None and type(value) is not param.as_is:
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


_STARS: dict[inspect._ParameterKind, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}


def tool_quality(tool: Tool) -> list[JSON]:
    """The quality rules (`quality.py`, shared with static discovery) applied to a live callable,
    for tools with no module to read (the Python API's): what leaves the model guessing."""
    params: list[quality.Param] = []
    returns: str | None = None
    if tool.sig is not None:
        for param in tool.sig.parameters.values():
            ann = tool.params[param.name].annotation if param.name in tool.params else None
            star = _STARS.get(param.kind, "")
            if param.annotation is inspect.Parameter.empty or star:
                params.append(quality.Param(param.name, None, star))
            else:
                shown = ann if ann is not None else param.annotation
                params.append(quality.Param(param.name, format_annotation(shown)))
        if tool.sig.return_annotation is not inspect.Signature.empty:
            returns = format_annotation(tool.sig.return_annotation)
    shape = quality.Shape(
        tool.name,
        documented=bool(tool.doc.strip()),
        params=params,
        returns=returns,
        has_signature=tool.sig is not None,
    )
    found = quality.check(shape)
    named = quality.check_name(tool.name)
    return [
        {
            "file": tool.file or "",
            "line": tool.line or 1,
            "severity": f.severity,
            "message": f.message,
            "code": f.code,
            "tool": tool.name,
            "source": "runtime",
        }
        for f in [*found, *([named] if named is not None else [])]
    ]
