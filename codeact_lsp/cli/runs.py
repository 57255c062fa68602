"""`codeact runs`: list, discard and restore the workspace's runs."""

from __future__ import annotations

import argparse
import json
import sys

from codeact_lsp.cli.common import EXIT_OK, UsageProblem, _config, _say, _workspace


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
