"""The client's TypeScript copy of the command contract is the one the server's models print."""

from __future__ import annotations

from pathlib import Path

from codeact_lsp.lsp.protocol_ts import typescript

PROTOCOL = Path(__file__).resolve().parents[2] / "vscode-extension" / "src" / "protocol.ts"


def test_protocol_ts_is_generated_from_the_current_models() -> None:
    assert PROTOCOL.read_text(encoding="utf-8") == typescript(), (
        "vscode-extension/src/protocol.ts is stale: regenerate it with "
        "`python -m codeact_lsp.lsp.protocol_ts > vscode-extension/src/protocol.ts`"
    )


def test_every_command_appears_with_its_argument_and_reply_types() -> None:
    text = typescript()
    assert '"codeact.run": { args: RunArgs; reply: RunStarted };' in text
    assert '"codeact.getRun": { args: RunIdArgs; reply: Trajectory };' in text
    assert "export interface Trajectory {" in text and "  relation?:" in text
