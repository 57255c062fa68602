"""`codeact mcp` driven by the SDK's own client over stdio: execute_python (persistent session,
errors with lines, recording, approval through elicitation), run_task and list_tools."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_helpers import PY_SERVER


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "tools.py").write_text(
        '"""Workspace tools."""\n\n\n'
        "def double(x: int) -> int:\n"
        '    """Twice x."""\n'
        "    return 2 * x\n"
    )
    (tmp_path / "codeact.toml").write_text(
        f'[mcp.inventory]\ncommand = "{sys.executable}"\nargs = ["{PY_SERVER}"]\n'
        'confirm = ["restock"]\n'
    )
    return tmp_path


@asynccontextmanager
async def codeact_mcp(ws: Path, elicit: Callable[..., Any] | None = None) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "codeact_lsp.cli", "mcp", "--workspace", str(ws)]
    )
    async with Client(params, mode="legacy", elicitation_callback=elicit) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_offers_three_tools_and_lists_workspace_and_mcp_tools(workspace: Path) -> None:
    async with codeact_mcp(workspace) as client:
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == ["execute_python", "list_tools", "run_task"]
        tools = {t["name"]: t for t in (await call(client, "list_tools"))["tools"]}
    assert tools["double"]["signature"] == "def double(x: int) -> int"
    assert tools["stock"]["module"] == "mcp:inventory"
    assert tools["restock"]["confirm"] is True


async def test_execute_python_keeps_state_and_records_every_snippet(workspace: Path) -> None:
    async with codeact_mcp(workspace) as client:
        first = await call(client, "execute_python", code="n = double(stock('apple')['count'])\nn")
        assert first["status"] == "ok" and first["value"] == "6"
        assert [c["name"] for c in first["tool_calls"]] == ["stock", "double"]
        second = await call(client, "execute_python", code="print(n + 1)\nm = n\n1 / 0")
        assert second["stdout"] == "7\n"
        assert second["error"]["type"] == "ZeroDivisionError" and second["error"]["line"] == 3
        third = await call(client, "execute_python", code="stock('kiwi')")
        assert third["error"]["type"] == "McpToolError"
        assert "unknown sku 'kiwi'" in third["error"]["message"]
        done = await call(client, "execute_python", code="final_answer(m)")
        assert done["final_answer"] == {"answer": 6}
        after = await call(client, "execute_python", code="m * 10")  # same sandbox, a follow-up
        assert after["value"] == "60" and after["run_id"] != done["run_id"]
    run = json.loads(Path(first["trajectory"]).read_text())
    assert Path(first["trajectory"]).parent == workspace / ".codeact" / "runs"
    assert [s["code"] for s in run["steps"]][:2] == [
        "n = double(stock('apple')['count'])\nn",
        "print(n + 1)\nm = n\n1 / 0",
    ]
    assert run["status"] == "finished" and run["model"] == "mcp-client"
    follow = json.loads(Path(after["trajectory"]).read_text())
    assert follow["parent"] == run["id"] and follow["status"] == "cancelled"  # client left


@pytest.mark.parametrize(("accept", "status"), [(True, "ok"), (False, "rejected")])
async def test_a_flagged_tool_is_approved_through_elicitation(
    workspace: Path, accept: bool, status: str
) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        content = {"approve": accept, "feedback": "" if accept else "not today"}
        return types.ElicitResult(action="accept", content=content)

    async with codeact_mcp(workspace, elicit) as client:
        result = await call(client, "execute_python", code="restock('fig', 2)")
    assert len(asked) == 1 and "restock('fig', 2)" in asked[0] and "restock" in asked[0]
    assert result["status"] == status
    assert [c["name"] for c in result["tool_calls"]] == (["restock"] if accept else [])


async def test_without_elicitation_a_flagged_step_is_rejected(workspace: Path) -> None:
    async with codeact_mcp(workspace) as client:
        result = await call(client, "execute_python", code="restock('fig', 2)")
        assert result["status"] == "rejected" and result["tool_calls"] == []
        # the session goes on
        assert (await call(client, "execute_python", code="double(4)"))["value"] == "8"


async def test_run_task_runs_an_agent_and_returns_its_trajectory(workspace: Path) -> None:
    replies = workspace / "replies.json"
    replies.write_text(
        json.dumps(["```python\nfinal_answer(double(stock('apple')['count']))\n```"])
    )
    async with codeact_mcp(workspace) as client:
        result = await call(
            client, "run_task", task="twice the apples", model=f"scripted:{replies}"
        )
        bad = await client.call_tool("run_task", {"task": "x", "model": "nosuchprovider/model"})
    assert result["status"] == "finished" and result["answer"] == 6
    saved = json.loads(Path(result["trajectory"]).read_text())
    assert saved["id"] == result["run_id"] and saved["steps"][0]["tool_calls"][0]["name"] == "stock"
    assert bad.is_error and "nosuchprovider" in str(bad.content[0])
