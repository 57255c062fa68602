"""Drive the real server over stdio as an editor would (pytest-lsp), on a copy of the quickstart.

The test client plays the editor's part: it keeps open documents with versions, applies the
`workspace/applyEdit` requests it receives (refusing a stale version, like VS Code) and tells the
server about the change, and counts `workspace/codeLens/refresh`. The model is the scripted
stand-in: each test writes its replies into the workspace copy.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"
TERMINAL = {"finished", "failed", "cancelled", "max_iters"}
WAIT_S = 60.0


class EditorClient(LanguageClient):
    """pytest-lsp's client plus the editor behaviour the server relies on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.docs: dict[str, tuple[int, str]] = {}
        self.applied: list[lsp.ApplyWorkspaceEditParams] = []
        self.lens_refreshes = 0
        self.registrations: list[lsp.Registration] = []
        self.decline_edits = False  # the user cancels the editor's preview of an edit
        self.workspace: Path = Path()

    # -- documents ----------------------------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        body = path.read_text(encoding="utf-8") if text is None else text
        self.docs[uri] = (1, body)
        self.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=body
                )
            )
        )
        return uri

    def edit(self, uri: str, text: str) -> int:
        version = self.docs[uri][0] + 1
        self.docs[uri] = (version, text)
        self.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        return version

    def save(self, uri: str) -> None:
        """Save an open document as an editor does: write the file, then didSave."""
        Path(lsp_path(uri)).write_text(self.docs[uri][1], encoding="utf-8")
        self.text_document_did_save(
            lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )

    def reload(self, uri: str) -> None:
        """The editor noticed the file changed on disk and reloads the (unmodified) document."""
        self.edit(uri, Path(lsp_path(uri)).read_text(encoding="utf-8"))

    def _apply(self, edit: lsp.WorkspaceEdit) -> str | None:
        for change in edit.document_changes or []:
            if isinstance(change, lsp.CreateFile):
                path = Path(lsp_path(change.uri))
                if path.exists():
                    return f"{change.uri} exists"
                path.write_text("", encoding="utf-8")  # as VS Code does: on disk, then edited
                self.docs[change.uri] = (0, "")
                continue
            assert isinstance(change, lsp.TextDocumentEdit)
            uri = change.text_document.uri
            version, text = self.docs.get(uri, (0, ""))
            if uri not in self.docs:
                text = Path(lsp_path(uri)).read_text(encoding="utf-8")
            want = change.text_document.version
            if want is not None and want != version:
                return f"{uri} is at version {version}, the edit expects {want}"
            for e in sorted(
                change.edits,
                key=lambda e: (e.range.start.line, e.range.start.character),
                reverse=True,
            ):
                assert isinstance(e, lsp.TextEdit | lsp.AnnotatedTextEdit)
                text = splice(text, e.range, e.new_text)
            if uri in self.docs and version > 0:
                self.edit(uri, text)  # an open document: the editor tells the server
            else:
                self.docs[uri] = (1, text)  # a new or unopened file
        return None

    # -- commands -----------------------------------------------------------------------------

    async def command(self, name: str, arg: Any = None, *, raw: list[Any] | None = None) -> Any:
        arguments = raw if raw is not None else ([arg] if arg is not None else [])
        result = await self.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=name, arguments=arguments)
        )
        return plain(result)

    async def run_until(
        self, run_id: str, statuses: set[str], waiting_step: int | None = None
    ) -> dict[str, Any]:
        """Poll codeact.getRun until the run reaches one of `statuses` (bounded); with
        `waiting_step`, until that step is the one waiting for approval."""
        deadline = time.monotonic() + WAIT_S
        while True:
            run = await self.command("codeact.getRun", {"runId": run_id})
            steps = run["steps"]
            waiting = waiting_step is None or (
                len(steps) >= waiting_step
                and steps[waiting_step - 1]["status"] == "awaiting_approval"
            )
            if run["status"] in statuses and waiting:
                return dict(run)
            if run["status"] in TERMINAL or time.monotonic() > deadline:
                raise AssertionError(
                    f"run {run_id} is {run['status']}, wanted {statuses}: {run.get('error')}"
                )
            await asyncio.sleep(0.02)

    async def until(self, predicate: Any, what: str) -> None:
        """Wait (bounded) for something the server sends on its own, e.g. a progress end."""
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    def progress_for(self, prefix: str) -> list[Any]:
        return [
            r for t, rs in self.progress_reports.items() if str(t).startswith(prefix) for r in rs
        ]

    async def lenses(self, uri: str) -> list[lsp.CodeLens]:
        got = await self.text_document_code_lens_async(
            lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )
        return list(got or [])

    async def diagnostics_for(self, uri: str) -> list[lsp.Diagnostic]:
        report = await self.text_document_diagnostic_async(
            lsp.DocumentDiagnosticParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )
        return list(getattr(report, "items", []) or [])


