"""Runs as the editor sees them: each run's trajectory document, its edits, and its live follow-up.

A run's document (`.codeact/runs/<id>.py`, see `document`) is rewritten as the run goes, at most
once per refresh and only when its text changes. While the open document holds edits the user has
not saved, it is left alone (no save conflict) and the view says it is paused; the user's edits of
a step's code are kept as overrides that "Run step" and "Re-run" pick up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from codeact_lsp.engine.store import RunStore, runs_dir
from codeact_lsp.lsp.document import (
    parse_sections,
    path_to_uri,
    render,
    replace_file,
    run_id_from_uri,
    trajectory_path,
    uri_to_path,
)
from codeact_lsp.lsp.errors import CommandError
from codeact_lsp.lsp.trajectory_view import normalise_code
from codeact_lsp.trajectory import Acceptance, Target, Trajectory

if TYPE_CHECKING:
    from codeact_lsp.engine import RunEvent, RunHandle
    from codeact_lsp.lsp.state import ServerState

log = logging.getLogger(__name__)


@dataclass
class EditorRun:
    """A run as the editor sees it: its engine handle, its document and its Accept snapshot."""

    id: str
    path: Path
    uri: str
    handle: RunHandle | None = None  # None: read from disk, not live in this server
    target: Target | None = None
    start_text: str | None = None  # the whole target document when the run started
    overrides: dict[int, str] = field(default_factory=dict)  # step -> code edited in the doc
    pump: asyncio.Task[None] | None = None
    loaded: Trajectory | None = None  # read from disk (no live handle)
    progress_token: str | None = None
    # Texts this document had on disk lately (hashes): an open document holding one of them has
    # no unsaved edits, even if the editor has not reloaded the newest one yet.
    disk_texts: deque[int] = field(default_factory=lambda: deque(maxlen=64))
    paused: bool = False  # the user has unsaved edits in the open document: not rewritten
    rendered: tuple[Any, ...] | None = None  # `text_key` of the last text written

    def trajectory(self) -> Trajectory | None:
        if self.handle is not None:
            return self.handle.trajectory
        return self.loaded

    # The review state lives in the run file (engine `discard` / `mark_accepted`), so it is the
    # same after a restart, in `codeact runs` and in the API.
    @property
    def discarded(self) -> bool:
        traj = self.trajectory()
        return traj is not None and traj.discarded_at is not None

    @property
    def acceptance(self) -> Acceptance | None:
        traj = self.trajectory()
        return traj.accepted if traj is not None else None

    @property
    def accepted(self) -> bool:
        return self.acceptance is not None

    def updated(self, traj: Trajectory) -> None:
        """The engine changed the run's file (a run known only from disk gets the new copy)."""
        if self.handle is None:
            self.loaded = traj


