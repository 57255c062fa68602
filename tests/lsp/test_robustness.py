"""The server stays up and answers clearly: bad commands, bad arguments, odd workspaces, fuzzing,
and a client that disappears (every worker and tool host must end with it)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from .conftest import SERVER, EditorClient, initialize_params, start_client, stop_client


async def _error(client: EditorClient, name: str, raw: list[Any]) -> str:
    with pytest.raises(JsonRpcException) as info:
        await client.command(name, raw=raw)
    return str(info.value)


async def test_settings_from_the_editor_override_the_workspace_file(client: EditorClient) -> None:
    client.set_configuration({"approval": "review", "maxIters": 2}, section="codeact")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    started = await client.command(
        "codeact.run", {"task": "t", "model": "scripted:replies/quote.json"}
    )
    run = await client.run_until(started["runId"], {"awaiting_approval"})
    assert run["approval"] == "review" and run["max_iters"] == 2
    await client.command("codeact.cancel", {"runId": started["runId"]})

    client.set_configuration({"approval": "sometimes", "maxIters": 3}, section="codeact")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    await client.until(lambda: client.messages, "a message about the bad setting")
    assert "approval" in client.messages[-1].message and "ignored" in client.messages[-1].message
    started = await client.command(
        "codeact.run", {"task": "t", "model": "scripted:replies/quote.json"}
    )
    run = await client.run_until(started["runId"], {"finished"})
    assert run["approval"] == "auto" and run["max_iters"] == 3  # the file's value, the good setting


@pytest.fixture
def bare_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "empty"
    ws.mkdir()
    return ws


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def bare_client(lsp_client: EditorClient, bare_workspace: Path) -> AsyncIterator[None]:
    lsp_client.workspace = bare_workspace
    await lsp_client.initialize_session(initialize_params(bare_workspace))
    yield
    await lsp_client.shutdown_session()


async def test_workspace_without_config_or_tools(bare_client: EditorClient) -> None:
    listed = await bare_client.command("codeact.listTools", {})
    assert listed["tools"] == []
    msg = await _error(bare_client, "codeact.runTasks", [{}])
    assert "no task suite" in msg
    script = bare_client.workspace / "notes.py"
    script.write_text("x = 1\n")
    uri = bare_client.open(script)
    assert await bare_client.lenses(uri) == []
    assert await bare_client.diagnostics_for(uri) == []


async def test_broken_tool_module_is_a_diagnostic_not_a_crash(bare_client: EditorClient) -> None:
    tools = bare_client.workspace / "tools.py"
    tools.write_text(
        '"""Tools."""\n\nimport no_such_module_xyz\n\n\ndef f(x: int) -> int:\n    """Double."""\n    return 2 * x\n'
    )
    uri = bare_client.open(tools)
    listed = await bare_client.command("codeact.listTools", {})
    assert any("no_such_module_xyz" in d["message"] for d in listed["diagnostics"])
    diags = await bare_client.diagnostics_for(uri)
    (imp,) = [d for d in diags if "no_such_module_xyz" in d.message]
    assert imp.range.start.line == 2
    msg = await _error(bare_client, "codeact.tryTool", [{"name": "g"}])
    assert "no tool named 'g'" in msg

    # Typing a new tool (unsaved): the bench re-reads the buffer and shows its lens and the
    # static diagnostics (no docstring, no annotations) at its line.
    text = tools.read_text() + "\n\ndef g(y):\n    return y\n"
    bare_client.edit(uri, text)
    g_line = text.splitlines().index("def g(y):")
    deadline = time.monotonic() + 30
    while True:
        lenses = await bare_client.lenses(uri)
        if any(lens.range.start.line == g_line for lens in lenses):
            break
        assert time.monotonic() < deadline, lenses
        await asyncio.sleep(0.05)
    diags = await bare_client.diagnostics_for(uri)
    assert any(d.range.start.line == g_line and "docstring" in d.message for d in diags), diags


async def test_no_workspace_folder(tmp_path: Path) -> None:
    client = await start_client(None)
    try:
        msg = await _error(client, "codeact.run", [{"task": "t"}])
        assert "no workspace folder is open" in msg
        await client.shutdown_session()
    finally:
        await stop_client(client)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class _RawClient:
    """A bare JSON-RPC client on any byte stream (stdio pipes or a TCP socket)."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any) -> None:
        self.reader, self.writer, self.next_id = reader, writer, 1

    async def send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        self.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await self.writer.drain()

    async def request(self, method: str, params: Any) -> Any:
        want, self.next_id = self.next_id, self.next_id + 1
        await self.send({"jsonrpc": "2.0", "id": want, "method": method, "params": params})
        while True:
            length = 0
            while (header := await self.reader.readline()).strip():
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            msg = json.loads(await self.reader.readexactly(length))
            if msg.get("id") == want and "method" not in msg:
                return msg.get("result")
            if "method" in msg and "id" in msg:  # a request from the server: answer it
                await self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    async def command(self, name: str, arg: dict[str, Any]) -> Any:
        return await self.request("workspace/executeCommand", {"command": name, "arguments": [arg]})


