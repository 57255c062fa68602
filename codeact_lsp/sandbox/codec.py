"""The typed codec of the tool boundary: Python values <-> JSON-safe "wire" values, without loss.

Stdlib-only and import-light, because it is loaded *by path* in three interpreters: the sandbox
worker (cold start is a product metric), the tool host (the workspace's interpreter, which may not
have codeact_lsp installed) and the server. Nothing here unpickles, evaluates or imports what a
value names: decoding untrusted data only ever builds plain containers, stdlib value types, numpy
arrays from raw bytes (non-object dtypes only), stand-in records, and - on the trusted side, when
the caller passes a resolver - instances of dataclasses the caller already knows.

Wire form: None, bool, int, str and finite floats are themselves; a list is a list; a dict with
only string keys (none of them "$") is a dict. Everything else is a tagged object
``{"$": tag, ...}``: float (nan/inf), dict (other keys), tuple, set, frozenset, bytes, bytearray,
datetime, date, time, timedelta, decimal, complex, dataclass, ndarray, npscalar, and opaque (a
stand-in that carries the type name and a clipped repr of what could not cross).
"""

from __future__ import annotations

import builtins

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `typing` would cost cold-start time in the worker
    from collections.abc import Callable
    from typing import Any

TAG = "$"
MAX_DEPTH = 64  # default nesting cap of one value
REPR_LIMIT = 300  # characters of a stand-in's repr

_SCALARS = (str, int, bool, type(None))
_FLOAT_NAMES = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_DT_TAGS = ("datetime", "date", "time")


class CodecError(TypeError):
    """A value that must not or cannot cross (a function as a tool argument, nesting too deep)."""


class Opaque:
    """What arrives in place of a value that has no faithful wire form: its type and repr."""

    __slots__ = ("text", "type_name")

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return f"<unserialisable {self.type_name}: {self.text}>"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Opaque and other.type_name == self.type_name and other.text == self.text
        )

    def __hash__(self) -> int:
        return hash((self.type_name, self.text))


def type_path(cls: type) -> str:
    mod = getattr(cls, "__module__", None) or "?"
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    return str(name) if mod == "builtins" else f"{mod}.{name}"


def _safe_repr(obj: object, limit: int = REPR_LIMIT) -> str:
    try:
        text = repr(obj)
    except BaseException as exc:  # a __repr__ is user code
        text = f"<repr failed: {type(exc).__name__}>"
    if not isinstance(text, str):
        text = "<repr returned a non-string>"
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]} … [{len(text) - 2 * half} characters cut] … {text[-half:]}"
    return text


def _float(x: float) -> object:
    if x != x:
        return {TAG: "float", "v": "nan"}
    if x in (_FLOAT_NAMES["inf"], _FLOAT_NAMES["-inf"]):
        return {TAG: "float", "v": "inf" if x > 0 else "-inf"}
    return x


def _b64(data: bytes) -> str:
    import binascii

    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(text: object) -> bytes:
    import binascii

    if not isinstance(text, str):
        raise ValueError("bytes must be base64 text")
    return binascii.a2b_base64(text.encode("ascii"))


# ---------------------------------------------------------------------------------------------
# encoding


