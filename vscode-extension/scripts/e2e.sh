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
# The wheel a VSIX bundles (npm run package builds it the same way): the install the extension
# offers for a missing server installs it, and one test runs that offer in a fresh venv.
rm -rf "$EXT/bundled" && mkdir -p "$EXT/bundled"
"$PY" -m pip wheel -q --no-deps -w "$EXT/bundled" "$REPO" >/dev/null
# A fresh venv without codeact-lsp whose dependencies are already there (symlinked from $PY's
# site-packages, so the test's pip install needs no network and takes seconds).
BASE=$("$PY" -c 'import sys; print(sys._base_executable)')
"$BASE" -m venv "$TMP/fresh"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
FRESH_SITE=$("$TMP/fresh/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$TMP/deps"
for entry in "$SITE"/*; do
  case "$(basename "$entry")" in codeact_lsp*|__editable__*|_virtualenv*|pip|pip-*|setuptools|setuptools-*|distutils-precedence.pth|*.pth) continue ;; esac
  ln -s "$entry" "$TMP/deps/"
done
echo "$TMP/deps" > "$FRESH_SITE/_e2e_deps.pth"
export CODEACT_E2E_FRESH_PYTHON="$TMP/fresh/bin/python"
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
  # the Runs view with a run in progress (review mode: it waits for "Run step")
  RUNS_OUT="$(dirname "$OUT")/screenshot-runs.png"
  SHOT=runs CODEACT_PYTHON="$PY" bash "$EXT/scripts/screenshot.sh" "$WS" "$RUNS_OUT"
  echo "screenshot: $RUNS_OUT"
else
  bash "$E2E/run-extension-tests.sh" "$EXT" "$WS" "$EXT/out/test/e2e/index"
fi
