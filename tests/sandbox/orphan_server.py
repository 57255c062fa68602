"""A stand-in server for the orphan test: starts a sandbox and a warm spare, prints their pids,
then waits to be killed."""

from __future__ import annotations

import asyncio
import sys

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool, ToolReply, ToolRequest


def handler(req: ToolRequest) -> ToolReply:
    return ToolReply()


async def main(backend: str) -> None:
    pool = SandboxPool(spares=1)
    sb = await Sandbox.start(
        SandboxSettings.model_validate({"backend": backend}), [], handler, pool=pool
    )
    spares = await pool.warmed()
    assert sb._worker is not None
    pids = {sb._worker.proc.pid, sb.pid}
    for w in spares:
        pids |= {w.proc.pid, w.pid}
    print(" ".join(str(p) for p in pids if p), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
