"""Task suites: file format, judging answers, JUnit, running on the engine."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from engine_helpers import EXAMPLE

from codeact_lsp.engine import Engine
from codeact_lsp.engine.model import _classify
from codeact_lsp.engine.suite import (
    SuiteError,
    SuiteTask,
    TaskResult,
    equal,
    judge,
    junit_xml,
    load_suite,
    run_suite,
)


def test_example_suite_loads_with_lines() -> None:
    tasks = load_suite(EXAMPLE / "tasks.toml")
    assert [t.name for t in tasks] == ["quote-to-germany"]
    assert tasks[0].expect == 76.9 and tasks[0].line is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [[task]]"),
        ('[[task]]\nname = "a"\ntask = "t"\n', "needs `expect` or `check`"),
        ('[[task]]\nname = "a"\ntask = "t"\nexpect = 1\nbogus = 2\n', "bogus"),
        (
            '[[task]]\nname = "a"\ntask = "t"\nexpect = 1\n[[task]]\nname = "a"\ntask = "u"\nexpect = 2\n',
            "duplicate",
        ),
        ("[[task]\n", "tasks.toml"),
    ],
)
def test_bad_suites_say_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(path)


def test_judging_expect_and_check() -> None:
    task = SuiteTask(name="a", task="t", expect=0.3)
    assert judge(task, 0.1 + 0.2, {"answer": 0.1 + 0.2}) == (True, "")
    ok, why = judge(task, 0.4, {"answer": 0.4})
    assert not ok and "expected 0.3" in why
    checked = SuiteTask(name="b", task="t", check="total > 10 and unit == 'EUR'")
    assert judge(checked, None, {"total": 12, "unit": "EUR"})[0]
    bad = SuiteTask(name="c", task="t", check="open('/etc/passwd')")
    ok, why = judge(bad, 1, {"answer": 1})
    assert not ok and "NameError" in why
    assert not equal(True, 1) and equal([1, {"a": 2.0}], [1, {"a": 2}])


def test_junit_counts_failures_and_errors() -> None:
    results = [
        TaskResult(name="ok", passed=True, status="finished"),
        TaskResult(name="bad", passed=False, status="finished", message="expected 1, got 2"),
        TaskResult(name="broken", passed=False, status="error", message="no model"),
    ]
    root = ET.fromstring(junit_xml(results))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")


async def test_run_suite_by_name_on_the_engine(engine: Engine, workspace: Path) -> None:
    seen: list[str] = []
    results = await run_suite(
        engine,
        workspace / "tasks.toml",
        ["quote-to-germany"],
        on_start=lambda task, handle: seen.append(handle.id),
    )
    assert [(r.name, r.passed, r.answer, r.scripted) for r in results] == [
        ("quote-to-germany", True, 76.9, True)
    ]
    assert seen == [results[0].run_id]
    with pytest.raises(SuiteError, match="no task named"):
        await run_suite(engine, workspace / "tasks.toml", ["nope"])


def test_litellm_errors_are_classified_by_kind() -> None:
    class RateLimitError(Exception):
        pass

    class APIConnectionError(Exception):
        pass

    class AuthenticationError(Exception):
        pass

    def kind(exc: Exception) -> str:
        return _classify("openai/gpt-4o-mini", None, exc, {}).kind

    assert kind(RateLimitError("slow down")) == "rate_limit"
    assert kind(APIConnectionError("reset")) == "transient"
    assert kind(TimeoutError()) == "timeout"
    assert kind(AuthenticationError("bad key")) == "config"  # fix the key; retrying cannot help
    assert kind(ValueError("bad request")) == "fatal"