def lsp_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def offset(text: str, pos: lsp.Position) -> int:
    lines = text.splitlines(keepends=True)
    if pos.line >= len(lines):
        return len(text)
    return sum(len(x) for x in lines[: pos.line]) + min(pos.character, len(lines[pos.line]))


def splice(text: str, rng: lsp.Range, new: str) -> str:
    return text[: offset(text, rng.start)] + new + text[offset(text, rng.end) :]


def plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return default_converter().unstructure(value)  # type: ignore[no-untyped-call]


def make_client() -> EditorClient:
    client = EditorClient(converter_factory=default_converter)
    register_lsp_features(client)

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)  # type: ignore[untyped-decorator]
    def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        client.applied.append(params)
        if client.decline_edits:
            return lsp.ApplyWorkspaceEditResult(applied=False)
        problem = client._apply(params.edit)
        if problem:
            return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason=problem)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)  # type: ignore[untyped-decorator]
    def register(params: lsp.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)

    @client.feature(lsp.WORKSPACE_CODE_LENS_REFRESH)  # type: ignore[untyped-decorator]
    def lens_refresh(params: None) -> None:
        client.lens_refreshes += 1

    return client


# The servers' cache of `initialize` answers (fastinit) stays out of the user's home.
INIT_CACHE = Path(tempfile.gettempdir()) / "codeact-lsp-test-init-cache"
SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "codeact_lsp"],
    client_factory=make_client,
    server_env={**os.environ, "PYTHONUNBUFFERED": "1", "CODEACT_LSP_CACHE_DIR": str(INIT_CACHE)},
)


def copy_quickstart(into: Path) -> Path:
    ws = into / "quickstart"
    shutil.copytree(QUICKSTART, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    return ws


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return copy_quickstart(tmp_path)


@pytest.fixture(scope="module")
def shared_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_quickstart(tmp_path_factory.mktemp("shared"))


def write_replies(ws: Path, name: str, replies: list[str]) -> str:
    path = ws / "replies" / f"{name}.json"
    path.write_text(json.dumps(replies), encoding="utf-8")
    return f"scripted:replies/{name}.json"


def code_reply(code: str, note: str = "Next step.") -> str:
    return f"{note}\n\n```python\n{code.strip()}\n```"


def initialize_params(
    ws: Path | None, caps: lsp.ClientCapabilities | None = None
) -> lsp.InitializeParams:
    return lsp.InitializeParams(
        capabilities=caps or client_capabilities("visual-studio-code"),
        root_uri=ws.as_uri() if ws else None,
        workspace_folders=[lsp.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)] if ws else None,
    )


async def start_client(
    ws: Path | None,
    caps: lsp.ClientCapabilities | None = None,
    env: dict[str, str] | None = None,
) -> EditorClient:
    """A server outside the fixtures (for tests that start more than one); stop it yourself."""
    client = SERVER.client_factory()
    assert isinstance(client, EditorClient)
    await client.start_io(*SERVER.server_command, env={**(SERVER.server_env or {}), **(env or {})})
    if ws is not None:
        client.workspace = ws
    await client.initialize_session(initialize_params(ws, caps))
    return client


async def stop_client(client: EditorClient) -> None:
    """Stop a `start_client` server even when the test failed before `shutdown`: the editor goes
    away (stdin closed, which ends the server), then pygls' own stop; a server that does not
    end within 15 s is killed, so a failure is reported instead of hanging the suite."""
    proc = client._server
    if proc is not None and proc.returncode is None:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
    await client.stop()  # type: ignore[no-untyped-call]


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]
async def client(lsp_client: EditorClient, workspace: Path) -> AsyncIterator[None]:
    """A server of its own, for tests that change settings or need a pristine server."""
    lsp_client.workspace = workspace
    lsp_client.set_configuration({"maxIters": 6}, section="codeact")
    await lsp_client.initialize_session(initialize_params(workspace))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, scope="module")  # type: ignore[untyped-decorator]
async def shared_client(lsp_client: EditorClient, shared_workspace: Path) -> AsyncIterator[None]:
    """One server for a module's flows (spawning one per test would dominate the suite's time);
    every test uses its own runs and target files, so they do not depend on each other."""
    lsp_client.workspace = shared_workspace
    lsp_client.set_configuration({"maxIters": 6}, section="codeact")
    await lsp_client.initialize_session(initialize_params(shared_workspace))
    yield
    await lsp_client.shutdown_session()
