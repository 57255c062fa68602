"""The tool fixture workspace, copied per session so the host's imports and the tests' edits never
touch the repository; the syntax-error module is written here (a broken file in the repo would
break the linters)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact_lsp.config import load_config
from codeact_lsp.tools import ToolHost

FIXTURE = Path(__file__).parent.parent / "fixtures" / "tool_ws"
SYNTAX_ERROR = '"""A tool module with a syntax error on line 5."""\n\n\ndef fine(x: int) -> int:\n    return x +\n'


def make_ws(dest: Path) -> Path:
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "broken" / "syntax.py").write_text(SYNTAX_ERROR)
    return dest


@pytest.fixture(scope="session")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ws(tmp_path_factory.mktemp("tools") / "ws")


@pytest.fixture
def fresh_ws(tmp_path: Path) -> Path:
    return make_ws(tmp_path / "ws")


@pytest.fixture(scope="module")
def host(ws: Path) -> Iterator[ToolHost]:
    h = ToolHost.start(ws, load_config(ws).config, timeout=5)
    assert h.problem is None, h.problem
    yield h
    h.close_sync()


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing `needle` (keeps tests independent of layout)."""
    for i, text in enumerate(path.read_text().splitlines(), 1):
        if needle in text:
            return i
    raise AssertionError(f"{needle!r} not in {path}")