class Encoder:
    """Encodes values; `strict` (tool arguments) refuses what cannot cross instead of replacing it
    with a stand-in, so the model learns at the call what to pass instead."""

    def __init__(self, *, strict: bool = False, max_depth: int = MAX_DEPTH) -> None:
        self.strict = strict
        self.max_depth = max_depth
        self.lossy = False  # a stand-in was produced somewhere in the last value

    def encode(self, obj: object) -> object:
        kind = type(obj)
        if kind is str or kind is int or kind is bool or obj is None:
            return obj
        self.lossy = False
        return self._enc(obj, 0)

    def _enc(self, obj: Any, depth: int) -> object:
        kind = type(obj)
        if kind is str or kind is int or kind is bool or obj is None:
            return obj
        if kind is float:
            return _float(obj)
        if depth >= self.max_depth:
            if self.strict:
                raise CodecError(f"the value is nested deeper than {self.max_depth} levels")
            self.lossy = True
            return {TAG: "opaque", "type": type_path(kind), "repr": "<nested too deep>"}
        d = depth + 1
        enc = self._enc
        if kind is list:
            return [enc(x, d) for x in obj]
        if kind is dict:
            if all(type(k) is str for k in obj) and TAG not in obj:
                return {k: enc(v, d) for k, v in obj.items()}
            return {TAG: "dict", "v": [[enc(k, d), enc(v, d)] for k, v in obj.items()]}
        if kind is tuple:
            return {TAG: "tuple", "v": [enc(x, d) for x in obj]}
        if kind is set or kind is frozenset:
            return {TAG: kind.__name__, "v": [enc(x, d) for x in obj]}
        if kind is bytes or kind is bytearray:
            return {TAG: kind.__name__, "v": _b64(bytes(obj))}
        if kind is complex:
            return {TAG: "complex", "v": [_float(obj.real), _float(obj.imag)]}
        return self._other(obj, kind, d)

    def _other(self, obj: Any, kind: type, d: int) -> object:
        mod = getattr(kind, "__module__", "")
        if mod == "datetime":
            name = kind.__name__
            if name in _DT_TAGS:
                return {TAG: name, "v": obj.isoformat()}
            if name == "timedelta":
                return {TAG: "timedelta", "v": [obj.days, obj.seconds, obj.microseconds]}
        if mod == "decimal" and kind.__name__ == "Decimal":
            return {TAG: "decimal", "v": str(obj)}
        if mod == "numpy" or mod.startswith("numpy."):
            out = self._numpy(obj, kind)
            if out is not None:
                return out
        if hasattr(kind, "__dataclass_fields__") and not isinstance(obj, type):
            fields = {}
            for name, f in kind.__dataclass_fields__.items():
                if getattr(getattr(f, "_field_type", None), "name", "_FIELD") != "_FIELD":
                    continue  # ClassVar / InitVar pseudo-fields
                fields[name] = self._enc(getattr(obj, name, None), d)
            params = getattr(kind, "__dataclass_params__", None)
            record: dict[str, object] = {TAG: "dataclass", "type": type_path(kind), "v": fields}
            if getattr(params, "frozen", False):
                record["frozen"] = True
            return record
        if isinstance(obj, BaseException):
            return self._opaque(obj, kind)
        # subclasses of the plain types (IntEnum, StrEnum, namedtuple, OrderedDict, defaultdict,
        # Counter): their plain value, which is what code using them mostly relies on
        bases: tuple[Any, ...] = (bool, int, float, str, tuple, list, dict, set, frozenset, bytes)
        for base in bases:
            if isinstance(obj, base):
                try:
                    plain = base(obj)
                except Exception:
                    break
                return self._enc(plain, d - 1)
        enum_value = _enum_value(obj)
        if enum_value is not _NOTHING:
            return self._enc(enum_value, d - 1)
        dump = getattr(kind, "model_dump", None)  # pydantic models: their fields, as a dict
        if dump is not None and hasattr(kind, "model_fields"):
            try:
                return self._enc(obj.model_dump(), d - 1)
            except Exception:
                pass
        return self._opaque(obj, kind)

    def _numpy(self, obj: Any, kind: type) -> object:
        dtype = getattr(obj, "dtype", None)
        if dtype is None or getattr(dtype, "hasobject", True):
            return None
        try:
            raw = obj.tobytes()
        except Exception:
            return None
        text = _safe_repr(obj)
        if kind.__name__ == "ndarray":
            return {
                TAG: "ndarray",
                "dtype": dtype.str,
                "shape": list(obj.shape),
                "v": _b64(raw),
                "repr": text,
            }
        if hasattr(obj, "item"):
            try:
                item = self._enc(obj.item(), 0)
            except Exception:
                item = None
            return {TAG: "npscalar", "dtype": dtype.str, "v": _b64(raw), "item": item, "repr": text}
        return None

    def _opaque(self, obj: Any, kind: type) -> object:
        if self.strict:
            if callable(obj):
                plain = kind.__name__ in ("function", "builtin_function_or_method", "method")
                what = "a function" if plain else f"a callable ({type_path(kind)})"
                raise CodecError(
                    f"{what} cannot be passed to a tool: tools run in another "
                    "process and cannot call back into this code; pass plain data and apply the "
                    "function to the tool's result in your own code"
                )
            raise CodecError(
                f"a value of type {type_path(kind)} cannot be passed to a tool; pass plain data "
                "(numbers, strings, lists, dicts, tuples, sets, bytes, dates, dataclasses)"
            )
        self.lossy = True
        return {TAG: "opaque", "type": type_path(kind), "repr": _safe_repr(obj)}