async def _start_review_run(client: _RawClient, workspace: Path) -> None:
    """Initialize, and leave a run waiting for approval (its sandbox worker and the tool host up)."""
    params: dict[str, Any] = {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}}
    await client.request("initialize", params)
    await client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    run = {"task": "t", "model": "scripted:replies/quote.json", "approval": "review"}
    run_id = (await client.command("codeact.run", run))["runId"]
    deadline = time.monotonic() + 60
    status = ""
    while status != "awaiting_approval" and time.monotonic() < deadline:
        status = (await client.command("codeact.getRun", {"runId": run_id}))["status"]
    assert status == "awaiting_approval"


async def _all_end(proc: asyncio.subprocess.Process, children: set[int]) -> None:
    assert await asyncio.wait_for(proc.wait(), 30) is not None
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not [p for p in children if _alive(p)]


async def test_client_disconnect_ends_workers_and_tool_host(workspace: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "codeact_lsp",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    await _start_review_run(_RawClient(proc.stdout, proc.stdin), workspace)
    children = _descendants(proc.pid)
    assert len(children) >= 2  # the tool host and the run's sandbox worker (at least)

    proc.stdin.close()  # the editor is gone
    await _all_end(proc, children)


async def test_tcp_client_disconnect_ends_workers_and_tool_host(workspace: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "codeact_lsp",
        "--tcp",
        "127.0.0.1:0",
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    assert line.startswith("codeact-lsp: listening on "), line
    host, _, port = line.split()[-1].rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    await _start_review_run(_RawClient(reader, writer), workspace)
    children = _descendants(proc.pid)
    assert len(children) >= 2

    writer.close()  # the editor is gone (no shutdown, no exit)
    await _all_end(proc, children)


PUBLISH_ONLY = lsp.ClientCapabilities(
    workspace=lsp.WorkspaceClientCapabilities(configuration=True, apply_edit=True),
    window=lsp.WindowClientCapabilities(work_done_progress=False),
)


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def publish_client(lsp_client: EditorClient, workspace: Path) -> AsyncIterator[None]:
    lsp_client.workspace = workspace
    await lsp_client.initialize_session(initialize_params(workspace, PUBLISH_ONLY))
    yield
    await lsp_client.shutdown_session()


async def test_clients_without_pull_diagnostics_get_them_published(
    publish_client: EditorClient,
) -> None:
    client = publish_client
    tools = client.workspace / "tools.py"
    good = tools.read_text()
    tools.write_text(good + "\nimport no_such_module_abc\n")
    uri = client.open(tools)

    async def published(broken: bool) -> None:
        deadline = time.monotonic() + 30
        while broken != any(
            "no_such_module_abc" in d.message for d in client.diagnostics.get(uri, [])
        ):
            assert time.monotonic() < deadline, client.diagnostics
            await asyncio.sleep(0.05)

    await published(True)
    # Fixing the module and saving it restarts the tool host; the diagnostic goes away.
    tools.write_text(good)
    client.edit(uri, good)
    client.text_document_did_save(
        lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    await published(False)
    # Without progress support a run still runs.
    started = await client.command(
        "codeact.run", {"task": "t", "model": "scripted:replies/quote.json"}
    )
    run = await client.run_until(started["runId"], {"finished"})
    assert run["outputs"] == {"answer": 76.9}
    assert client.progress_reports == {}


async def test_runs_outlive_the_server_and_can_be_accepted_after_a_restart(workspace: Path) -> None:
    target = workspace / "later.py"
    target.write_text("# results\n")
    first = await start_client(workspace)
    try:
        uri = first.open(target)
        pos = {"line": 1, "character": 0}
        started = await first.command(
            "codeact.run",
            {
                "task": "t",
                "model": "scripted:replies/quote.json",
                "uri": uri,
                "range": {"start": pos, "end": pos},
            },
        )
        await first.run_until(started["runId"], {"finished"})
        await first.shutdown_session()
    finally:
        await stop_client(first)

    second = await start_client(workspace)
    try:
        listed = await second.command("codeact.listRuns", {})
        assert [r["runId"] for r in listed["runs"]] == [started["runId"]]
        assert listed["runs"][0]["live"] is False
        doc = second.open(Path(started["trajectoryUri"].removeprefix("file://")))
        assert "✔ Accept" in [
            lens.command.title for lens in await second.lenses(doc) if lens.command
        ]
        uri = second.open(target)
        result = await second.command("codeact.accept", {"runId": started["runId"]})
        assert result["applied"] is True
        assert "return total" in second.docs[uri][1]
        msg = await _error(second, "codeact.approve", [{"runId": started["runId"]}])
        assert "not live in this server" in msg
        await second.shutdown_session()
    finally:
        await stop_client(second)


async def test_cached_initialize_answer_equals_pygls_answer(
    workspace: Path, tmp_path: Path
) -> None:
    """The second start answers `initialize` from the cache; the answer and the server's state
    are the same as without it."""
    cache = tmp_path / "init-cache"
    answers = []
    for start in ("computed by pygls, then cached", "answered from the cache"):
        client = SERVER.client_factory()
        assert isinstance(client, EditorClient)
        await client.start_io(
            *SERVER.server_command,
            env={**(SERVER.server_env or {}), "CODEACT_LSP_CACHE_DIR": str(cache)},
        )
        try:
            result = await client.initialize_session(initialize_params(workspace))
            answers.append(client.protocol._converter.unstructure(result))
            # the server knows the workspace and the client's capabilities as usual
            listed = await client.command("codeact.listTools", {})
            assert {t["name"] for t in listed["tools"]} >= {"price_of", "reserve"}
            await client.shutdown_session()
        finally:
            await stop_client(client)
        assert len(list(cache.glob("init-*.json"))) == 1, start
    assert answers[0] == answers[1]


async def test_config_changed_outside_the_editor_is_picked_up(client: EditorClient) -> None:
    await client.until(lambda: client.registrations, "the file watchers' registration")
    (watch,) = client.registrations
    assert watch.method == lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES
    pyproject = client.workspace / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("max_iters = 6", "max_iters = 4"))
    client.set_configuration({}, section="codeact")  # the file's value, not a setting
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=pyproject.as_uri(), type=lsp.FileChangeType.Changed)]
        )
    )
    started = await client.command(
        "codeact.run", {"task": "t", "model": "scripted:replies/quote.json"}
    )
    run = await client.run_until(started["runId"], {"finished"})
    assert run["max_iters"] == 4


