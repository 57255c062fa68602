"""What every command module shares: engine access, engine errors as command errors, `dump`.

A command's failure is either something the user can fix (bad argument, unknown run, wrong state:
`CommandError`, an InvalidParams answer) or the backend not starting (an InternalError whose
message says why); never a traceback from deep inside a run.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from pygls.exceptions import JsonRpcInternalError

from codeact_lsp.lsp.backend import BackendError
from codeact_lsp.lsp.errors import CommandError

if TYPE_CHECKING:
    from codeact_lsp.engine import Engine
    from codeact_lsp.lsp.state import ServerState

T = TypeVar("T")

__all__ = ["CommandError", "dump", "engine", "engine_call", "engine_mod"]


async def engine(state: ServerState) -> Engine:
    """The workspace's engine, started on first use; a backend that cannot start is reported."""
    try:
        eng: Engine = await state.workspace.with_backend(lambda b: b.ready())
        return eng
    except BackendError as exc:
        raise JsonRpcInternalError(message=str(exc)) from None
    except ImportError as exc:
        raise JsonRpcInternalError(
            message=f"the CodeAct engine is not available in this installation: {exc}"
        ) from None


async def engine_call(coro: Awaitable[T]) -> T:
    """Await an engine call; a request the engine refuses becomes an actionable command error."""
    from codeact_lsp.engine import EngineError

    try:
        return await coro
    except EngineError as exc:
        raise CommandError(str(exc)) from None


def engine_mod() -> Any:
    return importlib.import_module("codeact_lsp.engine")


def dump(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        out: dict[str, Any] = value.model_dump(mode="json")
        return out
    if isinstance(value, dict):
        return value
    return json.loads(json.dumps(value, default=repr))  # type: ignore[no-any-return]
