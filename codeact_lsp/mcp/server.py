"""`codeact mcp`: CodeAct's sandbox and tools as a stdio MCP server, for other agents.

Everything goes through the same engine as the editor and the CLI, so isolation, limits,
approval and recording are the same ones:
- `execute_python` runs one snippet as one step of a long-lived run whose "model" is the MCP
  client: the snippet arrives as that step's reply. Variables persist between calls (one sandbox
  session); a snippet that calls `final_answer` ends the run, and the next call continues in the
  same sandbox as a follow-up. Every snippet is a step in `.codeact/runs/<id>.json`, so the
  editor's Runs view shows these sessions like any run.
- `run_task` is a whole CodeAct run with the workspace's model.
- `list_tools` is what `codeact tools --json` reports.
A step that needs approval (a flagged tool, review mode) is put to the client's user through MCP
elicitation; a client that cannot ask gets the step rejected, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.engine.store import runs_dir
from codeact_lsp.engine.suite import TaskResult, from_trajectory

if TYPE_CHECKING:
    from codeact_lsp.engine import Engine, RunHandle

log = logging.getLogger(__name__)

CLIENT_MODEL = "mcp-client"  # the model name of execute_python sessions: code from the MCP client
_SESSION_TASK = "execute_python session (code sent by an MCP client)"
_NO_WAIT = 10.0**9  # the client's next snippet may come much later: no model-call timeout
# how to ask the user of the request that started a run_task run (its task inherits this)
_ASK: contextvars.ContextVar[Any] = contextvars.ContextVar("codeact_mcp_ask", default=None)


class SnippetError(BaseModel):
    type: str
    message: str
    line: int | None = Field(default=None, description="1-based line in the snippet")
    traceback: str = ""


class ToolCallSummary(BaseModel):
    name: str
    error: str | None = None
    duration_ms: float = 0.0


class ExecuteResult(BaseModel):
    """What one snippet did (the step as recorded in the run file)."""

    status: str = Field(description="ok | error | rejected | cancelled")
    stdout: str = ""
    stderr: str = ""
    value: str | None = Field(default=None, description="repr of the last expression")
    error: SnippetError | None = None
    tool_calls: list[ToolCallSummary] = Field(default_factory=list)
    final_answer: Any = Field(default=None, description="outputs, when the snippet answered")
    run_id: str
    step: int
    trajectory: str = Field(description="path of the run file (.codeact/runs/<id>.json)")
    duration_ms: float = 0.0


class ToolInfo(BaseModel):
    name: str
    module: str
    signature: str
    doc: str = ""
    confirm: bool = False


class ToolList(BaseModel):
    tools: list[ToolInfo]
    diagnostics: list[str] = Field(default_factory=list)


class Approval(BaseModel):
    """What the client's user is asked when a step waits for approval."""

    approve: bool = Field(description="run this code")
    feedback: str = Field(default="", description="why not (passed to whoever wrote the code)")


class ClientModel:
    """The "model" of an execute_python session: each reply is the next snippet the client sent."""

    scripted = False

    def __init__(self) -> None:
        self.name = CLIENT_MODEL
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def complete(self, messages: list[Any], *, on_delta: Any = None) -> Any:
        from codeact_lsp.engine.model import ModelReply

        code = await self.queue.get()
        return ModelReply(text=f"<execute>\n{code}\n</execute>")


