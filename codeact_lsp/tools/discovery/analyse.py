"""One module's tools and diagnostics, from its text: a file's (cached by path, size and mtime)
or an unsaved buffer's (cached by its text)."""

from __future__ import annotations

import ast
import os
import threading
from collections import OrderedDict
from pathlib import Path

from codeact_lsp.tools.discovery import parse
from codeact_lsp.tools.discovery.bindings import ModuleNames, render_signature, resolve
from codeact_lsp.tools.discovery.quality import BUILTIN_NAMES, name_checks, quality
from codeact_lsp.tools.models import DiscoveredTool, ToolDiagnostic


def analyse_source(
    path: str | os.PathLike[str], text: str, module: str | None = None
) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    """Tools and diagnostics of one module's text (an unsaved buffer, or a file's content).

    Cross-module checks (name collisions) need the whole workspace: `discover` adds them.
    """
    if text.count("\n") < parse.CHUNKED_MIN_LINES:
        return _analyse(path, text, module)
    with parse.chunks_lock:  # the cached blocks' line numbers must not move while they are read
        return _analyse(path, text, module)


def _analyse(
    path: str | os.PathLike[str], text: str, module: str | None
) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    file = str(path)
    modname = module or Path(file).stem
    diags: list[ToolDiagnostic] = []
    try:
        tree = parse.parse_module(text, file)
    except SyntaxError as exc:
        diags.append(
            ToolDiagnostic(
                file=file,
                line=exc.lineno or 1,
                end_line=exc.end_lineno,
                column=max((exc.offset or 1) - 1, 0),
                severity="error",
                message=f"syntax error: {exc.msg}; no tools from this module can load",
                code="syntax-error",
            )
        )
        return [], diags
    except ValueError as exc:  # null bytes
        diags.append(
            ToolDiagnostic(file=file, severity="error", message=str(exc), code="syntax-error")
        )
        return [], diags
    mod = ModuleNames(tree)
    tools: list[DiscoveredTool] = []

    if mod.all_names is not None and not mod.all_dynamic:
        names = list(dict.fromkeys(mod.all_names))
        from_all = True
    else:
        if mod.all_dynamic and mod.all_node is not None:
            diags.append(
                ToolDiagnostic(
                    file=file,
                    line=mod.all_node.lineno,
                    severity="info",
                    message="__all__ is computed at import time: the tool list is known only "
                    "once the tool host has loaded the module",
                    code="dynamic-all",
                )
            )
        lines = {n: node.lineno for n, node in mod.defs.items()}
        lines.update({n: bound[0].lineno for n, bound in mod.assigns.items()})
        names = sorted((n for n in lines if not n.startswith("_")), key=lines.__getitem__)
        from_all = False

    for name in names:
        res = resolve(mod, name)
        binding: ast.stmt | None = mod.defs.get(name) or (
            mod.assigns[name][0] if name in mod.assigns else None
        )
        if res is None:
            if not from_all:
                continue
            imported = mod.imports.get(name)
            if imported is not None:
                origin = None
                if isinstance(imported, ast.ImportFrom):
                    real = next(
                        (a.name for a in imported.names if (a.asname or a.name) == name), name
                    )
                    origin = f"{'.' * imported.level}{imported.module or ''}:{real}"
                tools.append(
                    DiscoveredTool(
                        name=name,
                        module=modname,
                        file=file,
                        line=imported.lineno,
                        end_line=imported.end_lineno or imported.lineno,
                        signature="",
                        kind="function",
                        resolved=False,
                        imported_from=origin,
                    )
                )
                continue
            where = mod.all_node.lineno if mod.all_node is not None else 1
            if binding is None and name in BUILTIN_NAMES:  # `__all__ = ["min"]`: the builtin
                tools.append(
                    DiscoveredTool(
                        name=name,
                        module=modname,
                        file=file,
                        line=where,
                        end_line=where,
                        signature="",
                        kind="builtin",
                        resolved=False,
                        imported_from=f"builtins:{name}",
                    )
                )
                continue
            severity = "error"
            code = "all-undefined"
            if binding is None:
                msg = f"{name!r} is listed in __all__ but not defined in this module"
            elif isinstance(binding, ast.ClassDef):
                # exporting a type the tools use is fine; it is just not a tool itself
                msg = f"{name!r} is a class: it is exported, but not offered to the model as a tool"
                severity, code = "info", "class-not-tool"
            else:
                continue  # a value the runtime may find callable (or report): leave it to the host
            diags.append(
                ToolDiagnostic(
                    file=file,
                    line=where,
                    severity=severity,  # type: ignore[arg-type]
                    message=msg,
                    code=code,
                    tool=name,
                )
            )
            continue
        bind_line = binding.lineno if binding is not None else 1
        func = res.func
        if func is not None:
            line = func.lineno
            if func.decorator_list:
                line = min(d.lineno for d in func.decorator_list)
            end = func.end_lineno or func.lineno
            doc = ast.get_docstring(func) or ""
            is_async = isinstance(func, ast.AsyncFunctionDef)
        else:
            line = bind_line
            end = (binding.end_lineno if binding is not None else None) or bind_line
            doc = ""
            is_async = False
        tools.append(
            DiscoveredTool(
                name=name,
                module=modname,
                file=file,
                line=line,
                end_line=end,
                signature=render_signature(name, res),
                doc=doc,
                is_async=is_async,
                kind="async" if is_async else res.kind,
                binding_line=bind_line if bind_line != line else None,
                resolved=func is not None,
            )
        )
        quality(name, res, file, line, diags)
        name_checks(name, file, bind_line, diags)
    return tools, diags


_Key = tuple[str, int, int]
_cache: dict[str, tuple[_Key, list[DiscoveredTool], list[ToolDiagnostic]]] = {}
_cache_lock = threading.Lock()


def analyse_file(path: str, module: str) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    try:
        st = os.stat(path)
    except OSError as exc:
        return [], [
            ToolDiagnostic(file=path, severity="error", message=str(exc), code="unreadable")
        ]
    key = (module, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [
            ToolDiagnostic(
                file=path, severity="error", message=f"unreadable: {exc}", code="unreadable"
            )
        ]
    tools, diags = analyse_source(path, text, module)
    with _cache_lock:
        _cache[path] = (key, tools, diags)
    return tools, diags


_texts: OrderedDict[tuple[str, str, str], tuple[list[DiscoveredTool], list[ToolDiagnostic]]] = (
    OrderedDict()
)


def analyse_text(
    file: str, text: str, module: str
) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    """An unsaved buffer, cached by its text: open editors are re-read on every discovery."""
    key = (file, module, text)
    with _cache_lock:
        hit = _texts.get(key)
        if hit is not None:
            _texts.move_to_end(key)
            return hit
    result = analyse_source(file, text, module)
    with _cache_lock:
        _texts[key] = result
        while len(_texts) > 64:
            _texts.popitem(last=False)
    return result


def clear_cache() -> None:
    """Forget every analysed file and buffer, and the parse cache."""
    with _cache_lock:
        _cache.clear()
        _texts.clear()
    parse.clear()
