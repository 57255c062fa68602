"""Run files under `.codeact/runs/`: written as the run goes, readable whatever happens.

Each write goes to a temporary file in the same directory and is renamed over the old one, so a
reader (or a process killed mid-write) only ever sees a whole trajectory, never half of one.
Writes happen on one background thread, in order, so a slow disk never stalls the event loop;
several changes queued for the same run collapse into one write of the newest state.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import re
import secrets
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from codeact_lsp.trajectory import Step, Trajectory

RUNS_DIR = Path(".codeact") / "runs"  # in the workspace; the editor's run documents live here too

# step statuses after which the engine no longer changes a step
_SETTLED = frozenset({"ok", "error", "rejected", "no_code", "cancelled"})
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def new_run_id() -> str:
    """Sortable by start time, unique enough for parallel runs in several processes."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def valid_run_id(run_id: str) -> bool:
    return bool(_ID_RE.match(run_id)) and run_id not in (".", "..")


def runs_dir(workspace: Path) -> Path:
    """Where a workspace's runs are kept (every layer asks here, none composes the path)."""
    return workspace / RUNS_DIR


def read_run(path: Path) -> Trajectory | None:
    """A whole run file, or None when there is none (or it is not a trajectory).

    A file left `running` by a process that died is reported as failed (interrupted), since
    nothing will ever finish it; one still owned by a live process (the CLI next to the editor)
    is reported as it is. Every reader goes through here, so they all agree on that."""
    try:
        traj = Trajectory.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, ValidationError):
        return None
    if not traj.done and not _owner_alive(traj):
        traj = traj.model_copy(
            update={
                "status": "failed",
                "error": "interrupted: the process running it ended before it finished",
            }
        )
    return traj


def _owner_alive(traj: Trajectory) -> bool:
    """Is the process that wrote this unfinished run still running (and not us)?"""
    pid = traj.pid
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._writer = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="codeact-runs")
        self._pending: dict[str, str] = {}
        self._queued: dict[str, cf.Future[None]] = {}
        self._lock = threading.Lock()
        self._steps_json: dict[str, dict[int, tuple[Step, str]]] = {}

    def path(self, run_id: str) -> Path:
        if not valid_run_id(run_id):
            raise ValueError(f"invalid run id {run_id!r}")
        return self.directory / f"{run_id}.json"

    def save(self, trajectory: Trajectory) -> None:
        """Write now, on the calling thread (after any queued writes of the same run)."""
        self.save_async(trajectory).result()

    def save_async(self, trajectory: Trajectory) -> cf.Future[None]:
        """Queue a write of the trajectory as it is now; the future resolves once it is on disk."""
        data = self.serialise(trajectory)
        run_id = trajectory.id
        self.path(run_id)  # validate the id here, where the caller can see the error
        with self._lock:
            self._pending[run_id] = data
            queued = self._queued.get(run_id)
            if queued is not None:
                return queued  # not started yet: it will write the newest data
            fut = self._writer.submit(self._write_pending, run_id)
            self._queued[run_id] = fut
            return fut

    def serialise(self, traj: Trajectory) -> str:
        """The run as JSON, re-serialising only steps that can still change: a finished step's
        JSON is kept, so a long run costs the same per write as a short one."""
        cache = self._steps_json.setdefault(traj.id, {})
        parts: list[str] = []
        for step in traj.steps:
            entry = cache.get(id(step))
            if entry is not None and entry[0] is step:
                parts.append(entry[1])
                continue
            text = step.model_dump_json()
            if step.status in _SETTLED:
                cache[id(step)] = (step, text)  # holding the step keeps its id unique
            parts.append(text)
        if traj.done:
            self._steps_json.pop(traj.id, None)
        head = traj.model_dump_json(exclude={"steps"})
        return f'{head[:-1]},"steps":[{",".join(parts)}]}}'

    def barrier(self) -> cf.Future[None]:
        """Resolves once every write queued so far is on disk."""
        return self._writer.submit(lambda: None)

    def _write_pending(self, run_id: str) -> None:
        with self._lock:
            data = self._pending.pop(run_id, None)
            self._queued.pop(run_id, None)
        if data is None:
            return
        # a full disk must not kill the run; the live trajectory is still served
        with contextlib.suppress(OSError):
            self._write(run_id, data)

    def _write(self, run_id: str, data: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(run_id)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, target)

    def load(self, run_id: str) -> Trajectory | None:
        """The run's file as `read_run` reads it; None for an invalid id or no file."""
        if not valid_run_id(run_id):
            return None
        return read_run(self.path(run_id))

    def list_ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))
