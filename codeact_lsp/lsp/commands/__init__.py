"""The `codeact.*` commands, one module per group: `runs`, `review` (approve, reject, Accept),
`tools` (list, Try), `tasks` (task suites); `common` holds what they share.

`HANDLERS` maps each command name (DESIGN.md §3 and this server's extensions) to the function
that does the work; `app` registers them. Each takes the server state and the raw argument list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codeact_lsp.lsp.commands import review, runs, tasks, tools

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState

Handler = Callable[["ServerState", list[Any]], Any]

HANDLERS: dict[str, Handler] = {
    "codeact.run": runs.run,
    "codeact.getRun": runs.get_run,
    "codeact.cancel": runs.cancel,
    "codeact.approve": review.approve,
    "codeact.reject": review.reject,
    "codeact.accept": review.accept,
    "codeact.rerun": runs.rerun,
    "codeact.followUp": runs.follow_up,
    "codeact.listTools": tools.list_tools,
    "codeact.tryTool": tools.try_tool,
    "codeact.runTasks": tasks.run_tasks,
    "codeact.acceptPreview": review.accept_preview,
    "codeact.discard": runs.discard,
    "codeact.listRuns": runs.list_runs,
    "codeact.showStep": runs.show_step,
}
