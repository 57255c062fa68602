"""MCP tools as tools, against real servers nobody here wrote (the npm reference servers) and one
built with the SDK: listing, typed stubs, results, errors, crashes, timeouts, diagnostics."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_helpers import EVERYTHING, PY_SERVER, server_pids

from codeact_lsp.config import load_config
from codeact_lsp.mcp import McpTools


def _schema(tools: McpTools, name: str) -> Any:
    return next(s for s in tools.schemas() if s.name == name)


def test_lists_every_servers_tools_under_its_module(mcp_tools: McpTools) -> None:
    by_module: dict[str, set[str]] = {}
    for s in mcp_tools.schemas():
        by_module.setdefault(s.module, set()).add(s.name)
    assert {"echo", "get_sum", "get_structured_content"} <= by_module["mcp:everything"]
    assert {"create_entities", "read_graph", "search_nodes"} <= by_module["mcp:memory"]
    # `note` is taken by the workspace tool: the MCP one gets its server's prefix
    assert {"stock", "restock", "inventory_note", "crash"} <= by_module["mcp:inventory"]
    assert "note" not in by_module["mcp:inventory"]
    assert mcp_tools.diagnostics == []


@pytest.mark.parametrize(
    ("name", "signature"),
    [
        ("echo", "def echo(message: str) -> Any"),
        ("get_sum", "def get_sum(a: float, b: float) -> Any"),
        (
            "get_structured_content",
            "def get_structured_content(location: Literal['New York', 'Chicago', 'Los Angeles'])"
            " -> dict[str, Any]",
        ),
        ("stock", "def stock(sku: str) -> dict[str, Any]"),
        ("restock", "def restock(sku: str, count: int = 1) -> int"),  # SDK {"result"} unwrapped
        ("open_nodes", "def open_nodes(names: list[str]) -> dict[str, Any]"),
    ],
)
def test_typed_stubs_from_input_and_output_schemas(
    mcp_tools: McpTools, name: str, signature: str
) -> None:
    schema = _schema(mcp_tools, name)
    assert schema.signature == signature
    compile(schema.signature + ": ...", "<stub>", "exec")  # valid Python


def test_docstrings_carry_descriptions_and_output_fields(mcp_tools: McpTools) -> None:
    doc = _schema(mcp_tools, "get_structured_content").doc
    assert doc.startswith("Returns structured content")
    assert "location: Choose city" in doc
    assert "temperature (float): Temperature in celsius" in doc
    assert "McpToolError" in doc


def test_confirm_glob_flags_the_tool(mcp_tools: McpTools) -> None:
    assert _schema(mcp_tools, "restock").confirm
    assert not _schema(mcp_tools, "stock").confirm


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "expected"),
    [
        ("echo", ["hi"], {}, "Echo: hi"),  # text content -> str
        ("get_sum", [], {"a": 2, "b": 5}, "The sum of 2 and 5 is 7."),
        ("stock", ["apple"], {}, {"sku": "apple", "count": 3, "status": "in"}),  # structured
        ("inventory_note", ["x"], {}, "noted: x"),
        ("search_nodes", ["nothing-here"], {}, {"entities": [], "relations": []}),
    ],
)
def test_calls_return_values(
    mcp_tools: McpTools, name: str, args: list[Any], kwargs: dict[str, Any], expected: Any
) -> None:
    outcome = mcp_tools.call_sync(name, args, kwargs)
    assert outcome.ok, outcome.error
    assert outcome.result == expected


def test_positional_arguments_are_bound_by_name(mcp_tools: McpTools) -> None:
    outcome = mcp_tools.call_sync("get_sum", [1, 2], {})
    assert outcome.bound_args == {"a": 1, "b": 2}


def test_other_content_becomes_a_typed_stand_in(mcp_tools: McpTools) -> None:
    image = mcp_tools.call_sync("badge", [], {}).result
    assert image["type"] == "image" and image["mime_type"] == "image/png"
    assert image["data_base64"].startswith("iVBOR")
    links = mcp_tools.call_sync("get_resource_links", [], {"count": 2}).result
    kinds = [item["type"] if isinstance(item, dict) else "text" for item in links]
    assert kinds.count("resource_link") == 2
    assert all(str(i["uri"]).startswith("demo://") for i in links if isinstance(i, dict))


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "kind", "fragment"),
    [
        ("stock", ["kiwi"], {}, "McpToolError", "unknown sku 'kiwi'"),  # the server's message
        ("get_structured_content", ["Paris"], {}, "McpToolError", "Input validation error"),
        ("echo", [], {}, "TypeError", "missing required argument: 'message'"),
        ("echo", ["a", "b"], {}, "TypeError", "takes 1 positional argument but 2 were given"),
        ("echo", [], {"msg": "x"}, "TypeError", "unexpected keyword argument 'msg'"),
    ],
)
def test_errors_name_their_kind_and_keep_the_servers_message(
    mcp_tools: McpTools,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    kind: str,
    fragment: str,
) -> None:
    outcome = mcp_tools.call_sync(name, args, kwargs)
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.type == kind
    assert fragment in outcome.error.message


def test_a_crash_is_reported_and_the_server_restarted(mcp_tools: McpTools) -> None:
    before = mcp_tools.call_sync("pid", [], {}).result
    crash = mcp_tools.call_sync("crash", [], {})
    assert not crash.ok and crash.error is not None
    assert crash.error.type == "McpServerError"
    assert "exited during crash()" in crash.error.message
    assert "crashing on purpose" in crash.error.message  # the tail of its stderr
    assert crash.restarted
    after = mcp_tools.call_sync("pid", [], {})
    assert after.ok and after.result != before
    status = {s["name"]: s for s in mcp_tools.status()}["inventory"]
    assert status["crashes"] >= 1 and status["running"]


def test_a_killed_node_server_is_restarted(mcp_tools: McpTools) -> None:
    assert mcp_tools.call_sync("echo", ["one"], {}).ok
    pids = server_pids(str(EVERYTHING))
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    first = mcp_tools.call_sync("echo", ["two"], {})
    # the kill may be noticed by this call (an error) or already have been (a fresh start)
    if not first.ok:
        assert first.error is not None and first.error.type == "McpServerError"
        first = mcp_tools.call_sync("echo", ["two"], {})
    assert first.ok and first.result == "Echo: two"
    assert server_pids(str(EVERYTHING)) != pids


def test_a_slow_call_times_out_and_the_server_stays(mcp_tools: McpTools) -> None:
    # call_timeout = 5 for this server
    outcome = mcp_tools.call_sync("nap", [30], {})
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.type == "TimeoutError" and outcome.timed_out
    assert mcp_tools.call_sync("inventory_note", ["still here"], {}).result == "noted: still here"


def test_cancel_abandons_the_call_of_that_thread_only(mcp_tools: McpTools) -> None:
    """A cancelled run's MCP call ends at once with a CancelledError; nobody waits for it."""
    import threading

    outcome: list[Any] = []
    caller = threading.Thread(target=lambda: outcome.append(mcp_tools.call_sync("nap", [4], {})))
    caller.start()
    conns = list(mcp_tools.connections.values())
    while caller.ident is None or not any(caller.ident in c._in_flight for c in conns):
        threading.Event().wait(0.01)  # until the call is on its way to the server
    mcp_tools.cancel(thread=caller.ident + 1)  # another thread's cancel: not this call
    assert any(caller.ident in c._in_flight for c in conns)
    mcp_tools.cancel(thread=caller.ident)
    caller.join(10)
    assert not caller.is_alive()
    (result,) = outcome
    assert not result.ok and result.error.type == "CancelledError", result
    assert mcp_tools.call_sync("inventory_note", ["after"], {}).result == "noted: after"


