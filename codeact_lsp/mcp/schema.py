"""MCP tool listings turned into what the model reads: a Python name, a typed stub, a docstring.

The model writes Python against these stubs, so they must be valid Python and say as much as the
server's JSON schemas do: parameter types and defaults from `inputSchema`, the return type from
`outputSchema`, descriptions into the docstring. Nothing here talks to a server.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

_SCALARS = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "null": "None",
}
_MAX_DEPTH = 3


class McpParam(BaseModel):
    """One argument as the stub shows it and as a positional call is bound to it."""

    name: str  # the MCP argument name (the key sent to the server)
    annotation: str
    required: bool
    default: Any = None
    has_default: bool = False
    description: str = ""
    identifier: bool = True  # False: not a Python identifier; only `**{"a-b": ...}` reaches it


class McpStub(BaseModel):
    signature: str
    doc: str
    params: list[McpParam] = Field(default_factory=list)


def python_name(name: str) -> str:
    """A Python identifier for an MCP tool name: `get-sum` -> `get_sum`, `2fa` -> `_2fa`."""
    text = re.sub(r"\W", "_", name.strip(), flags=re.ASCII) or "tool"
    if text[0].isdigit():
        text = "_" + text
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        text += "_"
    return text


def assign_names(
    servers: Iterable[tuple[str, list[str]]], taken: Iterable[str]
) -> dict[tuple[str, str], str]:
    """(server, MCP tool name) -> the Python name it gets.

    A tool keeps its plain name unless another tool (a workspace tool, `final_answer`, or a tool
    of another server) wants the same one; then every MCP claimant gets `<server>_` in front, so
    the choice does not depend on which server happened to answer first.
    """
    pairs = [(server, tool) for server, tools in servers for tool in tools]
    reserved = set(taken)
    wanted: dict[str, list[tuple[str, str]]] = {}
    for server, tool in pairs:
        wanted.setdefault(python_name(tool), []).append((server, tool))
    out: dict[tuple[str, str], str] = {}
    used = set(reserved)
    for name, claimants in wanted.items():
        if len(claimants) == 1 and name not in reserved:
            out[claimants[0]] = name
            used.add(name)
    for name, claimants in wanted.items():
        if len(claimants) == 1 and name not in reserved:
            continue
        for server, tool in claimants:
            candidate = f"{python_name(server)}_{name}"
            n = 2
            while candidate in used:
                candidate = f"{python_name(server)}_{name}_{n}"
                n += 1
            out[(server, tool)] = candidate
            used.add(candidate)
    return out


def annotation(schema: Any, depth: int = 0) -> str:
    """A Python type for a JSON schema, as precise as the stub can carry on one line."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "Any"
    if "const" in schema:
        return f"Literal[{schema['const']!r}]"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str | int | bool) for v in enum):
        return "Literal[" + ", ".join(repr(v) for v in enum) + "]"
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _union(annotation(o, depth + 1) for o in options)
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union(annotation({**schema, "type": k}, depth + 1) for k in kind)
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        items = schema.get("items")
        return f"list[{annotation(items, depth + 1)}]" if isinstance(items, dict) else "list[Any]"
    if kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return f"dict[str, {annotation(extra, depth + 1)}]"
        return "dict[str, Any]"
    return "Any"


def _union(parts: Iterable[str]) -> str:
    seen: list[str] = []
    for part in parts:
        for piece in part.split(" | "):
            if piece not in seen:
                seen.append(piece)
    if "Any" in seen:
        return "Any"
    return " | ".join(seen) or "Any"


def parameters(schema: Any) -> list[McpParam]:
    """The arguments in the server's order, required ones first (Python wants them first)."""
    if not isinstance(schema, dict):
        return []
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    required = set(schema.get("required") or [])
    out: list[McpParam] = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        has_default = "default" in prop
        out.append(
            McpParam(
                name=str(name),
                annotation=annotation(prop),
                required=name in required,
                default=prop.get("default"),
                has_default=has_default,
                description=str(prop.get("description") or "").strip(),
                identifier=str(name).isidentifier() and not keyword.iskeyword(str(name)),
            )
        )
    out.sort(key=lambda p: not p.required)
    return out


def build_stub(
    py_name: str,
    description: str | None,
    input_schema: Any,
    output_schema: Any = None,
    *,
    server: str = "",
    title: str | None = None,
) -> McpStub:
    params = parameters(input_schema)
    parts: list[str] = []
    others = False
    for p in params:
        if not p.identifier:
            others = True
            continue
        text = f"{p.name}: {p.annotation}"
        if not p.required:
            text += f" = {_literal(p.default) if p.has_default else 'None'}"
        parts.append(text)
    if others:
        parts.append("**arguments: Any")
    returns = annotation(output_schema) if isinstance(output_schema, dict) else "Any"
    signature = f"def {py_name}({', '.join(parts)}) -> {returns}"
    return McpStub(
        signature=signature,
        doc=_docstring(description, params, output_schema, server=server, title=title),
        params=params,
    )


def _literal(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else "..."


def _docstring(
    description: str | None,
    params: list[McpParam],
    output_schema: Any,
    *,
    server: str,
    title: str | None,
) -> str:
    lines: list[str] = []
    text = (description or title or "").strip()
    if text:
        lines.append(text)
    described = [p for p in params if p.description or not p.identifier]
    if described:
        lines += ["", "Args:"]
        for p in described:
            label = p.name if p.identifier else f"{p.name!r} (pass as **{{{p.name!r}: ...}})"
            lines.append(f"    {label}: {p.description or p.annotation}".rstrip())
    fields = _fields(output_schema)
    if fields:
        lines += ["", "Returns a dict with:"]
        lines += [f"    {f}" for f in fields]
    elif not isinstance(output_schema, dict):
        lines += ["", "Returns the server's text as str (a list when it sends several items)."]
    if server:
        lines += ["", f"(MCP tool of server {server!r}; errors raise McpToolError.)"]
    return "\n".join(lines)


def _fields(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    out: list[str] = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        desc = str(prop.get("description") or "").strip()
        out.append(f"{name} ({annotation(prop)}){': ' + desc if desc else ''}")
    return out


def bind(
    tool: str, params: list[McpParam], args: list[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Positional and keyword arguments -> the MCP `arguments` object, checked the way Python
    would check a call of the stub (so a wrong call fails in the snippet, not at the server)."""
    positional = [p for p in params if p.identifier]
    if len(args) > len(positional):
        raise TypeError(
            f"{tool}() takes {len(positional)} positional argument"
            f"{'s' if len(positional) != 1 else ''} but {len(args)} were given"
        )
    out: dict[str, Any] = {}
    for p, value in zip(positional, args, strict=False):
        out[p.name] = value
    names = {p.name for p in params}
    for key, value in kwargs.items():
        if key in out:
            raise TypeError(f"{tool}() got multiple values for argument {key!r}")
        if key not in names and params:
            known = ", ".join(p.name for p in params)
            raise TypeError(f"{tool}() got an unexpected keyword argument {key!r} (takes: {known})")
        out[key] = value
    missing = [p.name for p in params if p.required and p.name not in out]
    if missing:
        raise TypeError(
            f"{tool}() missing required argument{'s' if len(missing) > 1 else ''}: "
            + ", ".join(repr(m) for m in missing)
        )
    # an optional argument passed as None means "not given": servers reject null for a string
    return {k: v for k, v in out.items() if v is not None or k in _nullable(params, k)}


def _nullable(params: list[McpParam], key: str) -> set[str]:
    for p in params:
        if p.name == key and "None" in p.annotation.split(" | "):
            return {key}
    return set()
