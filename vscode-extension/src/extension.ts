// The thin client: starts `python -m codeact_lsp`, forwards commands, shows what the server
// returns and pushes. Runs, trajectories, code lenses, diagnostics, edits and run state all come
// from the server; the client asks the person for what they must type, shows a diff before Accept
// writes, and renders the pushed run state (Runs view, progress with Cancel, status bar).
//
//   client.ts      the parts put together, and the API the end-to-end tests use
//   connection.ts  server lifecycle, install offer, requests that keep the server's error message
//   middleware.ts  every codeact.* command on its way to the server (prompts, saves, errors)
//   accept-flow.ts Accept: preview, diff, confirm, apply, alternatives
//   try-tool.ts    Try Tool: arguments and the formatted outcome
//   runs.ts        pushed run state: status bar, progress notifications, context keys
//   runs-view.ts   the Runs view
//   commands.ts    the palette's and the Runs view's commands
//   present.ts     words, codicons and formats (pure, unit-tested)

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { CodeActClient } from './client';
import { registerCommands } from './commands';
import { CodeActApi } from './env';
import { hasCodeactTable } from './logic';

export type { CodeActApi } from './env';

let client: CodeActClient | undefined;

export function activate(context: vscode.ExtensionContext): CodeActApi {
  client = new CodeActClient(context);
  context.subscriptions.push(...registerCommands(client));
  if (workspaceWantsServer()) {
    client.ready().catch(() => undefined); // the failure is already shown with its fix
  }
  return client;
}

export async function deactivate(): Promise<void> {
  await client?.dispose();
  client = undefined;
}

/** Workspaces worth starting the server for at once: a codeact.toml, stored runs, a `[tool.codeact]` table. */
function workspaceWantsServer(): boolean {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') {
      continue;
    }
    const root = folder.uri.fsPath;
    if (fs.existsSync(path.join(root, 'codeact.toml')) || fs.existsSync(path.join(root, '.codeact', 'runs'))) {
      return true;
    }
    try {
      if (hasCodeactTable(fs.readFileSync(path.join(root, 'pyproject.toml'), 'utf8'))) {
        return true;
      }
    } catch {
      // no pyproject.toml
    }
  }
  return vscode.workspace.textDocuments.some((d) => d.languageId === 'python');
}
