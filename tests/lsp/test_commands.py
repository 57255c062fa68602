"""Commands answer every time: unknown names, bad arguments, fuzzed arguments (one server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygls.exceptions import JsonRpcException

from codeact_lsp.lsp.commands import NAMES as COMMANDS

from .conftest import EditorClient

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _error(client: EditorClient, name: str, raw: list[Any]) -> str:
    with pytest.raises(JsonRpcException) as info:
        await client.command(name, raw=raw)
    return str(info.value)


async def test_unknown_command_and_bad_arguments_get_actionable_errors(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    assert "this server provides: codeact.run" in await _error(client, "codeact.nope", [{}])
    msg = await _error(client, "codeact.run", [{"tsk": "x"}])
    assert "`task` is required" in msg and "did you mean `task`" in msg
    assert "one JSON object" in await _error(client, "codeact.run", ["just a string"])
    assert "2 arguments" in await _error(client, "codeact.getRun", [{"runId": "a"}, {}])
    msg = await _error(client, "codeact.run", [{"task": "t", "approval": "sometimes"}])
    assert "approval" in msg and "review" in msg
    msg = await _error(client, "codeact.rerun", [{"runId": "x", "step": 0}])
    assert "`step`" in msg
    msg = await _error(client, "codeact.getRun", [{"runId": "no-such-run"}])
    assert "no run with id 'no-such-run'" in msg and "codeact.listRuns" in msg
    msg = await _error(client, "codeact.approve", [{"runId": "no-such-run"}])
    assert "no run with id" in msg
    msg = await _error(
        client, "codeact.run", [{"task": "t", "model": "scripted:replies/missing.json"}]
    )
    assert "missing.json" in msg
    # still alive and answering
    assert await client.command("codeact.listRuns", {}) == {"runs": []}


async def test_fuzzed_command_arguments_always_get_an_answer(shared_client: EditorClient) -> None:
    client = shared_client
    loop = asyncio.get_running_loop()
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-3, 300) | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )
    keys = st.sampled_from(
        [
            "task",
            "runId",
            "step",
            "code",
            "name",
            "args",
            "uri",
            "range",
            "mode",
            "names",
            "file",
            "maxIters",
            "feedback",
        ]
    )
    argument = st.dictionaries(keys, json_values, max_size=4) | json_values
    # Commands that would start real work are fuzzed for validation only (no `task`/`name` strings
    # that pass): they answer with an error or a result; either way the server must answer.
    commands = st.sampled_from(
        [
            c
            for c in COMMANDS
            if c not in {"codeact.run", "codeact.runTasks", "codeact.followUp", "codeact.tryTool"}
        ]
        + ["codeact.bogus"]
    )
    answered = 0

    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(name=commands, args=st.lists(argument, max_size=2))
    def fuzz(name: str, args: list[Any]) -> None:
        nonlocal answered
        future = asyncio.run_coroutine_threadsafe(_answer(client, name, args), loop)
        assert future.result(timeout=20) in {"result", "error"}
        answered += 1

    await asyncio.to_thread(fuzz)
    assert answered >= 60
    assert await client.command("codeact.listRuns", {}) == {"runs": []}


async def _answer(client: EditorClient, name: str, args: list[Any]) -> str:
    try:
        await client.command(name, raw=args)
    except JsonRpcException as exc:
        assert exc.code in (-32602, -32603), exc  # InvalidParams / InternalError, never a crash
        assert str(exc).strip()
        return "error"
    return "result"
