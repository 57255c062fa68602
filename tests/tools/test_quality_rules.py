"""The tool-quality rules are one set: static discovery (from the source) and the runtime (from
the live callable, as the Python API serves it) say the same thing about the same tool."""

from __future__ import annotations

from typing import Any

import pytest

from codeact_lsp.tools import InProcessTools, analyse_source
from codeact_lsp.tools.models import ToolDiagnostic
from codeact_lsp.tools.report import merge_diagnostics

CASES = {
    "undocumented": "def undocumented(x: int) -> int:\n    return x\n",
    "vague": 'def vague(x: Any, *args, **kw) -> Any:\n    """Vague."""\n',
    "no_hints": 'def no_hints(a, b):\n    """No hints."""\n',
    "sum": 'def sum(values: list[int]) -> int:\n    """Shadows a builtin."""\n    return 0\n',
    "final_answer": 'def final_answer(x: int) -> int:\n    """Reserved."""\n    return x\n',
    "fine": 'def fine(x: int) -> int:\n    """Doubles x."""\n    return 2 * x\n',
}


def _findings(diags: list[ToolDiagnostic]) -> set[tuple[str, str, str]]:
    return {(d.code, d.severity, d.message) for d in diags if d.code.startswith("tool-")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_static_and_runtime_checks_agree(name: str) -> None:
    source = "from typing import Any\n\n" + CASES[name]
    _, static = analyse_source("tools.py", source, "tools")
    namespace: dict[str, Any] = {}
    exec(compile(source, "tools.py", "exec"), namespace)  # the test's own code, not a model's
    runtime = InProcessTools({name: namespace[name]}).diagnostics
    assert _findings(static) == _findings(runtime)
    assert bool(_findings(static)) is (name != "fine")


def test_a_runtime_echo_of_a_static_finding_is_reported_once() -> None:
    static = ToolDiagnostic(
        file="t.py", line=3, severity="error", code="syntax-error", message="syntax error: x"
    )
    echo = ToolDiagnostic(
        file="t.py",
        line=3,
        severity="error",
        code="import-error",
        message="importing t failed: SyntaxError: x",
        source="runtime",
    )
    elsewhere = echo.model_copy(update={"line": 9})
    assert merge_diagnostics([static], [echo, elsewhere]) == [static, elsewhere]
