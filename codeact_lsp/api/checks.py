"""Static checks shown to a Python reviewer, the same ones the editor shows on a pending step.

The checks themselves (syntax, unknown tools, argument names, confirmation) live in the engine as
pure `ast` code, shared with the language server; this adapter feeds them what a run knows: the
tools' schemas and the names earlier steps and inputs defined. A bug in a check gives the reviewer
no checks rather than a failure: they inform a decision, they never make it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from codeact_lsp.engine.checks import CheckContext, check_code, defined_names, sig_from_schema
from codeact_lsp.trajectory import Step, Trajectory

if TYPE_CHECKING:
    from codeact_lsp.tools import ToolSchema


def static_checks(
    step: Step,
    run: Trajectory,
    earlier_runs: Iterable[Trajectory],
    schemas: list[ToolSchema],
    confirm_globs: list[str],
) -> list[dict[str, Any]]:
    known: set[str] = set()
    for traj in [*earlier_runs, run]:
        known.update(traj.inputs)
        for earlier in traj.steps:
            if earlier is not step and earlier.status in ("ok", "error") and earlier.code:
                known |= defined_names(earlier.code)
    ctx = CheckContext(
        tools={s.name: sig_from_schema(s) for s in schemas},
        known_names=known,
        confirm_globs=list(confirm_globs),
    )
    try:
        findings = check_code(step.code, ctx)
    except Exception:  # a bug in a check must not block the review
        return []
    return [dataclasses.asdict(f) for f in findings]
