#!/usr/bin/env bash
# Creates .venv (Python >= 3.11) and installs the project into it; idempotent and quiet.
# Sourced by demo.sh and test.sh so both work on a fresh machine with nothing but the registries.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "codeact-lsp needs Python 3.11+"'
  "$PY" -m venv "$ROOT/.venv"
fi
VENV_PY="$ROOT/.venv/bin/python"
install_extra=${1:-}
stamp="$ROOT/.venv/.codeact-installed${install_extra:+-$install_extra}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing codeact-lsp${install_extra:+ [$install_extra]} into .venv"
  "$VENV_PY" -m pip install -q --disable-pip-version-check -e "$ROOT${install_extra:+[$install_extra]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VENV_PY" -c 'import codeact_lsp' && touch "$stamp"
fi
export VENV_PY ROOT
