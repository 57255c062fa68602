"""What outlives a forgotten `close()`: the loop thread, the engine and the tools of one `CodeAct`,
shut down together (by `close()`, or by the garbage collector through a finalizer)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from codeact_lsp.api._loop import LoopThread

if TYPE_CHECKING:
    from codeact_lsp.engine import Engine
    from codeact_lsp.tools import InProcessTools


class Shared:
    """What outlives a forgotten `close()`: the loop, the engine and the tools, shut down together."""

    def __init__(self, tools: InProcessTools) -> None:
        self.tools: InProcessTools | None = tools
        self.engine: Engine | None = None
        self.loop = LoopThread()
        self.lock = asyncio.Lock()  # created here, first used on the private loop only

    async def aclose(self) -> None:
        engine, tools, self.engine, self.tools = self.engine, self.tools, None, None
        if engine is not None:
            await engine.close()
        if tools is not None:
            await tools.close()

    def shutdown(self) -> None:
        """Close everything; also runs from the garbage collector, on whatever thread drops the
        last reference (the loop thread included, where it must not block)."""
        if not self.loop.alive:
            return
        if self.loop.in_loop_thread():
            task = self.loop.loop.create_task(self.aclose())
            task.add_done_callback(lambda _: self.loop.loop.stop())
            return
        try:
            self.loop.run(self.aclose())
        finally:
            self.loop.stop()
