"""The value `act(...)` returns: typed outputs as attributes, plus the full record of the run.

A run that did not finish is still a result (`ok` is False, `error` says why) rather than an
exception, so `batch()` can hand back every input's outcome in order; asking such a result for an
output field raises `RunError`, which carries the result for inspection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codeact_lsp.trajectory import Step, Trajectory, Usage


class RunError(AttributeError):
    """An output was read from a run that produced none (failed, cancelled, out of steps).

    It subclasses AttributeError so `getattr(result, "x", default)` and `hasattr` keep working.
    """

    def __init__(self, result: Result, name: str) -> None:
        self.result = result
        why = f": {result.error}" if result.error else ""
        super().__init__(f"run {result.run_id or '(not started)'} ended {result.status}{why}")
        self.name = name


class Result:
    """Outputs of one run, typed per the signature, beside its trajectory, usage and program.

    An output named like one of the attributes below (`ok`, `status`, `error`, `usage`, ...)
    is read as `result["error"]` or `result.outputs["error"]`: the run's own fields win.
    """

    __slots__ = ("_outputs", "_program", "trajectory")

    def __init__(
        self, trajectory: Trajectory, outputs: dict[str, Any] | None, program: str | None = None
    ) -> None:
        self.trajectory = trajectory
        self._outputs = outputs
        self._program = program

    # -- outcome ---------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.trajectory.status == "finished" and self._outputs is not None

    @property
    def status(self) -> str:
        return self.trajectory.status

    @property
    def error(self) -> str | None:
        return self.trajectory.error

    @property
    def run_id(self) -> str:
        return self.trajectory.id

    @property
    def outputs(self) -> dict[str, Any]:
        """The typed outputs; empty when the run did not finish."""
        return dict(self._outputs or {})

    @property
    def usage(self) -> Usage:
        return self.trajectory.usage

    @property
    def steps(self) -> list[Step]:
        return self.trajectory.steps

    @property
    def program(self) -> str | None:
        """The run's successful steps in order plus imports of the tools used (Accept's text)."""
        return self._program if self._program is not None else self.trajectory.program

    def raise_for_status(self) -> Result:
        if not self.ok:
            raise RunError(self, "")
        return self

    def to_json(self, **kwargs: Any) -> str:
        """The trajectory as docs/protocol.md's JSON (the same document `codeact run --json` prints)."""
        return self.trajectory.model_dump_json(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return self.trajectory.model_dump(mode="json")

    # -- output access -----------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        outputs = self._outputs
        if outputs is not None and name in outputs:
            return outputs[name]
        if outputs is None and name in _output_names(self.trajectory.signature):
            raise RunError(self, name)
        raise AttributeError(
            f"{type(self).__name__} has no output {name!r}; outputs: {sorted(outputs or {})}"
        )

    def __getitem__(self, name: str) -> Any:
        if self._outputs is not None and name in self._outputs:
            return self._outputs[name]
        try:
            return self.__getattr__(name)
        except RunError:
            raise
        except AttributeError as exc:
            raise KeyError(name) from exc

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._outputs or {}))

    def __repr__(self) -> str:
        tail = f"{len(self.trajectory.steps)} steps"
        if self.trajectory.scripted:
            tail += "; scripted replies, not a model"
        if self.ok:
            body = ", ".join(f"{k}={v!r}" for k, v in (self._outputs or {}).items())
            return f"Result({body}; {tail})"
        return f"Result(status={self.status!r}, error={self.error!r}; {tail})"


def _output_names(signature: str) -> set[str]:
    """Names right of the arrow, read loosely: only used to pick the clearer error message."""
    _, _, right = signature.partition("->")
    names = set()
    for part in right.split(","):
        name = part.split(":", 1)[0].strip()
        if name.isidentifier():
            names.add(name)
    return names


def failed_result(
    inputs: object, exc: BaseException, task: str, signature: str, model: str
) -> Result:
    """A result for an input that never became a run (bad inputs, a reviewer that raised)."""
    import time

    now = time.time()
    traj = Trajectory(
        id="",
        task=task,
        signature=signature,
        model=model,
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
        inputs=dict(inputs) if isinstance(inputs, Mapping) else {},
        created_at=now,
        updated_at=now,
    )
    return Result(traj, None)
