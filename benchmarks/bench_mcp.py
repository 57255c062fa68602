"""MCP tools next to workspace tools: what one call costs through each path, from the server's
thread and from inside a sandbox snippet, and what starting a server costs.

MCP servers are separate processes spoken to over stdio JSON-RPC with the official SDK (an async
client on its own loop thread), so a call costs a round trip through two event loops and the
server's own dispatch; a workspace tool goes to the tool host over a pipe. The figures show how
much more an MCP call costs per call, so it is clear when a loop over an MCP tool is the slow part.

Run alone with `.venv/bin/python benchmarks/bench_mcp.py` or through `benchmarks/run.py mcp`.
The npm reference server is measured when `npm ci` has been run in tests/fixtures/mcp.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeact_lsp.config import CodeActConfig, SandboxSettings, load_config
from codeact_lsp.mcp import CombinedTools, McpTools
from codeact_lsp.tools import ToolHost

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"
FIXTURES = ROOT / "tests" / "fixtures" / "mcp"
EVERYTHING = (
    FIXTURES / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)


def row(metric: str, value: str, note: str = "") -> None:
    print(f"  {metric:<60} {value:>18}   {note}")


def _per_call_us(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(50, n)):
        fn()
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(runs)


def _workspace(tmp: Path) -> Path:
    ws = tmp / "ws"
    shutil.copytree(QUICKSTART, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    servers = [
        "[mcp.inventory]",
        f'command = "{sys.executable}"',
        f'args = ["{FIXTURES / "py_server.py"}"]',
    ]
    if EVERYTHING.is_file() and shutil.which("node"):
        servers += ["[mcp.everything]", f'command = "{shutil.which("node")}"']
        servers += [f'args = ["{EVERYTHING}", "stdio"]']
    (ws / "codeact.toml").write_text('tools = ["tools.py"]\n' + "\n".join(servers) + "\n")
    return ws


def bench() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(Path(tmp))
        config = load_config(ws).config
        host = ToolHost.start(ws, CodeActConfig(tools=["tools.py"]))
        mcp = McpTools.for_workspace(ws, config, reserved=[s.name for s in host.schemas()])
        t = time.perf_counter()
        mcp.start()
        total_ms = (time.perf_counter() - t) * 1000
        try:
            for s in mcp.status():
                row(f"start {s['name']} server + list its tools", f"{s['start_ms']:.0f} ms")
            row("start every server (in parallel)", f"{total_ms:.0f} ms", "once per workspace")
            tools = CombinedTools(host, mcp)
            ws_us = _per_call_us(lambda: host.call_sync("stock_level", ["SKU-42"], {}), 2000)
            row("workspace tool, server thread -> tool host", f"{ws_us:,.1f} us/call", "baseline")
            cases = [("Python SDK server (MCPServer)", "note", ["x"])]
            if "echo" in mcp.tools:
                cases.append(("npm server-everything (node)", "echo", ["x"]))
            mcp_us: dict[str, float] = {}
            for label, name, args in cases:
                us = _per_call_us(lambda n=name, a=args: tools.call_sync(n, a, {}), 500)  # type: ignore[misc]
                mcp_us[name] = us
                row(
                    f"MCP tool, server thread -> {label}",
                    f"{us:,.1f} us/call",
                    f"{us / ws_us:.1f}x the workspace tool",
                )
            asyncio.run(_in_sandbox(tools, [c[1:] for c in cases], ws_us))
        finally:
            mcp.close_sync()
            host.close_sync()


async def _in_sandbox(
    tools: CombinedTools, cases: list[tuple[str, list[Any]]], ws_us: float
) -> None:
    from codeact_lsp.sandbox import Sandbox, ToolReply, ToolRequest, ToolStub

    def handler(req: ToolRequest) -> ToolReply:
        out = tools.call_sync(req.name, list(req.args), dict(req.kwargs))
        return ToolReply(result=out.result, error=out.error)

    names = ["stock_level", *(name for name, _ in cases)]
    sb = await Sandbox.start(SandboxSettings(), [ToolStub(name=n) for n in names], handler)
    try:
        plan = [("stock_level", ["SKU-42"], 2000, "workspace tool")] + [
            (name, args, 300, f"MCP {name}") for name, args in cases
        ]
        base = None
        for name, args, n, label in plan:
            code = f"for _ in range({n}):\n    {name}(*{args!r})\n"
            await sb.execute(code)  # warm
            res = await sb.execute(code)
            assert res.error is None, res.error
            us = res.duration_ms * 1000 / n
            base = base or us
            note = "baseline" if base == us else f"{us / base:.1f}x the workspace tool"
            row(f"sandbox snippet loop, {label}", f"{us:,.1f} us/call", note)
    finally:
        await sb.close()
    _ = ws_us


def main() -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  ({os.cpu_count()} cores, load average {load}: figures scale with contention)")
    print(f"  {'metric':<60} {'measured':>18}")
    bench()


if __name__ == "__main__":
    main()
