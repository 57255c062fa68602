"""Run-trust benchmarks: what isolation and side-effect-free rebuilds cost.

- A 10-task suite on a stateful tool: shared tool host vs a fresh tool host per task (jobs 1 and
  4). The anchor is the shared host (what main did before tasks were isolated); isolation is
  correct only when fresh, so the figure to watch is the cost per task of that freshness.
- Re-run from the last step of a 4-step run: the earlier steps replayed with recorded tool
  results, against the original run's time.

Run alone: `.venv/bin/python benchmarks/bench_suite.py`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOOLS = '''\
_booked = []


def reserve(seat: str) -> int:
    """Book a seat; returns how many this tool process booked."""
    _booked.append(seat)
    return len(_booked)
'''
TASKS = 10


def _fence(code: str) -> str:
    return f"```python\n{code}\n```"


async def _suite(ws: Path, **kw: object) -> tuple[float, int]:
    from codeact_lsp.config import load_config
    from codeact_lsp.engine import Engine
    from codeact_lsp.engine.suite import run_suite
    from codeact_lsp.tools import ToolHost

    config = load_config(ws).config
    host = await ToolHost.astart(ws, config)
    engine = Engine(config, host, workspace=ws, runs_dir=None)
    try:
        t0 = time.perf_counter()
        results = await run_suite(engine, ws / "tasks.toml", **kw)  # type: ignore[arg-type]
        return time.perf_counter() - t0, sum(r.passed for r in results)
    finally:
        await engine.close()
        await host.close()


async def _rerun(ws: Path) -> tuple[float, float]:
    from codeact_lsp.config import load_config
    from codeact_lsp.engine import Engine, RunRequest
    from codeact_lsp.tools import ToolHost

    steps = [f"s{i} = reserve('{i}A')" for i in range(3)] + ["final_answer(s2)"]
    script = ws / "four.json"
    script.write_text(json.dumps([_fence(c) for c in steps]))
    config = load_config(ws).config
    host = await ToolHost.astart(ws, config)
    engine = Engine(config, host, workspace=ws, runs_dir=None)
    try:
        t0 = time.perf_counter()
        first = await (await engine.start(RunRequest(task="t", model=f"scripted:{script}"))).wait()
        original = time.perf_counter() - t0
        t0 = time.perf_counter()
        await (await engine.rerun(first.id, 4, "final_answer(s2)")).wait()
        return original, time.perf_counter() - t0
    finally:
        await engine.close()
        await host.close()


async def _main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "tools.py").write_text(TOOLS)
        (ws / "codeact.toml").write_text('tools = ["tools.py"]\n')
        replies = ws / "one.json"
        replies.write_text(json.dumps([_fence("final_answer(reserve('9Z'))")]))
        (ws / "tasks.toml").write_text(
            "\n".join(
                f'[[task]]\nname = "t{i}"\ntask = "book"\nmodel = "scripted:{replies}"\nexpect = 1\n'
                for i in range(TASKS)
            )
        )
        shared, shared_ok = await _suite(ws, isolation="shared")
        fresh1, ok1 = await _suite(ws, jobs=1)
        fresh4, ok4 = await _suite(ws, jobs=4)
        original, rebuilt = await _rerun(ws)
    print(f"{'suite of 10 stateful tasks':<44} {'time':>8} {'passed':>7} {'per task':>9}")
    for name, secs, ok in (
        ("shared tool host (anchor: main before)", shared, shared_ok),
        ("fresh tool host per task, jobs 1", fresh1, ok1),
        ("fresh tool host per task, jobs 4", fresh4, ok4),
    ):
        print(f"{name:<44} {secs:>7.2f}s {ok:>4}/{TASKS} {secs / TASKS * 1000:>7.0f}ms")
    print(
        f"fresh jobs 1 / shared: {fresh1 / shared:.1f}x   fresh jobs 4 / shared: {fresh4 / shared:.1f}x"
    )
    print(
        f"re-run from step 4 of 4 (3 steps replayed from the record): {rebuilt * 1000:.0f} ms"
        f" vs the original run {original * 1000:.0f} ms ({rebuilt / original:.2f}x)"
    )


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
