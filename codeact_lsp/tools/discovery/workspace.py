"""Discovery across a workspace: every tool module the config points at, re-exports followed to
their definitions, and tool names that collide between modules."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from codeact_lsp.config import DEFAULT_TOOL_GLOBS, CodeActConfig
from codeact_lsp.tools.discovery.analyse import analyse_file, analyse_text
from codeact_lsp.tools.models import DiscoveredTool, Discovery, ToolDiagnostic
from codeact_lsp.tools.targets import module_name_for, resolve_targets


def discover(
    workspace: str | os.PathLike[str],
    config: CodeActConfig | None = None,
    sources: Mapping[str, str] | None = None,
) -> Discovery:
    """Every tool the workspace's config points at, read statically.

    `sources` maps file paths to unsaved editor text, which replaces the file's content on disk.
    """
    started = time.perf_counter()
    ws = Path(workspace).resolve()
    cfg = config or CodeActConfig()
    overrides = {str(Path(k).resolve()): v for k, v in (sources or {}).items()}
    targets, problems = resolve_targets(ws, cfg.tools)
    out = Discovery()
    if cfg.tools != DEFAULT_TOOL_GLOBS:
        for msg in problems:
            out.diagnostics.append(
                ToolDiagnostic(
                    file=_config_file(ws),
                    severity="error",
                    message=msg,
                    code="config-tools",
                    source="config",
                )
            )
    for target in targets:
        if target.file is None:
            continue
        out.files.append(target.file)
        out.modules[target.module] = target.file
        if target.file in overrides:
            tools, diags = analyse_text(target.file, overrides[target.file], target.module)
        else:
            tools, diags = analyse_file(target.file, target.module)
        out.tools.extend(tools)
        out.diagnostics.extend(diags)
    _follow_reexports(out, ws)
    if cfg.confirm:
        for i, tool in enumerate(out.tools):
            if cfg.needs_confirmation(tool.name):
                out.tools[i] = tool.model_copy(update={"confirm": True})  # cached: copy
    _collisions(out)
    out.duration_ms = (time.perf_counter() - started) * 1000
    return out


def _origin_file(tool: DiscoveredTool, ws: Path) -> str | None:
    """The workspace file a re-exported tool comes from (`from .ops import add`), if any."""
    if not tool.imported_from:
        return None
    spec, _, _name = tool.imported_from.partition(":")
    level = len(spec) - len(spec.lstrip("."))
    parts = [p for p in spec.lstrip(".").split(".") if p]
    if level:
        base = os.path.dirname(tool.file)
        for _ in range(level - 1):
            base = os.path.dirname(base)
        bases = [base]
    else:
        bases = [str(ws), str(ws / "src")]
    for base in bases:
        stem = os.path.join(base, *parts)
        for cand in (stem + ".py", os.path.join(stem, "__init__.py")):
            if parts and os.path.isfile(cand):
                return cand
    return None


def _follow_reexports(out: Discovery, ws: Path) -> None:
    """Give a tool re-exported by import the signature, doc and range of its definition, when
    that is a workspace file (a package's `__init__` exporting its submodules' functions)."""
    for i, tool in enumerate(out.tools):
        origin = _origin_file(tool, ws)
        if origin is None or tool.imported_from is None:
            continue
        real = tool.imported_from.partition(":")[2]
        try:
            with open(origin, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        # Ask for exactly that name, as if the module exported only it (appended: lines stay).
        found, diags = analyse_text(origin, f"{text}\n__all__ = [{real!r}]\n", tool.module)
        target = next((t for t in found if t.name == real and t.resolved), None)
        if target is None:
            continue
        signature = target.signature.replace(f"def {real}(", f"def {tool.name}(", 1)
        out.tools[i] = target.model_copy(
            update={
                "name": tool.name,
                "module": tool.module,
                "signature": signature,
                "binding_line": None,
                "imported_from": tool.imported_from,
                "confirm": tool.confirm,
            }
        )
        known = {(d.file, d.line, d.code, d.tool) for d in out.diagnostics}
        for d in diags:
            if d.tool == real and (d.file, d.line, d.code, d.tool) not in known:
                out.diagnostics.append(d)


def _collisions(out: Discovery) -> None:
    by_name: dict[str, list[DiscoveredTool]] = {}
    for tool in out.tools:
        by_name.setdefault(tool.name, []).append(tool)
    for name, same in by_name.items():
        if len(same) < 2:
            continue
        for tool in same:
            others = ", ".join(sorted({t.module for t in same if t is not tool}))
            out.diagnostics.append(
                ToolDiagnostic(
                    file=tool.file,
                    line=tool.binding_line or tool.line,
                    severity="error",
                    code="tool-name-collision",
                    message=f"tool name {name!r} is also defined in {others}: the model can call "
                    "only one of them; rename one or leave it out of __all__",
                    tool=name,
                )
            )


def _config_file(ws: Path) -> str:
    for name in ("codeact.toml", "pyproject.toml"):
        if (ws / name).is_file():
            return str(ws / name)
    return str(ws)


def module_for_file(workspace: str | os.PathLike[str], file: str | os.PathLike[str]) -> str:
    """The module name the host will import a file under (for editors analysing one buffer)."""
    return module_name_for(Path(file), Path(workspace).resolve())[0]
