#!/usr/bin/env bash
# Quickstart, command 2: install everything and run every check: lint, format, types, the Python
# tests (real LSP over stdio, real sandboxes), the extension's unit tests and its end-to-end tests
# in a real VS Code (code-server + headless Chromium, see ../shared/e2e-vscode).
set -euo pipefail
source "$(dirname "$0")/setup-env.sh" dev
cd "$ROOT"

if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "==> installing bubblewrap (sandbox backend under test)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
fi

# the reference MCP servers the MCP tests run with node (pinned in tests/fixtures/mcp)
mcp_fixtures="$ROOT/tests/fixtures/mcp"
if [ ! -f "$mcp_fixtures/node_modules/.package-lock.json" ] \
   || [ "$mcp_fixtures/package-lock.json" -nt "$mcp_fixtures/node_modules/.package-lock.json" ]; then
  echo "==> installing the MCP reference servers (npm ci in tests/fixtures/mcp)"
  (cd "$mcp_fixtures" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "==> ruff check";        "$ROOT/.venv/bin/ruff" check .
echo "==> ruff format";       "$ROOT/.venv/bin/ruff" format --check .
echo "==> mypy (strict)";     "$ROOT/.venv/bin/mypy"
echo "==> pytest"
set +e
"$VENV_PY" -m pytest -q -p no:cacheprovider --ignore=tests/smoke "$@"
code=$?
set -e
if [ "$code" = 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi
[ "$code" = 0 ] || exit "$code"

# A real (tiny) model in the loop: SmolLM2-135M on a prebuilt llama.cpp, both from the registries
# (scripts/smoke-setup.sh). Run on its own, after the rest: llama.cpp collapses when it competes
# for the cores. CODEACT_SMOKE=0 skips it on a developer machine, never in CI.
if [ "${CODEACT_SMOKE:-1}" = 0 ] && [ -z "${CI:-}" ]; then
  echo "==> real-model smoke tier: skipped (CODEACT_SMOKE=0)"
else
  echo "==> real-model smoke tier (SmolLM2-135M on llama.cpp, tests/smoke)"
  bash "$ROOT/scripts/smoke-setup.sh" >/dev/null
  "$VENV_PY" -m pytest -q -p no:cacheprovider tests/smoke
fi

if [ -f "$ROOT/vscode-extension/package.json" ]; then
  echo "==> VS Code extension"
  cd "$ROOT/vscode-extension"
  npm ci --no-audit --no-fund
  npm run lint
  npm run build
  npm run test:unit
  CODEACT_TEST_PYTHON="$VENV_PY" npm run test:e2e
fi
echo "==> all checks passed"
