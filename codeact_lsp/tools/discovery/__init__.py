"""Static tool discovery: read tool modules with `ast`, never import or execute them.

It runs on every edit (code lenses, diagnostics), so each file's analysis is cached by path, size
and mtime, and `analyse_source` re-analyses one unsaved buffer on its own. What static analysis
cannot know (a tool imported from a library, a callable built at import time) is left to the tool
host, which reports the authoritative schemas.

Modules: `parse` (incremental parsing), `bindings` (what names are bound to; signatures),
`quality` (the checks), `analyse` (one module), `workspace` (all of them: `discover`).
"""

from __future__ import annotations

from codeact_lsp.tools.discovery.analyse import analyse_source, clear_cache
from codeact_lsp.tools.discovery.workspace import discover, module_for_file

__all__ = ["analyse_source", "clear_cache", "discover", "module_for_file"]
