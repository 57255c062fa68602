// The thin client: starts `python -m codeact_lsp`, forwards commands, shows what the server returns.
// Runs, trajectories, code lenses, diagnostics, edits and progress all come from the server; this
// file only asks the person for what they must type, shows a diff before Accept writes, and saves
// an edited trajectory before its step runs (the server's live view waits while it is unsaved).

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, ExecuteCommandRequest, LanguageClient, State } from 'vscode-languageclient/node';
import { PREVIEW_SCHEME, PreviewDocuments, acceptRun, planFromPreview, showDiff } from './accept';
import {
  LspRange,
  RunInput,
  RunTracker,
  TERMINAL_STATUSES,
  TrackedRun,
  argsTemplate,
  buildRunArgs,
  describeTaskResults,
  firstArg,
  hasCodeactTable,
  installCommand,
  parseToolArgs,
  probeMessage,
  resolveRunId,
  runIdFromPath,
  statusBarText,
  trajectoriesToSave,
  truncate,
  validateSignature,
  validateTask,
} from './logic';
import { createClient, probe, serverPython } from './server';
import { Prompts, defaultPrompts } from './ui';

type Json = Record<string, unknown>;

/** What `activate` returns: used by the end-to-end tests (and other extensions) to drive the client. */
export interface CodeActApi {
  /** Resolves once the server answered `initialize`; rejects with the reason it could not start. */
  ready(): Promise<void>;
  readonly runs: RunTracker;
  /** Resolves with the run's final status once the server reports a terminal one. */
  waitForRun(runId: string, timeoutMs?: number): Promise<string>;
  /** Replace to answer the client's questions in tests. */
  prompts: Prompts;
  /** The last Accept diff shown (left: target, right: the server's text). */
  lastDiff?: { left: vscode.Uri; right: vscode.Uri; after: string };
  /** The last status line Accept showed. */
  lastStatus?: string;
  /** The server's `workspace/executeCommand`, bypassing the client's prompts. */
  server(command: string, arg?: Json): Promise<unknown>;
}

function pruneUndefined(arg: Json): Json {
  return Object.fromEntries(Object.entries(arg).filter(([, v]) => v !== undefined));
}

const RUN_STARTERS = new Set(['codeact.run', 'codeact.rerun', 'codeact.followUp']);

class Controller implements CodeActApi {
  runs = new RunTracker();
  prompts: Prompts = defaultPrompts;
  lastDiff?: { left: vscode.Uri; right: vscode.Uri; after: string };
  lastStatus?: string;

  private client?: LanguageClient;
  private starting?: Promise<void>;
  private pollTimer?: NodeJS.Timeout;
  private readonly output = vscode.window.createOutputChannel('CodeAct');
  private readonly status = vscode.window.createStatusBarItem('codeact.runs', vscode.StatusBarAlignment.Left, 50);
  private readonly previews = new PreviewDocuments();
  private failure?: string;
  private lifecycle: Promise<void> = Promise.resolve();

