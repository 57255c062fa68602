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

Trust: once a snippet has run, the worker process is the attacker's (it can patch the worker,
read and write its protocol pipes, forge any frame). So the host decides from what it saw itself:
a tool call is answered only while one of its "exec" requests is in flight, for an exposed tool,
and not after final_answer's reply said stop; `stopped` / `cancelled` come from the host's own
replies and interrupts; each snippet's "done" carries its number; everything received is size
capped, clipped and stripped of lone surrogates. Kernel side, seccomp covers what Landlock does
not mediate: metadata of files outside scratch (chmod/chown/utime are no-ops, xattr writes and
inode-flag ioctls fail), memory outside RLIMIT_AS (memfd, System V IPC), PDEATHSIG clearing,
F_SETOWN, inotify, AIO; and `tests/sandbox/test_redteam.py` shows each attack blocked. Known
gaps: `stat`/`access` outside scratch still answer (existence and size of files, Landlock
backend only: bubblewrap mounts hide them), and a root server gets no thread cap (RLIMIT_NPROC
does not apply to root; a user's server gets 256 tasks per worker).

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
