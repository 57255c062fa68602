"""Bad configuration values are reported with file, key, line and a message a person can act on."""

from __future__ import annotations

from pathlib import Path

from codeact_lsp.config import load_config

PYPROJECT = """\
[project]
name = "x"

[tool.codeact]
tools = "tools.py"
approvl = "review"
max_iters = "many"

[tool.codeact.sandbox]
timeout = -1
"""


def test_messages_name_file_key_line_and_a_fix(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    loaded = load_config(tmp_path)
    by_key = {p.key: p for p in loaded.problems}
    assert set(by_key) == {"tools", "approvl", "max_iters", "sandbox.timeout"}
    assert all(p.file == str(tmp_path / "pyproject.toml") for p in loaded.problems)
    assert by_key["tools"].line == 5
    assert 'e.g. tools = ["tools.py"' in by_key["tools"].message
    assert "(got 'tools.py')" in by_key["tools"].message
    assert by_key["approvl"].line == 6
    assert "did you mean 'approval'?" in by_key["approvl"].message
    assert "(got 'many')" in by_key["max_iters"].message
    assert by_key["sandbox.timeout"].line == 10
    assert "greater than 0 (got -1)" in by_key["sandbox.timeout"].message
    # the rest of the file still applies
    assert loaded.config.tools == ["tools.py", "tools/**/*.py"]
    assert str(by_key["approvl"]).startswith(str(tmp_path / "pyproject.toml") + ": approvl: ")
