// Starting the language server: pick the interpreter, check it can run `codeact_lsp`, then hand
// the process to vscode-languageclient over stdio.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, Middleware, RevealOutputChannelOn, ServerOptions } from 'vscode-languageclient/node';
import { codiconTitle } from './present';
import { PROBE_SCRIPT, PythonChoice, ProbeOutcome, chooseServerPython, interpretProbe, serverSettings } from './logic';

export const CLIENT_ID = 'codeact';

export function serverPython(): PythonChoice {
  const setting = vscode.workspace.getConfiguration('codeact').get<string>('server.python');
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  return chooseServerPython(setting, process.env, folders, (p) => fs.existsSync(p));
}

/** Run the interpreter once with a tiny script: is it there, new enough, with the package? */
export function probe(python: string, cwd: string | undefined): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    execFile(python, ['-c', PROBE_SCRIPT], { cwd, timeout: 30000 }, (error, stdout, stderr) => {
      const spawnError = error && typeof (error as NodeJS.ErrnoException).code === 'string' ? error.message : undefined;
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve(interpretProbe(code, spawnError, `${stdout}${stderr}`));
    });
  });
}

export function createClient(python: string, output: vscode.OutputChannel, middleware: Middleware): LanguageClient {
  const config = vscode.workspace.getConfiguration('codeact');
  const extraArgs = config.get<string[]>('server.extraArgs') ?? [];
  const cwd = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
  const serverOptions: ServerOptions = {
    command: python,
    args: ['-m', 'codeact_lsp', ...extraArgs],
    options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: '1' } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'untitled', language: 'python' },
      // config files and task suites: diagnostics on bad keys, "Run task" lenses
      { scheme: 'file', pattern: '**/*.toml' },
    ],
    // Settings changes are announced with `settings: null` (see extension.ts) and the server pulls
    // them through workspace/configuration, where the middleware below cleans them.
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/{pyproject.toml,codeact.toml,*.py,*.toml}'),
    },
    outputChannel: output,
    traceOutputChannel: output,
    // The client shows run state from `codeact/runState` notifications (Runs view, progress with
    // Cancel, status bar) instead of the server's work-done progress for each run.
    initializationOptions: { runStateNotifications: true },
    // A failed request is shown by the client itself, with the server's message (connection.ts).
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    middleware: {
      ...middleware,
      // the server's lens glyphs are portable Unicode; VS Code draws codicons instead
      provideCodeLenses: async (document, token, next) => {
        const lenses = await next(document, token);
        for (const lens of lenses ?? []) {
          if (lens.command) {
            lens.command.title = codiconTitle(lens.command.title);
          }
        }
        return lenses;
      },
      workspace: {
        ...middleware.workspace,
        // Unset settings (empty strings, nulls) are left out so the workspace file's value applies.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) {
            return result;
          }
          const interpreter = params.items.some((item) => item.section === 'codeact') ? await pythonExtensionInterpreter() : undefined;
          return result.map((r, i) => {
            if (params.items[i]?.section !== 'codeact') {
              return r;
            }
            const settings = serverSettings(r);
            // the interpreter chosen in the Python extension: the tools' fallback (DESIGN §3 `python`)
            return interpreter && settings && typeof settings === 'object' ? { ...settings, interpreter } : settings;
          });
        },
      },
    },
  };
  return new LanguageClient(CLIENT_ID, 'CodeAct', serverOptions, clientOptions);
}

/**
 * The interpreter selected in the Python extension, if it is installed — no hard dependency: the
 * server uses it only when neither `python` nor a workspace venv says which one runs the tools.
 */
async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension('ms-python.python');
  if (!ext) {
    return undefined;
  }
  try {
    type PythonApi = {
      environments?: { getActiveEnvironmentPath?: () => { path?: string } | undefined };
      settings?: { getExecutionDetails?: (resource?: vscode.Uri) => { execCommand?: string[] } | undefined };
    };
    const api = (ext.isActive ? ext.exports : await Promise.race([ext.activate(), new Promise((r) => setTimeout(r, 2000))])) as PythonApi | undefined;
    const fromEnv = api?.environments?.getActiveEnvironmentPath?.()?.path;
    if (fromEnv) {
      return fromEnv;
    }
    return api?.settings?.getExecutionDetails?.(vscode.workspace.workspaceFolders?.[0]?.uri)?.execCommand?.[0];
  } catch {
    return undefined;
  }
}
