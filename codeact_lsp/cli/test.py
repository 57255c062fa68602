"""`codeact test`: a task suite (a matrix of models and repeats, locally or on Ray), its table,
JUnit, summary and comparison."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codeact_lsp.cli.common import (
    EXIT_NOT_FINISHED,
    EXIT_OK,
    UsageProblem,
    _config,
    _model_params,
    _say,
    _workspace,
)
from codeact_lsp.cli.review import _make_approver
from codeact_lsp.cli.run import _check_model, _start_tools
from codeact_lsp.config import CodeActConfig


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
