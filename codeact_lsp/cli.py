"""`codeact`: run tasks, list tools and run task suites from a terminal or CI, on the same engine.

Exit codes (docs/contracts.md): 0 the run finished (or every suite task passed), 1 it did not, 2 a usage
or configuration error. Progress goes to stderr so stdout stays clean for the answer or `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.termsafe import for_stream

if TYPE_CHECKING:
    from codeact_lsp.engine import Decision

EXIT_OK, EXIT_NOT_FINISHED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a SIGINT


class UsageProblem(Exception):
    """Bad flags or configuration: printed as one line, exit code 2."""


def _say(text: str, stream: TextIO, *, end: str = "\n", flush: bool = False) -> None:
    """Print text that may come from a run (code, answers, errors, tool results): on a terminal
    its control sequences are shown, not interpreted (termsafe); pipes and files get it exact."""
    print(for_stream(text, stream), file=stream, end=end, flush=flush)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeact", description="Run CodeAct agents on your workspace's tools, in a sandbox."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one task and print the answer")
    run.add_argument("task", help="what the agent should do")
    run.add_argument("--workspace", "-w", default=".", help="workspace directory (default: .)")
    run.add_argument("--model", "-m", help="litellm model string, or scripted:PATH")
    run.add_argument(
        "--signature", "-s", help='e.g. "question -> answer" (default: task -> answer)'
    )
    run.add_argument("--inputs", help="JSON object of input values for the signature")
    run.add_argument("--max-iters", type=int, help="step budget")
    run.add_argument("--timeout", type=float, help="seconds per sandbox step")
    run.add_argument(
        "--api-base",
        help="the model server's URL (an OpenAI-compatible or local server; same as"
        " --model-param api_base=URL); a server on this machine needs no key, others take theirs"
        " from the environment (e.g. OPENAI_API_KEY), never from flags",
    )
    _model_param_flag(run)
    run.add_argument(
        "--model-timeout",
        type=float,
        help="seconds per model call attempt before retrying (default 120)",
    )
    run.add_argument("--approval", choices=["auto", "review", "confirm-tools"])
    run.add_argument("--yes", "-y", action="store_true", help="approve every waiting step")
    run.add_argument("--json", action="store_true", help="print the trajectory as JSON")
    run.add_argument(
        "--program",
        action="store_true",
        help="print the run's program (successful steps + tool imports) instead of the answer",
    )
    run.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    tools = sub.add_parser("tools", help="list the workspace's tools and their diagnostics")
    tools.add_argument("--workspace", "-w", default=".")
    tools.add_argument("--json", action="store_true")

    test = sub.add_parser("test", help="run a task suite (exit code for CI)")
    test.add_argument("file", nargs="?", help="suite file (default: config `tasks`, tasks.toml)")
    test.add_argument("--workspace", "-w", default=".")
    test.add_argument("--task", "-k", action="append", dest="names", help="run only this task")
    test.add_argument("--junit", help="write JUnit XML here")
    test.add_argument("--model", "-m", help="model for tasks that do not name one")
    test.add_argument("--api-base", help="the model server's URL (see `codeact run --help`)")
    _model_param_flag(test)
    test.add_argument("--yes", "-y", action="store_true", help="approve steps that wait")
    test.add_argument("--json", action="store_true", help="print results as JSON")
    test.add_argument(
        "--jobs", "-j", type=int, help="tasks run at the same time (default: config suite.jobs, 1)"
    )
    test.add_argument(
        "--shared-state",
        action="store_true",
        help="one tool host for the whole suite, tasks in file order (default: each task gets"
        " fresh tool state)",
    )
    test.add_argument(
        "--models",
        help="comma-separated models to run every task on (a matrix; default: config"
        " suite.models, else --model); a task naming its own model keeps it",
    )
    test.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on a Ray cluster (pip install 'codeact-lsp[ray]'): ADDRESS, or config"
        " suite.ray.address, else a local Ray started and stopped for the suite",
    )
    test.add_argument("--summary", metavar="PATH", help="write the matrix summary (JSON) here")
    test.add_argument(
        "--compare",
        metavar="PREVIOUS.json",
        help="a --summary file of an earlier run: print what got better or worse",
    )
    test.add_argument(
        "--repeat",
        "-n",
        type=int,
        help="runs of each task per model (default: config suite.repeat, 1)",
    )

    runs = sub.add_parser("runs", help="list the workspace's runs; discard or restore one")
    runs.add_argument("--workspace", "-w", default=".")
    runs.add_argument("--all", action="store_true", help="include discarded runs")
    runs.add_argument("--discard", metavar="RUN_ID", help="discard this run (undo: --restore)")
    runs.add_argument("--restore", metavar="RUN_ID", help="bring a discarded run back")
    runs.add_argument("--json", action="store_true")

    mcp = sub.add_parser("mcp", help="serve the sandbox and the tools as a stdio MCP server")
    mcp.add_argument("--workspace", "-w", default=".")
    return parser


def _model_param_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a litellm option over the workspace's model_params, e.g. temperature=0 or"
        " max_tokens=512 (VALUE is read as JSON when it parses, else as text); repeatable;"
        " never a key (keys come from the environment)",
    )


def _model_params(args: argparse.Namespace) -> dict[str, Any]:
    """--model-param and --api-base as a model_params override (validated with the file's)."""
    params: dict[str, Any] = {}
    for item in args.model_param:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageProblem(f"--model-param {item!r}: expected KEY=VALUE, e.g. temperature=0")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        params[key.strip()] = value
    if args.api_base:
        params["api_base"] = args.api_base
    return params


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "tools":
            from codeact_lsp.mcp.report import tools_command

            return tools_command(_workspace(args.workspace), args.json, sys.stdout)
        if args.command == "mcp":
            from codeact_lsp.mcp.server import serve

            return serve(_workspace(args.workspace))
        if args.command == "run":
            return asyncio.run(_run(args))
        if args.command == "runs":
            return asyncio.run(_runs(args))
        try:
            return asyncio.run(_test(args))
        except KeyboardInterrupt:  # what finished is printed by `_test`; no traceback
            _say("codeact: interrupted", sys.stderr)
            return EXIT_INTERRUPTED
    except UsageProblem as exc:
        _say(f"codeact: {exc}", sys.stderr)
        return EXIT_USAGE


# -- shared setup -------------------------------------------------------------------------------


def _workspace(raw: str) -> Path:
    ws = Path(raw).expanduser().resolve()
    if not ws.is_dir():
        raise UsageProblem(f"workspace {raw!r} is not a directory")
    return ws


def _config(ws: Path, overrides: dict[str, Any]) -> CodeActConfig:
    loaded = load_config(ws, overrides)
    if loaded.problems:
        raise UsageProblem(
            "configuration problems:\n  " + "\n  ".join(str(p) for p in loaded.problems)
        )
    return loaded.config


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _make_approver(yes: bool, out: TextIO, *, progress: bool) -> Any:
    """--yes approves; without a terminal nobody can approve (the model is told so); on a
    terminal the progress printer asks (so the question comes after the lines before it), or
    this hook asks when there is no progress output (--json, --quiet)."""
    from codeact_lsp.engine import Decision

    async def approver(handle: Any, step: Any, confirm: list[str]) -> Decision | None:
        if yes:
            return Decision(action="approve")
        if not _interactive():
            why = f"calls {', '.join(confirm)}" if confirm else "is in review mode"
            return Decision(
                action="reject",
                feedback=f"Not approved: this step {why} and nobody can approve it in this"
                " non-interactive session. Solve the task without it.",
            )
        if progress:
            return None  # the progress printer asks, in order with what it printed
        return await _prompt_decision(step, confirm, out)

    return approver


async def _prompt_decision(step: Any, confirm: list[str], out: TextIO) -> Decision:
    from codeact_lsp.engine import Decision

    why = f" (calls {', '.join(confirm)})" if confirm else ""
    _say(f"--- step {step.index} waits for approval{why} ---\n{step.code}\n---", out)
    while True:
        try:
            answer = await _ask("run it? [y]es / [e]dit / [n]o: ")
        except EOFError:
            return Decision(action="reject", feedback="Not approved (no answer).")
        choice = answer.strip().lower()[:1]
        if choice == "y":
            return Decision(action="approve")
        if choice == "e":
            edited = await asyncio.to_thread(_edit, step.code)
            if edited is not None:
                return Decision(action="approve", code=edited)
            continue
        if choice == "n":
            try:
                feedback = await _ask("feedback for the model (optional): ")
            except EOFError:
                feedback = ""
            return Decision(action="reject", feedback=feedback.strip() or None)


async def _ask(prompt: str) -> str:
    """input() on a daemon thread: Ctrl-C cancels the run without waiting for Enter."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def settle(result: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result or "")

    def read() -> None:
        # the question goes to stderr with the progress: stdout is kept for the answer
        print(prompt, end="", file=sys.stderr, flush=True)
        try:
            line, problem = input(), None
        except (EOFError, OSError) as exc:
            line, problem = None, EOFError(str(exc))
        with contextlib.suppress(RuntimeError):  # the loop may be gone by then
            loop.call_soon_threadsafe(settle, line, problem)

    threading.Thread(target=read, name="codeact-approval-input", daemon=True).start()
    return await answer


def _edit(code: str) -> str | None:
    """Open $VISUAL/$EDITOR on the step's code; None when the editor fails."""
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".py", delete=False) as fh:
        fh.write(code)
        path = fh.name
    try:
        if subprocess.run([*shlex.split(editor), path], check=False).returncode != 0:
            return None
        return Path(path).read_text(encoding="utf-8")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


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


