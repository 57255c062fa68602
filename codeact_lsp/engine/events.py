"""Run events: an async stream that the CLI and the language server both consume.

Every change to a trajectory is followed by an event, so a view can simply re-read the trajectory
whenever one arrives. A subscriber first receives the events it missed (a late subscriber still sees
`started`), then live ones, and the stream ends after the run's terminal event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, Field

EventKind = Literal[
    "started",
    "model_call",
    "model_retry",
    "model_delta",  # a piece of the reply as it streams in (Engine(stream=True))
    "step_proposed",
    "awaiting_approval",
    "executing",
    "tool_called",
    "step_finished",
    "finished",
    "failed",
    "cancelled",
    "max_iters",
]
TERMINAL_EVENTS: frozenset[str] = frozenset({"finished", "failed", "cancelled", "max_iters"})


class RunEvent(BaseModel):
    kind: EventKind
    run_id: str
    step: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventLog:
    """History plus fan-out to subscribers' queues. Only touched from the event loop."""

    def __init__(self) -> None:
        self.history: list[RunEvent] = []
        self._queues: list[asyncio.Queue[RunEvent | None]] = []
        self.closed = False

    def publish(self, event: RunEvent) -> None:
        if self.closed:
            return
        self.history.append(event)
        for queue in self._queues:
            queue.put_nowait(event)
        if event.kind in TERMINAL_EVENTS:
            self.closed = True
            for queue in self._queues:
                queue.put_nowait(None)
            self._queues.clear()

    async def subscribe(self, replay: bool = True) -> AsyncIterator[RunEvent]:
        past = list(self.history) if replay else []
        if self.closed:
            for event in past:
                yield event
            return
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
        self._queues.append(queue)
        try:
            for event in past:
                yield event
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            if queue in self._queues:
                self._queues.remove(queue)
