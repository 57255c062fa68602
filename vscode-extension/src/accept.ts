// Accept = look, then write. The server applies a run's program as a versioned, annotated
// workspace/applyEdit that the editor previews before anything is written; the diff shown here (for
// `codeact.acceptPreview`, Show Diff, and the `diff` review) holds the server's text
// (`codeact.acceptPreview`, or the run's `program` when the server has no preview command); the
// client only places it beside the target.

import * as path from 'path';
import * as vscode from 'vscode';
import { AcceptChoice, AcceptPlan, planFromPreview, refusalChoices } from './accept-plan';
import { Prompts } from './ui';

export { AcceptChoice, AcceptPlan, planFromPreview, refusalChoices } from './accept-plan';

export const PREVIEW_SCHEME = 'codeact-preview';

/** Serves the right-hand side of Accept diffs: read-only documents held in memory. */
export class PreviewDocuments implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  set(uri: vscode.Uri, text: string): void {
    this.texts.set(uri.toString(), text);
    this.changed.fire(uri);
  }

  delete(uri: vscode.Uri): void {
    this.texts.delete(uri.toString());
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }
}

/** The diff's two sides: the live target document (or an empty one) and the server's text. */
export function previewUri(plan: AcceptPlan): vscode.Uri {
  const base = plan.targetUri ? path.posix.basename(vscode.Uri.parse(plan.targetUri).path) : 'program.py';
  return vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: `/${plan.runId}/${base}`, query: String(Date.now()) });
}

export async function showDiff(previews: PreviewDocuments, plan: AcceptPlan): Promise<{ left: vscode.Uri; right: vscode.Uri }> {
  const right = previewUri(plan);
  previews.set(right, plan.after);
  let left: vscode.Uri;
  if (plan.targetUri && !plan.createsFile) {
    left = vscode.Uri.parse(plan.targetUri);
  } else {
    left = right.with({ path: right.path.replace(/[^/]*$/, 'empty.py'), query: `${right.query}-before` });
    previews.set(left, '');
  }
  const name = path.posix.basename(left.path);
  await vscode.commands.executeCommand('vscode.diff', left, right, `CodeAct: Accept ${plan.runId} → ${name} (preview)`, {
    preview: true,
  });
  return { left, right };
}

/** Close the diff tab again so previews don't pile up (whatever the person decided). */
export async function closeDiff(previews: PreviewDocuments, right: vscode.Uri): Promise<void> {
  const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs);
  const mine = tabs.filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === right.toString());
  if (mine.length > 0) {
    await vscode.window.tabGroups.close(mine, true);
  }
  previews.delete(right);
}

// ── the Accept flow ────────────────────────────────────────────────────────────────────────────
// Review happens in the editor's own UI: the server's edit carries change annotations that need
// confirmation, so VS Code opens its Refactor Preview (every hunk, the import merge included, each
// one can be unticked). Nothing here is modal: a refusal is a notification with the server's
// choices as buttons, and the `diff` review keeps a diff beside the editor while a non-modal
// notification asks whether to apply it.

type Json = Record<string, unknown>;

/** What the flow needs from the controller (kept narrow so the flow reads on its own). */
export interface AcceptHost {
  prompts: Prompts;
  previews: PreviewDocuments;
  /** `codeact.acceptPreview` on the server. */
  preview(arg: Json): Promise<Json>;
  /** `codeact.accept` on the server (the edit comes back as `workspace/applyEdit`). */
  send(arg: Json): Promise<Json | undefined>;
  currentText(uri: string): string | undefined;
  shown(diff: { left: vscode.Uri; right: vscode.Uri; after: string }): void;
  /** The one status line after Accept. */
  status(message: string): void;
}

async function offer(host: AcceptHost, reason: string, choices: AcceptChoice[]): Promise<AcceptChoice | undefined> {
  const answer = await host.prompts.notify('warning', `CodeAct: not applied. ${reason}`, ...choices.map((c) => c.label));
  return choices.find((c) => c.label === answer);
}

