"""Sandbox figures beside docs/contracts.md's targets and the anchors measured on this kind of machine.

Cold start (no spare), warm start (from the pool's spare), warm exec of `1+1`, tool calls per
second across the process boundary (1 000 and 10 000 calls in one snippet, in-test handler), memory
per worker, and 4 parallel cold starts — per isolation backend. The 2-core scheduler makes pipe
ping-pong bimodal, so throughput is reported for two runs and CPU per call is printed too (it does
not depend on how busy the other core is).

Run alone with `.venv/bin/python benchmarks/bench_sandbox.py [BACKEND ...]` or through
`benchmarks/run.py sandbox`. On a shared machine, `nice -n -10` (as root) keeps other jobs from
dominating the figures; the load average and nice value are printed with them.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool, ToolReply, ToolRequest, ToolStub
from codeact_lsp.sandbox.backends import config_message, probe

ANCHOR_DSPY = "DSPy Deno/Pyodide"
ANCHOR_SMOL = "smolagents in-process"

TOOLS = [ToolStub(name="add")]
_REPLY = ToolReply(result=1)


def handler(req: ToolRequest) -> ToolReply:
    return _REPLY


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _pss_mb(pid: int | None) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _row(metric: str, value: str, target: str, anchors: str) -> None:
    print(f"  {metric:<34} {value:>16}   target {target:<12} {anchors}")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def bench_backend(backend: str) -> None:
    settings = SandboxSettings.model_validate({"backend": backend, "timeout": 120})
    print(f"\n[{backend}]")

    # cold start: a pool without spares pays spawn + interpreter start + confinement
    cold_pool = SandboxPool(spares=0)
    colds: list[float] = []
    for _ in range(7):
        t = time.perf_counter()
        sb = await Sandbox.start(settings, TOOLS, handler, pool=cold_pool)
        colds.append((time.perf_counter() - t) * 1000)
        await sb.close()
    # where a cold start goes: process spawn, interpreter + worker imports, confinement
    spawn, ready, conf = [], [], []
    for _ in range(5):
        t0 = time.perf_counter()
        w = await asyncio.wrap_future(cold_pool.spawn_now(sb.plan.spec))
        t1 = time.perf_counter()
        await asyncio.wrap_future(w.ready)
        t2 = time.perf_counter()
        msg = config_message(settings, sb.plan, w.scratch, [], [])
        reply = await asyncio.wrap_future(w.request(msg))
        t3 = time.perf_counter()
        w.kill()
        spawn.append((t1 - t0) * 1000)
        ready.append((t2 - t1) * 1000)
        conf.append(reply.get("ms", {}).get("total", (t3 - t2) * 1000))
    print(f"  isolation: {', '.join(sb.info.isolation)}")
    if sb.info.not_enforced:
        print(f"  NOT enforced: {'; '.join(sb.info.not_enforced)}")
    _row(
        "cold start (min/median)",
        f"{min(colds):.1f}/{statistics.median(colds):.1f} ms",
        "<= 20 ms",
        f"{ANCHOR_DSPY} 1800-2100 ms",
    )
    _row(
        "  spawn / start+imports / confine",
        f"{statistics.median(spawn):.1f}/{statistics.median(ready):.1f}/"
        f"{statistics.median(conf):.1f} ms",
        "",
        "(medians; confine = Landlock+seccomp+rlimits in the worker)",
    )

    # warm start: the spare is already running; start = one configure round trip
    pool = SandboxPool(spares=1)
    sb = await Sandbox.start(settings, TOOLS, handler, pool=pool)
    await sb.close()
    warms: list[float] = []
    for _ in range(7):
        await pool.warmed()
        t = time.perf_counter()
        sb = await Sandbox.start(settings, TOOLS, handler, pool=pool)
        warms.append((time.perf_counter() - t) * 1000)
        await sb.close()
    _row(
        "start from warm spare (min/median)",
        f"{min(warms):.2f}/{statistics.median(warms):.2f} ms",
        "<= 20 ms",
        f"{ANCHOR_DSPY} 1800-2100 ms",
    )

    sb = await Sandbox.start(settings, TOOLS, handler, pool=pool)
    for _ in range(200):
        await sb.execute("1+1")
    execs: list[float] = []
    for _ in range(2000):
        t = time.perf_counter()
        await sb.execute("1+1")
        execs.append((time.perf_counter() - t) * 1000)
    execs.sort()
    _row(
        "warm exec `1+1` (min/median)",
        f"{execs[0]:.3f}/{statistics.median(execs):.3f} ms",
        "<= 0.1 ms",
        f"{ANCHOR_DSPY} 1.76 ms; {ANCHOR_SMOL} 0.12 ms (no isolation)",
    )

    for n in (1000, 10000):
        rates: list[float] = []
        cpu_us: list[float] = []
        for _ in range(2):
            c0 = _cpu()
            t = time.perf_counter()
            r = await sb.execute(f"for i in range({n}):\n    add(i)")
            wall = time.perf_counter() - t
            assert r.error is None, r.error
            rates.append(n / wall)
            cpu_us.append((_cpu() - c0) / n * 1e6)
        _row(
            f"{n} tool calls in one snippet",
            " / ".join(f"{x / 1000:.1f}k" for x in rates) + "/s",
            ">= 40k/s",
            f"{ANCHOR_DSPY} 29k-41k/s",
        )
        _row("  server CPU per call", f"{statistics.mean(cpu_us):.1f} us", "", "")

    await sb.execute("import json, sqlite3\nx = [i for i in range(1000)]")
    _row(
        "memory per worker (RSS / PSS)",
        f"{_rss_mb(sb.pid):.1f} / {_pss_mb(sb.pid):.1f} MB",
        "<= 30 MB",
        f"{ANCHOR_DSPY} 140-190 MB",
    )
    await sb.close()
    await pool.close()

    # 4 parallel cold starts (no spares): wall time until all four can execute
    t = time.perf_counter()
    boxes = await asyncio.gather(
        *(Sandbox.start(settings, TOOLS, handler, pool=cold_pool) for _ in range(4))
    )
    await asyncio.gather(*(b.execute("1+1") for b in boxes))
    par = (time.perf_counter() - t) * 1000
    for b in boxes:
        await b.close()
    _row("4 parallel cold starts (wall)", f"{par:.1f} ms", "", f"{ANCHOR_DSPY} 4 x 1800 ms")
    await cold_pool.close()


def _bare_start_ms() -> list[float]:
    """The floor under any cold start: the interpreter alone, on this machine, right now."""
    out = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def _main(backends: list[str]) -> None:
    kernel = probe()
    print(
        f"sandbox benchmark — python {sys.version.split()[0]}, landlock ABI {kernel.landlock_abi}, "
        f"seccomp {'yes' if kernel.seccomp else 'no'}, bwrap {kernel.bwrap or 'not installed'}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, nice {os.nice(0)}"
    )
    bare = _bare_start_ms()
    _row(
        "reference: bare `python -I -S` start",
        f"{min(bare):.1f}/{statistics.median(bare):.1f} ms",
        "",
        "(floor under every cold start)",
    )
    for backend in backends:
        await bench_backend(backend)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    backends = args or ["landlock", "bwrap", "none"]
    if "bwrap" in backends and probe().bwrap is None:
        backends.remove("bwrap")
        print("bwrap: not installed (Debian package `bubblewrap`), skipped")
    asyncio.run(_main(backends))


if __name__ == "__main__":
    main()
