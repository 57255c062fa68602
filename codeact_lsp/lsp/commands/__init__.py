"""The `codeact.*` commands, one module per group: `runs` (start, look, cancel, discard, re-run,
follow up), `review` (approve, reject, Accept), `tools` (list, Try), `tasks` (task suites).

Each handler is registered where it is defined (`registry.command`). This module stays free of
imports: the server puts `NAMES` into its `initialize` answer before any handler module loads.
"""

from __future__ import annotations

GROUPS = ("runs", "review", "tools", "tasks")

# docs/protocol.md's commands: the contract's, then this server's extensions (client helpers for lenses and diffs).
NAMES: tuple[str, ...] = (
    "codeact.run",
    "codeact.getRun",
    "codeact.cancel",
    "codeact.approve",
    "codeact.reject",
    "codeact.accept",
    "codeact.rerun",
    "codeact.followUp",
    "codeact.listTools",
    "codeact.tryTool",
    "codeact.runTasks",
    "codeact.acceptPreview",
    "codeact.discard",
    "codeact.restore",
    "codeact.listRuns",
    "codeact.showStep",
)
