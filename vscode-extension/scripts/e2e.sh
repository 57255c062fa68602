#!/usr/bin/env bash
# End-to-end tests in a real VS Code (code-server + headless Chromium, ../shared/e2e-vscode): runs
# out/test/e2e (compiled) inside the extension host against a temporary copy of
# examples/quickstart, with the server started from CODEACT_TEST_PYTHON (default: <repo>/.venv).
# Usage: scripts/e2e.sh [screenshot OUT.png]  — the second form runs out/test/screenshot instead and
# saves what the window shows at the end.
set -euo pipefail
EXT=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$EXT/.." && pwd)
E2E=${E2E_VSCODE_DIR:-$REPO/../shared/e2e-vscode}
if [ ! -x "$E2E/run-extension-tests.sh" ]; then
  echo "e2e: $E2E/run-extension-tests.sh not found (the shared/ folder must sit beside the repo, or set E2E_VSCODE_DIR)" >&2
  exit 2
fi
PY=${CODEACT_TEST_PYTHON:-$REPO/.venv/bin/python}
case "$PY" in /*) ;; *) PY="$(pwd)/$PY" ;; esac
if ! "$PY" -c 'import codeact_lsp' 2>/dev/null; then
  echo "e2e: $PY cannot import codeact_lsp; set CODEACT_TEST_PYTHON (e.g. .venv/bin/python after pip install -e .)" >&2
  exit 2
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
WS="$TMP/quickstart"
cp -r "$REPO/examples/quickstart" "$WS"
rm -rf "$WS/.codeact" "$WS/__pycache__"
SETTINGS=$("$PY" -c 'import json,sys; print(json.dumps({"codeact.server.python": sys.argv[1], "codeact.model": "scripted:replies/quote.json", "editor.codeLens": True, "workbench.colorTheme": "Default Dark Modern", "window.commandCenter": False}))' "$PY")
export E2E_SETTINGS="$SETTINGS"
# the whole suite takes ~1 min here; leave room for slow CI machines (the runner's default is 3 min)
export E2E_TIMEOUT_MS=${E2E_TIMEOUT_MS:-600000}
if [ "${1:-}" = screenshot ]; then
  OUT=$(readlink -f "${2:?usage: e2e.sh screenshot OUT.png}")
  bash "$E2E/run-extension-tests.sh" "$EXT" "$WS" "$EXT/out/test/screenshot/index"
  # a fresh window reopening the finished run, as a person would (the server reloads it from disk)
  CODEACT_PYTHON="$PY" bash "$EXT/scripts/screenshot.sh" "$WS" "$OUT"
  echo "screenshot: $OUT"
else
  bash "$E2E/run-extension-tests.sh" "$EXT" "$WS" "$EXT/out/test/e2e/index"
fi