_NOTHING = object()


def _enum_value(obj: object) -> object:
    for cls in type(obj).__mro__:
        if cls.__name__ == "Enum" and cls.__module__ == "enum":
            return getattr(obj, "value", _NOTHING)
    return _NOTHING


def encode(obj: object, *, strict: bool = False, max_depth: int = MAX_DEPTH) -> object:
    return Encoder(strict=strict, max_depth=max_depth).encode(obj)


# ---------------------------------------------------------------------------------------------
# decoding

Resolver = "Callable[[str], type | None]"


class Decoder:
    """Decodes wire values. `resolve(type_path)` (trusted side) returns a known dataclass type to
    build, or None; without it, or for unknown types, dataclasses become stand-in dataclasses of
    the same name and fields (built with `dataclasses.make_dataclass`, cached)."""

    def __init__(
        self, resolve: Callable[[str], type | None] | None = None, max_depth: int = MAX_DEPTH
    ) -> None:
        self.resolve = resolve
        self.max_depth = max_depth
        self._records: dict[tuple[str, tuple[str, ...], bool], type] = {}

    def decode(self, wire: object) -> Any:
        kind = type(wire)
        if kind is str or kind is int or kind is bool or wire is None or kind is float:
            return wire
        return self._dec(wire, 0)

    def _dec(self, wire: Any, depth: int) -> Any:
        kind = type(wire)
        if kind is str or kind is int or kind is bool or wire is None or kind is float:
            return wire
        if depth >= self.max_depth:
            raise ValueError(f"the value is nested deeper than {self.max_depth} levels")
        d = depth + 1
        if kind is list:
            dec = self._dec
            return [dec(x, d) for x in wire]
        if kind is dict:
            tag = wire.get(TAG)
            if tag is None:
                dec = self._dec
                return {k: dec(v, d) for k, v in wire.items()}
            return self._tagged(tag, wire, d)
        if kind is tuple:  # marshal may hand us tuples directly
            return tuple(self._dec(x, d) for x in wire)
        raise ValueError(f"not a wire value: {type(wire).__name__}")

    def _items(self, wire: dict[str, Any], d: int) -> list[Any]:
        v = wire.get("v")
        if type(v) is not list:
            raise ValueError(f"malformed {wire.get(TAG)!r} value")
        dec = self._dec
        return [dec(x, d) for x in v]

    def _tagged(self, tag: object, wire: dict[str, Any], d: int) -> Any:
        if tag == "tuple":
            return tuple(self._items(wire, d))
        if tag == "set":
            return set(self._items(wire, d))
        if tag == "frozenset":
            return frozenset(self._items(wire, d))
        if tag == "dict":
            out = {}
            for pair in self._items(wire, d):
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed 'dict' value")
                out[pair[0]] = pair[1]
            return out
        if tag == "float":
            v = wire.get("v")
            if v not in _FLOAT_NAMES:
                raise ValueError("malformed 'float' value")
            return _FLOAT_NAMES[v]
        if tag == "bytes":
            return _unb64(wire.get("v"))
        if tag == "bytearray":
            return bytearray(_unb64(wire.get("v")))
        if tag == "complex":
            parts = self._items(wire, d)
            if len(parts) != 2 or not all(type(p) in (int, float) for p in parts):
                raise ValueError("malformed 'complex' value")
            return complex(parts[0], parts[1])
        if tag in _DT_TAGS or tag == "timedelta":
            return _datetime(tag, wire.get("v"))
        if tag == "decimal":
            import decimal

            v = wire.get("v")
            if type(v) is not str or len(v) > 10000:
                raise ValueError("malformed 'decimal' value")
            return decimal.Decimal(v)
        if tag == "dataclass":
            return self._dataclass(wire, d)
        if tag in ("ndarray", "npscalar"):
            return _numpy(tag, wire, self, d)
        if tag == "opaque":
            return Opaque(str(wire.get("type", "?"))[:200], str(wire.get("repr", ""))[:2000])
        raise ValueError(f"unknown wire tag {str(tag)[:40]!r}")

    def _dataclass(self, wire: dict[str, Any], d: int) -> Any:
        path = wire.get("type")
        raw = wire.get("v")
        if type(path) is not str or type(raw) is not dict:
            raise ValueError("malformed 'dataclass' value")
        fields = {str(k): self._dec(v, d) for k, v in raw.items()}
        if self.resolve is not None:
            cls = self.resolve(path)
            if cls is not None:
                return cls(**fields)
        frozen = bool(wire.get("frozen"))
        names = tuple(fields)
        key = (path, names, frozen)
        cls = self._records.get(key)
        if cls is None:
            cls = _record_type(path, names, frozen)
            self._records[key] = cls
        return cls(**fields)


