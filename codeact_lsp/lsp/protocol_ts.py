"""The command contract as TypeScript, generated from the pydantic models the server validates with.

`python -m codeact_lsp.lsp.protocol_ts > vscode-extension/src/protocol.ts` rewrites the client's
copy; `tests/lsp/test_protocol_ts.py` fails when the checked-in file is not what this prints, so
the client's types cannot drift from the server's models. Only the JSON-schema shapes pydantic
produces for these models are handled (objects, arrays, unions, literals, references).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from codeact_lsp.lsp.commands import NAMES
from codeact_lsp.lsp.commands.registry import load

Mode = Literal["validation", "serialization"]

HEADER = """\
// The codeact.* command contract: arguments and replies (docs/protocol.md).
// Generated from the server's pydantic models by `python -m codeact_lsp.lsp.protocol_ts`;
// do not edit by hand (tests/lsp/test_protocol_ts.py checks that it is current).
"""


def _name(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "", ref.rsplit("/", 1)[-1])


def _literal(value: object) -> str:
    return json.dumps(value)


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        return _name(node["$ref"])
    if "const" in node:
        return _literal(node["const"])
    if "enum" in node:
        return " | ".join(_literal(v) for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [_type(part) for part in node[key]]
            return " | ".join(dict.fromkeys(p if " " not in p else f"({p})" for p in parts))
    kind = node.get("type")
    if isinstance(kind, list):
        return " | ".join(_type({**node, "type": k}) for k in kind)
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_type(p) for p in node["prefixItems"]) + "]"
        item = _type(node.get("items", {}))
        return f"{item}[]" if re.fullmatch(r"\w+", item) else f"Array<{item}>"
    if kind == "object":
        if "properties" in node:
            return "{ " + " ".join(_fields(node, "")) + " }"
        extra = node.get("additionalProperties")
        value = _type(extra) if isinstance(extra, dict) else "unknown"
        return f"Record<string, {value}>"
    return "unknown"


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_$][\w$]*", name) else json.dumps(name)


def _fields(schema: dict[str, Any], indent: str) -> list[str]:
    required = set(schema.get("required", []))
    lines: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        optional = "" if name in required else "?"
        doc = prop.get("description")
        if doc and indent:
            lines.append(f"{indent}/** {doc} */")
        lines.append(f"{indent}{_key(name)}{optional}: {_type(prop)};")
    return lines


def _interface(name: str, schema: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    doc = " ".join(str(schema.get("description", "")).split())
    if doc:
        lines.append(f"/** {doc} */")
    if schema.get("type") == "object" and schema.get("properties"):
        lines.append(f"export interface {name} {{")
        lines += _fields(schema, "  ")
        lines.append("}")
    elif schema.get("type") == "object" and not schema.get("properties"):
        lines.append(f"export type {name} = Record<string, never>;")
    else:
        lines.append(f"export type {name} = {_type(schema)};")
    return lines


def typescript() -> str:
    """The whole `protocol.ts`: one type per model, then the command → (args, reply) map."""
    commands = load()
    wanted: list[tuple[type[BaseModel], Mode]] = []
    for name in NAMES:
        wanted.append((commands[name].args, "validation"))
        wanted.append((commands[name].reply, "serialization"))
    keys, schema = models_json_schema(list(dict.fromkeys(wanted)), ref_template="#/$defs/{model}")
    defs: dict[str, Any] = schema.get("$defs", {})
    out = [HEADER]
    for ref in sorted(defs, key=_name):
        out += _interface(_name(ref), defs[ref])
        out.append("")
    out.append("/** Each command's one JSON-object argument and its reply. */")
    out.append("export interface Commands {")
    for name in NAMES:
        cmd = commands[name]
        args = _type(keys[(cmd.args, "validation")])
        reply = _type(keys[(cmd.reply, "serialization")])
        out.append(f"  {_key(name)}: {{ args: {args}; reply: {reply} }};")
    out.append("}")
    out.append("")
    out.append("export type CommandName = keyof Commands;")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(typescript())
