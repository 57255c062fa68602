"""Scripted CodeAct runs whose snippets call MCP tools through the sandbox and the engine: the
same trust boundary, recording and approval as workspace tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from codeact_lsp.config import load_config
from codeact_lsp.engine import Engine, RetryPolicy, RunHandle, RunRequest
from codeact_lsp.mcp import CombinedTools, McpTools
from codeact_lsp.tools import ToolHost
from codeact_lsp.trajectory import Trajectory

FAST_RETRY = RetryPolicy(timeout=5.0, retries=1, base_delay=0.001, max_delay=0.01)


def code(text: str) -> str:
    return f"```python\n{text}\n```"


@pytest.fixture(scope="module")
def combined(mcp_workspace: Path, mcp_tools: McpTools) -> Any:
    host = ToolHost.start(mcp_workspace, load_config(mcp_workspace).config)
    assert host.problem is None, host.problem
    yield CombinedTools(host, mcp_tools)
    host.close_sync()


@pytest.fixture
async def engine(mcp_workspace: Path, combined: Any, tmp_path: Path) -> AsyncIterator[Engine]:
    config = load_config(mcp_workspace).config
    eng = Engine(
        config, combined, workspace=mcp_workspace, runs_dir=tmp_path / "runs", retry=FAST_RETRY
    )
    yield eng
    await eng.close()


def scripted(tmp_path: Path, replies: list[str]) -> str:
    path = tmp_path / f"replies-{len(list(tmp_path.glob('replies-*')))}.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


async def _wait(handle: RunHandle) -> Trajectory:
    return await handle.wait()


LOOP = """
total = 0
for a, b in [(1, 2), (3, 4), (5, 6)]:
    text = get_sum(a, b)
    total += int(text.rstrip(".").split()[-1])
weather = get_structured_content("Chicago")
item = stock("apple")
entities = create_entities([{"name": "run", "entityType": "test", "observations": [str(total)]}])
opened = open_nodes(("run",))  # a tuple crosses the sandbox boundary and arrives as a list
print(total, weather["conditions"] != "", item["count"], note("mine"), inventory_note("theirs"))
"""


async def test_one_snippet_calls_several_servers_in_a_loop(engine: Engine, tmp_path: Path) -> None:
    model = scripted(tmp_path, [code(LOOP), code("final_answer(total + item['count'])")])
    traj = await _wait(await engine.start(RunRequest(task="sum things", model=model)))
    assert traj.status == "finished", traj.error
    assert traj.outputs == {"answer": 3 + 7 + 11 + 3}
    step = traj.steps[0]
    assert step.error is None, step.error
    assert step.stdout.strip() == "21 True 3 workspace: mine noted: theirs"
    names = [c.name for c in step.tool_calls]
    assert names == [
        "get_sum",
        "get_sum",
        "get_sum",
        "get_structured_content",
        "stock",
        "create_entities",
        "open_nodes",
        "note",
        "inventory_note",
    ]
    first = step.tool_calls[0]
    assert first.args == {"a": 1, "b": 2} and first.result == "The sum of 1 and 2 is 3."
    assert step.tool_calls[3].args == {"location": "Chicago"}
    assert step.tool_calls[6].args == {"names": ["run"]}
    assert step.tool_calls[6].result["entities"][0]["observations"] == ["21"]
    # recorded in the run file like any other tool call
    saved = json.loads((tmp_path / "runs" / f"{traj.id}.json").read_text())
    assert [c["name"] for c in saved["steps"][0]["tool_calls"]] == names


async def test_a_server_error_is_a_named_exception_in_the_snippet(
    engine: Engine, tmp_path: Path
) -> None:
    snippet = "before = 1\nstock('kiwi')\nafter = 2"
    caught = (
        "try:\n    stock('kiwi')\nexcept McpToolError as exc:\n"  # bound by name in the snippet
        "    final_answer(type(exc).__name__ + ': ' + str(exc))"
    )
    model = scripted(tmp_path, [code(snippet), code(caught)])
    traj = await _wait(await engine.start(RunRequest(task="kiwis", model=model)))
    error = traj.steps[0].error
    assert error is not None and error.type == "McpToolError" and error.line == 2
    assert "unknown sku 'kiwi'" in error.message
    assert traj.steps[0].tool_calls[0].error is not None
    assert traj.outputs is not None
    assert str(traj.outputs["answer"]).startswith("McpToolError: ")


async def test_a_crash_mid_run_fails_that_call_and_the_next_step_has_a_server(
    engine: Engine, tmp_path: Path
) -> None:
    first = "a = pid()\ncrash()\nnever = 1"
    second = (
        "try:\n    crash()\nexcept ConnectionError as exc:\n    lost = type(exc).__name__\n"
        "b = pid()\nfinal_answer([a != b, lost])"
    )
    model = scripted(tmp_path, [code(first), code(second)])
    traj = await _wait(await engine.start(RunRequest(task="crash", model=model)))
    error = traj.steps[0].error
    assert error is not None and error.type == "McpServerError" and error.line == 2
    assert "started again at the next call" in error.message
    assert traj.status == "finished" and traj.outputs == {"answer": [True, "McpServerError"]}


async def test_a_flagged_mcp_tool_waits_for_approval(engine: Engine, tmp_path: Path) -> None:
    model = scripted(tmp_path, [code("n = restock('pear', 2)\nfinal_answer(n)")])
    handle = await engine.start(RunRequest(task="restock", model=model, approval="auto"))
    async for event in handle.subscribe():
        if event.kind == "awaiting_approval":
            assert event.data["confirm_tools"] == ["restock"]
            assert handle.trajectory.steps[0].tool_calls == []  # nothing ran yet
            assert handle.approve()
            break
    traj = await _wait(handle)
    assert traj.status == "finished" and isinstance(traj.outputs["answer"], int)  # type: ignore[index]


async def test_servers_are_shared_across_runs(engine: Engine, tmp_path: Path) -> None:
    model = scripted(tmp_path, [code("final_answer(pid())")])
    one = await _wait(await engine.start(RunRequest(task="pid", model=model)))
    model = scripted(tmp_path, [code("final_answer(pid())")])
    two = await _wait(await engine.start(RunRequest(task="pid", model=model)))
    assert one.outputs == two.outputs


async def test_the_accepted_program_imports_mcp_tools_and_replays(
    engine: Engine, mcp_workspace: Path, tmp_path: Path
) -> None:
    snippet = "item = stock('apple')\nfinal_answer(item['count'] * 2)"
    model = scripted(tmp_path, [code(snippet)])
    traj = await _wait(await engine.start(RunRequest(task="twice the apples", model=model)))
    assert traj.status == "finished"
    program = traj.program or ""
    assert "from codeact_lsp.mcp.remote.inventory import stock" in program
    # imported and called outside the sandbox, against the real server, it answers the same
    script = tmp_path / "replay.py"
    fname = program.split("def ", 1)[1].split("(", 1)[0]
    script.write_text(program + f"\nprint({fname}())\n")
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=mcp_workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "6"
