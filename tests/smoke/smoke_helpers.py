"""Shared pieces of the real-model smoke tier (imported by its conftest and tests)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from codeact_lsp.engine.parsing import parse_reply

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scripts" / "smoke"
QUICKSTART = ROOT / "examples" / "quickstart"
MODEL = "openai/smollm2"
# Short replies and few steps: the tier must stay well under 6 minutes of CI on 2 cores.
PARAMS: dict[str, Any] = {"max_tokens": 200, "temperature": 0, "timeout": 90}
MAX_ITERS = 3
ENDED = {"finished", "max_iters"}  # anything else (failed, internal error, a hang) is a bug
TOOLS = {"convert_currency", "shipping_quote", "stock_level", "reserve", "price_of"}
STOCK = {"SKU-42": 12}  # examples/quickstart/tools.py


def skipped() -> bool:
    in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
    return not in_ci and os.environ.get("CODEACT_SMOKE") == "0"


def server_threads() -> int:
    """llama.cpp's threads: exactly the cores, since it collapses when oversubscribed (4 threads
    on 2 cores: a 28-token prompt took 123 s). On a machine already busier than its cores (a
    shared developer box), one thread is several times faster than all of them.
    `CODEACT_SMOKE_THREADS` overrides."""
    if os.environ.get("CODEACT_SMOKE_THREADS"):
        return max(1, int(os.environ["CODEACT_SMOKE_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 1 if os.getloadavg()[0] > cores else cores


class ModelServer:
    def __init__(self, proc: subprocess.Popen[str], port: int, threads: int) -> None:
        self.proc = proc
        self.port = port
        self.threads = threads
        self.base = f"http://127.0.0.1:{port}/v1"
        self.log: list[str] = []

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"api_base": self.base, **PARAMS, **extra}


RECORD = os.environ.get("CODEACT_SMOKE_RECORD")  # append every reply here (to mine fixtures)


def check_trajectory(traj: dict[str, Any]) -> None:
    """What every real-model run must satisfy, whatever the model said."""
    assert traj["status"] in ENDED, f"run ended {traj['status']}: {traj.get('error')}"
    assert traj["model"] == MODEL and traj.get("scripted") is not True
    steps = traj["steps"]
    assert 1 <= len(steps) <= MAX_ITERS + 1
    assert traj["usage"]["prompt_tokens"] > 0 and traj["usage"]["completion_tokens"] > 0
    for step in steps:
        reply = step.get("reply") or ""
        if RECORD:
            with open(RECORD, "a", encoding="utf-8") as out:
                out.write(json.dumps({"reply": reply, "code": step["code"]}) + "\n")
        if step.get("replayed") or step.get("edited"):
            continue
        assert step["usage"]["prompt_tokens"] > 0, step  # tokens recorded per step
        if step["usage"]["completion_tokens"] >= PARAMS["max_tokens"]:
            assert step["cut_off"], "a reply at the cap must be marked cut off"
        # what ran is exactly what the parser took: bare output/prose fences never run
        parsed = parse_reply(reply)
        assert step["code"] == (parsed.code or ""), (reply, step["code"])
        assert step["status"] in ("ok", "error", "no_code"), step["status"]
        if step["error"] is not None:
            assert step["error"]["type"] != "InternalError", step["error"]
            assert "is not defined" not in step["error"]["message"] or not _from_stub(step)


def _from_stub(step: dict[str, Any]) -> bool:
    """A NameError for a name the prompt's stubs use (Any, Optional...): the contract broke."""
    msg = step["error"]["message"]
    return any(f"name '{n}' is not defined" in msg for n in ("Any", "Optional", "Union"))


def shadow_probe() -> str:
    """A last step run after the model's steps: the real tools and final_answer must answer."""
    return "n = stock_level('SKU-42')\nfinal_answer(n)"


def check_probe(traj: dict[str, Any]) -> None:
    assert traj["status"] == "finished", traj.get("error")
    assert traj["outputs"] == {"answer": STOCK["SKU-42"]}, traj["outputs"]
    last = traj["steps"][-1]
    assert [c["name"] for c in last["tool_calls"]][:1] == ["stock_level"]
