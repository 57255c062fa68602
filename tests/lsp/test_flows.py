"""Full flows as an editor drives them: real server, tool host and sandbox; scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from .conftest import EditorClient, code_reply, lsp_path, write_replies

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUOTE = "scripted:replies/quote.json"
STEP1 = 'item = price_of("SKU-42")\nprint(item)\nprint(stock_level("SKU-42"))'


def _target(client: EditorClient, name: str) -> tuple[str, dict[str, object]]:
    path = client.workspace / f"{name}.py"
    path.write_text('"""Shipping quotes."""\n\n# The agent\'s program goes here.\n')
    uri = client.open(path)
    pos = {"line": 3, "character": 0}
    return uri, {"start": pos, "end": pos}


def _titles(lenses: list[lsp.CodeLens]) -> list[str]:
    return [lens.command.title for lens in lenses if lens.command]


async def _finished_quote(client: EditorClient, name: str) -> tuple[str, str, dict[str, Any]]:
    uri, rng = _target(client, name)
    started = await client.command(
        "codeact.run",
        {"task": "quote for 3 units", "model": QUOTE, "uri": uri, "range": rng},
    )
    run = await client.run_until(started["runId"], {"finished"})
    return uri, started["trajectoryUri"], run


async def test_run_reports_progress_shows_lenses_and_accept_applies_versioned_edit(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    target_uri, traj_uri, run = await _finished_quote(client, "accept_target")
    assert run["outputs"] == {"answer": 76.9}
    assert [s["index"] for s in run["steps"]] == [1, 2]
    assert run["target"]["uri"] == target_uri

    # progress: begin (cancellable) ... end
    prefix = f"codeact-run-{run['id']}-"
    await client.until(
        lambda: isinstance((client.progress_for(prefix) or [None])[-1], lsp.WorkDoneProgressEnd),
        "the end of the run's progress",
    )
    await client.until(lambda: traj_uri in [d.uri for d in client.shown_documents], "showDocument")
    await client.until(lambda: client.lens_refreshes > 0, "a code lens refresh")
    reports = client.progress_for(prefix)
    assert isinstance(reports[0], lsp.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], lsp.WorkDoneProgressEnd) and reports[-1].message == "finished"

    traj_path = Path(lsp_path(traj_uri))
    assert traj_path.parent == client.workspace / ".codeact" / "runs"
    doc_uri = client.open(traj_path)
    titles = _titles(await client.lenses(doc_uri))
    assert "✔ Accept" in titles and titles.count("↻ Re-run from here") == 2
    assert any(t.startswith("✓ step 2 · ") for t in titles)
    assert await client.diagnostics_for(doc_uri) == []
    text = traj_path.read_text()
    header = text.splitlines().index(
        next(line for line in text.splitlines() if line.startswith("# ━━ step 1"))
    )
    hover = await client.text_document_hover_async(
        lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=doc_uri), position=lsp.Position(header, 2)
        )
    )
    assert hover is not None and "{'usd': 25.0, 'kg': 0.8}" in hover.contents.value  # type: ignore[union-attr]

    preview = await client.command("codeact.acceptPreview", {"runId": run["id"]})
    assert (
        preview["ok"]
        and preview["targetUri"] == target_uri
        and 'price_of("SKU-42")' in preview["documentAfter"]
    )
    assert "price_of" not in Path(lsp_path(target_uri)).read_text()  # nothing written before Accept

    result = await client.command("codeact.accept", {"runId": run["id"]})
    assert result["applied"] is True
    (params,) = client.applied
    (change,) = params.edit.document_changes or []
    assert isinstance(change, lsp.TextDocumentEdit)
    assert change.text_document.uri == target_uri and change.text_document.version == 1
    imports, function = change.edits
    assert isinstance(imports, lsp.AnnotatedTextEdit) and imports.new_text.startswith(
        "\nfrom tools"
    )
    assert isinstance(function, lsp.AnnotatedTextEdit) and "return total" in function.new_text
    version, text = client.docs[target_uri]
    assert version == 2 and text.startswith('"""Shipping quotes."""\n\nfrom tools import ')
    assert "shipping_quote" in text


async def test_accept_refuses_after_the_user_edited_the_target(shared_client: EditorClient) -> None:
    client = shared_client
    client.applied.clear()
    client = shared_client
    client.applied.clear()
    target_uri, _, run = await _finished_quote(client, "refusal_target")
    _version, text = client.docs[target_uri]
    client.edit(target_uri, text + "MY_OWN_LINE = 1\n")
    refused = await client.command("codeact.accept", {"runId": run["id"]})
    assert refused["applied"] is False and "edited after the run started" in refused["reason"]
    assert refused["alternatives"] == ["newFile", "insertAtEnd"]
    assert "file://" not in refused["reason"] and "mode" not in refused["reason"]
    assert client.applied == []

    at_end = await client.command("codeact.accept", {"runId": run["id"], "mode": "insertAtEnd"})
    assert at_end["applied"] is True
    _, text = client.docs[target_uri]
    assert "MY_OWN_LINE = 1" in text and text.rstrip().endswith("return total")

    new_file = await client.command("codeact.accept", {"runId": run["id"], "mode": "newFile"})
    assert new_file["applied"] is True
    created = client.applied[-1].edit.document_changes or []
    assert isinstance(created[0], lsp.CreateFile) and created[0].uri.endswith(
        f"/{new_file['name']}.py"
    )


async def test_review_mode_edit_approve_and_reject_with_feedback(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    model = write_replies(
        client.workspace,
        "review",
        [
            code_reply(STEP1),
            code_reply('left = reserve("SKU-42", unitz=2)\nfinal_answer(left)'),
            code_reply("final_answer(1.5)"),
        ],
    )
    started = await client.command(
        "codeact.run", {"task": "t", "model": model, "approval": "review"}
    )
    run_id = started["runId"]
    await client.run_until(run_id, {"awaiting_approval"})
    doc_path = Path(lsp_path(started["trajectoryUri"]))
    doc_uri = client.open(doc_path)
    assert "▶ Run step" in _titles(await client.lenses(doc_uri))

    # The user edits the pending step in the trajectory document; "Run step" runs their text.
    client.edit(doc_uri, client.docs[doc_uri][1].replace("print(item)", 'print("edited", item)'))
    approved = await client.command("codeact.approve", {"runId": run_id})
    assert approved["edited"] is True
    run = await client.run_until(run_id, {"awaiting_approval"}, waiting_step=2)
    assert run["steps"][0]["edited"] is True and "edited {'usd'" in run["steps"][0]["stdout"]

    # Step 2 is checked before it runs: a wrong argument name, and a tool that needs confirmation.
    # The document still holds the user's unsaved edit, so the server left the file alone; once
    # they save, it is rewritten (getRun writes at once) and the editor reloads it.
    assert "step 2" not in doc_path.read_text()
    client.save(doc_uri)
    await client.command("codeact.getRun", {"runId": run_id})
    client.reload(doc_uri)
    diags = await client.diagnostics_for(doc_uri)
    codes = sorted(str(d.code) for d in diags)
    assert codes == ["confirm-tool", "tool-args", "tool-args"], [d.message for d in diags]
    assert "did you mean `units`" in " ".join(d.message for d in diags)

    rejected = await client.command(
        "codeact.reject", {"runId": run_id, "feedback": "do not reserve"}
    )
    assert rejected["step"] == 2
    run = await client.run_until(run_id, {"awaiting_approval"}, waiting_step=3)
    assert (
        run["steps"][1]["status"] == "rejected" and run["steps"][1]["feedback"] == "do not reserve"
    )
    await client.command("codeact.approve", {"runId": run_id})
    run = await client.run_until(run_id, {"finished"})
    assert run["outputs"] == {"answer": 1.5}

    with pytest.raises(Exception, match="not waiting for approval"):
        await client.command("codeact.approve", {"runId": run_id})


async def test_cancelling_the_progress_cancels_the_run(shared_client: EditorClient) -> None:
    client = shared_client
    client.applied.clear()
    started = await client.command(
        "codeact.run", {"task": "t", "model": QUOTE, "approval": "review"}
    )
    await client.run_until(started["runId"], {"awaiting_approval"})
    prefix = f"codeact-run-{started['runId']}-"
    await client.until(lambda: client.progress_for(prefix), "the run's progress")
    (token,) = [t for t in client.progress_reports if str(t).startswith(prefix)]
    client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    run = await client.run_until(started["runId"], {"cancelled"})
    assert run["status"] == "cancelled"
    assert (await client.command("codeact.cancel", {"runId": started["runId"]}))[
        "status"
    ] == "cancelled"


async def test_failing_tool_shows_on_the_bench_at_the_raising_line(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    model = write_replies(
        client.workspace,
        "failing",
        [code_reply('q = shipping_quote(1.0, "XX")\nprint(q)'), code_reply("final_answer(0.0)")],
    )
    tools_path = client.workspace / "tools.py"
    tools_uri = client.open(tools_path)
    started = await client.command("codeact.run", {"task": "t", "model": model})
    run = await client.run_until(started["runId"], {"finished"})
    assert run["steps"][0]["error"]["type"] == "ValueError"

    raising = 1 + next(
        i for i, line in enumerate(tools_path.read_text().splitlines()) if "no shipping to" in line
    )
    diags = await client.diagnostics_for(tools_uri)
    raised = [d for d in diags if d.code == "raised-in-last-run"]
    assert len(raised) == 1 and raised[0].range.start.line == raising - 1
    assert "no shipping to 'XX'" in raised[0].message
    titles = _titles(await client.lenses(tools_uri))
    assert "used 1× in last run · 1 error" in titles and titles.count("▷ Try") == 5

    doc_uri = client.open(Path(lsp_path(started["trajectoryUri"])))
    traj_diags = await client.diagnostics_for(doc_uri)
    # one diagnostic for the one failure: the call that raised, pointing at the raising line
    assert [str(d.code) for d in traj_diags] == ["tool-error"]
    assert traj_diags[0].severity == lsp.DiagnosticSeverity.Error
    text = client.docs[doc_uri][1].splitlines()
    assert all("shipping_quote" in text[d.range.start.line] for d in traj_diags)


async def test_follow_up_continues_in_the_same_sandbox(shared_client: EditorClient) -> None:
    client = shared_client
    client.applied.clear()
    model = write_replies(
        client.workspace,
        "followup",
        [
            *__import__("json").loads((client.workspace / "replies" / "quote.json").read_text()),
            code_reply("final_answer(total * 2)"),
        ],
    )
    started = await client.command("codeact.run", {"task": "quote", "model": model})
    await client.run_until(started["runId"], {"finished"})
    follow = await client.command(
        "codeact.followUp", {"runId": started["runId"], "task": "and for twice that?"}
    )
    assert follow["runId"] != started["runId"]
    run = await client.run_until(follow["runId"], {"finished"})
    assert run["outputs"] == {"answer": 153.8} and run["parent"] == started["runId"]


async def test_rerun_from_a_step_edited_in_the_trajectory_document(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    _, traj_uri, run = await _finished_quote(client, "rerun_target")
    doc_uri = client.open(Path(lsp_path(traj_uri)))
    client.edit(doc_uri, client.docs[doc_uri][1].replace("units = 3", "units = 1"))
    titles = _titles(await client.lenses(doc_uri))
    assert "↻ Re-run from here (your edit)" in titles
    assert not [t for t in titles if "paused" in t]  # a finished run's file owes nothing
    rerun = await client.command("codeact.rerun", {"runId": run["id"], "step": 2})
    new = await client.run_until(rerun["runId"], {"finished"})
    assert "units = 1" in new["steps"][1]["code"]
    assert new["outputs"] == {"answer": round(23.0 + 4.9 + 1.25 * 0.8, 2)}
    assert new["target"] == run["target"]


async def test_task_suite_lens_and_results(shared_client: EditorClient) -> None:
    client = shared_client
    suite_file = client.workspace / "tasks.toml"
    suite_file.write_text(
        suite_file.read_text()
        + '\n[[task]]\nname = "wrong-expectation"\ntask = "same question"\n'
        + 'model = "scripted:replies/quote.json"\nexpect = 1.0\n'
    )
    tasks_uri = client.open(suite_file)
    lenses = await client.lenses(tasks_uri)
    assert _titles(lenses) == ["▷ Run task", "▷ Run task"]
    assert lenses[1].command is not None
    assert list(lenses[1].command.arguments or []) == [
        {"file": "tasks.toml", "names": ["wrong-expectation"]}
    ]

    result = await client.command("codeact.runTasks", {})
    assert (result["passed"], result["total"]) == (1, 2)
    first, second = _titles(await client.lenses(tasks_uri))
    assert first.startswith("▷ Run task · last ✓") and second.startswith("▷ Run task · last ✗")
    messages = [getattr(r, "message", None) for r in client.progress_for("codeact-tasks-")]
    assert "1/2 runs done · quote-to-germany: passed" in messages and messages[-1] == "done"
    assert messages[-2] == "2/2 runs done · wrong-expectation: failed (expected 1.0, got 76.9)"
    (diag,) = await client.diagnostics_for(tasks_uri)
    header = (
        suite_file.read_text()
        .splitlines()
        .index("[[task]]", 1 + suite_file.read_text().splitlines().index("[[task]]"))
    )
    assert diag.range.start.line == header and "wrong-expectation" in diag.message

    # the lens runs one task
    assert lenses[0].command is not None
    one = await client.command("codeact.runTasks", next(iter(lenses[0].command.arguments or [])))
    assert [r["name"] for r in one["results"]] == ["quote-to-germany"]


async def test_try_tool_and_list_tools(shared_client: EditorClient) -> None:
    client = shared_client
    client.applied.clear()
    ok = await client.command(
        "codeact.tryTool",
        {
            "name": "convert_currency",
            "args": {"amount": 10, "from_currency": "EUR", "to_currency": "EUR"},
        },
    )
    assert ok["result"] == 10.0
    bad = await client.command(
        "codeact.tryTool", {"name": "shipping_quote", "args": {"weight_kg": 1, "country": "XX"}}
    )
    assert bad["error"]["type"] == "ValueError" and bad["error"]["line"]
    tools_uri = client.open(client.workspace / "tools.py")
    tried = [d for d in await client.diagnostics_for(tools_uri) if d.code == "raised-when-tried"]
    assert [d.range.start.line for d in tried] == [bad["error"]["line"] - 1]
    again = {"name": "shipping_quote", "args": {"weight_kg": 1, "country": "DE"}}
    assert (await client.command("codeact.tryTool", again))["result"] == 6.15
    tried = [d for d in await client.diagnostics_for(tools_uri) if d.code == "raised-when-tried"]
    assert tried == []
    listed = await client.command("codeact.listTools", {})
    assert {t["name"] for t in listed["tools"]} == {
        "convert_currency",
        "shipping_quote",
        "stock_level",
        "reserve",
        "price_of",
        "delivery_estimate",  # from the example's MCP server, next to tools.py
    }
    modules = {t["name"]: t["module"] for t in listed["tools"]}
    assert modules["delivery_estimate"] == "mcp:carrier"
    mcp_try = {"name": "delivery_estimate", "args": ["FR"]}
    assert (await client.command("codeact.tryTool", mcp_try))["result"]["days"] == 3
    with pytest.raises(Exception, match="did you mean 'price_of'"):
        await client.command("codeact.tryTool", {"name": "price_off"})


async def test_accept_into_a_target_that_was_never_saved_creates_it(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    uri = (client.workspace / "not_saved_yet.py").as_uri()
    started = await client.command("codeact.run", {"task": "t", "model": QUOTE, "uri": uri})
    await client.run_until(started["runId"], {"finished"})
    result = await client.command("codeact.accept", {"runId": started["runId"]})
    assert result["applied"] is True
    create, edit = client.applied[0].edit.document_changes or []
    assert isinstance(create, lsp.CreateFile) and create.uri == uri
    assert isinstance(edit, lsp.TextDocumentEdit) and edit.text_document.version is None
