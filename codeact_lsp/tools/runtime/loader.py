"""Loading tool modules in the host: which names are tools, and import failures as diagnostics
at the failing line."""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
import types
import typing
from typing import Any

from .describe import JSON
from .registry import Registry

_MISSING = object()


def is_tool_value(name: str, value: Any, module: types.ModuleType) -> bool:
    """Without `__all__`: public callables defined in the module (functions imported from elsewhere
    and classes are not tools; bound methods, partials and callable objects made here are)."""
    if name.startswith("_") or isinstance(value, (type, types.ModuleType)):
        return False
    if not callable(value):
        return False
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return getattr(value, "__module__", None) == module.__name__
    return not typing.get_origin(value) and type(value).__module__ != "typing"


def module_tools(module: types.ModuleType) -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, value) pairs of a module's tools, and names of `__all__` that are not callable."""
    names = getattr(module, "__all__", None)
    bad: list[str] = []
    found: list[tuple[str, Any]] = []
    if names is not None:
        for name in list(names):
            value = getattr(module, str(name), _MISSING)
            if value is _MISSING:  # `__all__ = ["min", "max"]`: the builtins, exported as tools
                value = getattr(builtins, str(name), _MISSING)
            if value is _MISSING or not callable(value) or isinstance(value, type):
                bad.append(str(name))
            else:
                found.append((str(name), value))
        return found, bad
    for name, value in vars(module).items():
        if is_tool_value(name, value, module):
            found.append((name, value))
    return found, bad


def _all_line(file: str | None) -> int:
    if file is None:
        return 1
    try:
        with open(file, encoding="utf-8") as fh:
            for number, text in enumerate(fh, 1):
                if text.startswith("__all__"):
                    return number
    except (OSError, UnicodeDecodeError):
        pass
    return 1


def _failure_line(exc: BaseException, file: str | None) -> int:
    if (
        isinstance(exc, SyntaxError)
        and exc.lineno
        and (file is None or not exc.filename or os.path.abspath(exc.filename) == file)
    ):
        return int(exc.lineno)
    line = 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if file is not None and os.path.abspath(frame.filename) == file and frame.lineno:
            line = frame.lineno
    return line


def load_targets(registry: Registry, targets: list[JSON]) -> None:
    """Import each target ({"module": name, "file": path|None}); a failure becomes a diagnostic at
    the failing line of that module and the other modules still load."""
    for target in targets:
        modname = str(target["module"])
        file = os.path.abspath(target["file"]) if target.get("file") else None
        try:
            if file is not None and target.get("by_path"):
                spec = importlib.util.spec_from_file_location(modname, file)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {file}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[modname] = module
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(modname)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            where = file or getattr(exc, "filename", None) or ""
            registry.diagnostics.append(
                {
                    "file": where,
                    "line": _failure_line(exc, file),
                    "severity": "error",
                    "message": f"importing {modname} failed: {type(exc).__name__}: {exc}",
                    "code": "import-error",
                    "tool": None,
                    "source": "runtime",
                }
            )
            continue
        registry.note_module(module)
        mod_file = getattr(module, "__file__", None)
        file = file or (os.path.abspath(mod_file) if isinstance(mod_file, str) else None)
        found, bad = module_tools(module)
        for name in bad:
            value = getattr(module, name, _MISSING)
            if isinstance(value, type):
                continue  # an exported class: not a tool, and not a mistake (static analysis says so)
            registry.diagnostics.append(
                {
                    "file": file or "",
                    "line": _all_line(file),
                    "severity": "error",
                    "message": f"{name!r} is listed in __all__ but "
                    + ("is not defined" if value is _MISSING else "is not callable"),
                    "code": "not-callable",
                    "tool": name,
                    "source": "runtime",
                }
            )
        for name, value in found:
            if name in registry.tools and registry.tools[name].module != modname:
                other = registry.tools[name].module
                registry.diagnostics.append(
                    {
                        "file": file or "",
                        "line": 1,
                        "severity": "error",
                        "message": f"tool {name!r} is also defined in {other}; this one wins",
                        "code": "tool-name-collision",
                        "tool": name,
                        "source": "runtime",
                    }
                )
            try:
                registry.add(name, value, modname)
            except Exception as exc:
                registry.diagnostics.append(
                    {
                        "file": file or "",
                        "line": 1,
                        "severity": "error",
                        "message": f"cannot describe tool {name!r}: {type(exc).__name__}: {exc}",
                        "code": "schema-error",
                        "tool": name,
                        "source": "runtime",
                    }
                )
