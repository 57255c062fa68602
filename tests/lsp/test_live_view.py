"""The trajectory file as an editor watches it: every rewrite is visible to a file watcher, and
unsaved edits of the user are never overwritten (no save conflict)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp

from .conftest import EditorClient, code_reply, lsp_path, write_replies

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _titles(lenses: list[lsp.CodeLens]) -> list[str]:
    return [lens.command.title for lens in lenses if lens.command]


async def test_unsaved_edits_pause_the_rewrites_until_saved(shared_client: EditorClient) -> None:
    client = shared_client
    model = write_replies(
        client.workspace,
        "paused",
        [
            code_reply('print(price_of("SKU-42"))'),
            code_reply("x = 2\nprint(x)"),
            code_reply("final_answer(x)"),
        ],
    )
    started = await client.command(
        "codeact.run", {"task": "t", "model": model, "approval": "review"}
    )
    run_id, doc_uri = started["runId"], started["trajectoryUri"]
    await client.run_until(run_id, {"awaiting_approval"}, waiting_step=1)
    path = Path(lsp_path(doc_uri))
    doc_uri = client.open(path)
    client.edit(doc_uri, client.docs[doc_uri][1] + "# a note of mine\n")  # unsaved
    on_disk = path.read_text()

    await client.command("codeact.approve", {"runId": run_id})
    await client.run_until(run_id, {"awaiting_approval"}, waiting_step=2)
    assert path.read_text() == on_disk  # not touched while the user has unsaved edits
    titles = _titles(await client.lenses(doc_uri))
    assert any(t.startswith("⏸ live view paused") and "1 newer step" in t for t in titles), titles
    assert any(t.startswith("⏸ waiting for you") for t in titles)  # the run's live status
    # Lenses still sit on the user's text: step 1's lens on its marker line.
    step1 = next(lens for lens in await client.lenses(doc_uri) if "step 1" in _title(lens))
    assert client.docs[doc_uri][1].splitlines()[step1.range.start.line].startswith("# ━━ step 1")

    client.save(doc_uri)  # the user's text is the file now; the server resumes
    await client.command("codeact.getRun", {"runId": run_id})
    text = path.read_text()
    assert "# ━━ step 2" in text and "# a note of mine" in text  # step 1 ran with it
    client.reload(doc_uri)
    assert not any("paused" in t for t in _titles(await client.lenses(doc_uri)))

    # Edits, then the editor closes the document without saving: the view resumes too.
    client.edit(doc_uri, client.docs[doc_uri][1].replace("x = 2", "x = 3"))
    await client.command("codeact.approve", {"runId": run_id, "code": "x = 2\nprint(x)\n"})
    await client.run_until(run_id, {"awaiting_approval"}, waiting_step=3)
    assert "# ━━ step 3" not in path.read_text()
    client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=doc_uri))
    )
    await client.command("codeact.approve", {"runId": run_id})
    await client.run_until(run_id, {"finished"})
    final = path.read_text()
    assert "# ━━ step 3" in final and "# ━━ answer" in final and "x = 3" not in final


def _title(lens: lsp.CodeLens) -> str:
    return lens.command.title if lens.command else ""


async def test_tool_call_loops_do_not_rewrite_the_document_per_call(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    loop = "for i in range(300):\n    convert_currency(1.0, 'EUR', 'USD')\nprint(i)"
    model = write_replies(
        client.workspace,
        "loops",
        [code_reply(loop), code_reply(loop), code_reply("final_answer(1)")],
    )
    await client.command("codeact.serverStats", {"reset": True})
    started = await client.command("codeact.run", {"task": "t", "model": model})
    await client.run_until(started["runId"], {"finished"})
    await client.until(
        lambda: (
            bool(client.progress_for(f"codeact-run-{started['runId']}-"))
            and isinstance(
                client.progress_for(f"codeact-run-{started['runId']}-")[-1], lsp.WorkDoneProgressEnd
            )
        ),
        "the end of the run",
    )
    stats = await client.command("codeact.serverStats", {})
    assert stats["runEvent"]["count"] >= 600  # every tool call reached the server...
    # ...but the text only changes with the steps' states: a bounded number of renders.
    assert stats["docRender"]["count"] <= 20, stats["docRender"]
    text = Path(lsp_path(started["trajectoryUri"])).read_text()
    assert "# ━━ answer" in text and "#> 299" in text  # the final state, written last
