"""Static discovery: tools and diagnostics from reading the source, never importing it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.tools import analyse_source, discover, module_for_file

from .conftest import line_of

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"


def test_quickstart_tools_bound_by_assignment_are_found() -> None:
    found = discover(QUICKSTART, load_config(QUICKSTART).config)
    names = [t.name for t in found.tools]
    assert sorted(names) == [
        "convert_currency",
        "price_of",
        "reserve",
        "shipping_quote",
        "stock_level",
    ]
    stock = found.tool("stock_level")
    assert stock is not None
    assert stock.signature == "def stock_level(sku: str) -> int"
    assert stock.kind == "method"
    tools_py = QUICKSTART / "tools.py"
    assert stock.line == line_of(tools_py, "def stock_level")
    assert stock.binding_line == line_of(tools_py, "stock_level = _inventory.stock_level")
    assert stock.doc.startswith("Units of `sku`")
    quote = found.tool("shipping_quote")
    assert quote is not None and quote.is_async and quote.kind == "async"
    # async tools are plain synchronous calls in the sandbox: the stub says `def`
    assert quote.signature == "def shipping_quote(weight_kg: float, country: str) -> float"
    assert found.diagnostics == []
    assert [t.name for t in found.tools if t.confirm] == ["reserve"]


def test_every_kind_in_the_fixture(ws: Path) -> None:
    found = discover(ws, load_config(ws).config)
    by_name = {t.name: t for t in found.tools if t.module == "kinds"}
    assert by_name["increment"].signature == "def increment(by: int = 1) -> int"
    assert by_name["multiply"].signature == "def multiply(x: float) -> float"
    assert by_name["multiply"].kind == "callable"
    assert by_name["power_of_two"].signature == "def power_of_two(exponent: int) -> int"
    assert by_name["power_of_two"].kind == "partial"
    # imported from elsewhere or built at import time: only the host can describe them
    assert not by_name["gcd"].resolved and by_name["gcd"].signature == ""
    assert not by_name["to_snake"].resolved
    assert not by_name["greet"].resolved
    assert by_name["fetch_async"].is_async
    assert found.modules["pkg.tools"].endswith(os.path.join("pkg", "tools.py"))
    assert "loud" in {t.name for t in found.tools}


def test_without_all_public_callables_defined_in_the_module(ws: Path) -> None:
    found = discover(ws, load_config(ws).config)
    names = {t.name for t in found.tools if t.module == "quality"}
    assert names == {"undocumented", "vague", "sum", "add", "no_hints"}  # no imports, no privates


def test_quality_diagnostics_point_at_the_line(ws: Path) -> None:
    found = discover(ws, load_config(ws).config)
    quality = ws / "quality.py"
    diags = {(d.code, d.tool, d.line) for d in found.diagnostics if d.file == str(quality)}
    assert ("tool-no-docstring", "undocumented", line_of(quality, "def undocumented")) in diags
    assert ("tool-any-annotation", "vague", line_of(quality, "def vague")) in diags
    assert ("tool-varargs", "vague", line_of(quality, "def vague")) in diags
    assert ("tool-shadows-builtin", "sum", line_of(quality, "def sum")) in diags
    assert ("tool-no-annotation", "no_hints", line_of(quality, "def no_hints")) in diags
    assert ("tool-no-return-annotation", "no_hints", line_of(quality, "def no_hints")) in diags
    varargs = next(d for d in found.diagnostics if d.code == "tool-varargs")
    assert "*args and **kwargs" in varargs.message


def test_name_collision_reported_in_both_modules(ws: Path) -> None:
    found = discover(ws, load_config(ws).config)
    hits = [d for d in found.diagnostics if d.code == "tool-name-collision"]
    assert {Path(d.file).name for d in hits} == {"kinds.py", "quality.py"}
    assert all(d.tool == "add" and d.severity == "error" for d in hits)
    in_kinds = next(d for d in hits if d.file.endswith("kinds.py"))
    assert "quality" in in_kinds.message
    assert in_kinds.line == line_of(ws / "kinds.py", "def add(")


def test_syntax_error_at_its_line_other_modules_still_found(ws: Path) -> None:
    found = discover(ws, load_config(ws).config)
    err = next(d for d in found.diagnostics if d.code == "syntax-error")
    assert err.file == str(ws / "broken" / "syntax.py")
    assert err.line == 5 and err.severity == "error"
    assert "add" in {t.name for t in found.tools}


def test_analyse_source_unsaved_buffer_and_discover_sources(ws: Path) -> None:
    text = (
        "__all__ = ['shout', 'missing']\n\ndef shout(text: str) -> str:\n    return text.upper()\n"
    )
    tools, diags = analyse_source(ws / "scratch.py", text, "scratch")
    assert [t.name for t in tools] == ["shout"]
    assert {d.code for d in diags} == {"tool-no-docstring", "all-undefined"}
    assert next(d for d in diags if d.code == "all-undefined").line == 1
    # an unsaved edit replaces the file's text in a workspace discovery
    quality = ws / "quality.py"
    edited = quality.read_text().replace(
        "def undocumented(x: int) -> int:\n",
        'def undocumented(x: int) -> int:\n    """Now documented."""\n',
    )
    found = discover(ws, load_config(ws).config, sources={str(quality): edited})
    assert not any(d.code == "tool-no-docstring" for d in found.diagnostics)


def test_cache_follows_file_changes(fresh_ws: Path) -> None:
    cfg = CodeActConfig(tools=["quality.py"])
    first = discover(fresh_ws, cfg)
    assert "renamed" not in {t.name for t in first.tools}
    quality = fresh_ws / "quality.py"
    quality.write_text(
        quality.read_text() + '\n\ndef renamed(x: int) -> int:\n    """New."""\n    return x\n'
    )
    st = quality.stat()
    os.utime(quality, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = discover(fresh_ws, cfg)
    assert "renamed" in {t.name for t in second.tools}


def test_all_forms_and_dynamic_all() -> None:
    text = (
        "from math import gcd\n"
        "__all__ = ['a']\n__all__ += ['b']\n__all__.append('gcd')\n__all__.extend(('c',))\n"
        "def a() -> int:\n    '''A.'''\n    return 1\n"
        "async def b() -> int:\n    '''B.'''\n    return 2\n"
        "c = a\n"
    )
    tools, diags = analyse_source("m.py", text)
    assert [t.name for t in tools] == ["a", "b", "gcd", "c"]
    assert tools[3].signature == "def c() -> int"
    assert diags == []
    dyn = "import x\n__all__ = x.names()\n\ndef f(y: int) -> int:\n    '''F.'''\n    return y\n"
    tools, diags = analyse_source("d.py", dyn)
    assert [t.name for t in tools] == ["f"]
    assert [d.code for d in diags] == ["dynamic-all"]


def test_reserved_and_signature_details() -> None:
    text = (
        "def final_answer(x: int) -> int:\n    '''No.'''\n    return x\n"
        "def k(a: int, /, b: str = 'x', *, c: float = 1.0) -> None:\n    '''K.'''\n"
    )
    tools, diags = analyse_source("r.py", text)
    assert tools[1].signature == "def k(a: int, /, b: str = 'x', *, c: float = 1.0) -> None"
    assert any(d.code == "tool-reserved-name" and d.tool == "final_answer" for d in diags)


def test_module_entries_and_globs(ws: Path) -> None:
    found = discover(
        ws, CodeActConfig(tools=["pkg.tools", "json", "no_such_module_xyz", "nope.py"])
    )
    assert [t.name for t in found.tools if t.module == "pkg.tools"] == ["loud"]
    assert "json" in found.modules  # stdlib module resolved on disk without importing it
    problems = [d for d in found.diagnostics if d.code == "config-tools"]
    assert len(problems) == 2
    assert any("no_such_module_xyz" in d.message for d in problems)
    assert all(d.file.endswith("pyproject.toml") for d in problems)


def test_default_globs_skip_virtualenvs_and_private_files(fresh_ws: Path) -> None:
    tools_dir = fresh_ws / "tools"
    (tools_dir / "sub").mkdir(parents=True)
    (tools_dir / "sub" / "deep.py").write_text(
        "def deep(x: int) -> int:\n    '''D.'''\n    return x\n"
    )
    (tools_dir / "_private.py").write_text("def hidden(x: int) -> int:\n    return x\n")
    venv = fresh_ws / ".venv" / "lib" / "tools"
    venv.mkdir(parents=True)
    (fresh_ws / "tools" / ".venv").mkdir()
    (fresh_ws / "tools" / ".venv" / "x.py").write_text("def venv_tool() -> None:\n    pass\n")
    found = discover(fresh_ws, CodeActConfig())
    assert {t.name for t in found.tools} == {"deep"}
    assert found.tools[0].module == "deep"
    assert module_for_file(fresh_ws, fresh_ws / "pkg" / "tools.py") == "pkg.tools"


def test_discovery_imports_nothing(ws: Path) -> None:
    before = set(sys.modules)
    discover(ws, load_config(ws).config)
    assert not {"kinds", "quality", "helpers", "pkg.tools"} & (set(sys.modules) - before)


def test_reexported_tools_follow_the_import_to_their_definition(ws: Path) -> None:
    found = discover(ws, load_config(ws).config)
    refill = found.tool("refill")
    assert refill is not None and refill.resolved
    assert refill.module == "shop"  # what the host imports
    assert refill.file == str(ws / "shop" / "ops.py")  # where the code (and the lens) is
    assert refill.line == line_of(ws / "shop" / "ops.py", "def restock")
    assert refill.signature == "def refill(sku: str, units: int = 1) -> int"
    assert refill.doc.startswith("Add `units`")
    assert refill.imported_from == ".ops:restock"
    missing = [d for d in found.diagnostics if d.tool == "stock_count"]
    assert {d.code for d in missing} == {"tool-no-annotation", "tool-no-return-annotation"}
    assert all(d.file == str(ws / "shop" / "ops.py") for d in missing)


def test_broad_globs_never_pick_up_trajectories_virtualenvs_or_vcs_dirs(tmp_path: Path) -> None:
    """`**/*.py` would otherwise find the server's own `.codeact/runs/<id>.py` trajectory views
    (and vendored code) and offer them as tools."""
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "real.py").write_text("def real(x: int) -> int:\n    '''R.'''\n    return x\n")
    fake = "def {name}(x: int) -> int:\n    '''F.'''\n    return x\n"
    for where in (
        ".codeact/runs/r1",
        "node_modules/lib/mod",
        "venv/lib/mod",
        ".venv/lib/mod",
        ".git/hooks/mod",
        "pkg/__pycache__/mod",
    ):
        path = ws / f"{where}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fake.format(name=path.parent.name.replace(".", "_") + "_tool"))
    for globs in (["**/*.py"], ["*/**/*.py", ".codeact/runs/*.py", "venv/**/*.py"]):
        found = discover(ws, CodeActConfig(tools=globs))
        assert [t.name for t in found.tools] == ["real"], globs
        assert not any(".codeact" in f or "venv" in f for f in found.files)
