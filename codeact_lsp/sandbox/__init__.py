"""Worker processes that execute untrusted generated code; isolation backends.

See docs/architecture.md ("sandbox"). Typical use::

    pool = SandboxPool()                      # one per process: keeps a warm spare worker
    sb = await Sandbox.start(settings, [ToolStub(name="add")], handler, pool=pool)
    result = await sb.execute("x = add(1, 2)\\nx * 10")
    await sb.close()
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
