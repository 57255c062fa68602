"""Which files and modules hold tools: the `tools` config entries resolved without importing.

An entry is a file glob relative to the workspace (`tools.py`, `tools/**/*.py`, `src/*/tools.py`) or
an importable module name (`shop.tools`). Module names are looked up on disk (workspace, `src/`, the
workspace's virtualenv, then the server's path) with the import system's finders, which read
directories but execute nothing.
"""

from __future__ import annotations

import glob
import importlib.machinery
import os
import re
from dataclasses import dataclass
from pathlib import Path

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "env",
        ".env",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".nox",
        "site-packages",
        ".codeact",
        "build",
        "dist",
    }
)


@dataclass(frozen=True)
class ToolTarget:
    """One tool module: how the host imports it, and where its source is (internal: built for
    thousands of files on every discovery, so a plain dataclass)."""

    entry: str  # the config entry it came from
    module: str  # dotted name the host imports
    file: str | None = None  # source file (None: not found on disk)
    root: str | None = None  # directory that must be on sys.path for `module` to import
    by_path: bool = False  # import from the file under `module` (not importable by name)


def is_module_name(entry: str) -> bool:
    return not entry.endswith(".py") and bool(_MODULE_RE.match(entry))


def module_name_for(
    path: Path, workspace: Path, _pkg_cache: dict[str, bool] | None = None
) -> tuple[str, Path, bool]:
    """(dotted name, sys.path root, by_path) for a file: climb while the parent is a package."""
    name, root, by_path = _module_name(os.path.abspath(path), str(workspace), _pkg_cache or {})
    return name, Path(root), by_path


def _module_name(full: str, ws: str, cache: dict[str, bool]) -> tuple[str, str, bool]:
    base = os.path.basename(full)
    stem = base[:-3] if base.endswith(".py") else base
    parts = [stem] if base != "__init__.py" else []
    parent = os.path.dirname(full)
    while True:
        is_pkg = cache.get(parent)
        if is_pkg is None:
            is_pkg = os.path.isfile(os.path.join(parent, "__init__.py"))
            cache[parent] = is_pkg
        up = os.path.dirname(parent)
        if not is_pkg or up == parent:
            break
        parts.insert(0, os.path.basename(parent))
        parent = up
    name = ".".join(parts)
    if name and all(p.isidentifier() for p in parts):
        return name, parent, False
    # Not importable by name (dashes, a bare __init__ at the root, ...): load it from its path.
    rel = os.path.relpath(full, ws) if full.startswith(ws + os.sep) else base
    synthetic = "codeact_tools_" + re.sub(r"\W", "_", rel[:-3] if rel.endswith(".py") else rel)
    return synthetic, ws, True


def expand_glob(workspace: Path, pattern: str) -> list[str]:
    """Files matching a workspace-relative glob, skipping virtualenvs, caches and VCS dirs (a
    workspace can hold thousands of files there) and private `_name.py` modules."""
    base = str(workspace.resolve())
    full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
    prefix = base + os.sep
    clean = ".." not in pattern and "./" not in pattern and "//" not in pattern
    out: list[str] = []
    for hit in glob.iglob(full, recursive=True):
        if not hit.endswith(".py"):
            continue
        rel = hit[len(prefix) :] if hit.startswith(prefix) else hit
        parts = rel.split(os.sep)
        if any(part in SKIP_DIRS for part in parts[:-1]):
            continue
        name = parts[-1]
        if name.startswith("_") and name != "__init__.py":
            continue
        out.append(
            hit if clean else os.path.normpath(hit)
        )  # a directory named *.py: unreadable later
    return sorted(out)


def search_paths(workspace: Path) -> list[str]:
    paths = [str(workspace), str(workspace / "src")]
    for venv in (".venv", "venv"):
        paths.extend(sorted(glob.glob(str(workspace / venv / "lib" / "python*" / "site-packages"))))
    import sys

    paths.extend(p for p in sys.path if p)
    return paths


def find_module_file(name: str, paths: list[str]) -> tuple[str | None, str | None]:
    """(source file, sys.path root) of a dotted module name, found without executing anything."""
    parts = name.split(".")
    spec = importlib.machinery.PathFinder.find_spec(parts[0], paths)
    if spec is None:
        return None, None
    root: str | None = None
    if spec.submodule_search_locations:
        locs = list(spec.submodule_search_locations)
        root = str(Path(locs[0]).parent) if locs else None
    elif spec.origin:
        root = str(Path(spec.origin).parent)
    for i in range(1, len(parts)):
        locations = list(spec.submodule_search_locations or [])
        if not locations:
            return None, root
        sub = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), locations)
        if sub is None:
            return None, root
        spec = sub
    origin = spec.origin if spec.origin and spec.origin not in ("built-in", "frozen") else None
    if origin is not None and not origin.endswith(".py"):
        return None, root  # an extension module: nothing to read statically
    return origin, root


def resolve_targets(workspace: Path, entries: list[str]) -> tuple[list[ToolTarget], list[str]]:
    """Targets for the config entries, and messages about entries that matched nothing."""
    ws = workspace.resolve()
    targets: list[ToolTarget] = []
    problems: list[str] = []
    seen: set[str] = set()
    paths: list[str] | None = None
    pkg_cache: dict[str, bool] = {}
    ws_str = str(ws)
    for entry in entries:
        if is_module_name(entry):
            if paths is None:
                paths = search_paths(ws)
            file, root = find_module_file(entry, paths)
            if entry in seen:
                continue
            seen.add(entry)
            if file is None and root is None:
                problems.append(
                    f"tools entry {entry!r}: no module of that name in the workspace, src/ or "
                    "the virtualenv (use a file glob like 'tools.py' or 'pkg/**/*.py' for files)"
                )
            targets.append(ToolTarget(entry, entry, file, root))
            continue
        files = expand_glob(ws, entry)
        if not files and not any(ch in entry for ch in "*?["):
            problems.append(f"tools entry {entry!r}: no such file in the workspace")
        for key in files:
            if key in seen:
                continue
            seen.add(key)
            name, root_dir, by_path = _module_name(key, ws_str, pkg_cache)
            targets.append(ToolTarget(entry, name, key, root_dir, by_path))
    return targets, problems
