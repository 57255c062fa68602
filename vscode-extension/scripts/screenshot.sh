#!/usr/bin/env bash
# usage: scripts/screenshot.sh WORKSPACE_DIR OUT.png
# Opens WORKSPACE_DIR in a private code-server with this extension loaded, runs "CodeAct: Open Last
# Run" from the command palette, waits for the code lenses, opens the Problems panel and saves what
# a person would see. (Like ../shared/e2e-vscode/screenshot.sh, whose Ctrl+P file opening does not
# find files here in time; this one goes through the palette and waits for what it needs.)
set -euo pipefail
EXT=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$EXT/.." && pwd)
E2E=${E2E_VSCODE_DIR:-$REPO/../shared/e2e-vscode}
"$E2E/setup.sh"
HOME_DIR=${E2E_VSCODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/e2e-vscode}
WS=$(readlink -f "$1"); OUTPNG=$(readlink -f "$2")
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
TMP=$(mktemp -d); mkdir -p "$TMP/ud/User" "$TMP/ext"
cat > "$TMP/ud/User/settings.json" <<'JSON'
{"workbench.startupEditor": "none", "files.hotExit": "off", "telemetry.telemetryLevel": "off",
 "update.mode": "none", "security.workspace.trust.enabled": false, "workbench.tips.enabled": false,
 "extensions.autoCheckUpdates": false, "extensions.autoUpdate": false, "window.commandCenter": false,
 "workbench.colorTheme": "Default Dark Modern", "editor.minimap.enabled": false,
 "codeact.model": "scripted:replies/screenshot.json", "codeact.approval": "review"}
JSON
setsid "$HOME_DIR/node_modules/.bin/code-server" --auth none --bind-addr "127.0.0.1:$PORT" \
  --user-data-dir "$TMP/ud" --extensions-dir "$TMP/ext" --disable-telemetry --disable-update-check \
  --disable-workspace-trust --disable-getting-started-override --ignore-last-opened \
  >"$TMP/code-server.log" 2>&1 &
CS_PID=$!
cleanup() { kill -- -"$CS_PID" 2>/dev/null || true; wait "$CS_PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
SHOT=${SHOT:-} PORT=$PORT EXT_DEV=$EXT WS=$WS OUTPNG=$OUTPNG NODE_PATH="$HOME_DIR/node_modules" node "$EXT/scripts/screenshot-driver.js"
