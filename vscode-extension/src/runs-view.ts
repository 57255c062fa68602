// The Runs view (its own activity-bar container): one item per run the server reported, newest
// first, worded by present.ts; inline actions come from package.json's `view/item/context` menus,
// matched against the item's context value.

import * as vscode from 'vscode';
import { TrackedRun } from './logic';
import { answerText, runContext, runDescription, statusIcon, statusWords } from './present';
import { RunStore } from './runs';

export const RUNS_VIEW = 'codeact.runs';

export class RunsView implements vscode.TreeDataProvider<TrackedRun>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TrackedRun | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[];
  readonly view: vscode.TreeView<TrackedRun>;

  constructor(private readonly store: RunStore) {
    this.view = vscode.window.createTreeView(RUNS_VIEW, { treeDataProvider: this, showCollapseAll: false });
    this.subs = [this.view, this.changed, store.tracker.onChange(() => this.refresh()), store.onTick(() => this.refresh())];
  }

  dispose(): void {
    this.subs.forEach((s) => s.dispose());
  }

  private refresh(): void {
    this.changed.fire(undefined);
    const active = this.store.tracker.active().length;
    this.view.badge = active ? { value: active, tooltip: `${active} CodeAct run${active === 1 ? '' : 's'} in progress` } : undefined;
  }

  getChildren(element?: TrackedRun): TrackedRun[] {
    if (element) {
      return [];
    }
    return this.store.tracker
      .all()
      .filter((r) => !r.discarded)
      .sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0) || b.updated - a.updated);
  }

  getTreeItem(run: TrackedRun): vscode.TreeItem {
    return runItem(run, Date.now() / 1000);
  }
}

/** The tree item of one run (exported for the tests: what the view shows for a state). */
export function runItem(run: TrackedRun, now: number): vscode.TreeItem {
  const label = run.task ?? run.runId;
  const item = new vscode.TreeItem(label.length > 70 ? `${label.slice(0, 69)}…` : label, vscode.TreeItemCollapsibleState.None);
  item.id = run.runId;
  item.description = runDescription(run, now);
  item.iconPath = new vscode.ThemeIcon(statusIcon(run.status));
  item.contextValue = runContext(run);
  const tip = new vscode.MarkdownString(undefined, true);
  tip.appendMarkdown(`$(${statusIcon(run.status)}) **${statusWords(run.status)}** · run \`${run.runId}\`\n\n`);
  tip.appendText(`${run.task ?? ''}\n\n`);
  const answer = answerText(run.answer, 200);
  if (answer !== undefined) {
    tip.appendMarkdown(`answer: \`${answer.replace(/`/g, "'")}\`\n\n`);
  }
  if (run.error) {
    tip.appendText(`${run.error}\n\n`);
  }
  if (run.accepted) {
    tip.appendMarkdown('$(check) accepted\n\n');
  }
  item.tooltip = tip;
  if (run.trajectoryUri) {
    item.command = { command: 'codeact-lsp.openRun', title: 'Open', arguments: [{ runId: run.runId }] };
  }
  return item;
}
