"""`codeact tools`: schemas and diagnostics, as the function the CLI calls and as the real command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from codeact_lsp.config import CodeActConfig
from codeact_lsp.tools.report import collect, tools_command

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"


def test_json_report_of_the_fixture(ws: Path) -> None:
    out = io.StringIO()
    code = tools_command(ws, True, out)
    data = json.loads(out.getvalue())
    assert code == 1  # import failures and syntax errors are errors
    names = {t["name"] for t in data["tools"]}
    assert {"fetch_async", "increment", "multiply", "power_of_two", "gcd", "loud"} <= names
    assert data["config_file"] == str(ws / "pyproject.toml")
    codes = {(Path(d["file"]).name, d["code"]) for d in data["diagnostics"]}
    assert ("importfail.py", "import-error") in codes
    assert ("syntax.py", "syntax-error") in codes
    assert ("syntax.py", "import-error") not in codes  # the static one says it already
    assert ("quality.py", "tool-no-docstring") in codes
    collisions = [d for d in data["diagnostics"] if d["code"] == "tool-name-collision"]
    assert len(collisions) == 2


def test_table_report_of_the_quickstart() -> None:
    out = io.StringIO()
    assert tools_command(QUICKSTART, False, out) == 0
    text = out.getvalue()
    assert "5 tool(s):" in text
    assert (
        "def convert_currency(amount: float, from_currency: str, to_currency: str) -> float" in text
    )
    assert "reserve [confirm]" in text
    assert "diagnostic" not in text


def test_bad_config_exit_code(tmp_path: Path) -> None:
    (tmp_path / "codeact.toml").write_text('tools = ["tools.py"]\nmax_iters = "many"\n')
    (tmp_path / "tools.py").write_text("def f(x: int) -> int:\n    '''F.'''\n    return x\n")
    out = io.StringIO()
    assert tools_command(tmp_path, False, out) == 2
    assert "max_iters" in out.getvalue()


def test_collect_without_host_is_static(ws: Path) -> None:
    report = collect(ws, CodeActConfig(tools=["pkg/tools.py"]), start_host=False)
    assert report.tools == [] and [t.name for t in report.discovered] == ["loud"]


def test_codeact_tools_json_command() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "codeact_lsp.cli",
            "tools",
            "--workspace",
            str(QUICKSTART),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    schemas = {t["name"]: t for t in data["tools"]}
    assert set(schemas) == {
        "convert_currency",
        "shipping_quote",
        "stock_level",
        "reserve",
        "price_of",
        "delivery_estimate",  # the example's MCP server, next to tools.py
    }
    assert schemas["delivery_estimate"]["module"] == "mcp:carrier"
    assert schemas["reserve"]["confirm"] is True
    assert schemas["stock_level"]["parameters"]["required"] == ["sku"]
    assert data["diagnostics"] == []


def test_all_with_classes_missing_names_and_values(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(
        "from dataclasses import dataclass\n\n"
        "__all__ = ['Order', 'total', 'missing', 'LIMIT']\n\n"
        "LIMIT = 3\n\n\n"
        "@dataclass\nclass Order:\n    qty: int\n\n\n"
        'def total(order: Order) -> int:\n    """Quantity of the order."""\n    return order.qty\n'
    )
    report = collect(tmp_path, CodeActConfig(tools=["tools.py"]))
    assert [t.name for t in report.tools] == ["total"]
    assert report.tools[0].parameters["properties"]["order"]["title"] == "Order"
    codes = sorted((d.code, d.tool, d.severity) for d in report.diagnostics)
    assert codes == [
        ("all-undefined", "missing", "error"),
        ("class-not-tool", "Order", "info"),
        ("not-callable", "LIMIT", "error"),
    ]
    assert all(d.line == 3 for d in report.diagnostics)