# -- codeact runs -------------------------------------------------------------------------------


async def _runs(args: argparse.Namespace) -> int:
    """The run files' listing, honouring discard (kept in each file, so it survives restarts)."""
    from codeact_lsp.assemble import make_engine, no_tools
    from codeact_lsp.engine import EngineError

    ws = _workspace(args.workspace)
    config = _config(ws, {})
    # listing needs no tools: an empty provider, so no tool host process is started
    engine = make_engine(config, no_tools(), workspace=ws)
    try:
        for run_id, action in ((args.discard, engine.discard), (args.restore, engine.restore)):
            if run_id:
                try:
                    action(run_id)
                except EngineError as exc:
                    raise UsageProblem(str(exc)) from None
        await engine.flushed()
        listing = engine.list_runs(include_discarded=args.all)
    finally:
        await engine.close()
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in listing], indent=2))
        return EXIT_OK
    for r in listing:
        marks = " ".join(
            m for m, on in (("discarded", r.discarded), ("accepted", r.accepted)) if on
        )
        task = r.task if len(r.task) <= 60 else r.task[:57] + "..."
        _say(f"{r.id}  {r.status:<10} {marks:<9} {task}".rstrip(), sys.stdout)
    if not listing:
        print("no runs" + ("" if args.all else " (discarded ones: --all)"))
    return EXIT_OK