class CodeActMcp:
    """The workspace side: tools (host + MCP servers), the engines, the session run."""

    def __init__(self, workspace: Path, config: CodeActConfig) -> None:
        self.workspace = workspace
        self.config = config
        self.runs_dir = runs_dir(workspace)
        self.tools: Any = None
        self._session_engine: Engine | None = None
        self._task_engine: Engine | None = None
        self._client_model = ClientModel()
        self._run: RunHandle | None = None
        self._lock = asyncio.Lock()  # one snippet at a time: they share one sandbox
        self._ready = asyncio.Lock()
        self.session_ask: Any = None  # the current execute_python request's asker

    async def ready(self) -> None:
        async with self._ready:
            if self.tools is not None:
                return
            from codeact_lsp.assemble import make_engine, start_workspace_tools
            from codeact_lsp.engine import RetryPolicy

            self.tools = await start_workspace_tools(self.workspace, self.config)
            client = self._client_model

            def factory(name: str, **kwargs: Any) -> Any:
                from codeact_lsp.engine.model import make_model

                return client if name == CLIENT_MODEL else make_model(name, **kwargs)

            self._session_engine = make_engine(
                self.config,
                self.tools,
                workspace=self.workspace,
                approver=self._approver,
                retry=RetryPolicy(timeout=_NO_WAIT, retries=0),
                model_factory=factory,
            )
            self._task_engine = make_engine(
                self.config,
                self.tools,
                workspace=self.workspace,
                approver=self._approver,
            )

    async def _approver(self, handle: Any, step: Any, confirm: list[str]) -> Any:
        from codeact_lsp.engine import Decision

        why = f"it calls {', '.join(confirm)}" if confirm else "approval is 'review'"
        session = self._run
        ask = self.session_ask if session is not None and handle is session else _ASK.get()
        if ask is None:
            return Decision(action="reject", feedback=f"Not approved: {why} and nobody was asked.")
        answer = await ask(f"CodeAct step {step.index} needs approval ({why}):\n\n{step.code}")
        if answer is None:
            return Decision(
                action="reject",
                feedback=f"Not approved: {why}, and this MCP client cannot ask its user"
                " (it does not support elicitation).",
            )
        if answer.approve:
            return Decision(action="approve")
        return Decision(action="reject", feedback=answer.feedback or "Not approved.")

    # -- the three tools ------------------------------------------------------------------------

    async def execute(self, code: str) -> ExecuteResult:
        await self.ready()
        async with self._lock:
            handle = await self._session()
            assert self._session_engine is not None
            index = len(handle.trajectory.steps) + 1
            # past events too: this step's may come before the generator first runs
            events = handle.subscribe(replay=True)
            self._client_model.queue.put_nowait(code)
            final = False
            async for event in events:
                if event.step == index and event.kind == "step_finished":
                    final = bool(event.data.get("final"))
                    break
                if event.kind in ("finished", "failed", "cancelled", "max_iters"):
                    break
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            traj = handle.trajectory
            if final or handle.done:
                await handle.wait()
            await self._session_engine.flushed()
            step = traj.steps[index - 1] if len(traj.steps) >= index else None
            path = str(self.runs_dir / f"{traj.id}.json")
            if step is None:
                return ExecuteResult(
                    status="error",
                    error=SnippetError(type="RuntimeError", message=traj.error or "the run ended"),
                    run_id=traj.id,
                    step=index,
                    trajectory=path,
                )
            err = step.error
            return ExecuteResult(
                status=step.status,
                stdout=step.stdout,
                stderr=step.stderr,
                value=step.value,
                error=SnippetError(
                    type=err.type, message=err.message, line=err.line, traceback=err.traceback
                )
                if err
                else None,
                tool_calls=[
                    ToolCallSummary(name=c.name, error=c.error, duration_ms=c.duration_ms)
                    for c in step.tool_calls
                ],
                final_answer=traj.outputs if final else None,
                run_id=traj.id,
                step=index,
                trajectory=path,
                duration_ms=step.duration_ms,
            )

    async def _session(self) -> RunHandle:
        """The running session run; a follow-up in the same sandbox once it has ended."""
        from codeact_lsp.engine import RunRequest

        engine = self._session_engine
        assert engine is not None
        current = self._run
        if current is not None and not current.done:
            return current
        if current is None:
            handle = await engine.start(
                RunRequest(task=_SESSION_TASK, model=CLIENT_MODEL, max_iters=200)
            )
        else:
            handle = await engine.follow_up(current.id, _SESSION_TASK + " (continued)")
        self._run = handle
        return handle

    async def run_task(
        self, task: str, signature: str | None, model: str | None, max_iters: int | None
    ) -> TaskResult:
        import os

        from codeact_lsp.engine import EngineError, RunRequest
        from codeact_lsp.engine.model import check_model

        name = model or self.config.model or os.environ.get("CODEACT_MODEL")
        problem = await check_model(name) if name else None
        if problem:
            raise ValueError(problem)  # an MCP error result the client's agent can read
        await self.ready()
        engine = self._task_engine
        assert engine is not None
        try:
            handle = await engine.start(
                RunRequest(task=task, signature=signature, model=model, max_iters=max_iters)
            )
        except EngineError as exc:
            raise ValueError(str(exc)) from None
        traj = await handle.wait()
        await engine.flushed()
        return from_trajectory(traj, path=self.runs_dir / f"{traj.id}.json")

    async def list_tools(self) -> ToolList:
        await self.ready()
        schemas = self.tools.schemas()
        diags = getattr(self.tools, "diagnostics", []) or []
        return ToolList(
            tools=[
                ToolInfo(
                    name=s.name,
                    module=s.module,
                    signature=s.signature,
                    doc=s.doc,
                    confirm=s.confirm,
                )
                for s in schemas
            ],
            diagnostics=[f"{d.file}:{d.line}: {d.severity}: {d.message}" for d in diags],
        )

    async def close(self) -> None:
        for engine in (self._session_engine, self._task_engine):
            if engine is not None:
                await engine.close()
        if self.tools is not None:
            await self.tools.close()


