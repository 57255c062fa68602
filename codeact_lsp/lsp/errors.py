"""The error a person can act on: a command they can fix, answered as InvalidParams."""

from __future__ import annotations

from pygls.exceptions import JsonRpcInvalidParams


class CommandError(JsonRpcInvalidParams):
    """A request the user can fix (bad argument, unknown run, wrong state): InvalidParams.

    `main` keeps these out of the error log: a user's mistake is not a crash."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)
