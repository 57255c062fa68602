"""The trajectory: the record of a run that every layer shares (docs/contracts.md).

It is persisted under `.codeact/runs/`, printed by `codeact run --json`, returned by `codeact.getRun`
and rendered by the editor, so the field names below are a contract: extend, never rename.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["running", "awaiting_approval", "finished", "failed", "cancelled", "max_iters"]
StepStatus = Literal[
    "proposed",  # parsed from the model's reply, not yet run
    "awaiting_approval",  # review / confirm-tools: waits for the user
    "running",
    "ok",  # ran without error
    "error",  # raised, timed out, or final_answer failed validation
    "rejected",  # the user rejected it; feedback went back to the model
    "no_code",  # the reply had no code; the model was told how to act
    "cancelled",
]

TERMINAL_STATUSES: frozenset[str] = frozenset({"finished", "failed", "cancelled", "max_iters"})


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # None when the price of the model is unknown: a missing price is not a free call.
    cost_usd: float | None = None

    def add(self, other: Usage) -> Usage:
        cost: float | None
        if self.cost_usd is None and other.cost_usd is None:
            cost = None
        else:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
        )


class StepError(BaseModel):
    type: str
    message: str
    line: int | None = None  # 1-based, in this step's code
    traceback: str = ""


class ErrorLocation(BaseModel):
    """Where a tool raised, in the tool's own source (the editor puts a diagnostic there)."""

    type: str
    message: str
    file: str | None = None
    line: int | None = None
    traceback: str = ""
    # the exception class and its bases ({"name", "module", "qualname", "bases"}): the snippet's
    # side rebuilds a look-alike so `except InsufficientFunds` / `except ValueError` both work
    exception: dict[str, Any] | None = None


class ToolCall(BaseModel):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)  # bound by parameter name
    result: Any = None  # JSON value, or a repr string when the value is not JSON
    error: str | None = None  # "Type: message", None when the call succeeded
    duration_ms: float = 0.0
    error_detail: ErrorLocation | None = None
    stdout: str = ""  # what the tool printed / logged while it ran
    line: int | None = None  # line of the call in the step's code, when known
    # the result exactly (the typed codec's wire form), when `result` is only a readable preview
    # of it (a tuple shown as a list, a datetime as text ...): what a replay answers with
    wire: Any = None


class Step(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int  # 1-based
    code: str = ""
    stdout: str = ""
    stderr: str = ""
    value: str | None = None  # repr of the last expression
    error: StepError | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    duration_ms: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    # extensions
    status: StepStatus = "proposed"
    reply: str = ""  # the model's whole reply this step came from
    feedback: str | None = None  # the user's reason when rejected
    edited: bool = False  # the user changed the code before it ran
    state_lost: bool = False  # the worker had to be restarted after this step
    final: bool = False  # this step called final_answer successfully
    model_duration_ms: float = 0.0
    started_at: float | None = None
    # copied from the run this one re-runs; its tool calls were answered from the record while the
    # session state was rebuilt (no real tool ran), unless `reexecuted`
    replayed: bool = False
    reexecuted: bool = False  # rebuilt by running it again for real (explicit choice, approved)
    extracted: bool = False  # the one extra call after the step budget (asks only for the answer)
    cut_off: bool = False  # the model's reply stopped at the reply cap (model_params.max_tokens)
    # tool calls past the record's bound (sandbox.max_recorded_calls): counted, not kept
    tool_calls_omitted: int = 0


class ReplayDivergence(BaseModel):
    """Where replayed code stopped matching its record: the state from there on is not rebuilt."""

    run_id: str  # the run the replayed step comes from
    step: int  # its index in that run
    call: int | None = None  # 1-based tool call of that step; None when the step's outcome differed
    expected: str | None = None  # the recorded call, "name(args)", or the recorded outcome
    got: str | None = None  # what the replayed code asked for instead
    message: str = ""  # one sentence for a person and for the model


class RebuiltStep(BaseModel):
    """One earlier step run again to rebuild a session's state."""

    run_id: str
    index: int
    mode: Literal["recorded", "real"] = "recorded"  # recorded: calls answered from the record
    status: Literal["matched", "diverged", "ran", "rejected", "failed"] = "matched"
    calls: int = 0  # tool calls answered from the record (mode "recorded")
    tool_calls: list[ToolCall] = Field(default_factory=list)  # real calls made (mode "real")


class Rebuild(BaseModel):
    """How a re-run or follow-up got the earlier steps' state (shown by every view)."""

    # live: the parent's sandbox was still open; rebuilt: earlier steps replayed into a new one;
    # fresh: nothing to rebuild
    session: Literal["live", "rebuilt", "fresh"] = "fresh"
    mode: Literal["recorded", "real"] = "recorded"  # how the earlier steps were run again
    reason: str = ""  # why the state had to be rebuilt (evicted, server restarted, re-run...)
    steps: list[RebuiltStep] = Field(default_factory=list)
    divergence: ReplayDivergence | None = None
    # after a divergence: what the person chose (None while nobody has been asked)
    choice: Literal["pending", "real", "stop"] | None = None


class SandboxInfo(BaseModel):
    backend: str = "none"
    isolation: list[str] = Field(default_factory=list)  # what is enforced
    not_enforced: list[str] = Field(default_factory=list)  # what the backend could not enforce


class Target(BaseModel):
    """Where Accept will put the program: a document, a range in it, and the text seen at start."""

    uri: str
    range: dict[str, Any] | None = None  # LSP Range shape
    version: int | None = None
    text: str | None = None  # the text of `range` (or the whole document) when the run started


class Acceptance(BaseModel):
    """Where and what Accept applied, so the views can tell whether it is still there."""

    uri: str  # the document the program went into
    range: dict[str, Any] | None = None  # LSP Range the inserted text covers after the edit
    text: str  # the text that was inserted
    version: int | None = None  # the document's version after the edit, when known
    at: float = 0.0  # when (epoch seconds)
    mode: str | None = None  # how it was applied (target, new file...), as the Accept command says
    name: str = ""  # the accepted function's name


class Trajectory(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    task: str
    signature: str = "task -> answer"
    model: str = ""
    status: RunStatus = "running"
    outputs: dict[str, Any] | None = None
    error: str | None = None
    steps: list[Step] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    sandbox: SandboxInfo = Field(default_factory=SandboxInfo)
    # extensions
    inputs: dict[str, Any] = Field(default_factory=dict)
    scripted: bool = False  # replies came from the scripted stand-in, not a real model
    approval: str = "auto"
    max_iters: int = 10
    workspace: str | None = None
    target: Target | None = None
    parent: str | None = None  # the run this one follows up or re-runs
    created_at: float = 0.0
    updated_at: float = 0.0
    program: str | None = None  # what Accept would insert
    relation: Literal["follow_up", "rerun"] | None = None  # how this run continues `parent`
    rerun_from: int | None = None  # relation "rerun": the step it starts again from
    rebuild: Rebuild | None = None  # relation set: how the earlier state was obtained
    pid: int | None = None  # the process running it (a file left `running` by a dead one failed)
    extracted: bool = False  # finished by the extraction call after the step budget
    # durable review state (survives restarts): discarded runs are left out of listings until
    # restored; `accepted` says where the program went
    discarded_at: float | None = None
    accepted: Acceptance | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES
