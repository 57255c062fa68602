"""`from codeact_lsp.mcp.remote.<server> import <tool>`: MCP tools as importable names.

What an accepted program (and anyone's script) writes to call a workspace's MCP tool for real,
outside the sandbox. Each `<server>` module is made on import: its attributes are callables
(`codeact_lsp.mcp.program.mcp_tool`) that start the server from the configuration found from the
current directory upwards, on first call.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

_PREFIX = __name__ + "."


class _ServerModule(types.ModuleType):
    server: str

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        from codeact_lsp.mcp.program import mcp_tool

        tool = mcp_tool(self.server, name)
        setattr(self, name, tool)
        return tool


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _ServerModule(spec.name)
        module.server = spec.name.removeprefix(_PREFIX)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__doc__ = f"The tools of MCP server {getattr(module, 'server', '?')!r}."


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX) or "." in fullname.removeprefix(_PREFIX):
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader())


if not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.append(_Finder())
