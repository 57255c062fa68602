"""`codeact run`: one task, its progress on stderr, its answer (or `--json`) on stdout."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from codeact_lsp.cli.common import (
    EXIT_NOT_FINISHED,
    EXIT_OK,
    UsageProblem,
    _config,
    _model_params,
    _say,
    _workspace,
)
from codeact_lsp.cli.review import _interactive, _make_approver, _prompt_decision
from codeact_lsp.config import CodeActConfig


async def _start_tools(ws: Path, config: CodeActConfig, out: TextIO, quiet: bool) -> Any:
    from codeact_lsp.assemble import start_workspace_tools

    host = await start_workspace_tools(ws, config)
    if not quiet:
        if host.problem:
            _say(f"warning: tools unavailable: {host.problem}", out)
        for d in host.diagnostics:
            if d.severity == "error":
                _say(f"warning: {d.file}:{d.line}: {d.message}", out)
    return host


# -- codeact run --------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    from codeact_lsp.assemble import make_engine
    from codeact_lsp.engine import EngineError, RetryPolicy, RunRequest

    ws = _workspace(args.workspace)
    overrides: dict[str, Any] = {
        "max_iters": args.max_iters,
        "approval": args.approval,
        "model_params": _model_params(args) or None,
    }
    if args.timeout is not None:
        overrides["sandbox"] = {"timeout": args.timeout}
    config = _config(ws, overrides)
    inputs = _inputs(args.inputs)
    if args.model_timeout is not None and args.model_timeout <= 0:
        raise UsageProblem("--model-timeout must be a positive number of seconds")
    if config.approval == "review" and not args.yes and not _interactive():
        raise UsageProblem("approval 'review' needs a terminal to approve steps (or pass --yes)")
    params = config.model_params
    await _check_model(args.model or config.model or os.environ.get("CODEACT_MODEL"), params)
    err = sys.stderr
    quiet = args.quiet or args.json
    tools = await _start_tools(ws, config, err, quiet)
    engine = make_engine(
        config,
        tools,
        workspace=ws,
        approver=_make_approver(args.yes, err, progress=not quiet),
        retry=RetryPolicy(timeout=args.model_timeout) if args.model_timeout else None,
    )
    try:
        try:
            handle = await engine.start(
                RunRequest(
                    task=args.task,
                    signature=args.signature,
                    inputs=inputs,
                    model=args.model,
                    max_iters=args.max_iters,
                )
            )
        except EngineError as exc:
            raise UsageProblem(str(exc)) from None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, handle.cancel)
            loop.add_signal_handler(signal.SIGTERM, handle.cancel)
        if not quiet:
            await _progress(handle, engine, err)
        traj = await handle.wait()
    finally:
        await engine.close()
        await tools.close()
    if args.json:
        print(traj.model_dump_json(indent=2))
    elif args.program and traj.status == "finished":
        _say(traj.program or "", sys.stdout, end="")
    else:
        _print_outcome(traj, sys.stdout)
    return EXIT_OK if traj.status == "finished" else EXIT_NOT_FINISHED


async def _check_model(name: str | None, params: dict[str, Any] | None = None) -> None:
    """A real model that cannot work (no key, unknown provider) is a configuration error: say so
    before starting anything, rather than fail the run at its first call. (No name at all is
    reported by the engine, with how to set one.)"""
    if not name:
        return
    from codeact_lsp.engine.model import check_model

    problem = await check_model(name, **(params or {}))
    if problem:
        raise UsageProblem(problem)


def _inputs(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise UsageProblem(f"--inputs is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageProblem("--inputs must be a JSON object")
    return value


async def _progress(handle: Any, engine: Any, out: TextIO) -> None:
    """One line per event worth seeing; the run file has everything else (and is on disk by the
    time its line is printed, so a watcher can rely on it)."""
    async for event in handle.subscribe():
        line = _event_line(event, handle)
        if line:
            await engine.flushed()
            _say(line, out, flush=True)
        step = handle.pending_step
        if event.kind == "awaiting_approval" and step is not None and step.index == event.step:
            decision = await _prompt_decision(step, event.data.get("confirm_tools") or [], out)
            if decision.action == "approve":
                handle.approve(decision.code)
            else:
                handle.reject(decision.feedback)


def _event_line(event: Any, handle: Any) -> str | None:
    d = event.data
    k = event.kind
    if k == "started":
        label = " (scripted stand-in, not a real model)" if d.get("scripted") else ""
        return f"run {event.run_id} · model {d.get('model')}{label}"
    if k == "model_retry":
        return f"  model: {d.get('error')} — retrying in {d.get('delay', 0):.1f}s"
    if k == "step_proposed":
        code = str(d.get("code", ""))
        first = code.strip().splitlines()[0] if code.strip() else ""
        return f"step {event.step}: {first[:70]}{' …' if len(code.splitlines()) > 1 else ''}"
    if k == "awaiting_approval":
        return f"  waiting for approval: {d.get('reason')}"
    if k == "tool_called":
        return "  → " + _call_text(handle, event.step, d)
    if k == "step_finished":
        status = d.get("status")
        problem: dict[str, Any] = d.get("error") or {}
        if status == "error":
            where = f" (line {problem.get('line')})" if problem.get("line") else ""
            return f"  ✗ {problem.get('type')}: {problem.get('message')}{where}"
        if status == "no_code":
            return "  (no code in the reply)"
        if status == "rejected":
            return f"  rejected: {d.get('feedback') or ''}"
        tokens = _prompt_tokens(handle, event.step)
        return f"  ✓ {d.get('duration_ms', 0):.1f} ms{tokens}" + (
            " · final answer" if d.get("final") else ""
        )
    if k in ("finished", "failed", "cancelled", "max_iters"):
        return f"{k}" + (f": {d['error']}" if d.get("error") else "") + _usage_text(handle)
    return None


def _usage_text(handle: Any) -> str:
    """` · 3 steps · 1 234 tokens · $0.0012`; the cost only when the model's price is known
    (a stand-in or an unpriced model says so instead of claiming the run was free)."""
    traj = handle.trajectory
    usage = traj.usage
    tokens = usage.prompt_tokens + usage.completion_tokens
    if not traj.steps and not tokens:
        return ""
    text = f" · {len(traj.steps)} step{'s' if len(traj.steps) != 1 else ''} · {tokens} tokens"
    if traj.scripted:
        return text
    cost = usage.cost_usd
    if cost is None:
        return text + " · cost unknown"
    return text + (f" · ${cost:.4f}" if cost >= 0.01 else f" · ${cost:.6f}")


def _call_text(handle: Any, index: int | None, d: dict[str, Any]) -> str:
    """`price_of(sku='SKU-42') = {...}` from the recorded call, cut to fit a line."""
    steps = handle.trajectory.steps
    call = None
    if index is not None and 0 < index <= len(steps):
        calls = steps[index - 1].tool_calls
        i = d.get("call")
        call = calls[i] if isinstance(i, int) and 0 <= i < len(calls) else None
    if call is None:
        return f"{d.get('name')}()"
    args = ", ".join(f"{k}={v!r}" for k, v in call.args.items())
    outcome = f" ✗ {call.error}" if call.error else f" = {call.result!r}"
    if call.name == "final_answer" and not call.error:
        outcome = ""
    text = f"{call.name}({args}){outcome}"
    return text if len(text) <= 100 else text[:97] + "..."


def _prompt_tokens(handle: Any, index: int | None) -> str:
    steps = handle.trajectory.steps
    if index is None or not 0 < index <= len(steps):
        return ""
    usage = steps[index - 1].usage
    return f" · prompt {usage.prompt_tokens} tok" if usage.prompt_tokens else ""


def _print_outcome(traj: Any, out: TextIO) -> None:
    if traj.status == "finished" and traj.outputs is not None:
        outputs = traj.outputs
        if len(outputs) == 1:
            _say(_show(next(iter(outputs.values()))), out)
        else:
            for key, value in outputs.items():
                _say(f"{key}: {_show(value)}", out)
    else:
        _say(f"not finished ({traj.status}): {traj.error or ''}".rstrip(": "), out)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
