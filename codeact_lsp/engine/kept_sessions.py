"""Sessions kept for follow-ups: after a run ends, its sandbox stays open (with its variables) so
that a follow-up continues in it; the oldest beyond `max_idle_sessions`, and any idle longer than
`idle_seconds`, are closed, and the reason is kept for the follow-up that finds it gone.

Part of `Engine` (engine/engine.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codeact_lsp.engine.run import RunHandle
    from codeact_lsp.engine.session import Session


class KeptSessions:
    """`Engine`'s idle sandboxes (a mixin: the attributes below are the engine's)."""

    max_idle_sessions: int
    idle_seconds: float
    _runs: dict[str, RunHandle]
    _sessions: dict[str, Session]
    _evicted: dict[str, str]
    _idle_timer: asyncio.TimerHandle | None
    _closing: set[asyncio.Future[None]]
    _closed: bool

    def evict(self, run_id: str, reason: str = "evicted on request") -> bool:
        """Close the idle sandbox a follow-up of `run_id` would continue (False: there is none);
        a later follow-up rebuilds it and says so."""
        session = self._sessions.get(run_id)
        handle = self._runs.get(run_id)
        if session is None or (handle is not None and not handle.done) or session.current:
            return False
        self._drop_session(run_id, session, reason)
        return True

    def _after_end(self, handle: RunHandle) -> None:
        """Keep the last few ended sessions open for follow-ups; close the oldest beyond that,
        and any left idle longer than `idle_seconds`."""
        idle = self._idle()
        excess = len(idle) - self.max_idle_sessions
        for _, rid, session in idle[: max(0, excess)]:
            self._drop_session(
                rid, session, f"evicted: more than {self.max_idle_sessions} idle sessions"
            )
        self._schedule_idle_check()

    def _idle(self) -> list[tuple[float, str, Session]]:
        idle = [
            (s.last_used, rid, s)
            for rid, s in self._sessions.items()
            if (h := self._runs.get(rid)) is not None
            and h.done
            and (s.current is None or s.current.done)  # the run that just ended counts as idle
        ]
        idle.sort(key=lambda item: item[0])
        return idle

    def _drop_session(self, run_id: str, session: Session, reason: str) -> None:
        self._sessions.pop(run_id, None)
        self._evicted[run_id] = reason
        if not any(s is session for s in self._sessions.values()):
            task = asyncio.ensure_future(session.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _schedule_idle_check(self) -> None:
        if self._idle_timer is not None or self._closed or self.idle_seconds <= 0:
            return
        idle = self._idle()
        if not idle:
            return
        due = idle[0][0] + self.idle_seconds - time.monotonic()
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(max(0.0, due), self._evict_idle)

    def _evict_idle(self) -> None:
        self._idle_timer = None
        now = time.monotonic()
        for last_used, rid, session in self._idle():
            if now - last_used >= self.idle_seconds:
                self._drop_session(
                    rid, session, f"evicted: idle for more than {self.idle_seconds:g}s"
                )
        self._schedule_idle_check()

    def _gone_reason(self, run_id: str, live: RunHandle | None, session: Session | None) -> str:
        """Why a follow-up cannot continue the parent's sandbox (for the views and the model)."""
        if run_id in self._evicted:
            return self._evicted[run_id]
        if session is not None and session.busy:
            return "the parent's sandbox is busy with another run"
        if live is None:
            return "the run is only on disk (its sandbox ended with the process that ran it)"
        return "the parent's sandbox was closed"
