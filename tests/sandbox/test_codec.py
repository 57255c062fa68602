"""The typed codec on its own: lossless round trips through JSON, stand-ins for the rest, and
decoding of hostile wire values that builds nothing it was not meant to."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from codeact_lsp.sandbox import codec


@dataclasses.dataclass(frozen=True)
class Seat:
    row: int
    letter: str
    extras: tuple[str, ...] = ()


VALUES: list[Any] = [
    None,
    True,
    -7,
    10**40,
    2.5,
    "é\u2603",
    b"\x00\xff",
    bytearray(b"ab"),
    (1, (2, "x"), ()),
    [1, [2, [3]]],
    {1, 2},
    frozenset({"a"}),
    {"a": 1, "$": 2},
    {1: "one", (2, 3): [4], None: 0, 2.5: "f"},
    dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2024, 1, 2),
    dt.date(1999, 12, 31),
    dt.time(23, 59, 1, 5),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    Decimal("-0.00"),
    Decimal("NaN"),
    complex(1.5, -2),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip_through_json_is_lossless(value: Any) -> None:
    wire = json.loads(json.dumps(codec.encode(value), allow_nan=False))
    back = codec.decode(wire)
    assert type(back) is type(value)
    if isinstance(value, Decimal) and value.is_nan():
        assert back.is_nan()
    else:
        assert back == value and repr(back) == repr(value)


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_non_finite_floats(x: float) -> None:
    back = codec.decode(json.loads(json.dumps(codec.encode([x]), allow_nan=False)))[0]
    assert type(back) is float and repr(back) == repr(x)


def test_numpy_scalars_and_arrays_keep_dtype_and_shape() -> None:
    for value in (np.int64(7), np.float32(0.25), np.bool_(True)):
        back = codec.decode(json.loads(json.dumps(codec.encode(value))))
        assert type(back) is type(value) and back == value
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    back = codec.decode(json.loads(json.dumps(codec.encode(arr))))
    assert back.dtype == arr.dtype and back.shape == (3, 4) and (back == arr).all()
    assert back.flags.writeable


def test_dataclasses_become_look_alikes_or_the_known_class() -> None:
    wire = json.loads(json.dumps(codec.encode(Seat(3, "C", ("window",)))))
    alike = codec.decode(wire)
    assert type(alike).__name__ == "Seat" and type(alike) is not Seat
    assert repr(alike) == "Seat(row=3, letter='C', extras=('window',))"
    assert dataclasses.is_dataclass(alike) and hash(alike)  # frozen: hashable like the original
    known = codec.decode(wire, resolve=lambda path: Seat if path.endswith(".Seat") else None)
    assert known == Seat(3, "C", ("window",))
    # the look-alike goes back as the same qualified type
    again = json.loads(json.dumps(codec.encode(alike)))
    assert again["type"] == wire["type"]


def test_what_cannot_cross_is_a_marked_stand_in_or_a_clear_refusal() -> None:
    class Socketish:
        def __repr__(self) -> str:
            return "<socket fd=3>"

    enc = codec.Encoder()
    wire = enc.encode({"s": Socketish()})
    assert enc.lossy
    stand_in = codec.decode(wire)["s"]
    assert isinstance(stand_in, codec.Opaque)
    assert "Socketish" in repr(stand_in) and "<socket fd=3>" in repr(stand_in)
    with pytest.raises(codec.CodecError, match="a function cannot be passed to a tool"):
        codec.encode([lambda: 1], strict=True)
    with pytest.raises(codec.CodecError, match="nested deeper"):
        deep: list[Any] = []
        for _ in range(200):
            deep = [deep]
        codec.encode(deep, strict=True)


HOSTILE: list[Any] = [
    {"$": "nope"},
    {"$": "float", "v": "1e999"},
    {"$": "dict", "v": [[1]]},
    {"$": "tuple", "v": "abc"},
    {"$": "bytes", "v": 5},
    {"$": "datetime", "v": "x" * 100},
    {"$": "decimal", "v": "9" * 20000},
    {"$": "dataclass", "type": "os.system", "v": {"command": "true"}},
    {"$": "ndarray", "dtype": "O", "shape": [1], "v": ""},
    {"$": "ndarray", "dtype": "|V8", "shape": [1], "v": "AAAAAAAAAAA="},
    {"$": "npscalar", "dtype": "<i8" * 20, "v": ""},
    {"$": "complex", "v": ["a", "b"]},
]


@pytest.mark.parametrize("wire", HOSTILE, ids=lambda w: str(w["$"]))
def test_hostile_wire_values_are_refused_or_inert(wire: Any) -> None:
    """Nothing named by the data is imported or called: at worst a look-alike record."""
    try:
        out = codec.decode(wire)
    except (ValueError, TypeError):
        return
    assert wire["$"] == "dataclass" and type(out).__module__ == "os"
    assert not callable(getattr(out, "command", None))


def test_decoding_deep_wire_values_stops_at_the_cap() -> None:
    deep: Any = 1
    for _ in range(500):
        deep = {"$": "tuple", "v": [deep]}
    with pytest.raises(ValueError, match="nested deeper"):
        codec.decode(deep)


def test_previews_are_plain_json_for_people() -> None:
    wire = codec.encode({"t": (1, 2), "k": {(1, 2): 3}, "d": dt.date(2024, 1, 2), "x": math.nan})
    shown = codec.preview(wire)
    assert shown == {"t": [1, 2], "k": {"(1, 2)": 3}, "d": "2024-01-02", "x": "nan"}
    json.dumps(shown, allow_nan=False)
    assert not codec.is_plain(wire) and codec.is_plain(shown)


def test_exception_look_alikes_keep_the_base_chain() -> None:
    class LowBalance(KeyError):
        pass

    class Overdrawn(LowBalance):
        pass

    types = codec.ExceptionTypes()
    exc = types.make(codec.exception_tree(Overdrawn), "no money")
    assert isinstance(exc, KeyError) and type(exc).__name__ == "Overdrawn"
    assert type(exc).__mro__[1].__name__ == "LowBalance"
    assert types.build(codec.exception_tree(Overdrawn)) is type(exc)  # one class per name
    hostile = {"name": "x", "module": "m", "bases": [{"name": "SystemExit", "module": "builtins"}]}
    assert issubclass(types.build(hostile), SystemExit)  # only ever a builtin or a new class
