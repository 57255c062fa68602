"""Workspace configuration: `[tool.codeact]` in pyproject.toml, or `codeact.toml` (which wins).

Every layer reads its settings from these models, so a bad value is reported once, here, with the
file and key it came from, instead of surfacing later as a confusing failure deep in a run.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Approval = Literal["auto", "review", "confirm-tools"]
Backend = Literal["auto", "landlock", "bwrap", "none"]

DEFAULT_TOOL_GLOBS = ["tools.py", "tools/**/*.py"]


class SandboxSettings(BaseModel):
    """Limits for the worker that runs generated code (`[tool.codeact.sandbox]`)."""

    model_config = ConfigDict(extra="forbid")

    backend: Backend = "auto"
    timeout: float = Field(default=30.0, gt=0, description="wall-clock seconds per step")
    memory_mb: int = Field(default=512, ge=32)
    output_kb: int = Field(default=256, ge=1, description="stdout+stderr kept per step")
    disk_mb: int = Field(default=64, ge=1, description="scratch directory budget")
    cpu_seconds: float | None = Field(
        default=None, gt=0, description="CPU per step; default = timeout"
    )
    read_paths: list[str] = Field(default_factory=list, description="extra read-only paths")
    allow_site_packages: bool = Field(
        default=True,
        description="let generated code import the tools' third-party libraries (read-only)",
    )
    require_isolation: bool = Field(
        default=False, description="refuse to run when a requested isolation layer is unavailable"
    )
    # caps of the tool boundary: what one snippet may pass, receive and leave in the record
    max_tool_calls: int = Field(default=10_000, ge=1, description="tool calls per step")
    max_args_kb: int = Field(default=1024, ge=1, description="size of one call's arguments")
    max_result_kb: int = Field(default=16 * 1024, ge=1, description="size of one tool result")
    max_depth: int = Field(
        default=64, ge=4, le=200, description="nesting depth of values crossing to or from tools"
    )
    record_kb: int = Field(
        default=2, ge=1, description="per argument/result in the trajectory (longer: clipped)"
    )
    max_recorded_calls: int = Field(
        default=1000, ge=1, description="tool calls recorded per step (the rest are counted)"
    )
    idle_timeout: float | None = Field(
        default=1800.0,
        gt=0,
        description="seconds any sandbox may sit idle between steps (stopped meanwhile) before its"
        " worker is ended, also mid-run (e.g. a step waiting for approval): its variables are then"
        " lost and the next step says so; null keeps it (ended runs: see sessions.idle_seconds)",
    )


class AcceptSettings(BaseModel):
    """How the accepted program is written (`[tool.codeact.accept]`)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, description="the function's name; default: a few words of the task"
    )
    form: Literal["function", "script"] = Field(
        default="function",
        description='"script" adds an `if __name__ == "__main__":` block that calls the function',
    )


_ENV_REF = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}")


