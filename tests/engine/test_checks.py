"""Static checks of a step's code (engine/checks.py): what a reviewer sees before a step runs.

Table-driven: each row is a snippet and the findings (code, line) it must produce, against two
tools — `convert(amount, units)` and `book(seat)` flagged for confirmation.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from codeact_lsp.engine.checks import (
    CheckContext,
    ToolSig,
    check_code,
    defined_names,
    sig_from_schema,
)

CTX = CheckContext(
    tools={
        "convert": ToolSig("convert", ("amount", "units"), ("amount", "units")),
        "book": ToolSig("book", ("seat",), ("seat",), confirm=True),
    },
    known_names={"helper"},
    confirm_globs=["delete_*"],
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x = convert(1, 'km')\nfinal_answer(x)\n", []),
        ("helper(1)\nprint(len([1]))\n", []),  # an earlier step's name and builtins
        ("def f():\n    return 1\nf()\n", []),  # defined in the same step
        ("x = (\n", [("syntax", 1)]),
        ("conver(1, 'km')\n", [("unknown-tool", 1)]),
        ("convert(1, 'km', 3)\n", [("tool-args", 1)]),
        ("convert(amount=1, unit='km')\n", [("tool-args", 1), ("tool-args", 1)]),
        ("convert(1, *rest)\n", []),  # *args at the call: cannot tell statically
        ("\nbook('12A')\n", [("confirm-tool", 2)]),
        ("book()\n", [("tool-args", 1), ("confirm-tool", 1)]),
    ],
)
def test_findings(code: str, expected: list[tuple[str, int]]) -> None:
    found = [(f.code, f.line) for f in check_code(code, CTX)]
    assert sorted(found) == sorted(expected)


def test_a_misspelt_tool_or_parameter_gets_a_suggestion() -> None:
    messages = [f.message for f in check_code("conver(amount=1, unit='km')\n", CTX)]
    assert any("did you mean `convert`" in m for m in messages)
    messages = [f.message for f in check_code("convert(amount=1, unit='km')\n", CTX)]
    assert any("did you mean `units`" in m for m in messages)
    assert any("missing required argument(s): units" in m for m in messages)


def test_unknown_names_are_not_reported_while_the_tools_are_unknown() -> None:
    ctx = CheckContext(tools_known=False)
    assert check_code("anything(1)\n", ctx) == []


def test_a_confirm_glob_flags_tools_it_matches() -> None:
    ctx = CheckContext(
        tools={"delete_row": ToolSig("delete_row", ("id",))}, confirm_globs=["delete_*"]
    )
    assert [f.code for f in check_code("delete_row(1)\n", ctx)] == ["confirm-tool"]


def test_defined_names_are_what_later_steps_can_use() -> None:
    code = "import os.path as p\nfrom x import y\na, b = 1, 2\nfor i in []: pass\nclass K: pass\n"
    assert {"p", "y", "a", "b", "i", "K"} <= defined_names(code)
    assert defined_names("x = (") == set()


def test_a_schema_becomes_the_signature_the_checks_use() -> None:
    schema = SimpleNamespace(
        name="f",
        parameters={
            "properties": {"a": {}, "b": {}},
            "required": ["a"],
            "additionalProperties": True,
        },
        confirm=True,
    )
    sig = sig_from_schema(schema)
    assert sig == ToolSig("f", ("a", "b"), ("a",), open_kwargs=True, confirm=True)
