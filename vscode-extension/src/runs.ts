// Run state as the server pushes it (`codeact/runState`): the status bar, the `codeact.activeRuns`
// context key, a cancellable progress notification for each run this window started, and the
// trajectory in front of the user kept current. Nothing here asks the server how a run is doing;
// the only clock is the one that ticks the elapsed time shown while a run is live.

import * as vscode from 'vscode';
import { ServerConnection } from './connection';
import { RunTracker, TERMINAL_STATUSES, TrackedRun, runIdFromPath } from './logic';
import { liveDetail, statusBarText, statusWords } from './present';
import { RunSummary } from './protocol';
import { Prompts } from './ui';

export class RunStore implements vscode.Disposable {
  readonly tracker = new RunTracker();
  private readonly status = vscode.window.createStatusBarItem('codeact.runs', vscode.StatusBarAlignment.Left, 50);
  private readonly ticked = new vscode.EventEmitter<void>();
  /** Fires once a second while a run is live (views re-render the elapsed time). */
  readonly onTick = this.ticked.event;
  private ticker?: NodeJS.Timeout;
  private readonly followed = new Set<string>();
  private readonly progress = new Map<string, (run: TrackedRun) => void>();
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    private readonly conn: ServerConnection,
    private readonly prompts: () => Prompts,
  ) {
    this.status.name = 'CodeAct runs';
    this.render();
    this.status.show();
    this.subs.push(
      this.status,
      this.ticked,
      this.tracker.onChange((run) => this.changed(run)),
      conn.onStarted(() => {
        this.render();
        if (conn.running) {
          void this.load();
        }
      }),
    );
  }

  dispose(): void {
    if (this.ticker) {
      clearInterval(this.ticker);
    }
    this.subs.forEach((s) => s.dispose());
  }

  /** A `codeact/runState` notification (the shape `codeact.listRuns` lists, protocol.ts). */
  onRunState(params: RunSummary): void {
    this.tracker.observe(params);
  }

  /** A run this window started: it gets a progress notification with Cancel. */
  follow(runId: string, task?: string): void {
    this.followed.add(runId);
    const run = this.tracker.observe({ runId, ...(task ? { task } : {}) }) ?? this.tracker.get(runId);
    if (run) {
      this.showProgress(run);
    }
  }

  /** The runs the server knows (this session's and those stored in the workspace), once per start. */
  async load(): Promise<TrackedRun[]> {
    try {
      const listed = await this.conn.call('codeact.listRuns', {});
      for (const r of listed?.runs ?? []) {
        this.tracker.observe(r);
      }
    } catch (e) {
      this.conn.log.appendLine(`[client] listRuns: ${(e as Error).message}`);
    }
    return this.tracker.all();
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
      if (done(this.tracker.get(runId))) {
        return;
      }
      const timer = setTimeout(() => {
        sub.dispose();
        reject(new Error(`run ${runId} not finished after ${timeoutMs} ms (status ${this.tracker.get(runId)?.status})`));
      }, timeoutMs);
      const sub = this.tracker.onChange((run) => {
        if (run.runId === runId && done(run)) {
          clearTimeout(timer);
          sub.dispose();
        }
      });
    });
  }

  private changed(run: TrackedRun): void {
    this.render();
    const active = this.tracker.active().length > 0;
    void vscode.commands.executeCommand('setContext', 'codeact.activeRuns', active);
    if (active && !this.ticker) {
      this.ticker = setInterval(() => {
        this.render();
        this.ticked.fire();
        for (const r of this.tracker.active()) {
          this.progress.get(r.runId)?.(r);
        }
      }, 1000);
    } else if (!active && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    this.progress.get(run.runId)?.(run);
    if (this.followed.has(run.runId) && !this.progress.has(run.runId)) {
      this.showProgress(run);
    }
    void this.syncActiveTrajectory(run);
  }

  private showProgress(run: TrackedRun): void {
    if (TERMINAL_STATUSES.has(run.status) || this.progress.has(run.runId)) {
      return;
    }
    const title = `CodeAct: ${run.task ? (run.task.length > 50 ? `${run.task.slice(0, 49)}…` : run.task) : run.runId}`;
    void this.prompts().progress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
      return new Promise<void>((resolve) => {
        let last = '';
        const update = (r: TrackedRun): void => {
          if (TERMINAL_STATUSES.has(r.status) || r.discarded) {
            this.progress.delete(r.runId);
            this.followed.delete(r.runId);
            resolve();
            return;
          }
          const message = `${statusWords(r.status)} · ${liveDetail(r, Date.now() / 1000)}`;
          if (message !== last) {
            last = message;
            progress.report({ message });
          }
        };
        this.progress.set(run.runId, update);
        token.onCancellationRequested(() => {
          this.conn.call('codeact.cancel', { runId: run.runId }).catch((e: Error) => this.conn.log.appendLine(`[client] cancel ${run.runId}: ${e.message}`));
        });
        update(this.tracker.get(run.runId) ?? run);
      });
    });
  }

  render(): void {
    if (this.conn.failure) {
      this.status.text = '$(error) CodeAct';
      this.status.tooltip = this.conn.failure;
      this.status.command = 'codeact-lsp.showLog';
      return;
    }
    const { text, tooltip } = statusBarText(this.tracker.active());
    this.status.text = text;
    this.status.tooltip = tooltip;
    this.status.command = 'codeact-lsp.showRuns';
  }

  /** The text the status bar shows now (the tests compare it with the lenses). */
  get statusText(): string {
    return this.status.text;
  }

  /**
   * The server rewrites a trajectory file as its run goes. VS Code joins a reload that is requested
   * while another is in flight, so after a quick burst of writes an open trajectory can keep showing
   * an older state. If the (unmodified) trajectory in front of the user differs from the file, reload it.
   */
  async syncActiveTrajectory(run?: TrackedRun): Promise<void> {
    const doc = vscode.window.activeTextEditor?.document;
    if (!doc || doc.isDirty || doc.uri.scheme !== 'file') {
      return;
    }
    const shown = runIdFromPath(doc.uri.fsPath);
    if (!shown || (run && run.runId !== shown)) {
      return;
    }
    let disk: string;
    try {
      disk = Buffer.from(await vscode.workspace.fs.readFile(doc.uri)).toString('utf8');
    } catch {
      return; // discarded meanwhile
    }
    if (disk !== doc.getText() && vscode.window.activeTextEditor?.document === doc && !doc.isDirty) {
      this.conn.log.appendLine(`[client] reloading ${vscode.workspace.asRelativePath(doc.uri)}: the editor showed an older state than the file`);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    }
  }
}