  constructor(private readonly context: vscode.ExtensionContext) {
    this.status.name = 'CodeAct runs';
    this.status.command = 'codeact-lsp.showRuns';
    this.renderStatus();
    this.status.show();
    context.subscriptions.push(
      this.output,
      this.status,
      vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, this.previews),
      this.runs.onChange(() => this.onRunsChanged()),
      vscode.window.onDidChangeActiveTextEditor((e) => {
        this.updateFocusContext(e);
        void this.syncActiveTrajectory();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidOpenTextDocument((doc) => {
        if (doc.languageId === 'python' && !this.client && !this.failure) {
          void this.ready().catch(() => undefined);
        }
      }),
    );
    this.updateFocusContext(vscode.window.activeTextEditor);
  }

  /** Why the server is not running, when a start failed (already shown to the person). */
  get failureMessage(): string | undefined {
    return this.failure;
  }

  // ── server lifecycle ────────────────────────────────────────────────────────────────────────

  ready(): Promise<void> {
    if (this.client?.state === State.Running) {
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
    this.output.appendLine(`[client] starting ${choice.python} -m codeact_lsp (interpreter from ${choice.source})`);
    const outcome = await probe(choice.python, cwd);
    if (!outcome.ok) {
      const message = probeMessage(outcome, choice);
      this.failure = message;
      this.output.appendLine(`[client] ${message}`);
      this.renderStatus();
      void this.offerFix(message, outcome.reason === 'no-package' ? installCommand(choice.python) : undefined);
      throw new Error(message);
    }
    this.failure = undefined;
    const client = createClient(choice.python, this.output, {
      executeCommand: (command, args, next) => this.intercept(command, args, (a) => next(command, a)),
    });
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      this.client = undefined;
      this.failure = `CodeAct: the server did not start: ${(e as Error).message}. See the CodeAct output channel.`;
      this.renderStatus();
      throw e;
    }
    this.renderStatus();
  }

  private async offerFix(message: string, command: string | undefined): Promise<void> {
    const buttons = command ? ['Install in Terminal', 'Copy Command', 'Open Settings'] : ['Open Settings'];
    const choice = await this.prompts.notify('error', message, ...buttons);
    if (choice === 'Install in Terminal' && command) {
      const terminal = vscode.window.createTerminal('CodeAct: install server');
      terminal.show();
      terminal.sendText(command);
      const restart = await this.prompts.notify('info', 'When the install has finished, restart the CodeAct server.', 'Restart Server');
      if (restart) {
        await vscode.commands.executeCommand('codeact-lsp.restartServer');
      }
    } else if (choice === 'Copy Command' && command) {
      await vscode.env.clipboard.writeText(command);
    } else if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'codeact.server.python');
    }
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
      await old.stop().catch((e: Error) => this.output.appendLine(`[client] stop: ${e.message}`));
    }
    await this.ready();
    void vscode.window.setStatusBarMessage('CodeAct server restarted', 3000);
  }

  async dispose(): Promise<void> {
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
    }
    await this.client?.stop().catch(() => undefined);
  }

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration('codeact')) {
      return;
    }
    if (e.affectsConfiguration('codeact.server')) {
      void this.restart().catch(() => undefined);
    } else if (this.client?.state === State.Running) {
      // settings: null = "pull them again" (workspace/configuration), which the server answers to
      void this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
    }
  }

  /** The server's `workspace/executeCommand`, without the client's prompts (for polling). */
  async server(command: string, arg: Json = {}): Promise<unknown> {
    await this.ready();
    const client = this.client;
    if (!client) {
      throw new Error(this.failure ?? 'CodeAct: the server is not running');
    }
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] });
  }

  private serverHas(command: string): boolean {
    const provider = this.client?.initializeResult?.capabilities.executeCommandProvider;
    return provider?.commands.includes(command) ?? false;
  }

  // ── the executeCommand middleware: lenses and palette commands both pass here ────────────────

  private async intercept(command: string, args: unknown[], next: (args: unknown[]) => vscode.ProviderResult<unknown>): Promise<unknown> {
    const arg = firstArg(args);
    switch (command) {
      case 'codeact.accept':
        return this.acceptFlow(arg, (a) => Promise.resolve(next([a])));
      case 'codeact.acceptPreview': {
        const preview = await next([arg]);
        await this.showPlan(String(arg.runId ?? ''), preview as Json);
        return preview;
      }
      case 'codeact.showStep': {
        // the step lens: the server's markdown account of the step (output, tool calls, error), beside
        const shown = (await next([arg])) as Json | undefined;
        if (typeof shown?.markdown === 'string') {
          const uri = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: `/${String(arg.runId)}/step-${String(arg.step)}.md` });
          this.previews.set(uri, shown.markdown);
          await vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.Beside, preview: true, preserveFocus: true });
        }
        return shown;
      }
      case 'codeact.followUp':
        if (typeof arg.task !== 'string') {
          const task = await this.prompts.input({
            title: 'CodeAct: Follow up',
            prompt: 'What should the agent do next? It continues in the same sandbox, with the variables of this run.',
            validateInput: validateTask,
          });
          if (task === undefined) {
            return undefined;
          }
          arg.task = task;
        }
        break;
      case 'codeact.reject':
        if (typeof arg.feedback !== 'string') {
          const feedback = await this.prompts.input({
            title: 'CodeAct: Reject step',
            prompt: 'Why? The model reads this and writes a new step (leave empty to reject without a reason).',
          });
          if (feedback === undefined) {
            return undefined;
          }
          if (feedback.trim()) {
            arg.feedback = feedback.trim();
          }
        }
        break;
      case 'codeact.tryTool':
        // The Try lens sends `args: {}`: ask for the values unless the tool takes none.
        if (isEmptyArgs(arg.args) && typeof arg.name === 'string') {
          const typed = await this.askToolArgs(arg.name);
          if (typed === undefined) {
            return undefined;
          }
          arg.args = typed;
        }
        break;
    }
    await this.saveTrajectoryOf(command, arg);
    const result = await next([arg]);
    this.observeResult(command, arg, result);
    if (command === 'codeact.tryTool') {
      this.showToolResult(String(arg.name), result);
    }
    return result;
  }

  /** Save the run's edited trajectory first, so the live view goes on with the step (see logic). */
  private async saveTrajectoryOf(command: string, arg: Json): Promise<void> {
    const open = vscode.workspace.textDocuments.map((doc) => ({
      doc,
      fsPath: doc.uri.scheme === 'file' ? doc.uri.fsPath : undefined,
      isDirty: doc.isDirty,
    }));
    for (const { doc } of trajectoriesToSave(command, arg, open)) {
      if (!(await doc.save())) {
        this.output.appendLine(`[client] could not save ${vscode.workspace.asRelativePath(doc.uri)} before ${command}; the live view stays paused until it is saved`);
      }
    }
  }

  private observeResult(command: string, arg: Json, result: unknown): void {
    if (RUN_STARTERS.has(command)) {
      this.runs.observe(result, typeof arg.task === 'string' ? arg.task : undefined);
      this.schedulePoll(0);
    } else if (result && typeof result === 'object' && typeof arg.runId === 'string' && typeof (result as Json).status === 'string') {
      this.runs.observe({ runId: arg.runId, status: (result as Json).status });
    } else if (command === 'codeact.getRun') {
      this.runs.observe(result);
    }
    if (command === 'codeact.discard' && typeof arg.runId === 'string') {
      this.runs.forget(arg.runId);
      this.onRunsChanged();
    }
  }

  // ── Accept ───────────────────────────────────────────────────────────────────────────────────

  private currentText(uri: string): string | undefined {
    return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri)?.getText();
  }

  /** What the server says Accept would do (`codeact.acceptPreview`), or the run's program. */
  private async preview(runId: string, mode: string | undefined, newFileUri: unknown): Promise<Json> {
    if (this.serverHas('codeact.acceptPreview')) {
      const arg: Json = { runId };
      if (mode) {
        arg.mode = mode;
      }
      if (typeof newFileUri === 'string') {
        arg.newFileUri = newFileUri;
      }
      return ((await this.server('codeact.acceptPreview', arg)) as Json) ?? {};
    }
    // No preview command: show the run's program (from the server) against the target, unchanged.
    const run = (await this.server('codeact.getRun', { runId })) as Json;
    const target = (run?.target ?? {}) as Json;
    return { program: run?.program ?? '', uri: target.uri };
  }

  private async showPlan(runId: string, preview: Json): Promise<void> {
    if (preview?.ok === false) {
      void this.prompts.notify('warning', `CodeAct: Accept would be refused: ${String(preview.reason ?? 'unknown reason')}`);
      return;
    }
    const plan = planFromPreview(runId, preview ?? {}, (uri) => this.currentText(uri));
    if (plan) {
      const sides = await showDiff(this.previews, plan);
      this.lastDiff = { ...sides, after: plan.after };
    }
  }

  /** Accept: the flow lives in `accept.ts`; this wires it to the server and the UI. */
  private async acceptFlow(arg: Json, send: (arg: Json) => Promise<unknown>): Promise<unknown> {
    const settings = vscode.workspace.getConfiguration('codeact');
    const review = settings.get<string>('accept.review', 'preview') === 'diff' ? 'diff' : 'preview';
    return acceptRun(
      {
        prompts: this.prompts,
        previews: this.previews,
        preview: async (a) => {
          const { runId, mode, newFileUri, replace, name, form } = a;
          if (!this.serverHas('codeact.acceptPreview')) {
            return this.preview(String(runId), typeof mode === 'string' ? mode : undefined, newFileUri);
          }
          return ((await this.server('codeact.acceptPreview', pruneUndefined({ runId, mode, newFileUri, replace, name, form }))) as Json) ?? {};
        },
        send: async (a) => (await send(a)) as Json | undefined,
        currentText: (uri) => this.currentText(uri),
        shown: (diff) => (this.lastDiff = diff),
        status: (message) => {
          this.lastStatus = message;
          vscode.window.setStatusBarMessage(message, 10000);
        },
      },
      arg,
      review,
    );
  }

  // ── Try Tool ─────────────────────────────────────────────────────────────────────────────────

  private async toolSchemas(): Promise<Json[]> {
    const listed = (await this.server('codeact.listTools', {})) as Json | Json[] | undefined;
    const tools = Array.isArray(listed) ? listed : Array.isArray(listed?.tools) ? (listed.tools as Json[]) : [];
    return tools.filter((t) => t && typeof t.name === 'string');
  }

  private async askToolArgs(name: string): Promise<Json | unknown[] | undefined> {
    let template = '{}';
    let signature = name;
    try {
      const schema = (await this.toolSchemas()).find((t) => t.name === name);
      if (schema) {
        template = argsTemplate(schema.parameters);
        signature = typeof schema.signature === 'string' ? schema.signature : name;
        if (template === '{}') {
          return {}; // nothing to ask
        }
      }
    } catch {
      // the prompt still works without the template
    }
    const text = await this.prompts.input({
      title: `CodeAct: Try ${name}`,
      prompt: `Arguments as JSON — ${truncate(signature, 120)}`,
      value: template,
      validateInput: (t) => {
        const parsed = parseToolArgs(t);
        return parsed.ok ? undefined : parsed.message;
      },
    });
    if (text === undefined) {
      return undefined;
    }
    const parsed = parseToolArgs(text);
    return parsed.ok ? parsed.value : undefined;
  }

  private showToolResult(name: string, result: unknown): void {
    const r = (result ?? {}) as Json;
    const text = JSON.stringify(r, null, 2);
    this.output.appendLine(`[try ${name}] ${text}`);
    if (r.error !== undefined && r.error !== null) {
      void this.prompts.notify('error', `${name} raised: ${truncate(typeof r.error === 'string' ? r.error : JSON.stringify(r.error), 300)}`, 'Show Output').then((c) => {
        if (c) {
          this.output.show(true);
        }
      });
    } else {
      void this.prompts.notify('info', `${name} → ${truncate(JSON.stringify(r.result ?? r), 300)}`);
    }
  }

  // ── run tracking: status bar and context keys ────────────────────────────────────────────────

  private onRunsChanged(): void {
    this.renderStatus();
    void vscode.commands.executeCommand('setContext', 'codeact.activeRuns', this.runs.active().length > 0);
    if (this.runs.active().length > 0) {
      this.schedulePoll(1000);
    }
  }

  private renderStatus(): void {
    if (this.failure) {
      this.status.text = '$(error) CodeAct';
      this.status.tooltip = this.failure;
      this.status.command = 'codeact-lsp.showLog';
      return;
    }
    const { text, tooltip } = statusBarText(this.runs.active());
    this.status.text = text;
    this.status.tooltip = tooltip;
    this.status.command = 'codeact-lsp.showRuns';
  }

  private updateFocusContext(editor: vscode.TextEditor | undefined): void {
    const isTrajectory = !!editor && editor.document.uri.scheme === 'file' && !!runIdFromPath(editor.document.uri.fsPath);
    void vscode.commands.executeCommand('setContext', 'codeact.trajectoryFocused', isTrajectory);
  }

  /** Ask the server how active runs are doing, while any are (a cheap request, ~1 ms). */
  private schedulePoll(delayMs: number): void {
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
    }
    this.pollTimer = setTimeout(() => void this.poll(), delayMs);
  }

  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    for (const run of this.runs.active()) {
      try {
        const traj = (await this.server('codeact.getRun', { runId: run.runId })) as Json;
        this.runs.observe({ ...traj, runId: run.runId });
      } catch (e) {
        this.output.appendLine(`[client] getRun ${run.runId}: ${(e as Error).message}`);
        this.runs.observe({ runId: run.runId, status: 'failed' });
      }
    }
    await this.syncActiveTrajectory();
    if (this.runs.active().length > 0) {
      this.schedulePoll(1000);
    }
  }

  /**
   * The server rewrites a trajectory file as its run goes. VS Code joins a reload that is requested
   * while another is in flight, so after a quick burst of writes an open trajectory can keep showing
   * an older state. If the (unmodified) trajectory in front of the user differs from the file, reload it.
   */
  private async syncActiveTrajectory(): Promise<void> {
    const doc = vscode.window.activeTextEditor?.document;
    if (!doc || doc.isDirty || doc.uri.scheme !== 'file' || !runIdFromPath(doc.uri.fsPath)) {
      return;
    }
    let disk: string;
    try {
      disk = Buffer.from(await vscode.workspace.fs.readFile(doc.uri)).toString('utf8');
    } catch {
      return; // discarded meanwhile
    }
    if (disk !== doc.getText() && vscode.window.activeTextEditor?.document === doc && !doc.isDirty) {
      this.output.appendLine(`[client] reloading ${vscode.workspace.asRelativePath(doc.uri)}: the editor showed an older state than the file`);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    }
  }

  waitForRun(runId: string, timeoutMs = 120000): Promise<string> {
    return new Promise((resolve, reject) => {
      const done = (run: TrackedRun | undefined): boolean => {
        if (run && TERMINAL_STATUSES.has(run.status)) {
          resolve(run.status);
          return true;
        }
        return false;
      };
      if (done(this.runs.get(runId))) {
        return;
      }
      const timer = setTimeout(() => {
        sub.dispose();
        reject(new Error(`run ${runId} not finished after ${timeoutMs} ms (status ${this.runs.get(runId)?.status})`));
      }, timeoutMs);
      const sub = this.runs.onChange((run) => {
        if (run.runId === runId && done(run)) {
          clearTimeout(timer);
          sub.dispose();
        }
      });
      if (!this.runs.get(runId)) {
        this.runs.observe({ runId, status: 'running' });
      }
      this.schedulePoll(0);
    });
  }

  // ── which run a palette command is about ─────────────────────────────────────────────────────

  async pickRun(arg: unknown, purpose: string, filter: (r: TrackedRun) => boolean = () => true): Promise<string | undefined> {
    const active = vscode.window.activeTextEditor?.document.uri;
    const candidates = this.runs.all().filter(filter);
    const id = resolveRunId(arg, active?.scheme === 'file' ? active.fsPath : undefined, candidates);
    if (id) {
      return id;
    }
    const all = await this.knownRuns();
    const items = all.filter(filter).map((r) => ({ label: truncate(r.task ?? r.runId, 80), description: `${r.status} · ${r.runId}`, runId: r.runId }));
    if (items.length === 0) {
      void this.prompts.notify('info', `CodeAct: no run to ${purpose}. Start one with "CodeAct: Run Task…".`);
      return undefined;
    }
    const picked = await this.prompts.pick(items, { title: `CodeAct: which run to ${purpose}?` });
    return picked?.runId;
  }

  /** Runs of this window, plus those the server lists (older runs of the workspace). */
  async knownRuns(): Promise<TrackedRun[]> {
    if (this.serverHas('codeact.listRuns')) {
      try {
        const listed = (await this.server('codeact.listRuns', {})) as Json | Json[];
        const runs = Array.isArray(listed) ? listed : Array.isArray(listed?.runs) ? (listed.runs as Json[]) : [];
        for (const r of runs) {
          this.runs.observe({ ...r, runId: r.runId ?? r.id });
        }
      } catch (e) {
        this.output.appendLine(`[client] listRuns: ${(e as Error).message}`);
      }
    }
    return this.runs.all();
  }

  // ── palette commands ─────────────────────────────────────────────────────────────────────────

  async runTask(arg: unknown, onSelection: boolean): Promise<unknown> {
    const given = firstArg([arg]) as Partial<RunInput> & { uri?: string; range?: LspRange };
    let task = typeof given.task === 'string' ? given.task : undefined;
    let signature = typeof given.signature === 'string' ? given.signature : undefined;
    const editor = vscode.window.activeTextEditor;
    // a file or an unsaved buffer can receive the program; output panes, diffs and trajectories cannot
    const hasTarget =
      !!editor && ['file', 'untitled'].includes(editor.document.uri.scheme) && !runIdFromPath(editor.document.uri.fsPath);
    if (task === undefined) {
      const where = hasTarget ? vscode.workspace.asRelativePath(editor.document.uri) : undefined;
      task = await this.prompts.input({
        title: 'CodeAct: Run Task (1/2)',
        prompt: where
          ? `What should the agent do? Accept will write its program ${onSelection ? 'over the selection' : 'at the cursor'} in ${where}.`
          : 'What should the agent do?',
        placeHolder: 'e.g. What does it cost in EUR to ship 3 units of SKU-42 to Germany?',
        validateInput: validateTask,
      });
      if (task === undefined) {
        return undefined;
      }
      signature = await this.prompts.input({
        title: 'CodeAct: Run Task (2/2) — signature, optional',
        prompt: 'Typed inputs and outputs, e.g. "question -> answer: float". Leave empty for "task -> answer".',
        value: this.context.workspaceState.get<string>('codeact.lastSignature', ''),
        validateInput: validateSignature,
      });
      if (signature === undefined) {
        return undefined;
      }
      await this.context.workspaceState.update('codeact.lastSignature', signature);
    }
    let target: { uri: string; range?: LspRange } | undefined;
    if (typeof given.uri === 'string') {
      target = { uri: given.uri, range: given.range };
    } else if (hasTarget && editor) {
      const sel = editor.selection;
      const range = onSelection ? sel : new vscode.Range(sel.active, sel.active);
      target = {
        uri: editor.document.uri.toString(),
        range: { start: { line: range.start.line, character: range.start.character }, end: { line: range.end.line, character: range.end.character } },
      };
    }
    const args = buildRunArgs({ ...given, task, signature }, target);
    await this.ready();
    return vscode.commands.executeCommand('codeact.run', args);
  }

  async simpleRunCommand(server: string, arg: unknown, purpose: string, filter: (r: TrackedRun) => boolean): Promise<unknown> {
    const runId = await this.pickRun(arg, purpose, filter);
    if (!runId) {
      return undefined;
    }
    await this.ready();
    return vscode.commands.executeCommand(server, { ...firstArg([arg]), runId });
  }

  async discardOrReject(arg: unknown): Promise<unknown> {
    const runId = await this.pickRun(arg, 'discard or reject');
    if (!runId) {
      return undefined;
    }
    await this.ready();
    let status = this.runs.get(runId)?.status;
    if (!status) {
      status = String(((await this.server('codeact.getRun', { runId })) as Json)?.status ?? '');
    }
    if (status === 'awaiting_approval') {
      return vscode.commands.executeCommand('codeact.reject', { ...firstArg([arg]), runId });
    }
    if (this.serverHas('codeact.discard')) {
      return vscode.commands.executeCommand('codeact.discard', { runId });
    }
    this.runs.forget(runId);
    this.onRunsChanged();
    return { status: 'discarded' };
  }

  async tryTool(arg: unknown): Promise<unknown> {
    const given = firstArg([arg]);
    if (typeof given.name !== 'string') {
      const tools = await this.toolSchemas();
      if (tools.length === 0) {
        void this.prompts.notify('warning', 'CodeAct: no tools found. Configure `tools` in [tool.codeact] (default: tools.py, tools/**/*.py).');
        return undefined;
      }
      const picked = await this.prompts.pick(
        tools.map((t) => ({ label: String(t.name), description: typeof t.signature === 'string' ? t.signature : '', detail: typeof t.doc === 'string' ? t.doc : '' })),
        { title: 'CodeAct: Try which tool?', matchOnDescription: true },
      );
      if (!picked) {
        return undefined;
      }
      given.name = picked.label;
    }
    return vscode.commands.executeCommand('codeact.tryTool', given);
  }

  async runTasks(arg: unknown): Promise<unknown> {
    await this.ready();
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'CodeAct: running the task suite', cancellable: false },
      () => vscode.commands.executeCommand('codeact.runTasks', firstArg([arg])),
    );
    const { lines, passed, total } = describeTaskResults(result);
    this.output.appendLine(`[task suite] ${passed}/${total} passed`);
    for (const line of lines) {
      this.output.appendLine(`  ${line}`);
    }
    const kind = passed === total ? 'info' : 'warning';
    void this.prompts.notify(kind, `CodeAct task suite: ${passed}/${total} passed.`, 'Show Details').then((c) => {
      if (c) {
        this.output.show(true);
      }
    });
    return result;
  }

  async showRuns(): Promise<void> {
    await this.ready();
    const runs = await this.knownRuns();
    if (runs.length === 0) {
      void this.prompts.notify('info', 'CodeAct: no runs yet. Start one with "CodeAct: Run Task…".');
      return;
    }
    const picked = await this.prompts.pick(
      runs.map((r) => ({ label: truncate(r.task ?? r.runId, 80), description: `${r.status} · ${r.runId}`, run: r })),
      { title: 'CodeAct: runs', matchOnDescription: true },
    );
    if (!picked) {
      return;
    }
    await this.openRun(picked.run);
  }

  /** Reopen the newest trajectory of the workspace (also after a restart: the server lists stored runs). */
  async openLastRun(): Promise<void> {
    await this.ready();
    const [last] = await this.knownRuns();
    if (!last) {
      void this.prompts.notify('info', 'CodeAct: no runs yet. Start one with "CodeAct: Run Task…".');
      return;
    }
    await this.openRun(last);
  }

  private async openRun(run: TrackedRun): Promise<void> {
    let uri = run.trajectoryUri;
    if (!uri) {
      const traj = (await this.server('codeact.getRun', { runId: run.runId })) as Json;
      uri = typeof traj?.trajectoryUri === 'string' ? traj.trajectoryUri : undefined;
      if (!uri && typeof traj?.workspace === 'string') {
        uri = vscode.Uri.file(path.join(traj.workspace, '.codeact', 'runs', `${run.runId}.py`)).toString();
      }
    }
    if (uri) {
      await vscode.window.showTextDocument(vscode.Uri.parse(uri), { preview: false });
    }
  }

  showLog(): void {
    this.output.show();
  }
}

