"""Suites on Ray: what Ray adds per run, and runs/s at 1 and 2 nodes on this machine.

- Ray's own round trip: a no-op Ray task asking for one `codeact_slot`, one after another (ms).
- A trivial scripted suite (each run: a fresh tool host, one step, `final_answer(1)`) run
  locally (`run_suite`, jobs = slots) and through `run_suite_ray` on a cluster of 1 and of 2
  nodes (`ray.cluster_utils.Cluster`: two raylets on this machine stand in for two nodes), the
  same number of slots per node. Overhead per run = Ray's wall per run minus local's at the
  same width, after the cluster's start (reported apart: it is paid once per suite).
- The paper model: the 1 230-run matrix (82 tasks x 5 models x 3 repeats) at N nodes, from a
  run's real cost (5 model steps of ~5 s, the issue's figure) plus the measured overhead.

On a 2-core machine the second "node" shares the same cores, so it shows that runs spread over
nodes, not a speed-up. Run alone: `.venv/bin/python benchmarks/bench_ray.py`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS, REPEAT, SLOTS = 12, 2, 2
STEP_S, STEPS, PAPER_RUNS, PAPER_SLOTS = 5.0, 5, 82 * 5 * 3, 8


def _workspace(root: Path) -> Path:
    ws = root / "ws"
    ws.mkdir()
    (ws / "tools.py").write_text('def one() -> int:\n    """One."""\n    return 1\n')
    (ws / "codeact.toml").write_text(f'tools = ["tools.py"]\n\n[suite]\njobs = {SLOTS}\n')
    (ws / "fast.json").write_text(json.dumps(["```python\nfinal_answer(one())\n```"]))
    tables = [
        f'[[task]]\nname = "t{i:02d}"\ntask = "one"\nmodel = "scripted:fast.json"\nexpect = 1\n'
        for i in range(TASKS)
    ]
    (ws / "tasks.toml").write_text("\n".join(tables))
    return ws


async def _local(ws: Path) -> float:
    from codeact_lsp.config import load_config
    from codeact_lsp.engine import Engine
    from codeact_lsp.engine.suite import run_suite
    from codeact_lsp.tools import ToolHost

    config = load_config(ws).config
    host = await ToolHost.astart(ws, config)
    engine = Engine(config, host, workspace=ws, runs_dir=None)
    try:
        t0 = time.perf_counter()
        results = await run_suite(engine, ws / "tasks.toml", repeat=REPEAT)
        wall = time.perf_counter() - t0
    finally:
        await engine.close()
        await host.close()
    assert all(r.passed for r in results), [r.message for r in results]
    return wall


def _round_trip(address: str) -> float:
    import ray

    ray.init(address=address, log_to_driver=False)
    try:

        @ray.remote(num_cpus=0, resources={"codeact_slot": 1})
        def noop() -> int:
            return 1

        ray.get(noop.remote())  # a worker up
        n = 100
        t0 = time.perf_counter()
        for _ in range(n):
            ray.get(noop.remote())
        return (time.perf_counter() - t0) / n
    finally:
        ray.shutdown()


async def _on_ray(ws: Path, address: str, runs_dir: Path) -> tuple[float, int]:
    from codeact_lsp.config import load_config
    from codeact_lsp.engine.suite_ray import run_suite_ray

    config = load_config(ws).config
    # once untimed: workers start, the workspace package is uploaded
    await run_suite_ray(config, ws, ws / "tasks.toml", repeat=1, address=address, runs_dir=runs_dir)
    t0 = time.perf_counter()
    results = await run_suite_ray(
        config, ws, ws / "tasks.toml", repeat=REPEAT, address=address, runs_dir=runs_dir
    )
    wall = time.perf_counter() - t0
    assert all(r.passed for r in results), [r.message for r in results]
    on_node = sum(r.duration_s for r in results) / len(results)
    print(
        f"  ({len(results)} runs: {on_node * 1000:.0f} ms per run on its node, tool host start included)"
    )
    return wall, len({r.node for r in results})


def main() -> None:
    # before Ray is imported: it reads its configuration once
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        print("ray is not installed (pip install 'codeact-lsp[ray]'): nothing measured")
        return
    load = os.getloadavg()[0]
    runs = TASKS * REPEAT
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(Path(tmp))
        asyncio.run(_local(ws))  # warm the imports and the page cache
        local = asyncio.run(_local(ws))
        rows: list[tuple[str, int, float, float]] = [("local", 1, local, 0.0)]
        trip = 0.0
        for nodes in (1, 2):
            t0 = time.perf_counter()
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": SLOTS, "resources": {"codeact_slot": SLOTS}},
            )
            for _ in range(nodes - 1):
                cluster.add_node(num_cpus=SLOTS, resources={"codeact_slot": SLOTS})
            cluster.wait_for_nodes()
            start = time.perf_counter() - t0
            try:
                if nodes == 1:
                    trip = _round_trip(cluster.address)
                wall, used = asyncio.run(_on_ray(ws, cluster.address, Path(tmp) / "runs"))
            finally:
                cluster.shutdown()
            rows.append((f"ray, {nodes} node(s) ({used} used)", nodes, wall, start))
    print(f"load average at start: {load:.2f} (2 cores); {runs} runs, {SLOTS} slots per node")
    print(f"Ray round trip (no-op task, one slot): {trip * 1000:.1f} ms")
    print(f"{'executor':<26}{'wall s':>8}{'runs/s':>8}{'ms/run':>9}{'cluster start s':>17}")
    for name, _nodes, wall, start in rows:
        print(f"{name:<26}{wall:>8.2f}{runs / wall:>8.2f}{wall / runs * 1000:>9.0f}{start:>17.1f}")
    one_node = rows[1][2]
    overhead = max(0.0, (one_node - local) / runs * SLOTS)  # per run, at the same width
    print(f"Ray's overhead per run (1 node vs local, {SLOTS} at once): {overhead * 1000:.0f} ms")
    run_s = STEP_S * STEPS + overhead
    print(
        f"\npaper model: {PAPER_RUNS} runs x ({STEPS} steps x {STEP_S:.0f} s + {overhead:.2f} s"
        f" overhead), {PAPER_SLOTS} runs at once per node"
    )
    for n in (1, 2, 4, 8, 16):
        waves = math.ceil(PAPER_RUNS / (PAPER_SLOTS * n))
        print(f"  {n:>2} node(s): {waves * run_s / 60:6.1f} min ({waves} waves)")


if __name__ == "__main__":
    main()
