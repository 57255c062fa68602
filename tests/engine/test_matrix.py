from xml.etree import ElementTree as ET

import pytest

from codeact_lsp.engine.matrix import (
    MatrixSummary,
    compare,
    model_stats,
    percentile,
    render,
    summarise,
    wilson,
)
from codeact_lsp.engine.suite import RootError, TaskResult, junit_xml


@pytest.mark.parametrize(
    ("passed", "total", "low", "high"),
    [
        (0, 0, 0.0, 1.0),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_interval(passed: int, total: int, low: float, high: float) -> None:
    got = wilson(passed, total)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_percentile_is_nearest_rank() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == 5.0
    assert percentile([], 50) == 0.0


def test_model_stats_counts_every_repeat() -> None:
    results = [
        TaskResult(name="a", passed=True, status="done", steps=2, duration_s=1.0),
        TaskResult(name="a", passed=False, status="failed", steps=4, duration_s=3.0),
        TaskResult(name="b", passed=True, status="done", steps=3, duration_s=2.0),
    ]
    stats = model_stats("m", results)
    assert (stats.runs, stats.passed) == (3, 2)
    assert stats.pass_rate == pytest.approx(2 / 3)
    assert stats.mean_steps == 3.0
    assert (stats.p50_wall_s, stats.p95_wall_s) == (2.0, 3.0)
    assert 0 < stats.ci_low < stats.pass_rate < stats.ci_high < 1


def _run(task: str, model: str, repeat: int, passed: bool, **kw: object) -> TaskResult:
    return TaskResult(
        name=task,
        model=model,
        repeat=repeat,
        passed=passed,
        status="finished",
        prompt_tokens=100,
        completion_tokens=10,
        **kw,  # type: ignore[arg-type]
    )


def _cause(message: str) -> RootError:
    return RootError(kind="tool", type="ValueError", message=message, step=1, tool="reserve")


def test_tokens_and_cost_sum_only_what_is_priced() -> None:
    results = [
        _run("a", "m", 1, True, cost_usd=0.25),
        _run("a", "m", 2, True),  # price unknown: not counted as free
    ]
    stats = model_stats("m", results)
    assert (stats.prompt_tokens, stats.completion_tokens, stats.mean_tokens) == (200, 20, 110)
    assert (stats.cost_usd, stats.priced_runs) == (0.25, 1)
    assert model_stats("m", results[1:]).cost_usd is None


def test_summary_names_the_models_that_fail_a_task_and_its_first_root_error() -> None:
    results = [
        _run("book", "good", 1, True),
        _run("book", "good", 2, True),
        _run("book", "bad", 1, False, root_error=_cause("seat 9Z is taken"), run_id="r3"),
        _run("book", "bad", 2, False, message="expected 1, got 2", run_id="r4"),
        _run("price", "good", 1, True),
        _run("price", "good", 2, True),
        _run("price", "bad", 1, True),
        _run("price", "bad", 2, False, message="expected 12, got 13"),
    ]
    summary = summarise(results, suite="tasks.toml")
    assert [(m.model, m.runs, m.passed) for m in summary.models] == [("good", 4, 4), ("bad", 4, 1)]
    book, price = summary.tasks
    assert book.failing_models == ["bad"] and book.pass_rate == {"good": 1.0, "bad": 0.0}
    assert (
        book.first_root_error
        == "tool reserve raised ValueError: seat 9Z is taken (called in step 1)"
    )
    assert book.first_failed_run == "r3"
    assert price.first_root_error == "expected 12, got 13"  # no root error: the message
    text = render(summary)
    assert "bad" in text and "1/4 25%" in text and "4/4 100%" in text
    assert "book: fails on bad" in text and "seat 9Z is taken" in text
    assert text.rstrip().endswith("5/8 runs passed")
    # the JSON summary reads back as it was written
    assert MatrixSummary.model_validate_json(summary.model_dump_json()) == summary


def test_compare_says_what_got_better_worse_or_is_noise() -> None:
    def matrix(good: int, bad: int, n: int = 20) -> MatrixSummary:
        runs = [_run("t", "good", i, i < good) for i in range(n)]
        runs += [_run("t", "bad", i, i < bad) for i in range(n)]
        return summarise(runs)

    before, after = matrix(good=10, bad=19), matrix(good=11, bad=2)
    changes = {(c.model, c.task): c for c in compare(before, after)}
    assert changes[("good", None)].kind == "noise"  # 50% -> 55%: inside both intervals
    assert changes[("bad", None)].kind == "worse"  # 95% -> 10%: outside
    assert changes[("bad", "t")].text() == "worse: t on bad 95% -> 10%"
    assert changes[("good", "t")].kind == "better"
    assert compare(after, after) == []
    gone = summarise([_run("t", "good", 1, True)])
    kinds = {(c.kind, c.model) for c in compare(before, gone)}
    assert ("gone", "bad") in kinds
    assert {(c.kind, c.model) for c in compare(gone, before)} >= {("new", "bad")}


def test_junit_names_matrix_runs_by_model_and_repeat() -> None:
    results = [
        _run("book", "good", 1, True),
        _run("book", "good", 2, True),
        _run("book", "bad", 1, False, message="expected 1, got 2"),
        _run("book", "openai/gpt-4.1", 1, True),
    ]
    root = ET.fromstring(junit_xml(results, "tasks"))
    cases = [(c.get("classname"), c.get("name"), c.find("failure") is not None) for c in root]
    assert cases == [
        ("good", "book[r1]", False),
        ("good", "book[r2]", False),
        ("bad", "book[r1]", True),
        ("openai/gpt-4_1", "book[r1]", False),  # no dot: CI UIs would split it into packages
    ]
    assert (root.get("tests"), root.get("failures")) == ("4", "1")
    # no matrix (one model, one repeat): the names stay the task's own
    plain = ET.fromstring(junit_xml(results[:1], "tasks"))
    assert [(c.get("classname"), c.get("name")) for c in plain] == [("tasks", "book")]
