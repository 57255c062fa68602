"""What the `codeact.*` commands answer: one pydantic model per reply shape (docs/protocol.md).

With the argument models in `args`, these are the client contract: `protocol_ts` turns both
into `vscode-extension/src/protocol.ts`, and a test keeps that file current. Replies are sent
with the fields the handler set (`exclude_unset`), so an optional field is either absent or
meaningful, as the client has always seen them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from codeact_lsp.engine.suite import TaskResult
from codeact_lsp.lsp.args import Range
from codeact_lsp.tools.models import ToolDiagnostic, ToolSchema
from codeact_lsp.trajectory import ErrorLocation, RunStatus, Step


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunStarted(Reply):
    """codeact.run / rerun / followUp: the run goes on in the background."""

    runId: str
    trajectoryUri: str


class StatusReply(Reply):
    """codeact.cancel."""

    status: RunStatus


class RejectReply(StatusReply):
    step: int | None  # the step that was waiting


class ApproveReply(RejectReply):
    edited: bool  # ran the user's version of the step


class AcceptChoice(Reply):
    """A button after a refused Accept: its words, and the mode or client action it stands for."""

    label: str
    mode: str | None = None  # call codeact.accept again with this mode
    action: str | None = None  # "showDiff": the client shows what Insert at End would write


class AcceptHunk(Reply):
    range: Range | None
    newText: str
    kind: str  # "codeact.imports" | "codeact.function" | "codeact.newFile"


class AcceptReply(Reply):
    applied: bool
    reason: str | None = None  # why not (applied false), in words
    alternatives: list[str] | None = None  # modes that may work instead
    choices: list[AcceptChoice] | None = None  # the same, as buttons (and Show Diff)
    cancelled: bool | None = None  # the user closed the editor's preview: nothing written
    uri: str | None = None  # applied: the document edited
    version: int | None = None
    range: Range | None = None  # applied: where the function is now
    name: str | None = None  # the function's name
    created: bool | None = None  # Accept created the file
    message: str | None = None  # the one status line to show


class AcceptPreview(Reply):
    """What a diff needs: the target, the text to insert and the document after Accept."""

    ok: bool
    reason: str | None
    alternatives: list[str]
    targetUri: str
    range: Range | None
    version: int | None
    createsFile: bool
    newText: str
    documentAfter: str | None
    program: str
    choices: list[AcceptChoice] = []
    edits: list[AcceptHunk] = []  # every hunk: the import merge, the function
    functionRange: Range | None = None  # where the function is in documentAfter
    name: str = ""
    message: str | None = None  # what the status line will say once applied
    selection: bool = False  # the run was given a selection (replace it, or insert after?)


class CommandRef(Reply):
    """A command the client may offer as a button (e.g. "Undo discard")."""

    title: str
    command: str
    arguments: list[dict[str, Any]]


class DiscardReply(Reply):
    discarded: bool
    closeDocument: str | None = None  # the run's document: the client closes it
    undo: CommandRef | None = None  # codeact.restore for this run


class RestoreReply(Reply):
    restored: bool
    runId: str
    trajectoryUri: str


class RunSummary(Reply):
    """A run as the Runs view shows it: codeact.listRuns, and each `codeact/runState` push."""

    runId: str
    task: str
    status: RunStatus
    trajectoryUri: str
    live: bool  # started by this server (commands that need the live run work)
    accepted: bool
    updatedAt: float  # unix seconds
    createdAt: float
    steps: int  # steps so far
    currentStep: int | None = None  # the step being written or run, while live
    tool: str | None = None  # the tool the current step called last, while it runs
    pendingStep: int | None = None  # the step waiting for approval
    answer: dict[str, Any] | None = None  # the run's outputs, once finished
    error: str | None = None
    maxIters: int
    discarded: bool = False
    parent: str | None = None  # the run this one follows up or re-runs


class RunList(Reply):
    runs: list[RunSummary]


class StepReply(Reply):
    step: Step
    markdown: str


class ToolList(Reply):
    tools: list[ToolSchema]
    diagnostics: list[ToolDiagnostic]
    error: str | None = None  # the tool host could not start: why


class TryResult(Reply):
    result: Any = None  # set when the call returned
    error: ErrorLocation | None = None  # set when it raised
    stdout: str
    durationMs: float


class SuiteReply(Reply):
    file: str
    results: list[TaskResult]
    passed: int
    total: int
