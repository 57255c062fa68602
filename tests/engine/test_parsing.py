"""Reading code from replies: robust to wrapping, never judging labelled code, and never running
what a bare fence holds when it is output, prose or an answer (real SmolLM2 replies did all three)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeact_lsp.engine.parsing import extract_code, parse_reply, reply_thought

REAL_REPLIES = Path(__file__).parents[1] / "fixtures" / "real_replies" / "replies.json"


def test_fenced_python_with_prose_around() -> None:
    reply = "Let me check.\n\n```python\nx = price_of('SKU-42')\nprint(x)\n```\nThen we see."
    assert extract_code(reply) == "x = price_of('SKU-42')\nprint(x)"


def test_several_blocks_run_in_order_and_other_languages_are_skipped() -> None:
    reply = '```py\na = 1\n```\n```json\n{"no": 1}\n```\ntext\n```python\nb = a + 1\n```'
    assert extract_code(reply) == "a = 1\n\nb = a + 1"
    bare = '```\na = 1\n```\n```json\n{"no": 1}\n```\ntext\n```\nb = a + 1\n```'
    assert extract_code(bare) == "a = 1\n\nb = a + 1"  # bare fences alone are code


@pytest.mark.parametrize(
    ("reply", "code", "skipped"),
    [
        # with a labelled block present, bare fences are never code
        ("```python\nx = f()\n```\nOutput:\n```\n42\n```", "x = f()", 1),
        ("```python\nx = f()\n```\nthen\n```\ny = g(x)\n```", "x = f()", 1),
        ("<execute>x = f()</execute>\n```\nprint(x)\n```", "x = f()", 1),
        # bare fences alone: code only when they parse and do more than state a value
        ("```\nYou have $1.10 in EUR.\n```", None, 1),
        ("```\nAnswer: 100\n```", None, 1),
        ("```\n76.9\n```", None, 1),
        ("```\n[1, 2, 3]\n```", None, 1),
        ("```\n{'usd': 12.5, 'kg': -0.4}\n```", None, 1),
        ("```\ndone\n```", None, 1),
        ("```\nHello, World!\n```", None, 1),
        ("```\nprint(stock_level('SKU-42'))\n```\n```\n7\n```", "print(stock_level('SKU-42'))", 1),
        ("```\nanswer: float = 3.5\n```", "answer: float = 3.5", 0),
        ("```\nx = 1\n```", "x = 1", 0),
        # a labelled fence that only echoes an error is not code; a broken labelled one still runs
        ("```python\nNameError: name 'Any' is not defined\n```", None, 1),
        (
            '```python\nTraceback (most recent call last):\n  File "<snippet>", line 1, in'
            " <module>\n    f(\nValueError: bad\n```",
            None,
            1,
        ),
        ("```python\nprint(1\n```", "print(1", 0),
        ("```python\nAnswer: 100\n```", "Answer: 100", 0),  # labelled: run as written
    ],
)
def test_which_fences_are_code(reply: str, code: str | None, skipped: int) -> None:
    parsed = parse_reply(reply)
    assert parsed.code == code
    assert len(parsed.skipped) == skipped


def _real_replies() -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in json.loads(REAL_REPLIES.read_text())]


@pytest.mark.parametrize("case", _real_replies())
def test_real_model_replies(case: dict[str, Any]) -> None:
    """Replies recorded from a real model (see each case's `source` and `why`)."""
    parsed = parse_reply(case["reply"])
    assert (parsed.code is not None) == case["runs"], case["why"]
    if "code" in case:
        assert parsed.code == case["code"]
    if "skipped" in case:
        assert len(parsed.skipped) == case["skipped"]
    if "redefines" in case:
        from codeact_lsp.engine.contract import redefined

        tools = {"convert_currency", "price_of", "shipping_quote", "stock_level", "reserve"}
        assert redefined(parsed.code or "", tools | {"final_answer"}) == case["redefines"]


def test_execute_tags_with_and_without_inner_fence() -> None:
    assert extract_code("<execute>\nprint(add(a=1, b=2))\n</execute>") == "print(add(a=1, b=2))"
    assert extract_code("<execute>\n```python\nq = 1\n```\n</execute>") == "q = 1"
    mixed = "```python\nfirst()\n```\n<execute>second()</execute>\n```python\nthird()\n```"
    assert extract_code(mixed) == "first()\n\nsecond()\n\nthird()"


def test_windows_newlines_and_indented_fence() -> None:
    assert extract_code("ok\r\n```python\r\nx = 1\r\ny = 2\r\n```\r\n") == "x = 1\ny = 2"
    assert extract_code("1. step\n   ```python\n   x = 1\n   ```") == "x = 1"


def test_unclosed_fence_still_counts() -> None:
    assert extract_code("```python\nfinal_answer(3)") == "final_answer(3)"


def test_no_code_is_none() -> None:
    assert extract_code("The answer is 42.") is None
    assert extract_code("```python\n\n```") is None
    assert extract_code("```text\nprint(1)\n```") is None


def test_code_is_taken_verbatim_even_if_odd() -> None:
    weird = (
        "```python\nprint(add(a=1, b=2))  # not a heuristic's business\nfinal_answer(answer=1)\n```"
    )
    assert extract_code(weird) == (
        "print(add(a=1, b=2))  # not a heuristic's business\nfinal_answer(answer=1)"
    )


def test_thought_is_prose_only() -> None:
    assert reply_thought("I'll look.\n```python\nx()\n```\nDone.") == "I'll look.\nDone."


def test_fence_closed_at_the_end_of_the_last_code_line() -> None:
    assert extract_code("```python\nx = 1\nprint(x)```\nmore text") == "x = 1\nprint(x)"
    assert extract_code("```Python3\ny = 2\n```") == "y = 2"
    assert extract_code("~~~python\nz = 3\n~~~") == "z = 3"


@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                blacklist_characters="`~<\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                blacklist_categories=["Cs"],
            ),
            max_size=40,
        ),
        max_size=8,
    )
)
def test_any_fenced_code_comes_back_verbatim(lines: list[str]) -> None:
    code = "\n".join(lines)
    got = extract_code(f"Some prose.\n```python\n{code}\n```\nAfter.")
    want = textwrap.dedent(code).strip("\n")
    assert got == (want if want.strip() else None)
