"""Language server: spawn → `initialize`, and code lens / diagnostics latency, idle and with 4 runs.

Everything is measured from a real client over stdio (pygls' LanguageClient), so the figures are
what an editor waits for, transport included. The "with 4 active runs" phase starts four runs on
the scripted stand-in whose steps call a tool hundreds of times each (thousands of run events per
second reach the server) and checks they are still running when the measurement ends.

Usage: `.venv/bin/python benchmarks/bench_lsp.py [--spawns N] [--requests N]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"
SERVER = [sys.executable, "-m", "codeact_lsp"]

_CAPS_JSON: Any = None

MINIMAL_SERVER = """
from pygls.lsp.server import LanguageServer
LanguageServer("minimal", "0").start_io()
"""


def _interpreter_start() -> float:
    import subprocess

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - started) * 1000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _caps() -> lsp.ClientCapabilities:
    return lsp.ClientCapabilities(
        workspace=lsp.WorkspaceClientCapabilities(
            apply_edit=True,
            configuration=True,
            code_lens=lsp.CodeLensWorkspaceClientCapabilities(refresh_support=True),
            diagnostics=lsp.DiagnosticWorkspaceClientCapabilities(refresh_support=True),
        ),
        text_document=lsp.TextDocumentClientCapabilities(
            diagnostic=lsp.DiagnosticClientCapabilities(dynamic_registration=False)
        ),
        window=lsp.WindowClientCapabilities(
            work_done_progress=True,
            show_document=lsp.ShowDocumentClientCapabilities(support=True),
        ),
    )


def _caps_json() -> Any:
    from pygls.protocol import default_converter

    return default_converter().unstructure(_caps())  # type: ignore[no-untyped-call]


def _client(settings: dict[str, Any]) -> LanguageClient:
    client = LanguageClient("bench", "0")

    def on(method: str, answer: Any = None) -> None:
        client.feature(method)(lambda *_: answer)

    client.feature(lsp.WORKSPACE_CONFIGURATION)(lambda params: [settings for _ in params.items])
    on(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
    on(lsp.PROGRESS)
    on(lsp.WINDOW_SHOW_DOCUMENT, lsp.ShowDocumentResult(success=True))
    on(lsp.WINDOW_LOG_MESSAGE)
    on(lsp.WINDOW_SHOW_MESSAGE)
    on(lsp.WORKSPACE_CODE_LENS_REFRESH)
    on(lsp.WORKSPACE_DIAGNOSTIC_REFRESH)
    on(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return client


async def _spawn_to_initialize(
    cmd: list[str], ws: Path, env: dict[str, str] | None = None
) -> float:
    """Spawn → the whole `initialize` answer read, over raw stdio (what an editor waits for,
    whatever its client library); the process is then ended."""
    params = {"processId": os.getpid(), "rootUri": ws.as_uri(), "capabilities": _CAPS_JSON}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body.encode()))
    await proc.stdin.drain()
    length = 0
    while (line := await proc.stdout.readline()).strip():
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    answer = json.loads(await proc.stdout.readexactly(length))
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.get("id") == 1 and "capabilities" in answer["result"], answer
    proc.kill()
    await proc.wait()
    return elapsed


async def _command(client: LanguageClient, name: str, arg: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=name, arguments=[arg])
    )


def _get(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value[key]
    return getattr(value, key)


async def _latency(client: LanguageClient, uris: list[str], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"codeLens": [], "diagnostic": []}
    for i in range(n):
        uri = uris[i % len(uris)]
        ident = lsp.TextDocumentIdentifier(uri=uri)
        t0 = time.perf_counter()
        await client.text_document_code_lens_async(lsp.CodeLensParams(text_document=ident))
        t1 = time.perf_counter()
        await client.text_document_diagnostic_async(
            lsp.DocumentDiagnosticParams(text_document=ident)
        )
        t2 = time.perf_counter()
        out["codeLens"].append((t1 - t0) * 1000)
        out["diagnostic"].append((t2 - t1) * 1000)
    return out


def _open(client: LanguageClient, path: Path) -> str:
    uri = path.resolve().as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=path.read_text(encoding="utf-8")
            )
        )
    )
    return uri


async def _status(client: LanguageClient, run_id: str) -> str:
    return str(_get(await _command(client, "codeact.getRun", {"runId": run_id}), "status"))


async def _until(client: LanguageClient, run_id: str, want: set[str], limit: float = 120) -> str:
    deadline = time.monotonic() + limit
    status = ""
    while time.monotonic() < deadline:
        status = await _status(client, run_id)
        if status in want:
            return status
        await asyncio.sleep(0.05)
    raise RuntimeError(f"run {run_id} stayed {status}")


Phase = tuple[str, dict[str, list[float]], dict[str, Any], int]

# Four runs at once, two ways: "typical" runs wait for the model (0.3 s per reply, as a fast real
# model would) and call a few tools per step; "tight loops" call a tool 300 times per step with no
# model wait at all — every core busy with sandbox workers and the tool host (a worst case).
WORKLOADS = {
    "typical": [
        {
            "reply": "Look up.\n\n```python\nfor sku in ['SKU-42', 'SKU-7']:\n"
            "    print(price_of(sku), stock_level(sku))\n"
            "print(convert_currency(10.0, 'USD', 'EUR'))\n```",
            "delay": 0.3,
        }
    ]
    * 150,
    "tight loops": [
        "Loop.\n\n```python\nfor i in range(300):\n    convert_currency(1.0, 'EUR', 'USD')\n"
        "print(i)\n```"
    ]
    * 150,
}


async def _phase(
    client: LanguageClient, ws: Path, uris: list[str], requests: int, name: str
) -> Phase:
    replies = ws / "replies" / f"bench-{name.replace(' ', '-')}.json"
    replies.write_text(json.dumps(WORKLOADS[name]), encoding="utf-8")
    runs = []
    for k in range(4):
        started = await _command(
            client,
            "codeact.run",
            {"task": f"{name} {k}", "model": f"scripted:replies/{replies.name}", "maxIters": 150},
        )
        runs.append(_get(started, "runId"))
    for run_id in runs:
        await _until(client, run_id, {"running"})
    await _command(client, "codeact.serverStats", {"reset": True})
    started = time.perf_counter()
    data = await _latency(client, uris, requests)
    server = _plain(await _command(client, "codeact.serverStats", {"reset": True}))
    server["windowS"] = time.perf_counter() - started
    active = sum([await _status(client, r) == "running" for r in runs])
    for run_id in runs:
        await _command(client, "codeact.cancel", {"runId": run_id})
    return f"4 runs, {name}", data, server, active


async def _editor_latency(ws: Path, requests: int) -> list[Phase]:
    client = _client({})
    await client.start_io(*SERVER)
    phases: list[Phase] = []
    try:
        await client.initialize_async(
            lsp.InitializeParams(process_id=os.getpid(), root_uri=ws.as_uri(), capabilities=_caps())
        )
        client.initialized(lsp.InitializedParams())
        done = await _command(
            client, "codeact.run", {"task": "quote", "model": "scripted:replies/quote.json"}
        )
        await _until(client, _get(done, "runId"), {"finished"})
        uris = [
            _open(client, Path(_get(done, "trajectoryUri").removeprefix("file://"))),
            _open(client, ws / "tools.py"),
        ]
        await _latency(client, uris, 20)  # warm-up
        await _command(client, "codeact.serverStats", {"reset": True})
        idle = await _latency(client, uris, requests)
        idle_server = _plain(await _command(client, "codeact.serverStats", {"reset": True}))
        phases.append(("idle", idle, idle_server, 0))
        for name in WORKLOADS:
            phases.append(await _phase(client, ws, uris, requests, name))
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()  # type: ignore[no-untyped-call]
    return phases


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    from pygls.protocol import default_converter

    out = default_converter().unstructure(value)  # type: ignore[no-untyped-call]
    return out if isinstance(out, dict) else {}


def _doc_rows(label: str, srv: dict[str, Any]) -> None:
    """How often the server re-rendered and rewrote trajectory files for the run events it got
    (coalescing: at most ~10 renders per second per run however many events arrive)."""
    window = float(srv.get("windowS") or 0.0)
    events = (srv.get("runEvent") or {}).get("count", 0)
    if not window or not events:
        return
    renders = srv.get("docRender") or {}
    writes = srv.get("docWrite") or {}
    per_run = 4.0 * window
    _row(
        f"  run events / renders / writes, {label}",
        f"{events / per_run:.0f} / {renders.get('count', 0) / per_run:.1f} / "
        f"{writes.get('count', 0) / per_run:.1f} per s·run",
        "renders ≤ 10",
        "(one render per ~100 ms per run, one more at the end)",
    )
    if renders:
        _row(
            f"  trajectory render+write, {label} (p50 / p99)",
            f"{renders['p50']:.2f} / {renders['p99']:.2f} ms",
            "",
            "",
        )


def _row(name: str, value: str, target: str, anchor: str) -> None:
    print(f"  {name:<44} {value:>18}   target {target:<12} anchor {anchor}")


async def _main(spawns: int, requests: int) -> None:
    global _CAPS_JSON
    _CAPS_JSON = _caps_json()
    tmp = Path(tempfile.mkdtemp(prefix="bench-lsp-"))
    try:
        ws = tmp / "quickstart"
        shutil.copytree(QUICKSTART, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
        minimal = tmp / "minimal_server.py"
        minimal.write_text(MINIMAL_SERVER, encoding="utf-8")

        cache = {"CODEACT_LSP_CACHE_DIR": str(tmp / "init-cache")}
        no_cache = {"CODEACT_LSP_INIT_CACHE": "0"}
        await _spawn_to_initialize(SERVER, ws, cache)  # fills the cache: the editor's first start
        cached = [await _spawn_to_initialize(SERVER, ws, cache) for _ in range(spawns)]
        cold = [await _spawn_to_initialize(SERVER, ws, no_cache) for _ in range(spawns)]
        bare = [
            await _spawn_to_initialize([sys.executable, str(minimal)], ws) for _ in range(spawns)
        ]
        floor = [_interpreter_start() for _ in range(spawns)]
        print(
            f"codeact-lsp benchmarks ({spawns} spawns, {requests} requests per phase, {os.cpu_count()} cores)"
        )
        _row(
            "spawn → initialize, usual start (median/p90)",
            f"{statistics.median(cached):.0f} / {_pct(cached, 0.9):.0f} ms",
            "≤ 350 ms",
            f"minimal pygls server here: {statistics.median(bare):.0f} / {_pct(bare, 0.9):.0f} ms",
        )
        _row(
            "  floor: bare interpreter start (median)",
            f"{statistics.median(floor):.0f} ms",
            "",
            "python -c pass with this venv's site-packages",
        )
        _row(
            "spawn → initialize, first start (median/p90)",
            f"{statistics.median(cold):.0f} / {_pct(cold, 0.9):.0f} ms",
            "≤ 350 ms",
            "(no cached answer yet: pygls computes it)",
        )

        for label, data, srv, active in await _editor_latency(ws, requests):
            if label != "idle" and active < 4:
                label += f" ({active} still active at the end)"
            for kind, values in data.items():
                _row(
                    f"{kind} round trip, {label} (p50 / p99)",
                    f"{_pct(values, 0.5):.2f} / {_pct(values, 0.99):.2f} ms",
                    "p99 ≤ 20 ms",
                    "none: no anchor shows trajectories in the editor",
                )
                inside = srv.get(kind)
                if inside:
                    _row(
                        f"  {kind} in the server's handler (p50 / p99)",
                        f"{inside['p50']:.2f} / {inside['p99']:.2f} ms",
                        "",
                        "",
                    )
            _doc_rows(label, srv)
            lag = srv.get("loopLag")
            if lag:
                _row(
                    f"  event-loop lag, {label} (p50 / p99)",
                    f"{lag['p50']:.2f} / {lag['p99']:.2f} ms",
                    "",
                    "(CPU contention shows here)",
                )
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if active < 4:
            print(
                f"  note: only {active} of 4 runs were still active at the end of the measurement"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv if argv is not None else [])
    asyncio.run(_main(args.spawns, args.requests))


if __name__ == "__main__":
    main(sys.argv[1:])
