"""Rebuilding a session's state without side effects: earlier steps replayed against their record.

When a re-run or a follow-up needs the variables earlier steps left behind and their sandbox is
gone, those steps' code runs again in a new sandbox, but every tool call is answered from the
result recorded when the step first ran: the real tool is not called, so nothing is booked, sent
or deleted twice. This is a tool provider on the server's `ToolHandler` path, chosen per step.

Replayed code is expected to ask for the same calls, in the same order, with the same arguments.
When it does not (the code reads the clock, a random number, a file that changed...), replay stops
at that call: what comes after it would be built on answers the record does not have. The run
then asks a person whether to run the rest for real or to stop (see `RunHandle._rebuild`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import (
    ErrorLocation,
    ReplayDivergence,
    Step,
    StepError,
    ToolCall,
    Trajectory,
)

if TYPE_CHECKING:
    from codeact_lsp.sandbox import ExecResult, ToolReply, ToolRequest

ReplayMode = Literal["recorded", "real"]
REPLAY_MODES: tuple[str, ...] = ("recorded", "real")

# raised inside the replayed snippet at the call that differs: it ends the snippet right there
DIVERGED_ERROR = "ReplayDiverged"
RAN = ("ok", "error")  # step statuses whose code ran (and so shaped the session state)


class ReplayItem(BaseModel):
    """One piece of code to run again while rebuilding: an earlier step, or the inputs' prelude."""

    code: str
    ok: bool = True  # it ran without error the first time
    run_id: str | None = None  # the run the step comes from (None: the inputs' prelude)
    index: int | None = None  # the step's index in that run
    calls: list[ToolCall] = Field(default_factory=list)  # its recorded tool calls, in order
    error: StepError | None = None  # its recorded error
    kept: int | None = None  # re-run: the index of its copy in the new trajectory

    @property
    def is_step(self) -> bool:
        return self.run_id is not None and self.index is not None


class ReplayPlayer:
    """Answers one replayed step's tool calls from its record (on the sandbox thread).

    The sandbox executes one snippet at a time, so a player sees its calls one after the other;
    it is created before the step runs and read after, on the event loop.
    """

    def __init__(self, item: ReplayItem, schemas: Sequence[ToolSchema]) -> None:
        self.item = item
        self.params = {s.name: _param_names(s) for s in schemas}
        self.position = 0  # recorded calls answered so far
        self.divergence: ReplayDivergence | None = None

    def answer(self, request: ToolRequest) -> ToolReply:
        from codeact_lsp.sandbox import ToolReply

        if self.divergence is not None:  # the snippet caught our error and went on calling
            return ToolReply(error=self._diverged_error())
        calls = self.item.calls
        got = _call_text(request.name, _bind(request, self.params.get(request.name)))
        if self.position >= len(calls):
            return self._diverge(expected=None, got=got)
        recorded = calls[self.position]
        if not _same_call(recorded, request, self.params.get(request.name)):
            return self._diverge(expected=_call_text(recorded.name, recorded.args), got=got)
        self.position += 1
        if request.name == "final_answer":
            # the record says the answer was accepted (or not); the rebuilt state needs no answer
            if recorded.error:
                return ToolReply(error=_recorded_error(recorded))
            return ToolReply(stop=True)
        if recorded.error:
            return ToolReply(error=_recorded_error(recorded))
        # the exact value when the record has one (a tuple stays a tuple), else the shown one
        return ToolReply(result=recorded.wire if recorded.wire is not None else recorded.result)

    def finish(self, result: ExecResult) -> ReplayDivergence | None:
        """After the step ran: did it do what the record says (all calls, same outcome)?"""
        if self.divergence is not None:
            return self.divergence
        item = self.item
        calls = item.calls
        if self.position < len(calls):
            missing = calls[self.position]
            self.divergence = self._make(
                call=self.position + 1,
                expected=_call_text(missing.name, missing.args),
                got="no further call (the step ended first)",
            )
            return self.divergence
        was = _outcome(item.error) if not item.ok else "no error"
        now = _outcome(result.error) if result.error is not None else "no error"
        if (result.error is None) != item.ok or (
            result.error is not None
            and item.error is not None
            and result.error.type != item.error.type
        ):
            self.divergence = self._make(call=None, expected=was, got=now)
        return self.divergence

    # -- divergence ---------------------------------------------------------------------------

    def _diverge(self, *, expected: str | None, got: str) -> ToolReply:
        from codeact_lsp.sandbox import ToolReply

        self.divergence = self._make(call=self.position + 1, expected=expected, got=got)
        return ToolReply(error=self._diverged_error())

    def _make(self, *, call: int | None, expected: str | None, got: str) -> ReplayDivergence:
        item = self.item
        run_id = item.run_id or ""
        index = item.index or 0
        where = f"step {index} of run {run_id}"
        if call is None:
            message = (
                f"replaying {where} with its recorded tool results ended with {got}, "
                f"but the record says {expected}"
            )
        elif expected is None:
            message = (
                f"replaying {where} with its recorded tool results: call {call} asked for {got}, "
                "which the record does not have (the step made fewer calls when it ran)"
            )
        else:
            message = (
                f"replaying {where} with its recorded tool results: call {call} asked for {got}, "
                f"but the record has {expected}"
            )
        return ReplayDivergence(
            run_id=run_id, step=index, call=call, expected=expected, got=got, message=message
        )

    def _diverged_error(self) -> ErrorLocation:
        assert self.divergence is not None
        return ErrorLocation(type=DIVERGED_ERROR, message=self.divergence.message)


