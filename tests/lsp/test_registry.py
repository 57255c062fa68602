"""Command registration and client features: checked without a server."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp
from pydantic import BaseModel

from codeact_lsp.lsp.args import RunIdArgs
from codeact_lsp.lsp.client import ClientFeatures
from codeact_lsp.lsp.commands import NAMES
from codeact_lsp.lsp.commands.registry import command, load


def test_every_advertised_command_has_one_handler_with_an_argument_model() -> None:
    handlers = load()
    assert sorted(handlers) == sorted(NAMES)
    for name, handler in handlers.items():
        assert handler.name == name
        assert issubclass(handler.args, BaseModel)
        assert issubclass(handler.reply, BaseModel)


def _untyped(state: Any, raw: list[Any]) -> None:
    return None


def _typed(state: Any, args: RunIdArgs) -> RunIdArgs:
    return args


def test_a_handler_must_declare_its_argument_model_and_names_are_unique() -> None:
    load()  # the real handlers first: the duplicate below must not take their place
    with pytest.raises(TypeError, match="pydantic model"):
        command("codeact.test.untyped")(_untyped)
    with pytest.raises(RuntimeError, match="twice"):
        command("codeact.getRun")(_typed)
    assert "codeact.test.untyped" not in load()


@pytest.mark.parametrize(
    ("caps", "feature"),
    [
        (
            lsp.ClientCapabilities(
                text_document=lsp.TextDocumentClientCapabilities(
                    diagnostic=lsp.DiagnosticClientCapabilities()
                )
            ),
            "pull_diagnostics",
        ),
        (
            lsp.ClientCapabilities(
                workspace=lsp.WorkspaceClientCapabilities(
                    code_lens=lsp.CodeLensWorkspaceClientCapabilities(refresh_support=True)
                )
            ),
            "code_lens_refresh",
        ),
        (
            lsp.ClientCapabilities(
                window=lsp.WindowClientCapabilities(
                    show_document=lsp.ShowDocumentClientCapabilities(support=True)
                )
            ),
            "show_document",
        ),
        (
            lsp.ClientCapabilities(window=lsp.WindowClientCapabilities(work_done_progress=True)),
            "work_done_progress",
        ),
        (
            lsp.ClientCapabilities(workspace=lsp.WorkspaceClientCapabilities(apply_edit=True)),
            "apply_edit",
        ),
        (
            lsp.ClientCapabilities(
                workspace=lsp.WorkspaceClientCapabilities(
                    did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(
                        dynamic_registration=True
                    )
                )
            ),
            "watched_files",
        ),
    ],
)
def test_client_features_are_read_from_the_capabilities_once(
    caps: lsp.ClientCapabilities, feature: str
) -> None:
    features = ClientFeatures.from_capabilities(caps)
    on = {name for name, value in vars(features).items() if value}
    assert on == {feature}
    assert not any(vars(ClientFeatures.from_capabilities(None)).values())
