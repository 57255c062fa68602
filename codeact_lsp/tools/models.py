"""What the tools layer hands to the engine, the CLI and the editor.

These cross process and layer boundaries (the host reports schemas as JSON, the LSP serves them as
`codeact.listTools`), so they are pydantic models with stable field names: extend, never rename.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from codeact_lsp.trajectory import ErrorLocation

Severity = Literal["error", "warning", "info", "hint"]
ToolKind = Literal["function", "async", "method", "callable", "partial", "builtin"]


class ToolDiagnostic(BaseModel):
    """Something about a tool module that leaves the model guessing or stops tools from loading."""

    file: str
    line: int = 1  # 1-based
    end_line: int | None = None
    column: int = 0  # 0-based, as in the AST
    severity: Severity = "warning"
    message: str
    code: str  # stable identifier, e.g. "tool-no-docstring", "import-error"
    tool: str | None = None  # the tool this is about, when there is one
    source: Literal["static", "runtime", "config"] = "static"


class DiscoveredTool(BaseModel):
    """A tool found by reading the source (no import): enough for code lenses and the prompt."""

    name: str
    module: str
    file: str
    line: int  # 1-based range of the definition the code lives in (a `def`, a method, ...)
    end_line: int
    signature: str  # "def f(x: int) -> str", as the model will see it ("" when unknown statically)
    doc: str = ""
    is_async: bool = False
    kind: ToolKind = "function"
    binding_line: int | None = None  # where the tool's name is bound, if not at `line`
    resolved: bool = True  # False: the definition is elsewhere (imported); only the runtime knows
    confirm: bool = False  # matches a `confirm` glob: a call always waits for approval
    imported_from: str | None = None  # "pkg.mod:name" / ".mod:name" when re-exported by import


class Discovery(BaseModel):
    tools: list[DiscoveredTool] = Field(default_factory=list)
    diagnostics: list[ToolDiagnostic] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)  # the tool module files that were analysed
    modules: dict[str, str] = Field(default_factory=dict)  # module name -> file
    duration_ms: float = 0.0

    def tool(self, name: str) -> DiscoveredTool | None:
        return next((t for t in self.tools if t.name == name), None)


class ToolSchema(BaseModel):
    """A tool as served at runtime: what the prompt shows and what arguments are validated against."""

    name: str
    module: str = ""
    signature: str  # "def convert_currency(amount: float, ...) -> float" (methods without self)
    doc: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    returns: dict[str, Any] | None = None
    confirm: bool = False
    is_async: bool = False
    kind: ToolKind = "function"
    file: str | None = None
    line: int | None = None
    validated: bool = True  # False when the interpreter has no pydantic: only simple types checked
    local: str | None = None  # "builtins.min": a pure stdlib callable, run inside the sandbox


class ToolOutcome(BaseModel):
    """The result of one call; never raised, always returned, so a caller never has to guess."""

    ok: bool
    result: Any = None  # the typed codec's wire value (JSON-safe; see sandbox/codec.py)
    result_is_repr: bool = False  # some part had no faithful form: a marked stand-in (type, repr)
    bound_args: dict[str, Any] = Field(default_factory=dict)
    error: ErrorLocation | None = None
    stdout: str = ""
    duration_ms: float = 0.0
    restarted: bool = False  # the host crashed or hung and was restarted: tool state was lost
    timed_out: bool = False  # the call outlived its timeout (interrupted, or the host killed)

    @property
    def value(self) -> Any:
        """The result as a Python value again (tuples, sets, datetimes, ... rebuilt)."""
        from codeact_lsp.sandbox import codec

        return codec.decode(self.result)

    @property
    def shown(self) -> Any:
        """The result as plain JSON for people (tuples as lists, other values as text)."""
        from codeact_lsp.sandbox import codec

        return codec.preview(self.result)

    @property
    def error_text(self) -> str | None:
        """ "Type: message", the short form that goes into `tool_calls[].error`."""
        return f"{self.error.type}: {self.error.message}" if self.error else None


@runtime_checkable
class ToolProvider(Protocol):
    """What the engine needs from "the tools", wherever they run."""

    def schemas(self) -> list[ToolSchema]: ...

    def call_sync(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> ToolOutcome: ...

    async def close(self) -> None: ...
