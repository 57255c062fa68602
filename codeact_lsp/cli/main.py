"""`codeact`: run tasks, list tools and run task suites from a terminal or CI, on the same engine.

Exit codes (docs/contracts.md): 0 the run finished (or every suite task passed), 1 it did not, 2 a usage
or configuration error. Progress goes to stderr so stdout stays clean for the answer or `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from codeact_lsp.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageProblem,
    _model_param_flag,
    _say,
    _workspace,
)
from codeact_lsp.cli.run import _run
from codeact_lsp.cli.runs import _runs
from codeact_lsp.cli.test import _test


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
