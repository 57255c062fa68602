"""One version: `codeact_lsp.__version__`; the package metadata and the extension agree with it."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import codeact_lsp

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_metadata_reads_the_version_from_the_code() -> None:
    assert importlib.metadata.version("codeact-lsp") == codeact_lsp.__version__


def test_the_extension_ships_the_same_version_as_the_server() -> None:
    package = json.loads((ROOT / "vscode-extension" / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == codeact_lsp.__version__, (
        "bump vscode-extension/package.json with codeact_lsp/__init__.py's __version__"
    )