# -- matching calls against the record ----------------------------------------------------------


def _param_names(schema: ToolSchema) -> list[str] | None:
    props = schema.parameters.get("properties") if isinstance(schema.parameters, dict) else None
    return list(props) if isinstance(props, dict) else None


def _bind(request: ToolRequest, names: list[str] | None) -> dict[str, Any]:
    """The call's arguments by parameter name, as the tool layer records them (no defaults; the
    readable preview of each wire value, as in the trajectory)."""
    from codeact_lsp.sandbox import codec

    args = [codec.preview(a) for a in request.args]
    kwargs = {k: codec.preview(v) for k, v in request.kwargs.items()}
    if names is not None and len(args) <= len(names):
        bound = dict(zip(names, args, strict=False))
        if not any(k in bound for k in kwargs):
            bound.update(kwargs)
            return bound
    out: dict[str, Any] = dict(kwargs)
    if args:
        out["*args"] = args
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _same_call(recorded: ToolCall, request: ToolRequest, names: list[str] | None) -> bool:
    if recorded.name != request.name:
        return False
    if request.name == "final_answer":
        return True  # its recorded args are the validated outputs, not the call's
    from codeact_lsp.sandbox import codec

    plain = codec.preview({"args": list(request.args), **dict(request.kwargs)})
    candidates = [_bind(request, names), plain]
    want = _canonical(recorded.args)
    return any(_canonical(c) == want for c in candidates)


def _call_text(name: str, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    text = f"{name}({shown})"
    return text if len(text) <= 200 else text[:197] + "..."


def _recorded_error(call: ToolCall) -> ErrorLocation:
    if call.error_detail is not None:
        return call.error_detail
    kind, _, message = (call.error or "RuntimeError: tool failed").partition(": ")
    return ErrorLocation(type=kind or "RuntimeError", message=message or (call.error or ""))


def _outcome(error: StepError | None) -> str:
    if error is None:
        return "no error"
    return f"{error.type}: {error.message}"


# -- what a rebuilt session replays ------------------------------------------------------------


def prelude(inputs: dict[str, Any]) -> str:
    """Define the inputs as variables in the session (JSON values have Python literals)."""
    return "\n".join(f"{name} = {value!r}" for name, value in inputs.items())


def replay_item(run_id: str, step: Step, kept: int | None = None) -> ReplayItem:
    return ReplayItem(
        code=step.code,
        ok=step.status == "ok",
        run_id=run_id,
        index=step.index,
        calls=[c.model_copy() for c in step.tool_calls],
        error=step.error,
        kept=kept,
    )


def replay_chain(chain: list[Trajectory]) -> list[ReplayItem]:
    """Everything that shaped the chain's session, with each step's recorded tool calls."""
    items: list[ReplayItem] = []
    for traj in chain:
        if traj.inputs:
            items.append(ReplayItem(code=prelude(traj.inputs)))
        items += [replay_item(traj.id, s) for s in traj.steps if s.code and s.status in RAN]
    return items


def prior_program(chain: list[Trajectory]) -> tuple[list[str], dict[str, Any]]:
    """The code and inputs the chain's accepted program is built from (for the next run's)."""
    from codeact_lsp.engine.program import program_steps

    codes: list[str] = []
    inputs: dict[str, Any] = {}
    for traj in chain:
        inputs.update(traj.inputs)
        codes += [s.code for s in program_steps(traj.steps)]
    return codes, inputs