function isEmptyArgs(args: unknown): boolean {
  if (args === undefined || args === null) {
    return true;
  }
  return Array.isArray(args) ? args.length === 0 : typeof args === 'object' && Object.keys(args).length === 0;
}

/** Workspaces worth starting the server for at once: a codeact.toml or a `[tool.codeact]` table. */
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

let controller: Controller | undefined;

export function activate(context: vscode.ExtensionContext): CodeActApi {
  const c = new Controller(context);
  controller = c;
  const guard =
    (fn: (arg: unknown) => Promise<unknown> | unknown) =>
    async (arg: unknown): Promise<unknown> => {
      try {
        return await fn(arg);
      } catch (e) {
        const message = (e as Error).message ?? String(e);
        if (message === c.failureMessage) {
          return undefined; // already shown, with its fix
        }
        void c.prompts.notify('error', message.startsWith('CodeAct') ? message : `CodeAct: ${message}`);
        return undefined;
      }
    };
  const waiting = (r: TrackedRun): boolean => r.status === 'awaiting_approval';
  const active = (r: TrackedRun): boolean => !TERMINAL_STATUSES.has(r.status);
  const finished = (r: TrackedRun): boolean => r.status === 'finished';
  const commands: Record<string, (arg: unknown) => unknown> = {
    'codeact-lsp.runTask': (arg) => c.runTask(arg, false),
    'codeact-lsp.runTaskOnSelection': (arg) => c.runTask(arg, true),
    'codeact-lsp.cancel': (arg) => c.simpleRunCommand('codeact.cancel', arg, 'cancel', active),
    'codeact-lsp.accept': (arg) => c.simpleRunCommand('codeact.accept', arg, 'accept', finished),
    'codeact-lsp.approve': (arg) => c.simpleRunCommand('codeact.approve', arg, 'approve', waiting),
    'codeact-lsp.reject': (arg) => c.discardOrReject(arg),
    'codeact-lsp.followUp': (arg) => c.simpleRunCommand('codeact.followUp', arg, 'follow up', (r) => TERMINAL_STATUSES.has(r.status)),
    'codeact-lsp.tryTool': (arg) => c.tryTool(arg),
    'codeact-lsp.runTasks': (arg) => c.runTasks(arg),
    'codeact-lsp.showRuns': () => c.showRuns(),
    'codeact-lsp.openLastRun': () => c.openLastRun(),
    'codeact-lsp.restartServer': () => c.restart(),
    'codeact-lsp.showLog': () => c.showLog(),
  };
  for (const [id, fn] of Object.entries(commands)) {
    context.subscriptions.push(vscode.commands.registerCommand(id, guard(fn)));
  }
  if (workspaceWantsServer()) {
    c.ready().catch(() => undefined); // the failure is already shown with its fix
  }
  return c;
}

export async function deactivate(): Promise<void> {
  await controller?.dispose();
  controller = undefined;
}
