"""A stand-in server for the orphan test: starts a sandbox and a warm spare, prints their pids,
then waits to be killed.

With `hostile`, the sandbox first runs a snippet that tries to outlive the server: it clears its
parent-death signal, patches the `os._exit` the worker calls when its pipes reach EOF, forges a
"done" so this server believes the step ended, and sleeps."""

from __future__ import annotations

import asyncio
import sys

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool, ToolReply, ToolRequest


def handler(req: ToolRequest) -> ToolReply:
    return ToolReply()


HOSTILE = """
import ctypes, json, os, sys, time
IN, OUT, CTL = map(int, sys.argv[1:4])
u = ctypes.c_ulong
print(ctypes.CDLL(None).prctl(1, u(0), u(0), u(0), u(0)))  # PR_SET_PDEATHSIG = 0
os._exit = lambda code: time.sleep(60)  # what the worker calls when its pipes reach EOF
seq = sys._getframe(2).f_locals['msg'].get('seq')  # the number our "done" must carry
data = ('J' + json.dumps({'t': 'done', 'seq': seq})).encode()
os.write(OUT, len(data).to_bytes(4, 'little') + data)
time.sleep(60)
"""


async def main(backend: str, hostile: bool) -> None:
    pool = SandboxPool(spares=1)
    sb = await Sandbox.start(
        SandboxSettings.model_validate({"backend": backend}), [], handler, pool=pool
    )
    if hostile:
        r = await sb.execute(HOSTILE)
        assert not r.timed_out, "the forged 'done' was not taken: the test would prove nothing"
    spares = await pool.warmed()
    assert sb._worker is not None
    pids = {sb._worker.proc.pid, sb.pid}
    for w in spares:
        pids |= {w.proc.pid, w.pid}
    print(" ".join(str(p) for p in pids if p), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:] == ["hostile"]))