class McpServerConfig(BaseModel):
    """One MCP server whose tools become tools (`[tool.codeact.mcp.<name>]`): `command` + `args`
    for a stdio server, or `url` for streamable HTTP. Like the tool host, the server is trusted
    user configuration; generated code only ever reaches it through the tool boundary."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment; ${env:NAME} is expanded"
    )
    cwd: str | None = Field(default=None, description="working directory (default: workspace)")
    url: str | None = None
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP headers; values must come from the environment: ${env:NAME}",
    )
    tools: list[str] = Field(default_factory=lambda: ["*"], description="tool-name globs to expose")
    confirm: list[str] = Field(
        default_factory=list, description="tool-name globs that need approval"
    )
    startup_timeout: float = Field(
        default=30.0, gt=0, description="seconds to start and list tools"
    )
    call_timeout: float = Field(default=60.0, gt=0, description="seconds per tool call")
    per_run: bool = Field(
        default=False,
        description="a fresh server for each run (kept for its follow-ups, closed with its "
        "session), so one run's server state never reaches another; default: one shared server",
    )

    @field_validator("headers")
    @classmethod
    def _headers_from_env(cls, value: dict[str, str]) -> dict[str, str]:
        # a header is where a token goes: keep tokens out of files that get committed
        for key, text in value.items():
            if not _ENV_REF.search(text):
                raise ValueError(
                    f"header {key!r} must take its value from the environment, e.g."
                    f' {key} = "Bearer ${{env:MY_TOKEN}}"'
                )
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError(
                "give either `command` (+ `args`) for a stdio server or `url` for streamable HTTP"
            )
        return self


class SessionSettings(BaseModel):
    """Idle sandboxes kept for follow-ups (`[tool.codeact.sessions]`). A follow-up of an evicted
    run rebuilds the state from the record and says so."""

    model_config = ConfigDict(extra="forbid")

    idle_limit: int = Field(default=4, ge=0, description="ended runs whose sandbox stays open")
    idle_seconds: float = Field(
        default=900.0, ge=0, description="an idle sandbox closes after this long (0: never)"
    )


class RaySettings(BaseModel):
    """`[tool.codeact.suite.ray]`: where `codeact test --ray` runs (docs/suites.md)."""

    model_config = ConfigDict(extra="forbid")

    # a running cluster ("auto", "ray://host:10001", "host:6379"); None: start a local one
    address: str | None = None
    # runs at once on the local instance started without an address; a cluster's nodes say
    # theirs with `ray start --resources '{"codeact_slot": N}'` (else: one run per CPU)
    node_jobs: int | None = Field(default=None, ge=1, le=256)
    # merged over the default (working_dir: the workspace), e.g. {"pip": ["requests"]}
    runtime_env: dict[str, Any] = Field(default_factory=dict)


class SuiteSettings(BaseModel):
    """Task suites (`[tool.codeact.suite]`, `codeact test`)."""

    model_config = ConfigDict(extra="forbid")

    jobs: int = Field(default=1, ge=1, le=64, description="tasks run at the same time")
    # fresh: each task gets its own tool host process; shared: one for the whole suite, tasks
    # one after another in file order (for suites whose tasks build on each other's state)
    isolation: Literal["fresh", "shared"] = "fresh"
    # the matrix: every task on each model (a task naming its own `model` keeps it), N times
    models: list[str] = Field(default_factory=list, description="models to run every task on")
    repeat: int = Field(default=1, ge=1, le=1000, description="runs of each task per model")
    # at most this many runs of a model at once, across the whole suite (its rate limit)
    model_jobs: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    # local: this machine (the default); ray: a Ray cluster (`pip install codeact-lsp[ray]`)
    executor: Literal["local", "ray"] = "local"
    ray: RaySettings = Field(default_factory=RaySettings)


def matches_glob(name: str, globs: Iterable[str]) -> bool:
    """Does a tool name match one of these globs (`confirm`, an MCP server's `tools`)?

    Case-sensitive on every platform: `delete_*` must not miss `Delete_all` on one machine and
    catch it on another. The one rule for every layer (the stdlib-only tool runtime keeps a copy).
    """
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


class CodeActConfig(BaseModel):
    """The keys of docs/contracts.md; everything optional with defaults a new workspace can live with."""

    model_config = ConfigDict(extra="forbid")

    tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOL_GLOBS))
    python: str | None = None
    model: str | None = None
    max_iters: int = Field(default=10, ge=1, le=200)
    approval: Approval = "auto"
    confirm: list[str] = Field(default_factory=list)
    tasks: str | None = None
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    accept: AcceptSettings = Field(default_factory=AcceptSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    suite: SuiteSettings = Field(default_factory=SuiteSettings)
    mcp: dict[str, McpServerConfig] = Field(default_factory=dict)
    mcp_vscode: bool = Field(
        default=False, description="also serve the servers of the workspace's .vscode/mcp.json"
    )
    model_params: dict[str, Any] = Field(
        default_factory=dict,
        description="passed to litellm (api_base, temperature, max_tokens, timeout, ...)",
    )

    @field_validator("model_params")
    @classmethod
    def _no_secrets(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Keys come only from the environment: a file (or a settings.json, or a shell history)
        is the wrong place for one. `api_key_env` names the variable instead."""
        for name in secret_params(params):
            raise ValueError(
                f"{name!r} looks like a credential, and credentials are read only from the"
                " environment: set the provider's variable (e.g. OPENAI_API_KEY), or name your"
                ' own with api_key_env = "MY_KEY_VARIABLE"'
            )
        return params

    def needs_confirmation(self, name: str, flagged: bool = False) -> bool:
        """Does a call of tool `name` wait for a person's approval in every mode (docs/contracts.md, "Approval")?
        `flagged`: the tool layer flagged it (ToolSchema.confirm); else a `confirm` glob decides."""
        return flagged or matches_glob(name, self.confirm)


_SECRET_NAMES = frozenset(
    {"key", "token", "secret", "password", "authorization", "x-api-key", "api-key", "credentials"}
)
_SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password", "_credentials", "-key", "-token")
_NOT_SECRET = frozenset({"api_key_env", "max_tokens", "max_completion_tokens", "max_new_tokens"})


def secret_params(params: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the credential-like keys in a model_params table (headers included)."""
    found: list[str] = []
    for key, value in params.items():
        name = str(key).lower()
        if name not in _NOT_SECRET and (name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)):
            found.append(f"{prefix}{key}")
        elif isinstance(value, dict):
            found += secret_params(value, f"{prefix}{key}.")
    return found


class ConfigProblem(BaseModel):
    """A bad configuration value, located well enough for a diagnostic or a CLI message."""

    file: str
    key: str
    message: str
    line: int | None = None  # 1-based line of the key in `file`, when it could be found

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.key}: {self.message}" if self.key else f"{where}{self.message}"


class LoadedConfig(BaseModel):
    config: CodeActConfig
    source: str | None = None
    problems: list[ConfigProblem] = Field(default_factory=list)


def _read_table(workspace: Path) -> tuple[dict[str, Any], str | None, list[ConfigProblem]]:
    codeact_toml = workspace / "codeact.toml"
    pyproject = workspace / "pyproject.toml"
    for path, pick in ((codeact_toml, lambda d: d), (pyproject, _tool_codeact)):
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            return (
                {},
                str(path),
                [ConfigProblem(file=str(path), key="", message=f"unreadable: {exc}")],
            )
        table = pick(data)
        if table is None:
            continue
        if not isinstance(table, dict):
            prob = ConfigProblem(file=str(path), key="tool.codeact", message="must be a table")
            return {}, str(path), [prob]
        return table, str(path), []
    return {}, None, []


def _tool_codeact(data: dict[str, Any]) -> Any:
    tool = data.get("tool")
    return tool.get("codeact") if isinstance(tool, dict) else None


def validate_config(
    table: dict[str, Any], source: str | None = None
) -> tuple[CodeActConfig, list[ConfigProblem]]:
    """Validate a raw table; drop each bad key (reporting it) and keep the good ones."""
    problems: list[ConfigProblem] = []
    data = dict(table)
    for _ in range(len(data) + 8):
        try:
            return CodeActConfig.model_validate(data), problems
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                key = ".".join(loc)
                problems.append(
                    ConfigProblem(
                        file=source or "",
                        key=key,
                        message=_explain(err, loc),
                        line=_key_line(source, loc),
                    )
                )
                _drop(data, loc)
    return CodeActConfig(), problems


_EXAMPLES = {
    "tools": 'a list of file globs and/or module names, e.g. tools = ["tools.py", "pkg/**/*.py"]',
    "confirm": 'a list of tool-name globs, e.g. confirm = ["delete_*"]',
    "sandbox": "a table: [tool.codeact.sandbox] (or [sandbox] in codeact.toml)",
    "sandbox.read_paths": 'a list of paths, e.g. read_paths = ["data"]',
}


def _explain(err: Any, loc: list[str]) -> str:
    """pydantic's message, plus what was given and what would be accepted."""
    msg = str(err["msg"])
    kind = str(err.get("type", ""))
    key = ".".join(loc)
    if kind == "extra_forbidden":
        tables: dict[str, type[BaseModel]] = {
            "sandbox": SandboxSettings,
            "sessions": SessionSettings,
            "suite": SuiteSettings,
            "mcp": McpServerConfig,  # mcp.<name>.<key>
        }
        model: type[BaseModel] = (
            tables.get(loc[0], CodeActConfig) if len(loc) > 1 else CodeActConfig
        )
        known = list(model.model_fields)
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key; {hint}known keys: {', '.join(known)}"
    # A list index (tools.0) belongs to its list's example.
    base = ".".join(p for p in loc if not p.isdigit())
    if base in _EXAMPLES and kind in {"list_type", "dict_type", "model_type", "string_type"}:
        msg = f"{msg}; expected {_EXAMPLES[base]}"
    if "input" in err and kind != "missing" and loc[:1] != ["model_params"]:  # may hold a key
        msg = f"{msg} (got {err['input']!r})"
    return f"{msg}" if key else msg


def _key_line(source: str | None, loc: list[str]) -> int | None:
    """Best-effort line of a key in the TOML file, for an editor diagnostic."""
    if not source:
        return None
    try:
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    names = [p for p in loc if not p.isdigit()]
    if not names:
        return None
    pattern = re.compile(rf"^\s*[\"']?{re.escape(names[-1])}[\"']?\s*=")
    table = re.compile(rf"^\s*\[[^\]]*\b{re.escape(names[-1])}\]\s*$")
    for i, text in enumerate(lines, 1):
        if pattern.match(text) or table.match(text):
            return i
    return None


def _drop(data: dict[str, Any], loc: list[str]) -> None:
    node: Any = data
    for part in loc[:-1]:
        if isinstance(node, dict) and part in node and isinstance(node[part], dict):
            node[part] = dict(node[part])
            node = node[part]
        else:
            break
    if isinstance(node, dict):
        if loc and loc[-1] in node:
            del node[loc[-1]]
        elif loc and loc[0] in data:
            del data[loc[0]]


def load_config(
    workspace: str | os.PathLike[str], overrides: dict[str, Any] | None = None
) -> LoadedConfig:
    """Read the workspace file, then apply editor/CLI overrides (which win), key by key."""
    ws = Path(workspace)
    table, source, problems = _read_table(ws)
    merged = _merge(table, overrides or {})
    config, more = validate_config(merged, source)
    return LoadedConfig(config=config, source=source, problems=problems + more)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_python(
    workspace: str | os.PathLike[str], config: CodeActConfig, client_python: str | None = None
) -> str:
    """The interpreter for the tool host: config, then the workspace's venv, then the client's, then ours."""
    import sys

    ws = Path(workspace)
    if config.python:
        p = Path(os.path.expanduser(config.python))
        return str(p if p.is_absolute() else (ws / p))
    for venv in (".venv", "venv"):
        cand = ws / venv / "bin" / "python"
        if cand.exists():
            return str(cand)
    if client_python:
        return client_python
    return sys.executable
