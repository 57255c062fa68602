// Waiting for the editor without fixed sleeps: re-check a condition when VS Code reports a change
// (documents, diagnostics, editors) and on a short interval, until it holds or the time is up.
import * as vscode from 'vscode';
import type { CodeActApi } from '../../extension';

export const EXTENSION_ID = 'codeact-lsp.codeact-lsp';

export async function api(): Promise<CodeActApi> {
  const ext = vscode.extensions.getExtension<CodeActApi>(EXTENSION_ID);
  if (!ext) {
    throw new Error(`extension ${EXTENSION_ID} is not loaded`);
  }
  const codeact = await ext.activate();
  await codeact.ready();
  return codeact;
}

export function workspaceRoot(): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    throw new Error('no workspace folder open');
  }
  return folder.uri;
}

/** Evaluate `probe` until `ok(value)`; the last value and `what` go into the timeout error. */
export async function eventually<T>(what: string, probe: () => Thenable<T> | T, ok: (value: T) => boolean, timeoutMs = 60000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let error: unknown;
  for (;;) {
    try {
      last = await probe();
      if (ok(last)) {
        return last;
      }
      error = undefined;
    } catch (e) {
      error = e;
    }
    if (Date.now() > deadline) {
      const shown = error ? String(error) : JSON.stringify(last, null, 1)?.slice(0, 3000);
      throw new Error(`timed out waiting for ${what}; last: ${shown}`);
    }
    await nextChange(250);
  }
}

/** Resolve on the next editor event worth re-checking after, or after `ms`. */
function nextChange(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const subs: vscode.Disposable[] = [];
    const done = (): void => {
      clearTimeout(timer);
      subs.forEach((s) => s.dispose());
      resolve();
    };
    const timer = setTimeout(done, ms);
    subs.push(vscode.languages.onDidChangeDiagnostics(done), vscode.workspace.onDidChangeTextDocument(done), vscode.window.onDidChangeVisibleTextEditors(done));
  });
}

export async function lensTitles(uri: vscode.Uri): Promise<Array<{ line: number; title: string; command: string; args: unknown[] }>> {
  const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri, 100)) ?? [];
  return lenses
    .filter((l) => l.command)
    .map((l) => ({ line: l.range.start.line, title: l.command?.title ?? '', command: l.command?.command ?? '', args: l.command?.arguments ?? [] }));
}

export function lineOf(doc: vscode.TextDocument, needle: string): number {
  for (let i = 0; i < doc.lineCount; i++) {
    if (doc.lineAt(i).text.includes(needle)) {
      return i;
    }
  }
  throw new Error(`"${needle}" not found in ${doc.uri.fsPath}:\n${doc.getText()}`);
}

export async function writeFile(uri: vscode.Uri, text: string): Promise<void> {
  await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
}
