"""Shared by the sandbox tests: an in-test tool handler and the sandbox factory's type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from codeact_lsp.sandbox import ErrorLocation, Sandbox, ToolReply, ToolRequest, ToolStub


class Recorder:
    """An in-test tool handler: `add`, `fail` (a tool error), `final_answer` (stop), `echo`."""

    def __init__(self) -> None:
        self.calls: list[ToolRequest] = []

    def __call__(self, req: ToolRequest) -> ToolReply:
        self.calls.append(req)
        if req.name == "add":
            return ToolReply(result=sum(req.args))
        if req.name == "fail":
            return ToolReply(
                error=ErrorLocation(type=req.kwargs.get("kind", "ValueError"), message=req.args[0])
            )
        if req.name == "final_answer":
            return ToolReply(result=None, stop=True)
        return ToolReply(result={"args": req.args, "kwargs": req.kwargs})


TOOLS = [ToolStub(name=n) for n in ("add", "fail", "final_answer", "echo")]

Factory = Callable[..., Awaitable[Sandbox]]
