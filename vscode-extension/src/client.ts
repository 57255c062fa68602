// One CodeAct client per window: the parts of env.ts put together, and the API the tests use.

import * as vscode from 'vscode';
import { PREVIEW_SCHEME, PreviewDocuments } from './accept';
import { ServerConnection } from './connection';
import { CodeActApi, Env } from './env';
import { LogChannel } from './log';
import { RunTracker, runIdFromPath } from './logic';
import { commandMiddleware } from './middleware';
import { RunStore } from './runs';
import { RunsView, runItem } from './runs-view';
import { TaskTests } from './tasks-tests';
import { Prompts, defaultPrompts } from './ui';

type Json = Record<string, unknown>;

export class CodeActClient implements Env, CodeActApi, vscode.Disposable {
  prompts: Prompts = defaultPrompts;
  lastDiff?: { left: vscode.Uri; right: vscode.Uri; after: string };
  lastStatus?: string;
  readonly log: LogChannel;
  readonly conn: ServerConnection;
  readonly store: RunStore;
  readonly previews = new PreviewDocuments();
  readonly view: RunsView;
  readonly tasks: TaskTests;

  constructor(readonly context: vscode.ExtensionContext) {
    this.log = new LogChannel(vscode.window.createOutputChannel('CodeAct'));
    this.conn = new ServerConnection(context, this.log, () => this.prompts, commandMiddleware(() => this), {
      'codeact/runState': (params) => this.store.onRunState(params),
    });
    this.store = new RunStore(this.conn, () => this.prompts);
    this.view = new RunsView(this.store);
    this.tasks = new TaskTests(this);
    context.subscriptions.push(
      this.log,
      this.store,
      this.view,
      this.tasks,
      vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, this.previews),
      vscode.workspace.onDidChangeConfiguration((e) => this.conn.onConfigurationChanged(e)),
      vscode.window.onDidChangeActiveTextEditor((e) => this.focusChanged(e)),
      vscode.workspace.onDidOpenTextDocument((doc) => {
        if (doc.languageId === 'python' && !this.conn.client && !this.conn.failure) {
          void this.ready().catch(() => undefined);
        }
      }),
    );
    this.focusChanged(vscode.window.activeTextEditor);
  }

  private focusChanged(editor: vscode.TextEditor | undefined): void {
    const isTrajectory = !!editor && editor.document.uri.scheme === 'file' && !!runIdFromPath(editor.document.uri.fsPath);
    void vscode.commands.executeCommand('setContext', 'codeact.trajectoryFocused', isTrajectory);
    void this.store.syncActiveTrajectory();
  }

  dispose(): Promise<void> {
    return this.conn.dispose();
  }

  // ── CodeActApi ───────────────────────────────────────────────────────────────────────────────

  ready(): Promise<void> {
    return this.conn.ready();
  }

  get runs(): RunTracker {
    return this.store.tracker;
  }

  waitForRun(runId: string, timeoutMs?: number): Promise<string> {
    return this.store.waitForRun(runId, timeoutMs);
  }

  server(command: string, arg: Json = {}): Promise<unknown> {
    return this.conn.request(command, arg);
  }

  get sent(): readonly string[] {
    return this.conn.sent;
  }

  get logLines(): readonly string[] {
    return this.log.tail;
  }

  get statusText(): string {
    return this.store.statusText;
  }

  get installCommand(): string | undefined {
    return this.conn.lastInstallCommand;
  }

  get taskTests(): TaskTests {
    return this.tasks;
  }

  runItems(): vscode.TreeItem[] {
    const now = Date.now() / 1000;
    return this.view.getChildren().map((r) => runItem(r, now));
  }
}