# -- codeact test -------------------------------------------------------------------------------


async def _test(args: argparse.Namespace) -> int:
    from codeact_lsp.assemble import make_engine
    from codeact_lsp.engine import matrix
    from codeact_lsp.engine.suite import SuiteError, junit_xml, load_suite, run_suite, suite_path

    ws = _workspace(args.workspace)
    previous = _previous_summary(args.compare) if args.compare else None
    for flag, file in (("--junit", args.junit), ("--summary", args.summary)):
        if file:
            _writable(flag, file)
    if args.jobs is not None and args.jobs < 1:
        raise UsageProblem(f"--jobs must be at least 1, not {args.jobs}")
    if args.repeat is not None and args.repeat < 1:
        raise UsageProblem(f"--repeat must be at least 1, not {args.repeat}")
    suite_over: dict[str, Any] = {"jobs": args.jobs} if args.jobs is not None else {}
    if args.shared_state:
        suite_over["isolation"] = "shared"
    if args.models is not None:
        suite_over["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
        if not suite_over["models"]:
            raise UsageProblem("--models names no model")
    if args.repeat is not None:
        suite_over["repeat"] = args.repeat
    overrides = {
        "model": args.model,
        "suite": suite_over or None,
        "model_params": _model_params(args) or None,
    }
    config = _config(ws, overrides)
    path = suite_path(ws, args.file, config.tasks)
    try:
        tasks = load_suite(path)
    except SuiteError as exc:
        raise UsageProblem(str(exc)) from None
    fallback = config.model or os.environ.get("CODEACT_MODEL")
    chosen = [t for t in tasks if not args.names or t.name in args.names]
    wanted = {t.model for t in chosen if t.model}
    if any(not t.model for t in chosen):
        wanted |= set(config.suite.models) or ({fallback} if fallback else set())
    for name in sorted(wanted):
        await _check_model(name, config.model_params)
    err = sys.stderr
    finished: list[Any] = []  # as runs finish: what an interrupted suite still reports
    try:
        if args.ray is not None or config.suite.executor == "ray":
            results = await _test_on_ray(args, ws, config, path, finished.append)
        else:
            tools = await _start_tools(ws, config, err, args.json)
            engine = make_engine(
                config,
                tools,
                workspace=ws,
                approver=_make_approver(args.yes, err, progress=False),
            )
            try:
                try:
                    results = await run_suite(engine, path, args.names, on_result=finished.append)
                except SuiteError as exc:
                    raise UsageProblem(str(exc)) from None
            finally:
                await engine.close()
                await tools.close()
    except (asyncio.CancelledError, KeyboardInterrupt):  # Ctrl-C: asyncio.run cancels us
        if finished and not args.json:
            _say(_table(finished), sys.stdout)
        _say(f"interrupted: {len(finished)} run(s) finished", err)
        raise
    summary = matrix.summarise(results, suite=str(path))
    if args.junit:
        Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
    if args.summary:
        Path(args.summary).write_text(summary.model_dump_json(indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
    else:
        _say(_table(results), sys.stdout)
        if len(summary.models) > 1 or summary.repeat > 1:
            _say("\n" + matrix.render(summary), sys.stdout)
    if previous is not None:
        out = sys.stderr if args.json else sys.stdout
        changes = matrix.compare(previous, summary)
        _say(f"\ncompared with {args.compare}:", out)
        for change in changes:
            _say("  " + change.text(), out)
        if not changes:
            _say("  no pass rate changed", out)
    return EXIT_OK if all(r.passed for r in results) else EXIT_NOT_FINISHED


async def _test_on_ray(
    args: argparse.Namespace,
    ws: Path,
    config: CodeActConfig,
    path: Path,
    on_result: Callable[[Any], None],
) -> list[Any]:
    """The matrix on Ray: `--ray ADDRESS`, `--ray` alone (config `suite.ray.address`, else a
    local instance started and stopped here). Each run finishes on its node; `--json` quiet."""
    from codeact_lsp.assemble import start_workspace_tools
    from codeact_lsp.engine.suite import SuiteError, load_suite, plan_runs, select_tasks
    from codeact_lsp.engine.suite_ray import run_suite_ray

    try:
        tasks = select_tasks(load_suite(path), args.names, path)
        total = len(plan_runs(tasks, config.suite.models, config.suite.repeat))
    except SuiteError as exc:
        raise UsageProblem(str(exc)) from None
    done = 0

    def finished(result: Any) -> None:
        nonlocal done
        done += 1
        if not args.json:
            mark = "ok" if result.passed else "FAIL"
            where = f" on {result.node}" if result.node else ""
            _say(f"[{done}/{total}] {result.label} {result.model}{where}: {mark}", sys.stderr)
        on_result(result)

    try:
        return await run_suite_ray(
            config,
            ws,
            path,
            args.names,
            address=args.ray or None,
            start_tools=start_workspace_tools,
            approve=args.yes,
            on_result=finished,
        )
    except SuiteError as exc:  # also Ray missing or out of reach
        raise UsageProblem(str(exc)) from None


def _writable(flag: str, file: str) -> None:
    """`--junit`/`--summary` checked before anything runs: a missing or read-only directory is
    a usage error now, not an OSError after the whole suite ran."""
    path = Path(file)
    parent = path.parent
    if path.is_dir():
        raise UsageProblem(f"{flag}: {file} is a directory")
    if not parent.is_dir():
        raise UsageProblem(f"{flag}: no directory {parent} to write {path.name} in")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageProblem(f"{flag}: cannot write {file} (permission denied)")


def _previous_summary(file: str) -> Any:
    """`--compare`'s file, read before anything runs: a bad one is a usage error, not a
    surprise after an hour of runs."""
    from pydantic import ValidationError

    from codeact_lsp.engine.matrix import MatrixSummary

    try:
        return MatrixSummary.model_validate_json(Path(file).read_bytes())
    except OSError as exc:
        raise UsageProblem(f"--compare: cannot read {file}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise UsageProblem(
            f"--compare: {file} is not a `codeact test --summary` file: {exc.errors()[0]['msg']}"
        ) from None


def _table(results: Sequence[Any]) -> str:
    from codeact_lsp.engine.suite import is_matrix

    matrix = is_matrix(results)
    rows = [("task", "result", "status", "steps", "time", "answer / reason")]
    for r in results:
        detail = json.dumps(r.answer) if r.passed else r.message
        label = " (scripted)" if r.scripted else ""
        rows.append(
            (
                f"{r.label} {r.model}" if matrix else r.name,
                ("PASS" if r.passed else "FAIL") + label,
                r.status,
                str(r.steps),
                f"{r.duration_s:.2f}s",
                detail[:80],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
             for row in rows]  # fmt: skip
    passed = sum(1 for r in results if r.passed)
    lines.append(f"\n{passed}/{len(results)} passed")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
