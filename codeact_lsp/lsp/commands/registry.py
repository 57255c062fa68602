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
from codeact_lsp.lsp.replies import Reply

if TYPE_CHECKING:
    from codeact_lsp.lsp.state import ServerState

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Command:
    name: str
    args: type[BaseModel]  # what the one JSON-object argument is validated against
    reply: type[BaseModel]  # what the handler answers (the return annotation)
    func: Callable[..., Any]

    async def __call__(self, state: ServerState, raw: list[Any]) -> Any:
        try:
            args = parse_args(self.name, self.args, raw)
        except CommandArgumentError as exc:
            raise CommandError(str(exc)) from None
        result = self.func(state, args)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Reply):  # the fields the handler set: absent or meaningful
            data = result.model_dump(mode="json")
            return {k: v for k, v in data.items() if k in result.model_fields_set}
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        return result


REGISTRY: dict[str, Command] = {}


def command(name: str) -> Callable[[F], F]:
    """Register `func(state, args: SomeArgs)` as the handler of the command `name`."""

    def register(func: F) -> F:
        if name in REGISTRY:
            raise RuntimeError(f"command {name} is registered twice")
        args, reply = _models(func)
        REGISTRY[name] = Command(name=name, args=args, reply=reply, func=func)
        return func

    return register


def _models(func: Callable[..., Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    """The argument and reply models, from `func(state, args: A) -> R`."""
    params = list(inspect.signature(func).parameters)
    if len(params) != 2:
        raise TypeError(f"{func.__qualname__} must take (state, args)")
    # `ServerState` is imported for type checking only; nothing here needs its value.
    hints = typing.get_type_hints(func, localns={"ServerState": object})
    found: list[type[BaseModel]] = []
    for key, what in ((params[1], f"`{params[1]}`"), ("return", "the return value")):
        model = hints.get(key)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{func.__qualname__}: annotate {what} with a pydantic model")
        found.append(model)
    return found[0], found[1]


def load() -> dict[str, Command]:
    """Every command, its group modules imported (once)."""
    for group in GROUPS:
        importlib.import_module(f"codeact_lsp.lsp.commands.{group}")
    if set(REGISTRY) != set(NAMES):
        missing = sorted(set(NAMES) - set(REGISTRY))
        extra = sorted(set(REGISTRY) - set(NAMES))
        raise RuntimeError(f"commands.NAMES and the handlers disagree: {missing=} {extra=}")
    return REGISTRY
