"""`act.session()`: multi-turn use of one `CodeAct`, each later turn a follow-up in the same
sandbox."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from codeact_lsp.api.result import Result

if TYPE_CHECKING:
    from codeact_lsp.api.codeact import CodeAct


class Session:
    """Multi-turn use of one CodeAct: later turns see the variables earlier turns left behind."""

    def __init__(self, act: CodeAct) -> None:
        self.act = act
        self.results: list[Result] = []

    @property
    def last(self) -> Result | None:
        return self.results[-1] if self.results else None

    def __call__(self, task: str | None = None, /, **inputs: Any) -> Result:
        """First call: a run on `inputs` (and/or `task`). Later calls: `task` as a follow-up in
        the same sandbox, where the earlier inputs and variables are still defined."""
        result = self.act._shared.loop.run(self._turn(task, inputs))
        self.results.append(result)
        return result

    async def acall(self, task: str | None = None, /, **inputs: Any) -> Result:
        result = await self.act._shared.loop.call(self._turn(task, inputs))
        self.results.append(result)
        return result

    def _turn(self, task: str | None, inputs: dict[str, Any]) -> Coroutine[Any, Any, Result]:
        if self.last is None:
            if inputs or task is None:
                self.act._check_inputs(inputs)
            return self.act._run(inputs, task=task)
        if task is None or inputs:
            raise TypeError(
                "later turns take only the new instruction, e.g. session('now triple it'); "
                "the earlier inputs and variables are still defined"
            )
        return self.act._run({}, follow_up_of=self.last.run_id, task=task)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
