"""Which MCP servers a workspace has: `[tool.codeact.mcp.<name>]`, plus (when `mcp_vscode` is on)
the servers of `.vscode/mcp.json`, resolved into launch specs.

Values may use `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and `${codeactPython}` (the
interpreter codeact runs in, which has the MCP SDK) (VS Code's spelling, so an
entry can be copied either way). A reference that cannot be resolved (an unset variable, a VS Code
`${input:...}` prompt) leaves the server unstartable with a message, never a half-filled command.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from codeact_lsp.config import CodeActConfig, McpServerConfig

_REF = re.compile(r"\$\{([^}]*)\}")
VSCODE_FILE = ".vscode/mcp.json"


class ServerSpec(BaseModel):
    """A server ready to launch (or the reason it cannot be)."""

    name: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=lambda: ["*"])
    confirm: list[str] = Field(default_factory=list)
    startup_timeout: float = 30.0
    call_timeout: float = 60.0
    per_run: bool = False
    source: str = ""  # the file the server was configured in
    line: int = 1  # 1-based line of its table / entry there
    problem: str | None = None


def server_specs(
    workspace: Path, config: CodeActConfig, source: str | None = None
) -> list[ServerSpec]:
    ws = Path(workspace)
    specs: dict[str, ServerSpec] = {}
    if config.mcp_vscode:
        for spec in _vscode_specs(ws):
            specs[spec.name] = spec
    file = source or str(
        ws / "codeact.toml" if (ws / "codeact.toml").is_file() else ws / "pyproject.toml"
    )
    for name, server in config.mcp.items():
        specs[name] = resolve(name, server, ws, source=file, line=_table_line(file, name))
    return list(specs.values())


def resolve(
    name: str, server: McpServerConfig, workspace: Path, *, source: str = "", line: int = 1
) -> ServerSpec:
    problems: list[str] = []

    def sub(text: str) -> str:
        return _substitute(text, workspace, problems)

    spec = ServerSpec(
        name=name,
        transport="http" if server.url else "stdio",
        command=sub(server.command) if server.command else None,
        args=[sub(a) for a in server.args],
        env={k: sub(v) for k, v in server.env.items()},
        cwd=sub(server.cwd) if server.cwd else None,
        url=sub(server.url) if server.url else None,
        headers={k: sub(v) for k, v in server.headers.items()},
        tools=list(server.tools),
        confirm=list(server.confirm),
        startup_timeout=server.startup_timeout,
        call_timeout=server.call_timeout,
        per_run=server.per_run,
        source=source,
        line=line,
    )
    if spec.cwd and not os.path.isabs(spec.cwd):
        spec.cwd = str(workspace / spec.cwd)
    if spec.cwd is None and spec.transport == "stdio":
        spec.cwd = str(workspace)
    if problems:
        spec.problem = "; ".join(dict.fromkeys(problems))
    return spec


def _substitute(text: str, workspace: Path, problems: list[str]) -> str:
    def one(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in ("workspaceFolder", "workspaceRoot"):
            return str(workspace)
        if ref == "userHome":
            return str(Path.home())
        if ref == "codeactPython":  # the interpreter codeact runs in: it has the MCP SDK
            return sys.executable
        if ref.startswith("env:"):
            var = ref[4:]
            value = os.environ.get(var)
            if value is None:
                problems.append(f"environment variable {var} is not set")
                return ""
            return value
        if ref.startswith("input:"):
            problems.append(
                f"${{{ref}}} is a VS Code prompt; give the value through ${{env:NAME}} instead"
            )
            return ""
        problems.append(f"unknown reference ${{{ref}}}")
        return ""

    return _REF.sub(one, text)


def _table_line(file: str, name: str) -> int:
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    table = re.compile(rf"^\s*\[(tool\.codeact\.)?mcp\.[\"']?{re.escape(name)}[\"']?\]\s*$")
    for i, text in enumerate(lines, 1):
        if table.match(text):
            return i
    return 1


def _vscode_specs(workspace: Path) -> list[ServerSpec]:
    import json5

    path = workspace / VSCODE_FILE
    if not path.is_file():
        return []
    try:
        data: Any = json5.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [_broken("vscode", str(path), f"{VSCODE_FILE} is unreadable: {exc}")]
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return []
    text = path.read_text(encoding="utf-8")
    out: list[ServerSpec] = []
    for name, entry in servers.items():
        line = _json_key_line(text, str(name))
        if not isinstance(entry, dict):
            out.append(_broken(str(name), str(path), "entry is not an object", line))
            continue
        if _is_codeact(entry):
            continue  # `codeact mcp` itself: its tools are these tools already
        kind = entry.get("type") or ("http" if entry.get("url") else "stdio")
        raw: dict[str, Any] = {}
        if kind == "stdio":
            raw = {k: entry[k] for k in ("command", "args", "env", "cwd") if k in entry}
        elif kind in ("http", "sse"):
            raw = {k: entry[k] for k in ("url", "headers") if k in entry}
        else:
            out.append(_broken(str(name), str(path), f"unknown server type {kind!r}", line))
            continue
        prompt = re.search(r"\$\{input:[^}]*\}", json.dumps(raw))
        if prompt:
            why = f"{prompt.group(0)} is a VS Code prompt; give the value through ${{env:NAME}}"
            out.append(_broken(str(name), str(path), why, line))
            continue
        try:
            server = McpServerConfig.model_validate(raw)
        except ValidationError as exc:
            why = "; ".join(e["msg"] for e in exc.errors())
            out.append(_broken(str(name), str(path), why, line))
            continue
        out.append(resolve(str(name), server, workspace, source=str(path), line=line))
    return out


def _is_codeact(entry: dict[str, Any]) -> bool:
    command = os.path.basename(str(entry.get("command") or ""))
    args = [str(a) for a in entry.get("args") or []]
    return command.startswith("codeact") and "mcp" in args


def _json_key_line(text: str, key: str) -> int:
    pattern = re.compile(rf"^\s*\"{re.escape(key)}\"\s*:")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return i
    return 1


def _broken(name: str, source: str, problem: str, line: int = 1) -> ServerSpec:
    return ServerSpec(
        name=name, transport="stdio", source=source, line=line, problem=problem, command=None
    )
