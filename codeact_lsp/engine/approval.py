"""When a step must wait for a person, and what the person decided.

`confirm-tools` has to decide *before* running the code, so it reads the code: any reference to a
flagged tool's name counts (a call, or passing the function around), which errs on the side of
asking. Code that cannot be parsed is not judged here; it will fail on its own when it runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from codeact_lsp.config import matches_glob


class Decision(BaseModel):
    action: Literal["approve", "reject"]
    code: str | None = None  # approve: the user's edited version, if any
    feedback: str | None = None  # reject: why, for the model


def names_used(code: str) -> set[str]:
    """Every bare name the code reads (calls included); empty when the code does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def confirm_tools(code: str, flagged: Iterable[str]) -> list[str]:
    """The flagged tools this code would call, in name order."""
    used = names_used(code)
    return sorted(set(flagged) & used)


def flagged_tools(
    names: Iterable[str], schema_flags: dict[str, bool], globs: list[str]
) -> set[str]:
    """Tools needing confirmation: flagged by the tool layer, or matching a `confirm` glob."""
    return {n for n in names if schema_flags.get(n) or matches_glob(n, globs)}


def needs_approval(mode: str, code: str, flagged: set[str]) -> tuple[bool, list[str]]:
    """(wait?, the flagged tools that made it wait). Flagged tools wait in every mode (docs/contracts.md:
    "tools flagged for confirmation always wait"); `review` waits for every step."""
    hits = confirm_tools(code, flagged) if flagged else []
    return (mode == "review" or bool(hits)), hits
