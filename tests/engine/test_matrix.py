import pytest

from codeact_lsp.engine.matrix import model_stats, percentile, wilson
from codeact_lsp.engine.suite import TaskResult


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
