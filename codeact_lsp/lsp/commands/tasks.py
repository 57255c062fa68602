"""Task-suite commands: run the workspace's `[[task]]` suite (or some of its tasks) from the editor.

Each task is a run of its own (listed, but not shown); the suite reports cancellable progress and
its results are kept for the "last ✓ 1.2 s" lenses, also after a restart.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from codeact_lsp.lsp.args import RunTasksArgs
from codeact_lsp.lsp.commands.common import CommandError, engine
from codeact_lsp.lsp.commands.registry import command
from codeact_lsp.lsp.document import path_to_uri
from codeact_lsp.lsp.replies import SuiteReply
from codeact_lsp.lsp.tasks_view import save_results

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState


@command("codeact.runTasks")
async def run_tasks(state: ServerState, args: RunTasksArgs) -> SuiteReply:
    workspace = state.workspace
    root = workspace.require_root()
    from codeact_lsp.engine import suite

    file = suite.suite_path(root, args.file, workspace.config.tasks)
    if not file.is_file():
        raise CommandError(
            f"no task suite at {file}: create it with [[task]] tables, or set `tasks` in "
            "[tool.codeact]"
        )
    await workspace.configured()
    config = workspace.config
    try:
        tasks = suite.select_tasks(suite.load_suite(file), args.names, file)
        total = len(suite.plan_runs(tasks, config.suite.models, config.suite.repeat))
    except suite.SuiteError as exc:
        raise CommandError(str(exc)) from None
    on_ray = config.suite.executor == "ray"
    eng = None if on_ray else await engine(state)
    handles: list[Any] = []
    cancelled = False
    running: asyncio.Future[list[Any]] | None = None
    done = 0

    def cancel_all() -> None:
        nonlocal cancelled
        cancelled = True
        for handle in handles:
            handle.cancel()
        if running is not None:
            # the suite itself: runs not started yet never start (no tool host for them); on
            # Ray, every run in flight on the cluster is cancelled
            running.cancel()

    progress = state.progress
    where = " on Ray" if on_ray else ""
    token = await progress.begin("tasks", f"CodeAct: task suite {file.name}{where}", cancel_all)

    def started(task: Any, handle: Any) -> None:
        handles.append(handle)
        state.runs.register(handle, None, None, show=False, progress=False)
        if cancelled:
            handle.cancel()
        progress.report(token, f"{done}/{total} runs done · {task.name}: running")

    def finished(result: Any) -> None:
        nonlocal done
        done += 1
        mark = "passed" if result.passed else f"failed ({result.message[:60]})"
        progress.report(token, f"{done}/{total} runs done · {result.name}: {mark}")

    try:
        if eng is not None:
            job: Any = suite.run_suite(
                eng, file, names=args.names, on_start=started, on_result=finished
            )
        else:
            from codeact_lsp.assemble import start_workspace_tools
            from codeact_lsp.engine.suite_ray import run_suite_ray

            job = run_suite_ray(
                config,
                root,
                file,
                args.names,
                start_tools=start_workspace_tools,
                on_result=finished,
            )
        running = asyncio.ensure_future(job)
        if cancelled:  # cancelled while the suite was being set up
            running.cancel()
        try:
            results = await running
        except asyncio.CancelledError:
            if not cancelled:
                raise
            raise CommandError(f"task suite cancelled after {done} of {total} runs") from None
    except suite.SuiteError as exc:
        raise CommandError(str(exc)) from None
    finally:
        progress.end(token, "cancelled" if cancelled else "done")
    # a task's lens shows this suite's verdict: its first failed run of the matrix, else its
    # first run (results of earlier suites are replaced, whatever they were)
    verdicts: dict[str, Any] = {}
    for item in results:
        kept = verdicts.get(item.name)
        if kept is None or (kept.passed and not item.passed):
            verdicts[item.name] = item
    workspace.task_results.update(verdicts)
    await asyncio.to_thread(save_results, root, dict(workspace.task_results))
    state.refresh.schedule(path_to_uri(file))
    return SuiteReply(
        file=str(file),
        results=results,
        passed=sum(1 for r in results if r.passed),
        total=len(results),
    )