async def test_task_results_survive_a_server_restart(workspace: Path) -> None:
    suite = workspace / "tasks.toml"
    first = await start_client(workspace)
    try:
        result = await first.command("codeact.runTasks", {})
        assert (result["passed"], result["total"]) == (1, 1)
        await first.shutdown_session()
    finally:
        await stop_client(first)
    assert (workspace / ".codeact" / "task_results.json").is_file()

    second = await start_client(workspace)
    try:
        uri = second.open(suite)
        titles = [lens.command.title for lens in await second.lenses(uri) if lens.command]
        assert len(titles) == 1 and titles[0].startswith("▷ Run task · last ✓"), titles
        await second.shutdown_session()
    finally:
        await stop_client(second)


async def test_broad_tool_globs_leave_trajectory_files_alone(client: EditorClient) -> None:
    """`**/*.py` also matches `.codeact/runs/<id>.py`: those are views, never tool modules (the
    tool host would import, i.e. run, an agent's code)."""
    first = await client.command(
        "codeact.run", {"task": "t", "model": "scripted:replies/quote.json"}
    )
    await client.run_until(first["runId"], {"finished"})
    extra = client.workspace / "more" / "extra.py"
    extra.parent.mkdir()
    extra.write_text('def extra_tool(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n')
    client.set_configuration({"maxIters": 6, "tools": ["**/*.py"]}, section="codeact")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    names: list[str] = []
    deadline = time.monotonic() + 30
    while "extra_tool" not in names and time.monotonic() < deadline:  # the new globs apply
        listed = await client.command("codeact.listTools", {})
        names = sorted(t["name"] for t in listed["tools"])
    assert names == [
        "convert_currency",
        "delivery_estimate",  # the example's MCP server (carrier_mcp.py itself exports nothing)
        "extra_tool",
        "price_of",
        "reserve",
        "shipping_quote",
        "stock_level",
    ]
    assert not [d for d in listed["diagnostics"] if ".codeact" in str(d.get("file"))]
    doc = client.open(Path(first["trajectoryUri"].removeprefix("file://")))
    titles = [lens.command.title for lens in await client.lenses(doc) if lens.command]
    assert titles[0].startswith("✓ finished") and "▷ Try" not in titles


async def test_a_run_left_running_by_a_dead_process_reads_as_interrupted(
    client: EditorClient,
) -> None:
    """The editor reads run files through the engine's store: the same rule as `Engine.load`."""
    import subprocess

    from codeact_lsp.engine.store import runs_dir
    from codeact_lsp.trajectory import Trajectory

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid now names no process
    runs = runs_dir(client.workspace)
    runs.mkdir(parents=True, exist_ok=True)
    stale = Trajectory(id="20250101-000000-abcdef", task="t", status="running", pid=child.pid)
    (runs / f"{stale.id}.json").write_text(stale.model_dump_json(), encoding="utf-8")

    run = await client.command("codeact.getRun", {"runId": stale.id})
    assert run["status"] == "failed" and "interrupted" in run["error"]
    listed = await client.command("codeact.listRuns", {})
    assert [r["status"] for r in listed["runs"] if r["runId"] == stale.id] == ["failed"]