def _record_type(path: str, names: tuple[str, ...], frozen: bool) -> type:
    """A stand-in dataclass that looks like the tool's: same qualified name, same fields."""
    import dataclasses
    import keyword

    mod, _, qual = path.rpartition(".")
    short = qual.rsplit(".", 1)[-1]
    if not short.isidentifier() or keyword.iskeyword(short):
        short = "Record"
    safe = [n for n in names if n.isidentifier() and not keyword.iskeyword(n)]
    if len(safe) != len(names):
        raise ValueError("a dataclass field name is not an identifier")
    cls = dataclasses.make_dataclass(short, list(safe), frozen=frozen)
    cls.__module__ = mod or "tools"
    cls.__qualname__ = qual or short
    return cls


def _datetime(tag: str, v: object) -> object:
    import datetime

    if tag == "timedelta":
        if type(v) is not list or len(v) != 3 or not all(type(x) is int for x in v):
            raise ValueError("malformed 'timedelta' value")
        return datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if type(v) is not str or len(v) > 64:
        raise ValueError(f"malformed {tag!r} value")
    cls = getattr(datetime, tag)
    return cls.fromisoformat(v)


_NUMPY_KINDS = frozenset("biufcmMSU?")


def _numpy(tag: str, wire: dict[str, Any], dec: Decoder, d: int) -> object:
    numpy: Any
    try:
        import numpy
    except Exception:
        numpy = None
    text = str(wire.get("repr", ""))[:2000]
    if numpy is None:  # no numpy on this side: the item (scalars) or a marked stand-in
        if tag == "npscalar" and "item" in wire:
            return dec._dec(wire["item"], d)
        return Opaque(f"numpy.{tag}", text)
    dtype_text = wire.get("dtype")
    if type(dtype_text) is not str or len(dtype_text) > 32:
        raise ValueError("malformed numpy dtype")
    dtype = numpy.dtype(dtype_text)
    if dtype.hasobject or dtype.kind not in _NUMPY_KINDS:
        raise ValueError(f"numpy dtype {dtype_text!r} is not allowed across the boundary")
    raw = _unb64(wire.get("v"))
    if tag == "npscalar":
        return numpy.frombuffer(raw, dtype=dtype, count=1)[0]
    shape = wire.get("shape")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError("malformed numpy shape")
    return numpy.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(wire: object, resolve: Callable[[str], type | None] | None = None) -> Any:
    return Decoder(resolve).decode(wire)


# ---------------------------------------------------------------------------------------------
# previews: what a person reads in the trajectory


def preview(wire: Any, depth: int = 0) -> Any:
    """A plain JSON rendering of a wire value for people (trajectory `args`/`result`, the editor):
    tuples and sets as lists, other values as their text. Lossy by design; the wire value is
    what is replayed."""
    kind = type(wire)
    if kind is list:
        return [preview(x, depth + 1) for x in wire] if depth < MAX_DEPTH else "…"
    if kind is not dict:
        return wire
    tag = wire.get(TAG)
    if tag is None:
        return {k: preview(v, depth + 1) for k, v in wire.items()} if depth < MAX_DEPTH else "…"
    try:
        return _preview_tagged(tag, wire, depth)
    except Exception:
        return str(wire)[:REPR_LIMIT]


