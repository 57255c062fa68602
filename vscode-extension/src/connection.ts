// The language server's lifecycle: pick and probe the interpreter, start the client, restart it
// quietly, offer an install that works when the package is missing, and send commands so that a
// failure carries the server's own message (not "Request workspace/executeCommand failed").

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, ExecuteCommandRequest, LanguageClient, Middleware, ResponseError, State } from 'vscode-languageclient/node';
import { LogChannel } from './log';
import { probeMessage } from './logic';
import { CommandName, Commands, RunSummary } from './protocol';
import { installCommandFor, installSource } from './present';
import { createClient, probe, serverPython } from './server';
import { Prompts } from './ui';

type Json = Record<string, unknown>;

/** A command the server refused or failed: `message` is the server's own sentence. */
export class ServerError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

/** Notifications the server sends besides LSP's own (see docs/protocol.md). */
export interface ServerNotifications {
  'codeact/runState': (params: RunSummary) => void;
}

export class ServerConnection {
  client?: LanguageClient;
  /** Why the server is not running, when a start failed (already shown to the person). */
  failure?: string;
  /** Every command this window sent to the server, in order (the tests check there is no polling). */
  readonly sent: string[] = [];
  /** The install command last offered (the tests run it). */
  lastInstallCommand?: string;

  private starting?: Promise<void>;
  private lifecycle: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly started = new vscode.EventEmitter<void>();
  /** Fires each time a server has started and answered `initialize`. */
  readonly onStarted = this.started.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: LogChannel,
    private readonly prompts: () => Prompts,
    private readonly middleware: Middleware,
    private readonly notifications: ServerNotifications,
  ) {
    context.subscriptions.push(this.started);
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  ready(): Promise<void> {
    if (this.running) {
      return Promise.resolve();
    }
    if (!this.starting) {
      this.starting = this.start().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async start(): Promise<void> {
    const choice = serverPython();
    const cwd = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
    this.log.appendLine(`[client] starting ${choice.python} -m codeact_lsp (interpreter from ${choice.source})`);
    const outcome = await probe(choice.python, cwd);
    if (!outcome.ok) {
      const install = outcome.reason === 'no-package' ? installCommandFor(choice.python, this.installSource()) : undefined;
      const message = probeMessage(outcome, choice, install);
      this.failure = message;
      this.log.appendLine(`[client] ${message}`);
      this.started.fire(); // the status bar shows the failure
      void this.offerFix(message, install);
      throw new Error(message);
    }
    this.failure = undefined;
    const client = createClient(choice.python, this.log, this.middleware);
    for (const [method, handler] of Object.entries(this.notifications)) {
      client.onNotification(method, handler);
    }
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      this.client = undefined;
      this.failure = `CodeAct: the server did not start: ${(e as Error).message}. See the CodeAct output channel.`;
      this.started.fire();
      throw e;
    }
    this.started.fire();
  }

  /** The bundled wheel (in a VSIX) or the source checkout this extension runs from. */
  private installSource(): string | undefined {
    const ext = this.context.extensionPath;
    let wheels: string[] = [];
    try {
      wheels = fs.readdirSync(path.join(ext, 'bundled')).map((f) => path.join(ext, 'bundled', f));
    } catch {
      // no bundled folder: a development checkout
    }
    const repo = path.dirname(ext);
    let checkout: string | undefined;
    try {
      checkout = /^name\s*=\s*"codeact-lsp"/m.test(fs.readFileSync(path.join(repo, 'pyproject.toml'), 'utf8')) ? repo : undefined;
    } catch {
      checkout = undefined;
    }
    return installSource(wheels, checkout);
  }

  private async offerFix(message: string, command: string | undefined): Promise<void> {
    this.lastInstallCommand = command;
    const buttons = command ? ['Install', 'Copy Command', 'Open Settings'] : ['Open Settings'];
    const choice = await this.prompts().notify('error', message, ...buttons);
    if (choice === 'Install' && command) {
      const code = await this.runInstall(command);
      if (code === 0) {
        await this.restart();
      } else {
        void this.prompts().notify('error', `CodeAct: the install ended with exit code ${code}; see the "CodeAct: install server" terminal.`);
      }
    } else if (choice === 'Copy Command' && command) {
      await vscode.env.clipboard.writeText(command);
    } else if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'codeact.server.python');
    }
  }

  /** Run the install as a task the person can watch in a terminal; resolves with its exit code. */
  private async runInstall(command: string): Promise<number | undefined> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const task = new vscode.Task({ type: 'shell', codeact: 'install' }, folder ?? vscode.TaskScope.Workspace, 'install server', 'CodeAct', new vscode.ShellExecution(command));
    task.presentationOptions = { reveal: vscode.TaskRevealKind.Always, panel: vscode.TaskPanelKind.Dedicated };
    const execution = await vscode.tasks.executeTask(task);
    return new Promise((resolve) => {
      const sub = vscode.tasks.onDidEndTaskProcess((e) => {
        if (e.execution === execution) {
          sub.dispose();
          resolve(e.exitCode);
        }
      });
    });
  }

  /** Restarts run one after another, each after any start in progress has settled. */
  restart(): Promise<void> {
    const next = this.lifecycle.catch(() => undefined).then(() => this.restartNow());
    this.lifecycle = next;
    return next;
  }

  private async restartNow(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const old = this.client;
    this.client = undefined;
    this.failure = undefined;
    if (old) {
      await this.stopQuietly(old);
    }
    await this.ready();
    void vscode.window.setStatusBarMessage('$(check) CodeAct server restarted', 3000);
  }

  /** Stop a client without the "connection closed" errors a deliberate stop would log. */
  private async stopQuietly(client: LanguageClient): Promise<void> {
    this.stopping = true;
    try {
      await client.stop(5000);
    } catch (e) {
      this.log.appendLine(`[client] the old server did not stop cleanly: ${(e as Error).message}`);
    } finally {
      this.stopping = false;
      await client.dispose().catch(() => undefined);
    }
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  async dispose(): Promise<void> {
    if (this.client) {
      await this.stopQuietly(this.client);
    }
  }

  onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration('codeact')) {
      return;
    }
    if (e.affectsConfiguration('codeact.server')) {
      void this.restart().catch(() => undefined);
    } else if (this.running && this.client) {
      // settings: null = "pull them again" (workspace/configuration), which the server answers to
      void this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
    }
  }

  has(command: string): boolean {
    const provider = this.client?.initializeResult?.capabilities.executeCommandProvider;
    return provider?.commands.includes(command) ?? false;
  }

  /** A `codeact.*` command with its argument and reply typed by protocol.ts (generated from the
   * server's models); undefined only when the server answered nothing. */
  async call<C extends CommandName>(command: C, arg: Commands[C]['args']): Promise<Commands[C]['reply'] | undefined> {
    return (await this.request(command, arg as Json)) as Commands[C]['reply'] | undefined;
  }

  /** `workspace/executeCommand` with the server's error message intact (as a ServerError). For a
   * command named at run time (forwarded by the middleware); a known one goes through `call`. */
  async request(command: string, arg: Json = {}): Promise<unknown> {
    await this.ready();
    const client = this.client;
    if (!client) {
      throw new Error(this.failure ?? 'CodeAct: the server is not running');
    }
    this.sent.push(command);
    try {
      return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] });
    } catch (e) {
      if (e instanceof ResponseError) {
        throw new ServerError(e.message, command, e.code);
      }
      throw e;
    }
  }
}
