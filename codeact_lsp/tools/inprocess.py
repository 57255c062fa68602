"""Tools served from the caller's own process (the Python API), through the same registry as the
tool host, so validation, error locations and output capture behave identically."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from codeact_lsp.tools.models import ToolDiagnostic, ToolOutcome, ToolSchema
from codeact_lsp.tools.runtime import Registry, tool_quality
from codeact_lsp.trajectory import ErrorLocation


def _tool_name(obj: Any) -> str:
    name = getattr(obj, "__name__", None)
    if name is None and hasattr(obj, "func"):
        name = getattr(obj.func, "__name__", None)  # functools.partial
    if name is None:
        name = type(obj).__name__
    return str(name)


class InProcessTools:
    """A `ToolProvider` over callables of this process.

    `callables`: a list (names from `__name__`) or a mapping name -> callable. A `timeout` runs each
    call on a helper thread and gives up waiting after that many seconds (a Python thread cannot be
    killed, so the call itself may go on in the background); without it calls run on the caller's
    thread.
    """

    def __init__(
        self,
        callables: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]],
        confirm: list[str] | None = None,
        *,
        timeout: float | None = None,
        workspace: str | os.PathLike[str] | None = None,
    ) -> None:
        self.registry = Registry(confirm or [], os.fspath(workspace) if workspace else os.getcwd())
        self.timeout = timeout
        self.diagnostics: list[ToolDiagnostic] = []
        items = (
            callables.items()
            if isinstance(callables, Mapping)
            else ((_tool_name(c), c) for c in callables)
        )
        for name, obj in items:
            if not callable(obj):
                raise TypeError(f"tool {name!r} is not callable: {obj!r}")
            if name in self.registry.tools:
                raise ValueError(
                    f"two tools are named {name!r}; pass a dict {{name: callable}} to name them"
                )
            module = str(getattr(obj, "__module__", "") or "")
            tool = self.registry.add(name, obj, module)
            if module in sys.modules:
                self.registry.note_module(sys.modules[module])
            self.diagnostics.extend(ToolDiagnostic.model_validate(d) for d in tool_quality(tool))
        self._schemas = [ToolSchema.model_validate(s) for s in self.registry.schemas()]
        self.exceptions = self.registry.exception_types()

    def schemas(self) -> list[ToolSchema]:
        return list(self._schemas)

    def call_sync(
        self, name: str, args: list[Any], kwargs: dict[str, Any], timeout: float | None = None
    ) -> ToolOutcome:
        limit = self.timeout if timeout is None else timeout
        if limit is None:
            return ToolOutcome.model_validate(self.registry.call(name, args, kwargs))
        box: list[dict[str, Any]] = []
        worker = threading.Thread(
            target=lambda: box.append(self.registry.call(name, args, kwargs)),
            name=f"codeact-tool-{name}",
            daemon=True,
        )
        worker.start()
        worker.join(limit)
        if not box:
            return ToolOutcome(
                ok=False,
                error=ErrorLocation(
                    type="TimeoutError",
                    message=f"tool {name!r} did not finish within {limit:g} s",
                ),
                duration_ms=limit * 1000,
            )
        return ToolOutcome.model_validate(box[0])

    def cancel(self, thread: int | None = None) -> None:
        """A Python thread cannot be interrupted from outside: calls in this process run to their
        end (or their timeout). Here so the engine can treat both providers alike."""

    async def close(self) -> None:
        return None