def test_state_is_shared_across_calls(mcp_tools: McpTools) -> None:
    entity = {"name": "codeact", "entityType": "project", "observations": ["runs agents"]}
    assert mcp_tools.call_sync("create_entities", [[entity]], {}).ok
    graph = mcp_tools.call_sync("open_nodes", [["codeact"]], {}).result
    assert graph["entities"][0]["observations"] == ["runs agents"]


def test_servers_that_fail_or_list_nothing_are_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "codeact.toml").write_text(
        f"""
[mcp.missing]
command = "/nonexistent/mcp-server"

[mcp.picky]
command = "{sys.executable}"
args = ["{PY_SERVER}"]
tools = ["no_such_*"]

[mcp.needs_key]
url = "http://127.0.0.1:9/mcp"
headers = {{ Authorization = "Bearer ${{env:CODEACT_TEST_UNSET_TOKEN}}" }}
"""
    )
    loaded = load_config(tmp_path)
    assert not loaded.problems
    tools = McpTools.for_workspace(tmp_path, loaded.config, source=loaded.source)
    tools.start()
    try:
        diags = {d.message.split("'")[1]: d for d in tools.diagnostics}
        assert diags["missing"].code == "mcp-server-failed" and diags["missing"].severity == "error"
        assert "failed to start" in diags["missing"].message
        assert diags["missing"].line == 2 and diags["missing"].file.endswith("codeact.toml")
        assert diags["picky"].code == "mcp-no-tools"
        assert "stock" in diags["picky"].message  # says what it does have
        assert "CODEACT_TEST_UNSET_TOKEN is not set" in diags["needs_key"].message
        assert tools.schemas() == []
        call = tools.call_sync("stock", ["apple"], {})
        assert call.error is not None and call.error.type == "NameError"
    finally:
        tools.close_sync()


def test_nothing_outlives_close(tmp_path: Path) -> None:
    own = tmp_path / "own_server.py"  # a path no other test's server has
    shutil.copy(PY_SERVER, own)
    (tmp_path / "codeact.toml").write_text(
        f'[mcp.own]\ncommand = "{sys.executable}"\nargs = ["{own}"]\n'
    )
    tools = McpTools.for_workspace(tmp_path, load_config(tmp_path).config)
    tools.start()
    assert tools.call_sync("note", ["x"], {}).ok
    assert len(server_pids(str(own))) == 1
    tools.close_sync()
    assert server_pids(str(own)) == []


def test_a_streamable_http_server_with_headers_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    import subprocess

    server = subprocess.Popen(
        [sys.executable, str(PY_SERVER), "--http"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        url = None
        for line in server.stderr:  # uvicorn says where it listens once it does
            found = re.search(r"running on (http://\S+)", line)
            if found:
                url = found.group(1) + "/mcp"
                break
        assert url, "the HTTP server did not start"
        monkeypatch.setenv("CODEACT_TEST_HTTP_TOKEN", "t0ken")
        (tmp_path / "codeact.toml").write_text(
            f'[mcp.remote]\nurl = "{url}"\n'
            'headers = { Authorization = "Bearer ${env:CODEACT_TEST_HTTP_TOKEN}" }\n'
        )
        loaded = load_config(tmp_path)
        assert not loaded.problems
        tools = McpTools.for_workspace(tmp_path, loaded.config)
        tools.start()
        try:
            assert tools.diagnostics == []
            assert tools.specs[0].headers == {"Authorization": "Bearer t0ken"}
            assert tools.call_sync("stock", ["apple"], {}).result["count"] == 3
            error = tools.call_sync("stock", ["kiwi"], {}).error
            assert error is not None and "unknown sku 'kiwi'" in error.message
        finally:
            tools.close_sync()
    finally:
        server.terminate()
        server.wait(10)
