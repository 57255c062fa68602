"""Run files under `.codeact/runs/`: written as the run goes, readable whatever happens.

Each write goes to a temporary file in the same directory and is renamed over the old one, so a
reader (or a process killed mid-write) only ever sees a whole trajectory, never half of one.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from pydantic import ValidationError

from codeact_lsp.trajectory import Trajectory

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def new_run_id() -> str:
    """Sortable by start time, unique enough for parallel runs in several processes."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def valid_run_id(run_id: str) -> bool:
    return bool(_ID_RE.match(run_id)) and run_id not in (".", "..")


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, run_id: str) -> Path:
        if not valid_run_id(run_id):
            raise ValueError(f"invalid run id {run_id!r}")
        return self.directory / f"{run_id}.json"

    def save(self, trajectory: Trajectory) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(trajectory.id)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(trajectory.model_dump_json(indent=1), encoding="utf-8")
        os.replace(tmp, target)

    def load(self, run_id: str) -> Trajectory | None:
        try:
            path = self.path(run_id)
            return Trajectory.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValueError, OSError, ValidationError):
            return None

    def list_ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))
