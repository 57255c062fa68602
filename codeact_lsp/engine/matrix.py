"""Statistics for suite matrices (tasks x models x repeats).

Pure functions over `TaskResult`s so the CLI, a JSON summary and a Ray driver can share one
definition of "pass rate" and its uncertainty. A Wilson interval is used because repeats are few
(often 3-10) and the normal approximation misbehaves near 0 % and 100 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from codeact_lsp.engine.suite import TaskResult


class ModelStats(BaseModel):
    model: str
    runs: int
    passed: int
    pass_rate: float
    ci_low: float
    ci_high: float
    mean_steps: float
    p50_wall_s: float
    p95_wall_s: float


def wilson(passed: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for `passed` of `total`; (0, 1) when nothing ran."""
    if total <= 0:
        return (0.0, 1.0)
    p = passed / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def model_stats(model: str, results: Sequence[TaskResult]) -> ModelStats:
    """Aggregate one model's runs (every task, every repeat)."""
    runs = len(results)
    passed = sum(1 for r in results if r.passed)
    low, high = wilson(passed, runs)
    walls = [r.duration_s for r in results]
    return ModelStats(
        model=model,
        runs=runs,
        passed=passed,
        pass_rate=passed / runs if runs else 0.0,
        ci_low=low,
        ci_high=high,
        mean_steps=sum(r.steps for r in results) / runs if runs else 0.0,
        p50_wall_s=percentile(walls, 50),
        p95_wall_s=percentile(walls, 95),
    )
