"""The import-layer contract (docs/architecture.md): imports only point down.

    lsp / cli / api / mcp.server / demo  (the ways in: editor, command line, Python, MCP clients)
      → assemble                         (engine + tools, built the same way for each way in)
        → mcp                            (MCP servers' tools, served beside the workspace's)
          → engine                       (the CodeAct loop)
            → tools → sandbox            (workspace tools; worker processes for untrusted code)
              → trajectory / config      (the shared records)

Every `import` counts, also the lazy ones inside functions, those under TYPE_CHECKING and
`importlib.import_module("codeact_lsp....")` with a literal name: a lazy import is still a
dependency. The few allowed exceptions are listed in ALLOWED with the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "codeact_lsp"

# Higher number = higher layer. A module may import its own area and any lower layer.
LAYERS: dict[str, int] = {
    "codeact_lsp": 0,  # the package itself: `__version__`
    "codeact_lsp.trajectory": 0,
    "codeact_lsp.config": 0,
    "codeact_lsp.termsafe": 0,
    "codeact_lsp.sandbox": 1,
    "codeact_lsp.tools": 2,
    "codeact_lsp.engine": 3,
    "codeact_lsp.mcp": 4,
    "codeact_lsp.assemble": 5,
    "codeact_lsp.lsp": 6,
    "codeact_lsp.cli": 6,
    "codeact_lsp.api": 6,
    "codeact_lsp.mcp.server": 6,
    "codeact_lsp.demo": 6,
    "codeact_lsp.__main__": 6,
}

# (importing area, imported area): why this edge is allowed although it is not "down".
ALLOWED: dict[tuple[str, str], str] = {
    ("codeact_lsp", "codeact_lsp.api"): "`from codeact_lsp import CodeAct`: re-exported lazily",
    ("codeact_lsp.__main__", "codeact_lsp.lsp"): "`python -m codeact_lsp` starts the server",
    ("codeact_lsp.cli", "codeact_lsp.mcp.server"): "`codeact mcp` serves the MCP server",
}


def _area(module: str) -> str | None:
    """The layer entry a module belongs to (its longest prefix in LAYERS)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in LAYERS:
            return candidate
    return None


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "codeact_lsp":
                for alias in node.names:
                    yield f"codeact_lsp.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
        ):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg.value, node.lineno


def violations() -> list[str]:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_of(path)
        src_area = _area(source)
        assert src_area is not None, f"{source} is in no layer: add it to LAYERS"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, line in _imports(tree):
            if not target.startswith("codeact_lsp"):
                continue
            dst_area = _area(target)
            if dst_area is None or dst_area == src_area or (src_area, dst_area) in ALLOWED:
                continue
            if dst_area == "codeact_lsp" and target == "codeact_lsp.__version__":
                continue
            if LAYERS[dst_area] >= LAYERS[src_area]:
                rel = path.relative_to(PACKAGE.parent)
                found.append(f"{rel}:{line}: {src_area} imports {target} ({dst_area})")
    return found


def test_imports_only_point_down_the_layers() -> None:
    problems = violations()
    assert not problems, "imports against the layers (docs/architecture.md):\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(
    ("source", "code", "bad"),
    [
        ("codeact_lsp.engine.x", "from codeact_lsp.lsp.state import ServerState", True),
        ("codeact_lsp.sandbox.x", "import codeact_lsp.tools.host", True),
        ("codeact_lsp.tools.x", "def f():\n    from codeact_lsp.engine import Engine", True),
        ("codeact_lsp.config", "importlib.import_module('codeact_lsp.engine')", True),
        ("codeact_lsp.lsp.x", "from codeact_lsp.engine import Engine", False),
        ("codeact_lsp.tools.x", "from codeact_lsp.sandbox import Sandbox", False),
    ],
)
def test_the_checker_sees_each_kind_of_import(source: str, code: str, bad: bool) -> None:
    src_area = _area(source)
    assert src_area is not None
    targets = [t for t, _ in _imports(ast.parse(code)) if t.startswith("codeact_lsp")]
    areas = [a for t in targets if (a := _area(t)) is not None]
    assert areas, code
    assert any(LAYERS[a] >= LAYERS[src_area] and a != src_area for a in areas) is bad
