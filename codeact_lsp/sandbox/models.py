"""What crosses the sandbox boundary: tool stubs and calls going out, snippet results coming back."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, Field

from codeact_lsp.trajectory import ErrorLocation, SandboxInfo, StepError

__all__ = [
    "DirectConn",
    "DirectRoute",
    "DirectSink",
    "ErrorLocation",
    "ExecResult",
    "IsolationUnavailable",
    "SandboxError",
    "SandboxInfo",
    "StepError",
    "ToolHandler",
    "ToolReply",
    "ToolRequest",
    "ToolStub",
]


class ToolStub(BaseModel):
    """What the worker needs to expose one tool: a callable of that name that forwards the call."""

    name: str
    signature: str = ""
    doc: str = ""
    # "builtins.min": a pure stdlib callable the worker binds as itself instead of a stub (see
    # codec.local_name); such calls never leave the sandbox
    local: str | None = None
    # needs a person's approval: served only while a step approved by one runs (checked where
    # the call is served, so no alias, getattr, eval or forged frame gets around it)
    confirm: bool = False


class ToolRequest(BaseModel):
    """One stub call from generated code, as it arrives in the handler thread. `args`/`kwargs`
    are wire values (`codec.decode` turns them back into Python values)."""

    name: str
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    line: int | None = None  # line of the call in the snippet

    @classmethod
    def checked(
        cls, name: str, args: list[Any], kwargs: dict[str, Any], line: int | None
    ) -> ToolRequest:
        """Build without re-validating: the channel has already type-checked every field, and this
        is the hot path of every tool call (pydantic validation would cost a third of it)."""
        m = cls.__new__(cls)
        _set(m, "__dict__", {"name": name, "args": args, "kwargs": kwargs, "line": line})
        _set(m, "__pydantic_fields_set__", {"name", "args", "kwargs", "line"})
        _set(m, "__pydantic_extra__", None)
        _set(m, "__pydantic_private__", None)
        return m


_set = object.__setattr__


class ToolReply(BaseModel):
    """The handler's answer: a result in the typed codec's wire form (`codec.encode`), or an
    error raised inside the snippet (as a look-alike of `error.exception` when given), or stop."""

    result: Any = None
    error: ErrorLocation | None = None
    stop: bool = False


ToolHandler = Callable[[ToolRequest], ToolReply]


# The direct route: a tool provider that serves the worker's calls of its tools itself (the tool
# host), so the server is not a hop of every call. The sandbox hands the provider the far ends of
# the worker's second pipe pair (`attach`), opens each step there and closes it, getting the
# step's call records (`ToolCall` fields, already clipped for the record).

DirectSink = Callable[[list[dict[str, Any]], int], None]  # (call records, calls not recorded)


class DirectConn(Protocol):
    """One worker attached to a provider; every method is safe from any thread and bounded."""

    @property
    def alive(self) -> bool: ...

    def open(self, nonce: str, confirmed: bool, caps: dict[str, Any]) -> cf.Future[bool]:
        """Start serving a step (`confirmed`: confirm tools may run); resolves once in force."""
        ...

    def flush(self, nonce: str) -> tuple[list[dict[str, Any]], int]:
        """The step's records so far (blocking, bounded): before a call the server serves."""
        ...

    def close(self, nonce: str, wait: float = 0.0) -> cf.Future[dict[str, Any]]:
        """End the step: {"calls", "omitted", "refused", "broken"?}; `wait`: seconds a call
        still running may take to end (a cancelled one, so its record is kept)."""
        ...

    def cancel(self, nonce: str) -> None:
        """The run was cancelled: interrupt the step's call running now, serve no more."""
        ...

    def halt(self, nonce: str) -> None:
        """final_answer ended the step: refuse its further calls."""
        ...

    def detach(self) -> None: ...


class DirectRoute(Protocol):
    """What a provider offers to serve calls directly (`ToolHost.direct_route`)."""

    def direct_names(self) -> frozenset[str]: ...

    def attach(
        self,
        fds: tuple[int, int],
        names: list[str],
        confirm: list[str],
        limits: dict[str, int],
        on_broken: Callable[[str], None],
    ) -> DirectConn | None:
        """Take the worker's pipe ends (read calls, write replies); None when unavailable."""
        ...


class ExecResult(BaseModel):
    """One snippet's outcome. Output printed before an error is kept; `value` is the repr of a
    final expression (notebook style)."""

    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: StepError | None = None
    duration_ms: float = 0.0
    stopped: bool = False  # a tool reply said stop (final_answer)
    timed_out: bool = False
    state_lost: bool = False  # the worker was replaced: globals from earlier snippets are gone
    truncated: bool = False  # output was cut (head and tail kept, the cut is marked)
    cancelled: bool = False  # interrupted by interrupt() or cancellation, not by the timeout
    sandbox: SandboxInfo | None = None  # the isolation in force while this snippet ran
    # calls of `confirm` tools refused because the snippet was not approved ({name, line,
    # message}): they never reached the handler, so the caller records them from here
    refused: list[dict[str, Any]] = Field(default_factory=list)


class SandboxError(RuntimeError):
    """The sandbox could not be started or used (not an error of the generated code)."""


class IsolationUnavailable(SandboxError):
    """`require_isolation` is set and a requested layer cannot be enforced here."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "refusing to run generated code without the requested isolation: " + "; ".join(missing)
        )
