"""What a person decided about a run, kept in its run file so it survives restarts.

Discarded runs stay out of every listing (editor, `codeact runs`, the API) until restored; the
file is kept, so a discard can be undone. An accepted run records where its program went and what
was inserted; whether that text is still there is a question about the document *now* (an undo
or an edit may have removed it), answered by `acceptance_state` for the views.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from codeact_lsp.trajectory import Acceptance, Trajectory

AcceptanceState = Literal["applied", "missing"]


class RunSummary(BaseModel):
    """One line of a run listing."""

    id: str
    task: str
    status: str
    updated_at: float
    created_at: float
    discarded: bool = False
    accepted: bool = False
    parent: str | None = None
    relation: str | None = None
    scripted: bool = False

    @classmethod
    def of(cls, traj: Trajectory) -> RunSummary:
        return cls(
            id=traj.id,
            task=traj.task,
            status=traj.status,
            updated_at=traj.updated_at,
            created_at=traj.created_at,
            discarded=traj.discarded_at is not None,
            accepted=traj.accepted is not None,
            parent=traj.parent,
            relation=traj.relation,
            scripted=traj.scripted,
        )


def acceptance_state(acceptance: Acceptance, current: str | None) -> AcceptanceState:
    """Is the accepted text still in the document (`current`: its text now, None if gone)?

    Whitespace at the ends is forgiven (formatters), nothing else: a changed line means the
    program as accepted is no longer there, and the views offer Accept again."""
    if current is None:
        return "missing"
    inserted = acceptance.text.strip()
    if not inserted:
        return "applied"
    return "applied" if inserted in current else "missing"
