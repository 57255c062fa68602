"""Arguments of the `codeact.*` commands (docs/protocol.md), validated before anything runs.

A command comes from a keybinding, a code lens, another extension or a person typing JSON, so the
argument is checked here and a mistake is answered with an LSP error that names the key, says what
was expected and, for a misspelt key, which key was meant — never a stack trace from deep inside a
run. Field names are the contract's camelCase names; extra keys are refused so that typos surface.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codeact_lsp.config import Approval


class CommandArgumentError(Exception):
    """A command argument a person can fix; the server turns it into an InvalidParams error."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Position(_Args):
    line: int = Field(ge=0)
    character: int = Field(ge=0)


class Range(_Args):
    start: Position
    end: Position


class RunArgs(_Args):
    task: str = Field(min_length=1, description="what the agent should do")
    signature: str | None = Field(default=None, description='e.g. "question -> answer: float"')
    inputs: dict[str, Any] = Field(default_factory=dict)
    uri: str | None = Field(default=None, description="document Accept writes the program into")
    range: Range | None = None
    model: str | None = Field(default=None, min_length=1)
    approval: Approval | None = None
    maxIters: int | None = Field(default=None, ge=1, le=200)


class RunIdArgs(_Args):
    runId: str = Field(min_length=1)


class ApproveArgs(RunIdArgs):
    code: str | None = Field(default=None, description="your edited version of the pending step")


class RejectArgs(RunIdArgs):
    feedback: str | None = None


AcceptMode = Literal["target", "newFile", "insertAtEnd"]


class AcceptArgs(RunIdArgs):
    # Extension: after a refusal the client offers these alternatives and calls accept again.
    mode: AcceptMode = "target"
    newFileUri: str | None = None
    replace: bool = Field(
        default=False, description="replace the run's selection (else insert after it)"
    )
    name: str | None = Field(default=None, description="the function's name (default: the task's)")
    form: Literal["function", "script"] | None = Field(
        default=None, description='"script" adds an `if __name__ == "__main__":` block'
    )
    confirm: bool = Field(
        default=True,
        description="ask the editor to show its preview before applying (change annotations)",
    )


class RerunArgs(RunIdArgs):
    step: int = Field(ge=1)
    code: str | None = None
    # how the steps before `step` get their state back: tool calls answered from the record
    # (default, nothing runs twice) or run again for real (each step approved as usual)
    replay: Literal["recorded", "real"] = "recorded"


class FollowUpArgs(RunIdArgs):
    task: str = Field(min_length=1)
    replay: Literal["recorded", "real"] = "recorded"  # if the parent's sandbox is gone


class NoArgs(_Args):
    pass


class ListRunsArgs(_Args):
    includeDiscarded: bool = Field(
        default=False, description="also the discarded runs (marked `discarded`), to restore one"
    )


class TryToolArgs(_Args):
    name: str = Field(min_length=1)
    args: dict[str, Any] | list[Any] = Field(default_factory=dict)


class RunTasksArgs(_Args):
    file: str | None = None
    names: list[str] | None = None


A = TypeVar("A", bound=BaseModel)

_EXAMPLES: dict[str, str] = {
    "codeact.run": '{"task": "How much is 3 units of SKU-42 shipped to DE?"}',
    "codeact.getRun": '{"runId": "<id from codeact.run>"}',
    "codeact.cancel": '{"runId": "<id>"}',
    "codeact.approve": '{"runId": "<id>", "code": "<optional edited step>"}',
    "codeact.reject": '{"runId": "<id>", "feedback": "<why>"}',
    "codeact.accept": '{"runId": "<id>"}',
    "codeact.rerun": '{"runId": "<id>", "step": 2, "code": "<optional new code>"}',
    "codeact.followUp": '{"runId": "<id>", "task": "<next question>"}',
    "codeact.listTools": "{}",
    "codeact.tryTool": '{"name": "convert_currency", "args": {"amount": 1, ...}}',
    "codeact.runTasks": '{"file": "tasks.toml", "names": ["quote-to-germany"]}',
}


def parse_args(command: str, model: type[A], arguments: list[Any] | None) -> A:
    """Validate the one JSON-object argument of `command` (none at all counts as `{}`)."""
    example = _EXAMPLES.get(command, "{...}")
    args = list(arguments or [])
    if len(args) > 1:
        raise CommandArgumentError(
            f"{command} takes one JSON object argument, got {len(args)} arguments; "
            f"pass e.g. {example}"
        )
    raw = args[0] if args else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CommandArgumentError(
            f"{command} takes one JSON object argument, got {type(raw).__name__}; "
            f"pass e.g. {example}"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CommandArgumentError(_describe(command, model, exc, example)) from None


def _describe(command: str, model: type[BaseModel], exc: ValidationError, example: str) -> str:
    known = sorted(model.model_fields)
    problems: list[str] = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(argument)"
        kind = err["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known)}"
            problems.append(f"unknown key `{loc}`{hint}")
        elif kind == "missing":
            problems.append(f"`{loc}` is required")
        else:
            got = err.get("input")
            shown = repr(got)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            problems.append(f"`{loc}`: {err['msg']} (got {shown})")
    return f"{command}: " + "; ".join(problems) + f". Example: {example}"
