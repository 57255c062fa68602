"""Review from Python: the library form of the editor's "Run step / edit / Reject" flow.

A reviewer is any callable (sync or async) that receives a `PendingStep` and answers with
`Approve()`, `Approve(code=...)` (run an edited version instead) or `Reject("why")` (the feedback
goes back to the model, which proposes another step). `True`/`None` mean approve and `False` means
reject, so a one-line lambda is enough for quick scripts.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codeact_lsp.trajectory import Step


class PendingStep(BaseModel):
    """What the reviewer sees: the step's code, why it waits, and the engine's static checks."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    index: int
    code: str
    task: str = ""
    reply: str = ""
    reason: str = ""  # why it waits: review mode, or a tool that needs confirmation
    # e.g. ["reserve"] when the step waits because it calls a tool flagged by `confirm`
    confirm_tools: list[str] = Field(default_factory=list)
    # static checks of the code, as the editor shows them: syntax, unknown tools, argument names,
    # confirmation; each {"line", "col", "end_col", "severity", "message", "code"}
    checks: list[dict[str, Any]] = Field(default_factory=list)
    step: Step | None = None  # a copy of the live step (reply, usage, ...)


class Approve(BaseModel):
    """Run the step, or `code` instead of it when given (the user's edited version)."""

    action: Literal["approve"] = "approve"
    code: str | None = None

    def __init__(self, code: str | None = None, /, **data: Any) -> None:
        if code is not None:
            data["code"] = code
        super().__init__(**data)


class Reject(BaseModel):
    """Do not run the step; `feedback` tells the model why, and the loop goes on."""

    action: Literal["reject"] = "reject"
    feedback: str | None = None

    def __init__(self, feedback: str | None = None, /, **data: Any) -> None:
        if feedback is not None:
            data["feedback"] = feedback
        super().__init__(**data)


Decision = Approve | Reject
ReviewAnswer = Decision | bool | None
Reviewer = Callable[[PendingStep], ReviewAnswer | Awaitable[ReviewAnswer]]


def normalize(answer: object) -> Decision:
    """Accept the shorthand answers; anything else is a bug in the reviewer, said plainly."""
    if isinstance(answer, Approve | Reject):
        return answer
    if answer is None or answer is True:
        return Approve()
    if answer is False:
        return Reject()
    raise TypeError(
        "a review callback must return Approve(), Approve(code=...), Reject('feedback'), "
        f"True/None (approve) or False (reject); got {answer!r}"
    )


def is_async_reviewer(reviewer: Reviewer) -> bool:
    target = getattr(reviewer, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return inspect.iscoroutinefunction(reviewer) or inspect.iscoroutinefunction(target)
