"""What the client can do, resolved once from its `initialize` capabilities.

Every feature the server uses conditionally is one boolean here, so a handler asks
`state.client.show_document` instead of walking `ClientCapabilities` at use time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp


def _has(node: Any, *path: str) -> bool:
    for part in path:
        node = getattr(node, part, None)
        if node is None:
            return False
    return bool(node)


@dataclass(frozen=True)
class ClientFeatures:
    pull_diagnostics: bool = False  # textDocument/diagnostic: served, not published
    diagnostic_refresh: bool = False  # workspace/diagnostic/refresh
    code_lens_refresh: bool = False  # workspace/codeLens/refresh
    configuration: bool = False  # workspace/configuration (settings are asked for)
    watched_files: bool = False  # dynamic registration of workspace/didChangeWatchedFiles
    show_document: bool = False  # window/showDocument (new runs open)
    work_done_progress: bool = False  # window/workDoneProgress/create
    apply_edit: bool = False  # workspace/applyEdit (Accept)
    change_annotations: bool = False  # edits can ask for confirmation (VS Code: Refactor Preview)

    @classmethod
    def from_capabilities(cls, caps: lsp.ClientCapabilities | None) -> ClientFeatures:
        return cls(
            pull_diagnostics=_has(caps, "text_document", "diagnostic"),
            diagnostic_refresh=_has(caps, "workspace", "diagnostics", "refresh_support"),
            code_lens_refresh=_has(caps, "workspace", "code_lens", "refresh_support"),
            configuration=_has(caps, "workspace", "configuration"),
            watched_files=_has(
                caps, "workspace", "did_change_watched_files", "dynamic_registration"
            ),
            show_document=_has(caps, "window", "show_document", "support"),
            work_done_progress=_has(caps, "window", "work_done_progress"),
            apply_edit=_has(caps, "workspace", "apply_edit"),
            change_annotations=_has(
                caps, "workspace", "workspace_edit", "change_annotation_support"
            ),
        )