def build_server(state: CodeActMcp) -> MCPServer:
    # (this module is imported only by `codeact mcp`: the SDK import at its top costs nothing
    # elsewhere, and the tool signatures need `Context` resolvable at module level)
    server = MCPServer(
        "codeact",
        instructions=(
            "Run Python in CodeAct's sandbox with this workspace's tools as functions. Variables"
            " persist between execute_python calls; call list_tools to see the functions."
        ),
    )

    def asker(ctx: Context) -> Any:
        async def ask(message: str) -> Approval | None:
            try:
                result = await ctx.elicit(message, schema=Approval)
            except Exception as exc:  # the client has no elicitation support
                log.info("elicitation failed: %s", exc)
                return None
            if result.action == "accept":
                data: Approval = result.data
                return data
            return Approval(approve=False, feedback=f"the user chose to {result.action}")

        return ask

    @server.tool()
    async def execute_python(code: str, ctx: Context) -> ExecuteResult:
        """Run one Python snippet in a persistent sandbox session (no network, no files outside
        its scratch directory). The workspace's tools and its MCP servers' tools are functions;
        variables persist between calls. Returns stdout, the value of the last expression, and
        the error with its line number when the snippet failed. Calling final_answer(...) ends
        the recorded run (the next snippet continues in the same sandbox)."""
        state.session_ask = asker(ctx)
        try:
            return await state.execute(code)
        finally:
            state.session_ask = None

    @server.tool()
    async def run_task(
        task: str,
        ctx: Context,
        signature: str | None = None,
        model: str | None = None,
        max_iters: int | None = None,
    ) -> TaskResult:
        """Run a whole CodeAct agent on a task with the workspace's configured model (or
        `model`); returns the answer and the path of the recorded trajectory."""
        _ASK.set(asker(ctx))
        try:
            return await state.run_task(task, signature, model, max_iters)
        except ValueError as exc:  # a bad model, signature...: the client sees why
            raise ToolError(str(exc)) from None

    @server.tool()
    async def list_tools() -> ToolList:
        """The functions available in execute_python and to run_task's agent, with signatures
        and docstrings, plus problems loading them."""
        return await state.list_tools()

    return server


def serve(workspace: Path) -> int:
    """Run the stdio server until the client closes stdin. Logs go to stderr only."""
    import anyio

    loaded = load_config(workspace)
    if loaded.problems:
        for p in loaded.problems:
            print(f"codeact mcp: configuration problem: {p}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    state = CodeActMcp(workspace, loaded.config)
    server = build_server(state)

    async def main() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await state.close()

    anyio.run(main)
    return 0
