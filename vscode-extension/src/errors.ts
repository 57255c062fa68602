// A failed command in front of the user: the server's own sentence, with the button that fixes it
// ("Open pyproject.toml", "Settings") where one exists.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { ErrorAction, errorActions, errorText } from './present';
import { Prompts } from './ui';

/** The workspace's config file: codeact.toml when there is one (it wins), else pyproject.toml. */
export function configFile(): vscode.Uri | undefined {
  const root = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
  if (!root) {
    return undefined;
  }
  for (const name of ['codeact.toml', 'pyproject.toml']) {
    if (fs.existsSync(path.join(root, name))) {
      return vscode.Uri.file(path.join(root, name));
    }
  }
  return vscode.Uri.file(path.join(root, 'pyproject.toml'));
}

/** Show `error` (a ServerError or any other); resolves once the person picked an action, if any. */
export async function surface(error: unknown, prompts: Prompts, showLog: () => void): Promise<void> {
  const raw = error instanceof Error ? error.message : String(error);
  const actions = errorActions(raw);
  const picked = await prompts.notify('error', errorText(raw), ...actions.map((a) => a.title));
  const action = actions.find((a) => a.title === picked);
  if (action) {
    await perform(action, showLog);
  }
}

async function perform(action: ErrorAction, showLog: () => void): Promise<void> {
  switch (action.kind) {
    case 'openConfig': {
      const file = configFile();
      if (file) {
        await vscode.window.showTextDocument(file, { preview: false });
      }
      return;
    }
    case 'settings':
      await vscode.commands.executeCommand('workbench.action.openSettings', action.query);
      return;
    case 'showLog':
      showLog();
      return;
  }
}
