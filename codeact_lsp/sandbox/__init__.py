"""Worker processes that execute untrusted generated code; isolation backends.

See docs/architecture.md ("sandbox"). Typical use::

    pool = SandboxPool()                      # one per process: keeps a warm spare worker
    pool.prewarm(settings, python)            # optional: even the first run skips the cold start
    sb = await Sandbox.start(settings, [ToolStub(name="add")], handler, python=python, pool=pool)
    result = await sb.execute("x = add(1, 2)\\nx * 10")   # ExecResult(value='30', ...)
    await sb.close()

Layout: `worker.py` (stdlib-only, runs in the tools' interpreter) + `confine.py` (Landlock, seccomp,
private tmpfs, PDEATHSIG via ctypes) on the worker's side; `process.py` (one worker: pipes, the
thread that answers tool calls), `pool.py` (warm spares), `backends.py` (what to enforce and how to
report it), `sandbox.py` (timeouts, cancel, crash) on the server's side.

Default of `SandboxSettings.allow_site_packages` (True): generated code may import the libraries
of the tools' own environment, read-only. Models routinely post-process tool results with the same
libraries the tools use (numpy, pandas...), and refusing them makes the model waste steps
re-implementing them. It costs little isolation: those files are already trusted by the user,
Landlock makes them read-only, only the interpreter's own site-packages directories are granted
(`.pth` files are not followed: their paths often point into the workspace, via editable installs,
and their import lines run code), and everything else — the workspace, its `.env`, the home
directory, /proc — stays unreadable. Set it to False for stdlib-only snippets.
"""

from codeact_lsp.sandbox.models import (
    ErrorLocation,
    ExecResult,
    IsolationUnavailable,
    SandboxError,
    SandboxInfo,
    StepError,
    ToolHandler,
    ToolReply,
    ToolRequest,
    ToolStub,
)
from codeact_lsp.sandbox.pool import SandboxPool
from codeact_lsp.sandbox.sandbox import Sandbox

__all__ = [
    "ErrorLocation",
    "ExecResult",
    "IsolationUnavailable",
    "Sandbox",
    "SandboxError",
    "SandboxInfo",
    "SandboxPool",
    "StepError",
    "ToolHandler",
    "ToolReply",
    "ToolRequest",
    "ToolStub",
]
