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
not mediate (see docs/sandbox.md for each attack class and what stops it): metadata of files
outside scratch (chmod/chown/utime are no-ops; xattr reads and writes, file_[gs]etattr and readlink
fail; ioctl is an allowlist), other processes' scheduling, priority, limits and I/O class (pid 0 or
our own only), sockets that address anything (no bind/connect/listen, sendto only without an
address, no sendmsg: no descriptors in flight), memory outside RLIMIT_AS (memfd, System V IPC,
socket and pipe buffer resizing), PDEATHSIG clearing, F_SETOWN, inotify, AIO; any syscall above the
highest number reviewed fails with ENOSYS. From outside, the host puts each worker in cgroups of its
own where it may (memory incl. kernel memory and scratch, a task cap, also for root), stops it
between steps (SIGSTOP: threads a step left do not run) and ends it after `idle_timeout`.
`tests/sandbox/test_redteam.py` and `test_confinement.py` show each attack blocked (the latter also
as `nobody`). Known gaps (Landlock backend; bubblewrap's mounts hide the first three):
`stat`/`access` outside scratch still answer (existence, size, times of files); advisory locks
(flock, fcntl F_SETLK) can be taken on read-only granted files, stalling a writer that uses them;
page-cache residency of readable files (mincore on a mapping) is observable; without a writable
cgroup, kernel memory is bounded by the caps only (about 68 MB beyond the address space) and a root
server gets no thread cap, both reported in `not_enforced` / `isolation`; the seccomp filter is
x86_64-only (elsewhere it is reported as not enforced, loudly).

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
