// The questions the client asks a person. They go through this object so the end-to-end tests can
// answer them (a modal dialog cannot be clicked from inside the extension host) while the rest of
// each flow — the diff, the server calls, the edit — runs for real.

import * as vscode from 'vscode';

export interface Prompts {
  /** An input box; undefined when the person pressed Escape. */
  input(options: vscode.InputBoxOptions): Promise<string | undefined>;
  /** A modal question; the chosen button's title, or undefined. */
  confirm(message: string, detail: string, ...buttons: string[]): Promise<string | undefined>;
  /** A non-modal notification with buttons. */
  notify(kind: 'info' | 'warning' | 'error', message: string, ...buttons: string[]): Promise<string | undefined>;
  /** A quick pick. */
  pick<T extends vscode.QuickPickItem>(items: T[], options: vscode.QuickPickOptions): Promise<T | undefined>;
  /** A progress notification (cancellable when the options say so). */
  progress<T>(
    options: vscode.ProgressOptions,
    task: (progress: vscode.Progress<{ message?: string; increment?: number }>, token: vscode.CancellationToken) => Thenable<T>,
  ): Thenable<T>;
}

export const defaultPrompts: Prompts = {
  input: async (options) => vscode.window.showInputBox({ ignoreFocusOut: true, ...options }),
  confirm: async (message, detail, ...buttons) => vscode.window.showInformationMessage(message, { modal: true, detail }, ...buttons),
  notify: async (kind, message, ...buttons) => {
    const show =
      kind === 'error' ? vscode.window.showErrorMessage : kind === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    return show(message, ...buttons);
  },
  pick: async (items, options) => vscode.window.showQuickPick(items, { ignoreFocusOut: true, ...options }),
  progress: (options, task) => vscode.window.withProgress(options, task),
};
