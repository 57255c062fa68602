"""Rebuilding a run's session state before its first new step: earlier steps run again, by
default with every tool call answered from its record (`ReplayPlayer`), for real when asked (each
gated like a new step), and a person's choice when a replay stops matching.

Part of `RunHandle` (engine/run.py), kept apart because it is the one phase with its own rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codeact_lsp.engine.approval import Decision, needs_approval
from codeact_lsp.engine.replay import ReplayItem, ReplayPlayer
from codeact_lsp.trajectory import (
    Rebuild,
    RebuiltStep,
    ReplayDivergence,
    Step,
    StepStatus,
    Trajectory,
)

if TYPE_CHECKING:
    from codeact_lsp.engine.session import Session
    from codeact_lsp.tools.models import ToolSchema


class RunFailure(Exception):
    """The run cannot go on (not the model's fault, not fixable by another step)."""


class Rebuilding:
    """`RunHandle`'s rebuild phase (a mixin: the attributes below are the handle's)."""

    trajectory: Trajectory
    session: Session
    tools: list[ToolSchema]
    flagged: set[str]
    step_timeout: float
    _player: ReplayPlayer | None
    _executing: Step | None
    _scratch: Step | None
    _approved: set[int]
    _notes: list[str]

    if TYPE_CHECKING:

        async def _ask(
            self, step: Step, reason: str, hits: list[str], *, kind: str
        ) -> Decision: ...

    async def _rebuild(self, items: list[ReplayItem]) -> None:
        """Run earlier steps again to get their state back, by default with every tool call
        answered from its record (no real tool runs). At a divergence a person chooses: run the
        rest for real (approval rules apply) or stop. `real` mode runs them for real from the
        start, each gated like a new step, so a confirm tool never runs without a fresh yes."""
        rebuild = self.trajectory.rebuild
        real = rebuild is not None and rebuild.mode == "real"
        entries: dict[int, RebuiltStep] = {}
        i = 0
        while i < len(items):
            item = items[i]
            if not item.is_step:
                await self._run_prelude(item)
            elif real:
                entries[i] = await self._reexecute(item)
            else:
                entry, divergence = await self._replay_recorded(item)
                entries[i] = entry
                if divergence is not None:
                    assert rebuild is not None
                    await self._diverged(item, divergence, rebuild)
                    # for real from here: a new sandbox gets the matched steps again (from the
                    # record), then this step and the rest run for real
                    await self.session.reset()
                    for j, earlier in enumerate(items[:i]):
                        if not earlier.is_step:
                            await self._run_prelude(earlier)
                            continue
                        entries[j], again = await self._replay_recorded(earlier)
                        if again is not None:
                            raise RunFailure(f"could not rebuild the session: {again.message}")
                    real = True
                    continue
            if rebuild is not None:
                rebuild.steps = [entries[k] for k in sorted(entries)]
            i += 1
        if rebuild is not None:
            rebuild.steps = [entries[k] for k in sorted(entries)]

    async def _run_prelude(self, item: ReplayItem) -> None:
        sandbox = await self.session.ensure_open()
        result = await sandbox.execute(item.code, timeout=self.step_timeout)
        if result.error is not None:
            raise RunFailure(
                "could not restore the session state: defining the inputs failed with"
                f" {result.error.type}: {result.error.message}"
            )

    async def _replay_recorded(
        self, item: ReplayItem
    ) -> tuple[RebuiltStep, ReplayDivergence | None]:
        sandbox = await self.session.ensure_open()
        player = ReplayPlayer(item, self.tools)
        self._player = player
        try:
            # every call is answered from the record and no tool runs: confirm tools included
            result = await sandbox.execute(item.code, timeout=self.step_timeout, confirmed=True)
        finally:
            self._player = None
        divergence = player.finish(result)
        entry = RebuiltStep(
            run_id=item.run_id or "",
            index=item.index or 0,
            mode="recorded",
            status="diverged" if divergence is not None else "matched",
            calls=player.position,
        )
        return entry, divergence

    async def _diverged(
        self, item: ReplayItem, divergence: ReplayDivergence, rebuild: Rebuild
    ) -> None:
        """Tell the person where replay stopped matching and wait: run the rest for real, or stop."""
        rebuild.divergence = divergence
        rebuild.choice = "pending"
        pending = self._rebuild_step(item)
        reason = (
            f"{divergence.message}. Run the rest of the earlier steps for real (their tools are"
            " called again; confirm tools ask again), or stop."
        )
        hits = needs_approval("auto", item.code, self.flagged)[1]
        decision = await self._ask(pending, reason, hits, kind="replay_diverged")
        if decision.action == "reject":
            rebuild.choice = "stop"
            self._settle_pending(pending, "rejected")
            raise RunFailure(f"stopped: {divergence.message}; the earlier state was not rebuilt")
        rebuild.choice = "real"
        self._settle_pending(pending, None)
        self._notes.append(
            "Note: the session state of the earlier steps was rebuilt by running their code again"
            f" with the recorded tool results, until {divergence.message}. From there the earlier"
            " steps were run again for real (their tools were called again)."
        )

    async def _reexecute(self, item: ReplayItem) -> RebuiltStep:
        """Run an earlier step again for real: gated like a new step (review mode, confirm
        tools), its real calls recorded in the rebuild entry (and its copy, for a re-run)."""
        entry = RebuiltStep(run_id=item.run_id or "", index=item.index or 0, mode="real")
        wait, hits = needs_approval(self.trajectory.approval, item.code, self.flagged)
        code = item.code
        pending = self._rebuild_step(item)
        if wait:
            reason = (
                f"rebuilding the session: step {item.index} of run {item.run_id} runs again for"
                " real"
                + (f" and calls {', '.join(hits)}, which needs confirmation" if hits else "")
            )
            decision = await self._ask(pending, reason, hits, kind="rebuild_step")
            if decision.action == "reject":
                self._settle_pending(pending, "rejected")
                entry.status = "rejected"
                raise RunFailure(
                    f"stopped: running step {item.index} of run {item.run_id} again for real was"
                    " not approved; the earlier state was not rebuilt"
                )
            if decision.code is not None:
                code = decision.code
        kept = self._kept(item)
        approved = wait  # reached here after a wait: a person approved running it for real
        record = kept if kept is not None else Step(index=item.index or 0, code=code)
        record.tool_calls = []
        sandbox = await self.session.ensure_open()
        self._executing = record
        self._scratch = None if kept is not None else record
        if approved:
            self._approved.add(id(record))
        try:
            result = await sandbox.execute(code, timeout=self.step_timeout, confirmed=approved)
        finally:
            self._executing = None
            self._scratch = None
            self._approved.discard(id(record))
        self._settle_pending(pending, None)
        entry.tool_calls = [c.model_copy() for c in record.tool_calls]
        if kept is not None:
            kept.code = code
            kept.stdout, kept.stderr, kept.value = result.stdout, result.stderr, result.value
            kept.error = result.error
            kept.duration_ms = result.duration_ms
            kept.status = "error" if result.error is not None else "ok"
            kept.reexecuted = True
        entry.status = "ran" if (result.error is None) == item.ok else "failed"
        if result.error is not None and item.ok:
            raise RunFailure(
                "could not restore the session state: running step"
                f" {item.index} of run {item.run_id} again failed with"
                f" {result.error.type}: {result.error.message}"
            )
        return entry

    def _kept(self, item: ReplayItem) -> Step | None:
        if item.kept is None or not 0 < item.kept <= len(self.trajectory.steps):
            return None
        return self.trajectory.steps[item.kept - 1]

    def _rebuild_step(self, item: ReplayItem) -> Step:
        """What a person sees while a rebuild waits: the kept copy (re-run) or a stand-in."""
        kept = self._kept(item)
        if kept is not None:
            return kept
        return Step(index=item.index or 0, code=item.code, replayed=True, status="proposed")

    def _settle_pending(self, step: Step, status: StepStatus | None) -> None:
        if step not in self.trajectory.steps:
            step.status = status or "ok"