async function diffOf(host: AcceptHost, runId: string, arg: Json): Promise<{ right: vscode.Uri; plan: AcceptPlan } | undefined> {
  const preview = await host.preview(arg);
  if (preview.ok === false) {
    return undefined;
  }
  const plan = planFromPreview(runId, preview, (uri) => host.currentText(uri));
  if (!plan) {
    return undefined;
  }
  const sides = await showDiff(host.previews, plan);
  host.shown({ ...sides, after: plan.after });
  return { right: sides.right, plan };
}

/**
 * Accept a run: ask, when the run was given a selection, whether to replace it; then let the
 * server apply its annotated edit (`review: "preview"`, VS Code's Refactor Preview), or show the
 * diff and apply on a non-modal "Apply" (`review: "diff"`). After a refusal, offer the server's
 * choices (Insert at End, New File, Show Diff) and go round again.
 */
export async function acceptRun(host: AcceptHost, arg: Json, review: 'preview' | 'diff'): Promise<unknown> {
  const runId = typeof arg.runId === 'string' ? arg.runId : undefined;
  if (!runId) {
    return host.send(arg);
  }
  let args: Json = { ...arg, runId };
  if (args.replace === undefined && args.mode === undefined) {
    const preview = await host.preview(args).catch(() => ({}) as Json);
    if (preview.selection === true) {
      const picked = await host.prompts.pick(
        [
          { label: 'Insert after the selection', description: 'keeps the selected code', replace: false },
          { label: 'Replace the selection', description: 'the function takes its place', replace: true },
        ],
        { title: 'CodeAct: Accept — the run was given a selection', placeHolder: 'Where should the function go?' },
      );
      if (!picked) {
        return { applied: false, reason: 'not chosen' };
      }
      args = { ...args, replace: picked.replace };
    }
  }
  for (let round = 0; round < 4; round++) {
    let diff: { right: vscode.Uri; plan: AcceptPlan } | undefined;
    if (review === 'diff') {
      const preview = await host.preview(args);
      if (preview.ok === false) {
        const choice = await offer(host, String(preview.reason ?? ''), refusalChoices(preview));
        if (!choice) {
          return { applied: false, reason: preview.reason };
        }
        args = choice.mode ? { ...args, mode: choice.mode } : args;
        continue;
      }
      diff = await diffOf(host, runId, args);
      const where = diff?.plan.targetUri ? vscode.workspace.asRelativePath(vscode.Uri.parse(diff.plan.targetUri)) : 'a new file';
      const answer = await host.prompts.notify('info', `CodeAct: apply this change to ${where}?`, 'Apply', 'Cancel');
      if (diff) {
        await closeDiff(host.previews, diff.right);
      }
      if (answer !== 'Apply') {
        return { applied: false, reason: 'not applied' };
      }
      args = { ...args, confirm: false }; // reviewed in the diff: no second preview
    }
    const result = (await host.send(args)) ?? {};
    if (result.applied === true) {
      host.status(typeof result.message === 'string' ? result.message : 'CodeAct: accepted.');
      return result;
    }
    if (result.cancelled === true) {
      host.status('CodeAct: Accept cancelled, nothing was written.');
      return result;
    }
    if (typeof result.reason !== 'string') {
      return result;
    }
    let choice = await offer(host, result.reason, refusalChoices(result));
    if (choice?.action === 'showDiff') {
      // what Insert at End would write, beside the editor; then the same choices, without the diff
      const shown = await diffOf(host, runId, { ...args, mode: 'insertAtEnd' });
      const rest = refusalChoices(result).filter((c) => c.mode);
      const answer = await host.prompts.notify('info', 'CodeAct: this is what Insert at End would write.', ...rest.map((c) => c.label));
      if (shown) {
        await closeDiff(host.previews, shown.right);
      }
      choice = rest.find((c) => c.label === answer);
    }
    if (!choice?.mode) {
      return result;
    }
    args = { ...args, mode: choice.mode };
  }
  return { applied: false, reason: 'gave up after repeated refusals' };
}
