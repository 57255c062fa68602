"""`@command(name)`: a handler is registered where it is defined, its argument model in its signature.

    @command("codeact.cancel")
    async def cancel(state: ServerState, args: RunIdArgs) -> StatusReply: ...

The second parameter's annotation is the pydantic model the one JSON-object argument is validated
against (see `args`); a mistake is answered with an InvalidParams error naming the key, never a
stack trace. pygls learns the names from `NAMES` (the initialize answer must not wait for these
modules, see `server`); `load()` imports the groups and checks both lists agree.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from codeact_lsp.lsp.args import CommandArgumentError, parse_args
from codeact_lsp.lsp.commands import GROUPS, NAMES
from codeact_lsp.lsp.errors import CommandError

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Command:
    name: str
    args: type[BaseModel]
    func: Callable[..., Any]

    async def __call__(self, state: ServerState, raw: list[Any]) -> Any:
        try:
            args = parse_args(self.name, self.args, raw)
        except CommandArgumentError as exc:
            raise CommandError(str(exc)) from None
        result = self.func(state, args)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        return result


REGISTRY: dict[str, Command] = {}


def command(name: str) -> Callable[[F], F]:
    """Register `func(state, args: SomeArgs)` as the handler of the command `name`."""

    def register(func: F) -> F:
        if name in REGISTRY:
            raise RuntimeError(f"command {name} is registered twice")
        REGISTRY[name] = Command(name=name, args=_args_model(func), func=func)
        return func

    return register


def _args_model(func: Callable[..., Any]) -> type[BaseModel]:
    params = list(inspect.signature(func).parameters)
    if len(params) != 2:
        raise TypeError(f"{func.__qualname__} must take (state, args)")
    # `ServerState` is imported for type checking only; nothing here needs its value.
    hints = typing.get_type_hints(func, localns={"ServerState": object})
    model = hints.get(params[1])
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{func.__qualname__}: annotate `{params[1]}` with a pydantic model")
    return model


def load() -> dict[str, Command]:
    """Every command, its group modules imported (once)."""
    for group in GROUPS:
        importlib.import_module(f"codeact_lsp.lsp.commands.{group}")
    if set(REGISTRY) != set(NAMES):
        missing = sorted(set(NAMES) - set(REGISTRY))
        extra = sorted(set(REGISTRY) - set(NAMES))
        raise RuntimeError(f"commands.NAMES and the handlers disagree: {missing=} {extra=}")
    return REGISTRY