def _preview_tagged(tag: object, wire: dict[str, Any], depth: int) -> Any:
    v: Any = wire.get("v")
    if tag in ("tuple", "set", "frozenset"):
        return [preview(x, depth + 1) for x in v]
    if tag == "dict":
        return {_key_text(preview(k, depth + 1)): preview(val, depth + 1) for k, val in v}
    if tag in ("float", "decimal") or tag in _DT_TAGS:
        return v
    if tag == "timedelta":
        return f"timedelta(days={v[0]}, seconds={v[1]}, microseconds={v[2]})"
    if tag == "complex":
        return repr(complex(*(_FLOAT_NAMES.get(p, p) for p in v)))
    if tag in ("bytes", "bytearray"):
        return _safe_repr(_unb64(v), REPR_LIMIT)
    if tag == "dataclass":
        return {k: preview(x, depth + 1) for k, x in v.items()}
    if tag == "npscalar":
        return preview(wire.get("item"), depth + 1)
    if tag == "ndarray" or tag == "opaque":
        return str(wire.get("repr", ""))
    return str(wire)[:REPR_LIMIT]


def _key_text(key: object) -> str:
    if type(key) is str:
        return key
    return repr(tuple(key)) if type(key) is list else repr(key)


def is_plain(wire: Any) -> bool:
    """True when the wire value is plain JSON (no tags): its preview is itself."""
    kind = type(wire)
    if kind is list:
        return all(is_plain(x) for x in wire)
    if kind is dict:
        return TAG not in wire and all(is_plain(x) for x in wire.values())
    return True


# ---------------------------------------------------------------------------------------------
# exceptions across the boundary


def exception_tree(cls: type, depth: int = 0) -> dict[str, Any]:
    """A class and its bases as plain data, so the snippet's side can rebuild a look-alike that
    `except` clauses naming the tool's classes (or their builtin bases) catch."""
    out: dict[str, Any] = {"name": cls.__name__, "module": getattr(cls, "__module__", "")}
    if out["module"] == "builtins" or depth > 8:
        return out
    out["qualname"] = getattr(cls, "__qualname__", cls.__name__)
    out["bases"] = [
        exception_tree(b, depth + 1)
        for b in cls.__bases__
        if isinstance(b, type) and issubclass(b, BaseException)
    ]
    return out


