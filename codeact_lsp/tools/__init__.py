"""Workspace tools: static discovery (no import) and the tool host (runtime). See
docs/architecture.md, section "tools"."""

from codeact_lsp.tools.discovery import analyse_source, clear_cache, discover, module_for_file
from codeact_lsp.tools.host import ToolHost
from codeact_lsp.tools.inprocess import InProcessTools
from codeact_lsp.tools.models import (
    DiscoveredTool,
    Discovery,
    ToolDiagnostic,
    ToolOutcome,
    ToolProvider,
    ToolSchema,
)

__all__ = [
    "DiscoveredTool",
    "Discovery",
    "InProcessTools",
    "ToolDiagnostic",
    "ToolHost",
    "ToolOutcome",
    "ToolProvider",
    "ToolSchema",
    "analyse_source",
    "clear_cache",
    "discover",
    "module_for_file",
]
