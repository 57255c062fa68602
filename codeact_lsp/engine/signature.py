"""Signatures: what a run takes in and what `final_answer` must hand back.

The output types are the run's contract with its caller: they decide whether `final_answer(...)`
ends the run or raises inside the snippet so the model can fix its answer on the next step. A field
without a type accepts any JSON value as it is (docs/contracts.md: no coercion to str).
"""

from __future__ import annotations

import ast
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

DEFAULT_SIGNATURE = "task -> answer"

# Names a type annotation in a signature string may use. Evaluated only after an AST check, so a
# signature is data, never code.
_TYPE_NAMES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "bytes": bytes,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "set": set,
    "None": None,
    "Any": Any,
    "Optional": typing.Optional,
    "Union": typing.Union,
    "Literal": typing.Literal,
    "List": list,
    "Dict": dict,
    "Tuple": tuple,
}


class SignatureError(ValueError):
    """A signature that cannot be parsed, or values that do not fit it."""


@dataclass(frozen=True)
class SigField:
    name: str
    type_text: str | None = None  # as written; None = untyped (any JSON value)
    annotation: Any = Any
    description: str = ""

    def render(self) -> str:
        return f"{self.name}: {self.type_text}" if self.type_text else self.name


@dataclass
class Signature:
    inputs: list[SigField]
    outputs: list[SigField]
    instructions: str = ""
    _adapters: dict[str, TypeAdapter[Any]] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        ins = ", ".join(f.render() for f in self.inputs)
        outs = ", ".join(f.render() for f in self.outputs)
        return f"{ins} -> {outs}"

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [f.name for f in self.outputs]

    @classmethod
    def parse(cls, spec: str | type[BaseModel] | tuple[Any, Any] | Signature | None) -> Signature:
        """Accept `"a, b: int -> c: float"`, a pydantic model of outputs, or (inputs, outputs) models."""
        if spec is None:
            return cls.parse(DEFAULT_SIGNATURE)
        if isinstance(spec, Signature):
            return spec
        if isinstance(spec, tuple):
            ins, outs = spec
            return cls(inputs=_model_fields(ins), outputs=_model_fields(outs))
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            return cls(
                inputs=[SigField("task", "str", str)],
                outputs=_model_fields(spec),
                instructions=(spec.__doc__ or "").strip(),
            )
        if not isinstance(spec, str):
            raise SignatureError(f"unsupported signature {spec!r}")
        return cls._parse_text(spec)

    @classmethod
    def _parse_text(cls, text: str) -> Signature:
        if text.count("->") != 1:
            raise SignatureError(
                f"signature {text!r} needs exactly one '->' between inputs and outputs,"
                ' e.g. "question -> answer" or "n: int -> factorial: int"'
            )
        left, right = text.split("->")
        inputs = _parse_fields(left, text, allow_empty=True)
        outputs = _parse_fields(right, text, allow_empty=False)
        names = [f.name for f in inputs + outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SignatureError(f"signature {text!r} repeats field(s) {', '.join(dupes)}")
        return cls(inputs=inputs, outputs=outputs)

    @classmethod
    def recorded(cls, text: str) -> Signature:
        """A run file's signature: as written, or untyped when its types no longer resolve (a
        run started with a pydantic model: its text form lost the classes; any value goes)."""
        try:
            return cls.parse(text)
        except SignatureError:
            left, _, right = text.partition("->")
            ins = ", ".join(n.split(":")[0].strip() for n in left.split(",") if n.strip())
            outs = ", ".join(n.split(":")[0].strip() for n in right.split(",") if n.strip())
            return cls.parse(f"{ins} -> {outs or 'answer'}")

    # -- validation -------------------------------------------------------------------------

    def _adapter(self, f: SigField) -> TypeAdapter[Any]:
        adapter = self._adapters.get(f.name)
        if adapter is None:
            adapter = TypeAdapter(f.annotation)
            self._adapters[f.name] = adapter
        return adapter

    def _check(self, f: SigField, value: Any, what: str) -> Any:
        if f.type_text is None:
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise SignatureError(
                    f"{what} {f.name!r} must be a JSON value (str, number, bool, None, list, dict);"
                    f" got {type(value).__name__}"
                ) from exc
            return value
        try:
            out = self._adapter(f).validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(_short_error(e) for e in exc.errors())
            raise SignatureError(
                f"{what} {f.name!r} must be {f.type_text}: got {_short_repr(value)} ({problems})"
            ) from None
        return self._adapter(f).dump_python(out, mode="json")

    def validate_inputs(self, values: dict[str, Any], task: str | None = None) -> dict[str, Any]:
        """Check the inputs; a single missing input field takes the task text (the common case)."""
        values = dict(values)
        unknown = sorted(set(values) - set(self.input_names))
        if unknown:
            raise SignatureError(
                f"unknown input(s) {', '.join(unknown)}; the signature takes {', '.join(self.input_names) or 'none'}"
            )
        missing = [n for n in self.input_names if n not in values]
        if len(missing) == 1 and task is not None:
            values[missing[0]] = task
            missing = []
        if missing:
            raise SignatureError(f"missing input(s): {', '.join(missing)}")
        return {f.name: self._check(f, values[f.name], "input") for f in self.inputs}

    def validate_outputs(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Bind `final_answer(...)` arguments to output fields and validate them."""
        names = self.output_names
        if args:
            if len(names) != 1 or len(args) != 1 or kwargs:
                raise SignatureError(
                    f"call final_answer with keyword arguments {self.final_answer_call()}"
                    + (" (one positional value is allowed only for a single output)")
                )
            kwargs = {names[0]: args[0]}
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise SignatureError(
                f"final_answer got unknown field(s) {', '.join(unknown)}; expected {self.final_answer_call()}"
            )
        missing = [n for n in names if n not in kwargs]
        if missing:
            raise SignatureError(
                f"final_answer is missing {', '.join(missing)}; expected {self.final_answer_call()}"
            )
        return {f.name: self._check(f, kwargs[f.name], "output") for f in self.outputs}

    def final_answer_call(self) -> str:
        return "final_answer(" + ", ".join(f"{f.name}=..." for f in self.outputs) + ")"

    def final_answer_stub(self) -> str:
        params = ", ".join(
            f"{f.name}: {f.type_text}" if f.type_text else f"{f.name}: Any" for f in self.outputs
        )
        return f"def final_answer({params}) -> None"


def _parse_fields(part: str, whole: str, *, allow_empty: bool) -> list[SigField]:
    part = part.strip()
    if not part:
        if allow_empty:
            return []
        raise SignatureError(f"signature {whole!r} has no output field")
    out: list[SigField] = []
    for chunk in _split_top_level(part):
        chunk = chunk.strip()
        name, sep, type_text = chunk.partition(":")
        name = name.strip()
        if not name.isidentifier():
            raise SignatureError(f"signature {whole!r}: {name!r} is not a valid field name")
        if not sep:
            out.append(SigField(name))
            continue
        type_text = type_text.strip()
        out.append(SigField(name, type_text, _eval_type(type_text, whole)))
    return out


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets (`a: dict[str, int], b`)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _eval_type(text: str, whole: str) -> Any:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise SignatureError(f"signature {whole!r}: cannot read type {text!r}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in _TYPE_NAMES:
            raise SignatureError(
                f"signature {whole!r}: unknown type {node.id!r}"
                f" (use {', '.join(n for n in _TYPE_NAMES if n[0].islower())}, Optional, Literal, ...)"
            )
        allowed = (
            ast.Expression,
            ast.Name,
            ast.Load,
            ast.Subscript,
            ast.Tuple,
            ast.BinOp,
            ast.BitOr,
            ast.Constant,
        )
        if not isinstance(node, allowed):
            raise SignatureError(f"signature {whole!r}: unsupported type expression {text!r}")
    return eval(compile(tree, "<signature>", "eval"), {"__builtins__": {}}, dict(_TYPE_NAMES))


def _model_fields(model: Any) -> list[SigField]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise SignatureError(f"expected a pydantic model class, got {model!r}")
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation if info.annotation is not None else Any
        out.append(SigField(name, _type_text(ann), ann, info.description or ""))
    return out


def _type_text(ann: Any) -> str:
    if isinstance(ann, type) and not typing.get_args(ann):
        return ann.__name__
    return str(ann).replace("typing.", "")


def _short_error(err: Any) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