class ExceptionTypes:
    """The snippet side: look-alike exception classes, one per qualified name, built from trees."""

    def __init__(self) -> None:
        self.classes: dict[str, type] = {}

    def build(self, tree: object, depth: int = 0) -> type:
        if type(tree) is not dict or depth > 8:
            return Exception
        name = str(tree.get("name", ""))[:100]
        module = str(tree.get("module", ""))[:200]
        if module == "builtins":
            cls = getattr(builtins, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                return cls
            return Exception
        key = f"{module}.{tree.get('qualname', name)}"[:300]
        known = self.classes.get(key)
        if known is not None:
            return known
        bases = tuple(self.build(b, depth + 1) for b in (tree.get("bases") or [])[:4])
        bases = tuple(dict.fromkeys(bases)) or (Exception,)
        ident = name if name.isidentifier() else "ToolError"
        try:
            cls = type(ident, bases, {"__module__": module or "tools"})
        except TypeError:  # e.g. a layout conflict between two builtin bases
            cls = type(ident, bases[:1], {"__module__": module or "tools"})
        cls.__qualname__ = str(tree.get("qualname", ident))[:200]
        self.classes[key] = cls
        return cls

    def make(self, tree: object, message: str) -> BaseException:
        cls = self.build(tree)
        try:
            return cls(message)  # type: ignore[no-any-return]
        except Exception:
            exc = Exception(message)
            return exc


# ---------------------------------------------------------------------------------------------
# pure stdlib callables exported as tools: served in the sandbox itself

LOCAL_MODULES = frozenset(
    {"builtins", "math", "cmath", "operator", "itertools", "functools", "statistics"}
)
_NOT_LOCAL = frozenset(
    {
        "open", "exec", "eval", "compile", "input", "print", "__import__", "breakpoint", "help",
        "exit", "quit", "globals", "locals", "vars", "dir", "getattr", "setattr", "delattr",
        "hasattr", "memoryview", "super", "object", "type", "id", "__build_class__",
    }
)  # fmt: skip


def local_name(obj: object) -> str | None:
    """ "module.name" when `obj` is a pure stdlib callable (min, sorted, math.sqrt, ...): it runs
    in the sandbox as itself, so natural code (`min(xs, key=lambda x: ...)`) keeps working; a
    round trip to the tool host could not carry the lambda."""
    import sys

    mod = getattr(obj, "__module__", None)
    name = getattr(obj, "__name__", None)
    if mod == "_functools":
        mod = "functools"
    if mod not in LOCAL_MODULES or not isinstance(name, str) or name in _NOT_LOCAL:
        return None
    module = sys.modules.get(str(mod))
    if module is None or getattr(module, name, None) is not obj:
        return None
    return f"{mod}.{name}"


def local_callable(path: object) -> object:
    """The sandbox side of `local_name`: the callable, or None for anything not allowed."""
    if type(path) is not str:
        return None
    mod, _, name = path.rpartition(".")
    if mod not in LOCAL_MODULES or name in _NOT_LOCAL or name.startswith("_"):
        return None
    if mod == "builtins":
        return getattr(builtins, name, None)
    import importlib

    return getattr(importlib.import_module(mod), name, None)


# ---------------------------------------------------------------------------------------------
# the record's budget


def size(value: object) -> int:
    """Characters of a JSON value's compact text (what it costs in a run file)."""
    import json

    try:
        return len(json.dumps(value, separators=(",", ":"), default=repr))
    except (ValueError, RecursionError):
        return 1 << 30


def clip(value: Any, limit: int) -> Any:
    """`value` when its JSON text fits in `limit` characters, else a marked string holding the
    head of that text: a run file stays small and loadable whatever a snippet passed."""
    kind = type(value)
    if kind is int or kind is bool or value is None or kind is float:
        return value
    if kind is str:
        if len(value) <= limit:
            return value
        return f"{value[:limit]}… [clipped: {len(value) - limit} more characters]"
    import json

    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        return f"<{type(value).__name__} too deep to record>"
    if len(text) <= limit:
        return value
    return f"{text[:limit]}… [clipped: {len(text) - limit} more characters]"


def recorded_result(result: Any, limit: int) -> tuple[Any, Any]:
    """(what the trajectory shows, the exact wire value when the shown one is only a preview);
    both within the record budget: a longer value is clipped and marked, and its exact form is
    not kept (a replay of that call then answers with the clipped one). One definition for the
    engine's handler and for the tool host's direct route, so both record a call alike."""
    plain = is_plain(result)
    shown = clip(result if plain else preview(result), limit)
    if plain:
        return shown, None
    return shown, (result if size(result) <= limit else None)


def recorded_args(
    bound: dict[str, Any] | None, args: list[Any], kwargs: dict[str, Any], limit: int
) -> dict[str, Any]:
    """A call's arguments for the record: bound by parameter name (already readable values) when
    the tool layer could bind them, else as called (wire values, shown); each clipped."""
    if bound:
        return {k: clip(v, limit) for k, v in bound.items()}
    out: dict[str, Any] = {k: clip(preview(v), limit) for k, v in kwargs.items()}
    if args:
        out["*args"] = clip([preview(a) for a in args], limit)
    return out


def scrub(obj: Any) -> Any:
    """Replace lone surrogates (`print("\\ud800")`, a tool argument, an exception message) with
    U+FFFD: a string that cannot be encoded as UTF-8 would make every later JSON encoding of the
    trajectory or of an LSP message fail, i.e. a snippet could break the run or the server."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return obj.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return obj
    if isinstance(obj, list):
        return [scrub(x) for x in obj]
    if isinstance(obj, dict):
        return {scrub(k): scrub(v) for k, v in obj.items()}
    return obj
