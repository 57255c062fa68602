// Accept = look, then write. Before the server applies a run's program (a versioned
// workspace/applyEdit), the person sees a diff of exactly what the server says it will write and
// confirms. The text on the right comes from the server (`codeact.acceptPreview`, or the run's
// `program` when the server has no preview command); the client only places it beside the target.

import * as path from 'path';
import * as vscode from 'vscode';
import { AcceptPlan } from './accept-plan';

export { AcceptPlan, planFromPreview } from './accept-plan';

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
