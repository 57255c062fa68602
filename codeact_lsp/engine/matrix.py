"""Statistics for suite matrices (tasks x models x repeats): the answer to "do my tools still
work with model X, and did this change help?".

Pure functions over `TaskResult`s so the CLI, a JSON summary and any executor (local, Ray) share
one definition of "pass rate" and its uncertainty. A Wilson interval is used because repeats are
few (often 3-10) and the normal approximation misbehaves near 0 % and 100 %.

`summarise(results)` gives a `MatrixSummary` (the `--summary` JSON: per model, per task);
`compare(previous, current)` says what got better or worse, with a change inside both runs'
intervals called noise; `render(summary)` is the terminal table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

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
    prompt_tokens: int = 0
    completion_tokens: int = 0
    mean_tokens: float = 0.0  # per run
    # the sum over runs whose price is known; None when no run's price is (e.g. scripted)
    cost_usd: float | None = None
    priced_runs: int = 0  # how many runs `cost_usd` covers


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
    prices = [r.cost_usd for r in results if r.cost_usd is not None]
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
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        mean_tokens=sum(r.tokens for r in results) / runs if runs else 0.0,
        cost_usd=sum(prices) if prices else None,
        priced_runs=len(prices),
    )


class TaskStats(BaseModel):
    """One task across the matrix: which models fail it, and why first."""

    task: str
    runs: int
    passed: int
    pass_rate: dict[str, float]  # model -> its pass rate on this task
    failing_models: list[str]  # models that failed it at least once, in matrix order
    first_root_error: str | None = None  # the first failed run's root error (or its message)
    first_failed_run: str | None = None  # that run's id


def task_stats(task: str, results: Sequence[TaskResult]) -> TaskStats:
    models = list(dict.fromkeys(r.model for r in results))
    rate: dict[str, float] = {}
    for model in models:
        mine = [r for r in results if r.model == model]
        rate[model] = sum(1 for r in mine if r.passed) / len(mine)
    failed = [r for r in results if not r.passed]
    first = failed[0] if failed else None
    why = None
    if first is not None:
        why = first.root_error.text() if first.root_error is not None else first.message
    return TaskStats(
        task=task,
        runs=len(results),
        passed=len(results) - len(failed),
        pass_rate=rate,
        failing_models=[m for m in models if rate[m] < 1.0],
        first_root_error=why,
        first_failed_run=first.run_id if first is not None else None,
    )


class MatrixSummary(BaseModel):
    """`codeact test --summary PATH`: the matrix's answer, and what `--compare` reads back."""

    version: int = 1
    suite: str = ""
    created_at: float = Field(default_factory=time.time)
    runs: int
    passed: int
    repeat: int
    models: list[ModelStats]
    tasks: list[TaskStats]


def summarise(results: Sequence[TaskResult], suite: str = "") -> MatrixSummary:
    models = list(dict.fromkeys(r.model for r in results))
    tasks = list(dict.fromkeys(r.name for r in results))
    return MatrixSummary(
        suite=suite,
        runs=len(results),
        passed=sum(1 for r in results if r.passed),
        repeat=max((r.repeat for r in results), default=1),
        models=[model_stats(m, [r for r in results if r.model == m]) for m in models],
        tasks=[task_stats(t, [r for r in results if r.name == t]) for t in tasks],
    )


class Change(BaseModel):
    """Something that moved between two summaries."""

    kind: Literal["better", "worse", "noise", "new", "gone"]
    model: str
    task: str | None = None  # None: the model's overall pass rate
    before: float | None = None
    after: float | None = None

    def text(self) -> str:
        what = f"{self.task} on {self.model}" if self.task else f"{self.model} overall"
        if self.before is None:
            return f"{self.kind}: {what} (now {_pct(self.after)})"
        if self.after is None:
            return f"{self.kind}: {what} (was {_pct(self.before)})"
        return f"{self.kind}: {what} {_pct(self.before)} -> {_pct(self.after)}"


def compare(previous: MatrixSummary, current: MatrixSummary) -> list[Change]:
    """Per model overall (a move inside both Wilson intervals is `noise`), then per task and
    model: every pass rate that went up or down."""
    changes: list[Change] = []
    before = {m.model: m for m in previous.models}
    for now in current.models:
        was = before.pop(now.model, None)
        if was is None:
            changes.append(Change(kind="new", model=now.model, after=now.pass_rate))
            continue
        if now.pass_rate == was.pass_rate:
            continue
        overlap = now.ci_low <= was.ci_high and was.ci_low <= now.ci_high
        kind: Literal["better", "worse", "noise"] = (
            "noise" if overlap else "better" if now.pass_rate > was.pass_rate else "worse"
        )
        changes.append(
            Change(kind=kind, model=now.model, before=was.pass_rate, after=now.pass_rate)
        )
    changes += [Change(kind="gone", model=m, before=s.pass_rate) for m, s in before.items()]
    old_tasks = {t.task: t.pass_rate for t in previous.tasks}
    for task in current.tasks:
        old = old_tasks.get(task.task, {})
        for model, rate in task.pass_rate.items():
            if model in old and old[model] != rate:
                changes.append(
                    Change(
                        kind="better" if rate > old[model] else "worse",
                        model=model,
                        task=task.task,
                        before=old[model],
                        after=rate,
                    )
                )
    return changes


def render(summary: MatrixSummary) -> str:
    """The per-model table and the tasks some model fails, for a terminal."""
    rows = [("model", "pass", "95% CI", "steps", "tokens", "cost", "p50", "p95")]
    for m in summary.models:
        cost = f"${m.cost_usd:.4f}" if m.cost_usd is not None else "n/a"
        if m.cost_usd is not None and m.priced_runs < m.runs:
            cost += f" ({m.priced_runs}/{m.runs} priced)"
        rows.append(
            (
                m.model or "(default)",
                f"{m.passed}/{m.runs} {_pct(m.pass_rate)}",
                f"{_pct(m.ci_low)}-{_pct(m.ci_high)}",
                f"{m.mean_steps:.1f}",
                f"{m.prompt_tokens + m.completion_tokens}",
                cost,
                f"{m.p50_wall_s:.2f}s",
                f"{m.p95_wall_s:.2f}s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    failing = [t for t in summary.tasks if t.failing_models]
    if failing:
        lines.append("\nfailing tasks:")
        for t in failing:
            lines.append(
                f"  {t.task}: fails on {', '.join(m or '(default)' for m in t.failing_models)}"
            )
            if t.first_root_error:
                why = t.first_root_error
                lines.append(f"    first: {why if len(why) <= 160 else why[:157] + '...'}")
    lines.append(f"\n{summary.passed}/{summary.runs} runs passed")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.0f}%"
