"""codeact-lsp: run CodeAct agents from the editor, on your workspace's own tools, in a sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from codeact_lsp.api import (
        Approve,
        CodeAct,
        PendingStep,
        Reject,
        Result,
        RunError,
        Session,
        scripted,
    )

# The Python API loads on first use: `import codeact_lsp` (done by the language server at startup)
# must stay cheap, and `from codeact_lsp import CodeAct` must not pull in litellm or pygls.
__all__ = [
    "Approve",
    "CodeAct",
    "PendingStep",
    "Reject",
    "Result",
    "RunError",
    "Session",
    "scripted",
]
_LAZY = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from codeact_lsp import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'codeact_lsp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
