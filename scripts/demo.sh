#!/usr/bin/env bash
# Quickstart, command 1: install, then drive the language server over stdio exactly as an editor
# would, on a copy of examples/quickstart, and print what the editor shows.
# With CODEACT_MODEL (+ the provider's API key) set, a real model answers; otherwise the scripted
# stand-in replays examples/quickstart/replies/ and says so.
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"
exec "$VENV_PY" -m codeact_lsp.demo "$ROOT/examples/quickstart" "$@"
