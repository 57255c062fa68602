"""Big modules are parsed block by block with a cache: the result must equal a whole-file parse,
whatever the text looks like, and stay right across edits."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeact_lsp.tools import discovery

TRICKY = '''"""Module doc."""
import functools

TEMPLATE = """
def not_a_tool(x):
    return x
"""

@functools.lru_cache
@staticmethod
def decorated(x: int) -> int:
    """Decorated."""
    return x

if True:
    def in_if(a: str) -> str:
        """In an if."""
        return a
else:
    def in_else(a: str) -> str:
        return a

try:
    import json
except ImportError:
    json = None
finally:
    pass

VALUES = [
1,
2,
]
total = 1 + \\
2

class Box:
    """A box."""
    def get(self, key: str) -> str:
        """Get."""
        return key

_box = Box()
get = _box.get

def last(x, *rest):
    return x
'''


def analyse_both(
    text: str, monkeypatch: pytest.MonkeyPatch, name: str = "t.py"
) -> tuple[object, object]:
    monkeypatch.setattr(discovery.parse, "CHUNKED_MIN_LINES", 10**9)
    whole = discovery.analyse_source(name, text, "t")
    monkeypatch.setattr(discovery.parse, "CHUNKED_MIN_LINES", 1)
    first = discovery.analyse_source(name, text, "t")  # seeds the block cache
    again = discovery.analyse_source(name, text, "t")  # served from it
    assert first == whole
    return whole, again


def test_tricky_text_same_as_whole_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    whole, again = analyse_both(TRICKY, monkeypatch)
    assert again == whole
    names = [t.name for t in whole[0]]  # type: ignore[index]
    assert names == ["decorated", "in_if", "in_else", "get", "last"]


def test_edits_keep_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    discovery.clear_cache()
    lines = TRICKY.split("\n")
    edits = [
        (3, 'TEMPLATE = """ changed'),  # opens a string differently
        (9, "@functools.cache"),
        (0, "# leading comment\n"),
        (len(lines) - 2, "    return [x, *rest]"),
        (33, "3,"),
        (20, "def broken(:"),  # a syntax error: reported, same as a whole parse
    ]
    for index, new in edits:
        lines[index] = new
        text = "\n".join(lines)
        monkeypatch.setattr(discovery.parse, "CHUNKED_MIN_LINES", 1)
        incremental = discovery.analyse_source("e.py", text, "e")
        monkeypatch.setattr(discovery.parse, "CHUNKED_MIN_LINES", 10**9)
        assert incremental == discovery.analyse_source("e.py", text, "e"), (index, new)


def test_fixture_modules(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    for path in sorted(ws.rglob("*.py")):
        whole, again = analyse_both(path.read_text(), monkeypatch, str(path))
        assert again == whole, path


LINES = [
    "def f(a: int) -> int:",
    '    """Doc."""',
    "    return a",
    "@functools.cache",
    "class K:",
    "    def m(self, x: str) -> str:",
    '        """M."""',
    "        return x",
    'S = """',
    "def inside_string(): pass",
    '"""',
    "x = [",
    "1,",
    "]",
    "if x:",
    "else:",
    "    pass",
    "g = f",
    "async def h(b: float = 1.0) -> None:",
    "",
    "# comment",
    "try:",
    "except Exception:",
    "total = 1 + \\",
]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 80), st.sampled_from(LINES), st.booleans()), max_size=12
    )
)
def test_random_edits_match_a_whole_parse(
    monkeypatch: pytest.MonkeyPatch, edits: list[tuple[int, str, bool]]
) -> None:
    """Whatever sequence of edits, the incremental result equals a fresh whole-file parse."""
    lines = TRICKY.split("\n")
    for where, text, replace in edits:
        i = where % (len(lines) + 1)
        if replace and i < len(lines):
            lines[i] = text
        else:
            lines.insert(i, text)
        source = "\n".join(lines)
        monkeypatch.setattr(discovery.parse, "CHUNKED_MIN_LINES", 1)
        incremental = discovery.analyse_source("h.py", source, "h")
        monkeypatch.setattr(discovery.parse, "CHUNKED_MIN_LINES", 10**9)
        assert incremental == discovery.analyse_source("h.py", source, "h"), source
