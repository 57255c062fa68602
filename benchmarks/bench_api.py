"""Python API benchmarks: what `CodeAct(...)` costs on top of the engine, and batch throughput.

Targets: the API layer adds ≤ 2 ms per call over driving the engine directly (docs/contracts.md's
per-step engine budget), `from codeact_lsp import CodeAct` imports no litellm/pygls.
Anchor: DSPy's CodeAct starts a Deno/Pyodide interpreter, 1.8–2.1 s cold on this machine.

Every run uses the scripted stand-in model, so the figures contain no model time.
Run alone: `.venv/bin/python benchmarks/bench_api.py`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALLS = 15


def factorial(n: int) -> int:
    """n! for n >= 0."""
    return 1 if n <= 1 else n * factorial(n - 1)


def _import_ms() -> tuple[float, bool]:
    code = (
        "import time, sys; t = time.perf_counter(); from codeact_lsp import CodeAct; "
        "print((time.perf_counter() - t) * 1000, any(m in sys.modules for m in ('litellm', 'pygls')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ms, heavy = out.stdout.split()
    return float(ms), heavy == "True"


async def _engine_direct(model: str) -> list[float]:
    from codeact_lsp.config import CodeActConfig
    from codeact_lsp.engine import Engine, RunRequest
    from codeact_lsp.tools import InProcessTools

    tools = InProcessTools([factorial])
    engine = Engine(CodeActConfig(), tools)
    lat: list[float] = []
    try:
        for i in range(CALLS + 1):
            t = time.perf_counter()
            request = RunRequest(
                task="f", signature="n: int -> f: int", inputs={"n": i}, model=model
            )
            await (await engine.start(request)).wait()
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        await engine.close()
    return lat[1:]


def main() -> None:
    from codeact_lsp import CodeAct

    with tempfile.TemporaryDirectory() as tmp:
        replies = Path(tmp) / "replies.json"
        replies.write_text(json.dumps(["```python\nfinal_answer(factorial(n))\n```"]))
        model = f"scripted:{replies}"
        import_ms, heavy = _import_ms()

        t = time.perf_counter()
        act = CodeAct("n: int -> f: int", tools=[factorial], model=model)
        construct_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        act(n=3)
        first_ms = (time.perf_counter() - t) * 1000
        api: list[float] = []
        layer: list[float] = []  # wall time of the call minus the run's own lifetime
        for i in range(CALLS):
            t = time.perf_counter()
            result = act(n=i)
            wall = (time.perf_counter() - t) * 1000
            api.append(wall)
            run = result.trajectory
            layer.append(wall - (run.updated_at - run.created_at) * 1000)
        batch = {}
        for conc in (1, 4):
            t = time.perf_counter()
            results = act.batch([{"n": i} for i in range(20)], concurrency=conc, progress=False)
            batch[conc] = 20 / (time.perf_counter() - t)
            assert all(r.ok for r in results)
        act.close()
        direct = asyncio.run(_engine_direct(model))

    rows = [
        (
            "import CodeAct (fresh interpreter)",
            f"{import_ms:.0f} ms",
            "lazy; no litellm/pygls",
            "litellm/pygls loaded" if heavy else "neither loaded",
        ),
        ("construct CodeAct", f"{construct_ms:.0f} ms", "-", "DSPy: 1.8–2.1 s (Deno)"),
        ("first call (loop thread, engine, sandbox)", f"{first_ms:.0f} ms", "-", "-"),
        ("warm call, median / min", f"{statistics.median(api):.1f} / {min(api):.1f} ms", "-", "-"),
        (
            "engine direct, median / min",
            f"{statistics.median(direct):.1f} / {min(direct):.1f} ms",
            "-",
            "-",
        ),
        (
            "API layer per call (wall - run lifetime), median",
            f"{statistics.median(layer):.2f} ms",
            "≤ 2 ms",
            "thread hop, request, typed result",
        ),
        ("batch of 20, concurrency 1", f"{batch[1]:.1f} runs/s", "-", "-"),
        ("batch of 20, concurrency 4", f"{batch[4]:.1f} runs/s", "-", "-"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  {'measured':>18}  {'target':<24}  anchor / note")
    for name, value, target, anchor in rows:
        print(f"{name:<{width}}  {value:>18}  {target:<24}  {anchor}")


if __name__ == "__main__":
    main()
