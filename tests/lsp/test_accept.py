"""Accept through the real server: where the function goes, the annotated edit the editor previews,
what is recorded in the run, and what a refusal or a cancelled preview says."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import client_capabilities

from .conftest import EditorClient, lsp_path, start_client, stop_client

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUOTE = "scripted:replies/quote.json"

SHOP = '''"""The shop's own code."""

from tools import price_of


def main() -> None:
    item = price_of("SKU-42")
    print(item)


def report() -> str:
    return "ok"
'''


def _pos(text: str, needle: str, *, end: bool = False) -> dict[str, int]:
    at = text.index(needle) + (len(needle) if end else 0)
    line = text.count("\n", 0, at)
    return {"line": line, "character": at - (text.rfind("\n", 0, at) + 1)}


async def _run(client: EditorClient, uri: str | None, rng: dict[str, Any] | None) -> str:
    arg: dict[str, Any] = {"task": "Quote 3 units to Germany", "model": QUOTE}
    if uri is not None:
        arg |= {"uri": uri, "range": rng}
    started = await client.command("codeact.run", arg)
    await client.run_until(started["runId"], {"finished"})
    return str(started["runId"])


def _top_level_defs(text: str) -> list[str]:
    return [
        s.name
        for s in ast.parse(text).body
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


@dataclass
class Placement:
    id: str
    start: str  # where the run's range starts (text in SHOP)
    end: str | None  # where it ends (None: a cursor)
    replace: bool
    order: list[str]  # top-level functions after Accept
    kept_main_body: bool = True


PLACEMENTS = [
    # the cursor inside main's body: after main, never inside it
    Placement(
        "cursor-in-body", "print(item)", None, False, ["main", "quote_units_germany", "report"]
    ),
    # a selection of main, not chosen to be replaced: after it, main stays
    Placement(
        "selection-kept",
        "def main",
        "    print(item)\n",
        False,
        ["main", "quote_units_germany", "report"],
    ),
    # the same selection, replacing chosen
    Placement(
        "selection-replaced",
        "def main",
        "    print(item)\n",
        True,
        ["quote_units_germany", "report"],
        False,
    ),
    # the cursor on the docstring: below the imports, not above them
    Placement(
        "cursor-at-top", '"""The shop', None, False, ["quote_units_germany", "main", "report"]
    ),
]


@pytest.mark.parametrize("case", PLACEMENTS, ids=[p.id for p in PLACEMENTS])
async def test_accept_places_the_function_at_the_top_level(
    shared_client: EditorClient, case: Placement
) -> None:
    client = shared_client
    path = client.workspace / f"shop_{case.id.replace('-', '_')}.py"
    path.write_text(SHOP)
    uri = client.open(path)
    start = _pos(SHOP, case.start)
    end = _pos(SHOP, case.end, end=True) if case.end else start
    run_id = await _run(client, uri, {"start": start, "end": end})

    preview = await client.command(
        "codeact.acceptPreview", {"runId": run_id, "replace": case.replace}
    )
    assert preview["selection"] is (case.end is not None)
    result = await client.command("codeact.accept", {"runId": run_id, "replace": case.replace})
    assert result["applied"] is True, result
    _, text = client.docs[uri]
    assert text == preview["documentAfter"]
    assert _top_level_defs(text) == case.order, text
    assert ("print(item)" in text) is case.kept_main_body
    # imports merged into the file's own line, each name once
    assert text.count("from tools import") == 1 and text.count("price_of,") <= 1
    assert "from tools import price_of, convert_currency, shipping_quote, stock_level\n" in text
    # the status line and the reveal name the function and where it is
    assert result["message"].startswith(
        f"Accepted: quote_units_germany() inserted into {path.name} at line "
    )
    shown = client.shown_documents[-1]
    assert shown.uri == uri and shown.selection is not None
    lines = text.splitlines()
    assert lines[shown.selection.start.line].startswith("async def quote_units_germany(")
    assert lines[shown.selection.end.line] == "    return total"
    # PEP 8 spacing around the inserted function
    assert "\n\n\nasync def quote_units_germany" in text


async def test_accept_is_one_annotated_edit_and_is_recorded_in_the_run(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    path = client.workspace / "annotated.py"
    path.write_text(SHOP)
    uri = client.open(path)
    run_id = await _run(client, uri, {"start": _pos(SHOP, "return"), "end": _pos(SHOP, "return")})
    result = await client.command("codeact.accept", {"runId": run_id})
    assert result["applied"] is True
    (params,) = client.applied
    edit = params.edit
    (change,) = edit.document_changes or []
    assert isinstance(change, lsp.TextDocumentEdit) and change.text_document.version == 1
    kinds = [e.annotation_id for e in change.edits if isinstance(e, lsp.AnnotatedTextEdit)]
    assert kinds == ["codeact.imports", "codeact.function"]
    assert edit.change_annotations is not None
    assert {k: (a.label, a.needs_confirmation) for k, a in edit.change_annotations.items()} == {
        "codeact.imports": ("Imports for quote_units_germany()", True),
        "codeact.function": ("Insert quote_units_germany()", True),
    }
    # the import hunk only extends the existing line
    assert change.edits[0].new_text == ", convert_currency, shipping_quote, stock_level"

    run = await client.command("codeact.getRun", {"runId": run_id})
    accepted = run["accepted"]
    assert accepted["uri"] == uri and accepted["name"] == "quote_units_germany"
    _, text = client.docs[uri]
    lines = text.splitlines()
    rng = accepted["range"]
    assert lines[rng["start"]["line"]].startswith("async def quote_units_germany(")
    assert accepted["text"].startswith("async def") and accepted["text"] in text
    stored = json.loads((client.workspace / ".codeact" / "runs" / f"{run_id}.json").read_text())
    assert stored["accepted"]["range"] == rng

    again = await client.command("codeact.accept", {"runId": run_id})
    assert again["applied"] is False and "already in annotated.py" in again["reason"]
    assert [c["label"] for c in again["choices"]] == ["Insert at End", "New File"]

    # undone in the editor: Accept is offered again, into the document as it is now
    client.edit(uri, SHOP)
    client.applied.clear()
    redo = await client.command("codeact.accept", {"runId": run_id, "mode": "insertAtEnd"})
    assert redo["applied"] is True
    assert client.docs[uri][1].rstrip().endswith("return total")


async def test_refusal_says_what_changed_in_words(shared_client: EditorClient) -> None:
    client = shared_client
    path = client.workspace / "edited.py"
    path.write_text(SHOP)
    uri = client.open(path)
    run_id = await _run(client, uri, {"start": _pos(SHOP, "return"), "end": _pos(SHOP, "return")})
    client.edit(uri, SHOP.replace('return "ok"', 'return "fine"') + "\nLIMIT = 3\nRETRIES = 2\n")
    refused = await client.command("codeact.accept", {"runId": run_id})
    assert refused["applied"] is False
    reason = refused["reason"]
    assert reason.startswith(
        "edited.py was edited after the run started (3 lines added, 1 line changed)"
    )
    for internal in ("file://", "mode", "newFile", "insertAtEnd", run_id):
        assert internal not in reason
    assert [c["label"] for c in refused["choices"]] == ["Insert at End", "New File", "Show Diff"]


async def test_cancelled_preview_writes_and_records_nothing(shared_client: EditorClient) -> None:
    client = shared_client
    path = client.workspace / "declined.py"
    path.write_text(SHOP)
    uri = client.open(path)
    run_id = await _run(client, uri, {"start": _pos(SHOP, "return"), "end": _pos(SHOP, "return")})
    client.decline_edits = True
    try:
        result = await client.command("codeact.accept", {"runId": run_id})
    finally:
        client.decline_edits = False
    assert result == {
        "applied": False,
        "cancelled": True,
        "reason": "Accept was cancelled in the preview: nothing was written.",
    }
    assert client.docs[uri][1] == SHOP
    run = await client.command("codeact.getRun", {"runId": run_id})
    assert run.get("accepted") is None
    # and Accept can be tried again
    assert (await client.command("codeact.accept", {"runId": run_id}))["applied"] is True


async def test_without_a_target_accept_creates_a_file_named_after_the_function(
    shared_client: EditorClient,
) -> None:
    client = shared_client
    client.applied.clear()
    run_id = await _run(client, None, None)
    result = await client.command("codeact.accept", {"runId": run_id})
    assert result["applied"] is True and result["created"] is True
    new_uri = result["uri"]
    assert new_uri.endswith("/quote_units_germany.py")
    created, filled = client.applied[-1].edit.document_changes or []
    assert isinstance(created, lsp.CreateFile) and created.annotation_id == "codeact.newFile"
    assert isinstance(filled, lsp.TextDocumentEdit)
    _, text = client.docs[new_uri]
    assert (
        text.startswith("from tools import ")
        and "async def quote_units_germany() -> float:" in text
    )
    assert result["message"] == "Accepted: quote_units_germany() created in quote_units_germany.py."
    shown = client.shown_documents[-1]
    assert shown.uri == new_uri and shown.selection is not None and shown.take_focus

    # a second one does not clobber the first
    second = await client.command("codeact.accept", {"runId": await _run(client, None, None)})
    assert second["uri"].endswith("/quote_units_germany_2.py")
    assert Path(lsp_path(new_uri)).parent == client.workspace


async def test_clients_without_annotation_support_get_plain_edits(workspace: Path) -> None:
    caps = client_capabilities("visual-studio-code")
    assert caps.workspace is not None and caps.workspace.workspace_edit is not None
    caps.workspace.workspace_edit.change_annotation_support = None
    client = await start_client(workspace, caps)
    try:
        path = workspace / "plain.py"
        path.write_text(SHOP)
        uri = client.open(path)
        run_id = await _run(
            client, uri, {"start": _pos(SHOP, "return"), "end": _pos(SHOP, "return")}
        )
        assert (await client.command("codeact.accept", {"runId": run_id}))["applied"] is True
        edit = client.applied[-1].edit
        assert edit.change_annotations is None
        (change,) = edit.document_changes or []
        assert isinstance(change, lsp.TextDocumentEdit)
        assert not any(isinstance(e, lsp.AnnotatedTextEdit) for e in change.edits)
        await client.shutdown_session()
    finally:
        await stop_client(client)


async def test_accept_in_script_form_with_a_chosen_name(shared_client: EditorClient) -> None:
    client = shared_client
    run_id = await _run(client, None, None)
    result = await client.command(
        "codeact.accept", {"runId": run_id, "name": "germany_quote", "form": "script"}
    )
    assert result["applied"] is True and result["uri"].endswith("/germany_quote.py")
    _, text = client.docs[result["uri"]]
    assert 'if __name__ == "__main__":\n    print(asyncio.run(germany_quote()))' in text
    assert text.startswith("import asyncio\n\nfrom tools import ")
