"""What every `codeact` command shares: exit codes, the usage error, terminal-safe printing, the
workspace and its configuration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.termsafe import for_stream

EXIT_OK, EXIT_NOT_FINISHED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a SIGINT


class UsageProblem(Exception):
    """Bad flags or configuration: printed as one line, exit code 2."""


def _say(text: str, stream: TextIO, *, end: str = "\n", flush: bool = False) -> None:
    """Print text that may come from a run (code, answers, errors, tool results): on a terminal
    its control sequences are shown, not interpreted (termsafe); pipes and files get it exact."""
    print(for_stream(text, stream), file=stream, end=end, flush=flush)


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
