"""The tool runtime: describing, validating and calling tools, and the tool host's main loop.

Stdlib only (pydantic when the interpreter has it). It runs in two places: imported by the server
process as `codeact_lsp.tools.runtime` (`InProcessTools`, the Python API), and loaded *by path*
in the workspace's own interpreter as the tool host (see `BOOT`), where codeact_lsp and pydantic
may be missing. So modules here import only each other (relatively) and the codec, never the rest
of codeact_lsp.

Modules: `describe` (kinds, signatures), `schema` (JSON schemas, validation, `Tool`), `errors`
(results and error locations), `registry` (calling, output capture), `loader` (tool modules),
`serve` (the host's protocol loop), `quality` (the tool-quality rules, shared with static
discovery).

Host protocol (JSON lines on private descriptors; the tools' own stdout never reaches them):
  host -> client  {"op": "ready", "schemas": [...], "diagnostics": [...], "exceptions": [...], ...}
  client -> host  {"id": n, "name": ..., "args": [wire...], "kwargs": {name: wire}, "timeout": s}
  host -> client  {"id": n, "ok": ..., "result": wire, "bound_args": ..., "error": ..., ...}
Values are the typed codec's wire form (`codeact_lsp/sandbox/codec.py`).
"""

from __future__ import annotations

import os

from .errors import error_location, to_json
from .loader import load_targets, module_tools
from .registry import Registry
from .schema import Tool, tool_quality

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# How the host starts: the package is loaded by path under a private name (a workspace module
# called `runtime` or `serve` is not shadowed, and nothing needs codeact_lsp installed).
BOOT = (
    "import sys, importlib.util as u; d = sys.argv.pop(1); "
    "s = u.spec_from_file_location('_codeact_runtime', d + '/__init__.py', "
    "submodule_search_locations=[d]); m = u.module_from_spec(s); sys.modules[s.name] = m; "
    "s.loader.exec_module(m); from _codeact_runtime import serve; serve.main()"
)

__all__ = [
    "BOOT",
    "PACKAGE_DIR",
    "Registry",
    "Tool",
    "error_location",
    "load_targets",
    "module_tools",
    "to_json",
    "tool_quality",
]