class RunDocuments:
    """Every run this server knows: started here, or adopted from `.codeact/runs/`."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.runs: dict[str, EditorRun] = {}
        self.last_run_id: str | None = None
        # accepted target files not open in the editor: (mtime, text) -> applied / missing
        self._disk_checks: dict[str, tuple[tuple[int | None, str], str]] = {}
        self._store: RunStore | None = None

    def store(self, root: Path) -> RunStore:
        """The workspace's run files, read through the engine's store (its paths, its rules:
        a run left `running` by a dead process reads as failed)."""
        if self._store is None or self._store.directory != runs_dir(root):
            self._store = RunStore(runs_dir(root))
        return self._store

    # ------------------------------------------------------------------ lookup

    def get(self, run_id: str) -> EditorRun | None:
        return self.runs.get(run_id)

    def of_uri(self, uri: str) -> EditorRun | None:
        """The run whose trajectory document this is, if this server tracks it."""
        run_id = run_id_from_uri(uri)
        return self.runs.get(run_id) if run_id else None

    def active(self, rs: EditorRun) -> bool:
        traj = rs.trajectory()
        return rs.handle is not None and traj is not None and not traj.done

    def any_active(self) -> bool:
        return any(self.active(rs) for rs in self.runs.values())

    def find(self, run_id: str) -> EditorRun | None:
        rs = self.runs.get(run_id)
        if rs is not None:
            return rs
        root = self.state.workspace.root
        if root is None:
            return None
        traj = self.store(root).load(run_id)  # None for an id that is not a valid one
        return self.adopt(root, run_id, traj) if traj is not None else None

    def adopt(self, root: Path, run_id: str, traj: Trajectory) -> EditorRun:
        """Track a run read from disk (a previous session's, or not started by this server)."""
        if run_id in self.runs:
            return self.runs[run_id]
        path = trajectory_path(root, run_id)
        rs = EditorRun(
            id=run_id,
            path=path,
            uri=path_to_uri(path),
            loaded=traj,
            target=traj.target,
        )
        self.runs[run_id] = rs
        return rs

    def need(self, run_id: str) -> EditorRun:
        rs = self.find(run_id)
        if rs is None or rs.discarded:
            known = ", ".join(sorted(self.runs)[-5:]) or "none yet"
            raise CommandError(
                f"no run with id {run_id!r} in this workspace (recent: {known}); "
                "codeact.listRuns lists them"
            )
        return rs

    def need_live(self, rs: EditorRun, what: str) -> RunHandle:
        if rs.handle is None:
            raise CommandError(
                f"run {rs.id} is not live in this server (it was loaded from disk): cannot {what}; "
                "re-run it with codeact.rerun"
            )
        return rs.handle

    def acceptance_state(self, rs: EditorRun) -> str | None:
        """ "applied" / "missing" for an accepted run: is what Accept inserted still in its
        document (open: the editor's text; else the file)? None when not accepted."""
        from codeact_lsp.engine.runstate import acceptance_state

        acceptance = rs.acceptance
        if acceptance is None:
            return None
        doc = self.state.open_doc(acceptance.uri)
        if doc is not None:
            return acceptance_state(acceptance, doc.source)
        path = uri_to_path(acceptance.uri)
        try:
            stamp = path.stat().st_mtime_ns if path is not None else None
        except OSError:
            stamp = None
        cached = self._disk_checks.get(acceptance.uri)
        if cached is not None and cached[0] == (stamp, acceptance.text):
            return cached[1]
        text: str | None = None
        if path is not None and stamp is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = path.read_text(encoding="utf-8")
        found = acceptance_state(acceptance, text)
        self._disk_checks[acceptance.uri] = ((stamp, acceptance.text), found)
        return found

    def accepted_into(self, uri: str) -> list[EditorRun]:
        """Runs whose accepted program went into `uri` (their views follow that document)."""
        return [
            rs for rs in self.runs.values() if (a := rs.acceptance) is not None and a.uri == uri
        ]

    def last_trajectory(self) -> Trajectory | None:
        if self.last_run_id is None:
            return None
        rs = self.runs.get(self.last_run_id)
        return rs.trajectory() if rs else None

    # ------------------------------------------------------------------ new runs

    def register(
        self,
        handle: RunHandle,
        target: Target | None,
        start_text: str | None,
        *,
        show: bool = True,
        progress: bool = True,
    ) -> EditorRun:
        root = self.state.workspace.require_root()
        path = trajectory_path(root, handle.id)
        rs = EditorRun(
            id=handle.id,
            path=path,
            uri=path_to_uri(path),
            handle=handle,
            target=target,
            start_text=start_text,
        )
        self.runs[rs.id] = rs
        self.last_run_id = rs.id
        self.write_doc(rs)
        self.state.push.changed(rs, now=True)
        rs.pump = self.state.spawn(self._pump(rs, progress), f"run-{rs.id}")
        if show:
            self.state.spawn(self._show(rs.uri), f"show-{rs.id}")
        return rs

    async def _show(self, uri: str) -> None:
        if not self.state.client.show_document:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.state.server.window_show_document_async(
                    lsp.ShowDocumentParams(uri=uri, take_focus=True)
                ),
                10,
            )

    async def _pump(self, rs: EditorRun, progress: bool = True) -> None:
        """Follow one run: rewrite its document, refresh views, report and honour progress."""
        handle = rs.handle
        assert handle is not None
        reporter = self.state.progress
        token: str | None = None
        # A client that follows `codeact/runState` shows its own progress (with Cancel) instead.
        if progress and not self.state.push.enabled:
            token = await reporter.begin(
                f"run-{rs.id}", f"CodeAct: {handle.trajectory.task[:60]}", handle.cancel
            )
        rs.progress_token = token
        last_report = 0.0
        try:
            async for event in handle.subscribe():
                self.state.record("runEvent", 0.0)
                self.changed(rs)
                self.state.push.on_event(rs, event)
                now = time.monotonic()
                # A loop of tool calls emits thousands of events: report at most ~4 per second.
                if event.kind != "tool_called" or now - last_report > 0.25:
                    last_report = now
                    reporter.report(token, describe(event))
            await handle.wait()
        finally:
            self.changed(rs, now=True)
            self.state.push.changed(rs, now=True)
            reporter.end(token, handle.trajectory.status)

    # ------------------------------------------------------------------ the document

    def write_doc(self, rs: EditorRun, *, force: bool = False) -> None:
        """Bring the run's document up to date (at most once per refresh, ~100 ms, per run).

        A loop of tool calls changes the trajectory thousands of times a second but not its
        text (tool calls show in lenses and hovers, not in the document): rendering is skipped
        unless something the text shows changed, or `force` (the run's final state).
        """
        if rs.discarded:
            return
        traj = rs.trajectory()
        if traj is None:
            return
        if self.doc_dirty(rs):
            # Paused only when the file owes the run something: a final write of the state the
            # file already shows (getRun wrote it first) leaves the user's edits unpaused.
            owed = rs.rendered is None or rs.rendered[0] != state_key(traj)
            if owed and not rs.paused:
                rs.paused = True  # the lens says so; the state is written once they save
                self.state.refresh.schedule(rs.uri)
            return
        key = text_key(traj, rs.overrides)
        if key == rs.rendered and not force:
            return
        started = time.perf_counter()
        text = render(traj, rs.overrides)
        try:
            written = replace_file(rs.path, text)
        except OSError as exc:
            log.warning("cannot write %s: %s", rs.path, exc)
            return
        self.state.record("docRender", time.perf_counter() - started)
        rs.rendered = key
        if written is not None:
            rs.disk_texts.append(hash(written))
            self.state.record("docWrite", time.perf_counter() - started)

    def changed(self, rs: EditorRun, *, now: bool = False) -> None:
        """The run moved on: rewrite its document (batched with the refresh, or `now`)."""
        if now:
            self.write_doc(rs, force=True)
        else:
            self.state.refresh.dirty_runs.add(rs.id)
        uris = [rs.uri]
        traj = rs.trajectory()
        if traj is not None and traj.done:
            uris += self.state.workspace.tool_file_uris()
        self.state.refresh.schedule(*uris)

    def doc_dirty(self, rs: EditorRun) -> bool:
        """Does the open trajectory document hold edits the user has not saved?

        Then rewriting the file would make the editor report a conflict on their next save (or
        lose their edits); the server leaves the file alone until they save, revert or close.
        The document's text is compared with what the file held lately rather than trusting
        versions: an editor reloading the server's write also sends a didChange.
        """
        doc = self.state.open_doc(rs.uri)
        if doc is None:
            return False
        text = doc.source
        if hash(text) in rs.disk_texts:
            return False
        try:
            on_disk = rs.path.read_text(encoding="utf-8")
        except OSError:
            on_disk = None
        if on_disk == text:
            rs.disk_texts.append(hash(text))
            return False
        return True

    def check_paused(self, rs: EditorRun) -> None:
        """Pause the rewriting of a run's document while it has unsaved edits; resume after."""
        dirty = self.doc_dirty(rs)
        traj = rs.trajectory()
        if dirty and not rs.paused and traj is not None:
            # Paused when a rewrite is due: the run goes on, or the file lags behind its state.
            rs.paused = self.active(rs) or (
                rs.rendered is not None and rs.rendered[0] != state_key(traj)
            )
        elif not dirty and rs.paused:
            rs.paused = False
            rs.rendered = None  # the file may hold the user's saved text: rewrite it
            self.state.refresh.dirty_runs.add(rs.id)  # what it missed, with the user's edits
            self.state.refresh.schedule(rs.uri)

    def _disk_text(self, rs: EditorRun) -> str:
        try:
            return rs.path.read_text(encoding="utf-8")
        except OSError:
            return ""

    def capture_overrides(self, rs: EditorRun) -> None:
        traj = rs.trajectory()
        doc = self.state.open_doc(rs.uri)
        if traj is None:
            return
        # A closed document: what the user kept is what the file holds.
        text = doc.source if doc is not None else self._disk_text(rs)
        sections = {s.index: s for s in parse_sections(text)}
        for step in traj.steps:
            section = sections.get(step.index)
            if section is None:
                continue
            if normalise_code(section.code) != normalise_code(step.code):
                rs.overrides[step.index] = section.code
            else:
                rs.overrides.pop(step.index, None)

    def follow_user_text(self, rs: EditorRun) -> None:
        """The user's text of the document changed (typed, reverted, closed): keep their step
        edits, and pause or resume the rewriting of the file."""
        self.capture_overrides(rs)
        self.check_paused(rs)

    def edited_code(self, rs: EditorRun, step: int) -> str | None:
        """The step's code as the user left it in the trajectory document, if they changed it."""
        self.capture_overrides(rs)
        return rs.overrides.get(step)


def text_key(traj: Trajectory, overrides: dict[int, str]) -> tuple[Any, ...]:
    """What `render` shows that can still change: the run's state and the user's edits."""
    return (state_key(traj), tuple(sorted(overrides.items())))


def state_key(traj: Trajectory) -> tuple[Any, ...]:
    """The run's status and answer, the number of steps, and the last step (earlier steps are
    settled once a later one exists)."""
    last = traj.steps[-1] if traj.steps else None
    return (
        traj.id,
        traj.status,
        traj.model,
        traj.error,
        repr(traj.outputs) if traj.done else None,
        len(traj.steps),
        None
        if last is None
        else (
            last.status,
            last.code,
            len(last.stdout),
            last.value,
            last.error is not None,
            last.feedback,
        ),
    )


def describe(event: RunEvent) -> str:
    """One progress line for a run event."""
    where = f"step {event.step}: " if event.step else ""
    if event.kind == "tool_called":
        return f"{where}called {event.data.get('name', 'a tool')}"
    return f"{where}{event.kind.replace('_', ' ')}"
