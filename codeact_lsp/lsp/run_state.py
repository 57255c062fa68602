"""`codeact/runState`: the server tells the client how each run is doing, so nothing polls.

A client opts in with `initializationOptions.runStateNotifications: true` (the VS Code extension
does). It then gets one notification per run whenever the run's state changes — coalesced with
the refresh (`refresh.Refresher`, ~100 ms): sent right after the run's document is rewritten and
with the lens refresh, so the file, the lenses and the pushed state agree; the final state at
once — and renders its Runs view, progress
notification and status bar from them; the server stops reporting work-done progress for those
runs (the client's progress shows the same, with Cancel). `codeact.listRuns` answers with the
same shape, so a view can start from a list and follow the pushes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from codeact_lsp.lsp.replies import RunSummary

if TYPE_CHECKING:
    from codeact_lsp.lsp.run_docs import EditorRun
    from codeact_lsp.lsp.state import ServerState

log = logging.getLogger(__name__)

RUN_STATE = "codeact/runState"


RunState = RunSummary  # the pushed state is the listed one (replies.py)


def run_state(rs: EditorRun, tool: str | None = None) -> RunState | None:
    traj = rs.trajectory()
    if traj is None:
        return None
    pending = next((s.index for s in reversed(traj.steps) if s.status == "awaiting_approval"), None)
    live = rs.handle is not None and not traj.done
    current = traj.steps[-1].index if traj.steps and live else None
    return RunState(
        runId=rs.id,
        task=traj.task,
        status=traj.status,
        trajectoryUri=rs.uri,
        steps=len(traj.steps),
        currentStep=current,
        tool=tool if live and traj.status == "running" else None,
        pendingStep=pending,
        createdAt=traj.created_at,
        updatedAt=traj.updated_at,
        answer=traj.outputs if traj.status == "finished" else None,
        error=traj.error,
        maxIters=traj.max_iters,
        accepted=rs.accepted,  # from the run file: also an earlier session's Accept/Discard
        discarded=rs.discarded,
        live=rs.handle is not None,
        parent=traj.parent,
    )


class RunStatePusher:
    """Sends `codeact/runState` to a client that asked for it; a no-op for the others."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._due: set[str] = set()
        self._tools: dict[str, str | None] = {}  # run id -> tool its current step called last

    @property
    def enabled(self) -> bool:
        options = getattr(self.state.server, "init_options", None)
        return isinstance(options, dict) and options.get("runStateNotifications") is True

    def on_event(self, rs: EditorRun, event: Any) -> None:
        """A run event: note the tool being called, then push the run's state (coalesced)."""
        kind = getattr(event, "kind", "")
        if kind == "tool_called":
            name = (getattr(event, "data", None) or {}).get("name")
            self._tools[rs.id] = None if name == "final_answer" else name
        elif kind in {"model_call", "step_proposed", "step_finished", "awaiting_approval"}:
            self._tools[rs.id] = None
        self.changed(rs)

    def changed(self, rs: EditorRun, *, now: bool = False) -> None:
        if not self.enabled or self.state.closing:
            return
        if now:
            self._due.discard(rs.id)
            self._send(rs)
            return
        self._due.add(rs.id)
        self.state.refresh.schedule()  # its flush rewrites the document, then calls `flush`

    def flush(self) -> None:
        """Send the states due (the refresh calls this after rewriting run documents)."""
        due, self._due = self._due, set()
        for run_id in due:
            rs = self.state.runs.get(run_id)
            if rs is not None:
                self._send(rs)

    def _send(self, rs: EditorRun) -> None:
        current = run_state(rs, self._tools.get(rs.id))
        if current is None:
            return
        if not current.live or current.status not in {"running", "awaiting_approval"}:
            self._tools.pop(rs.id, None)
        with contextlib.suppress(Exception):
            self.state.server.protocol.notify(
                RUN_STATE, current.model_dump(mode="json", exclude_unset=True)
            )

    def tool_of(self, run_id: str) -> str | None:
        return self._tools.get(run_id)

    def cancel(self) -> None:
        self._due.clear()
