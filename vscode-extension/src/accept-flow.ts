// Accept as a flow: preview, diff, confirm, apply, and on a refusal the alternatives that cannot
// overwrite anything. Moved here unchanged from extension.ts (the i15 accept work owns its logic).

import * as vscode from 'vscode';
import { closeDiff, planFromPreview, showDiff } from './accept';
import { Env } from './env';

type Json = Record<string, unknown>;

function currentText(uri: string): string | undefined {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri)?.getText();
}

/** What the server says Accept would do (`codeact.acceptPreview`), or the run's program. */
async function preview(env: Env, runId: string, mode: string | undefined, newFileUri: unknown): Promise<Json> {
  if (env.conn.has('codeact.acceptPreview')) {
    const arg: Json = { runId };
    if (mode) {
      arg.mode = mode;
    }
    if (typeof newFileUri === 'string') {
      arg.newFileUri = newFileUri;
    }
    return ((await env.conn.request('codeact.acceptPreview', arg)) as Json) ?? {};
  }
  // No preview command: show the run's program (from the server) against the target, unchanged.
  const run = (await env.conn.request('codeact.getRun', { runId })) as Json;
  const target = (run?.target ?? {}) as Json;
  return { program: run?.program ?? '', uri: target.uri };
}

/** The Preview lens: the diff of what Accept would write, without writing. */
export async function showPlan(env: Env, runId: string, shown: Json): Promise<void> {
  if (shown?.ok === false) {
    void env.prompts.notify('warning', `CodeAct: Accept would be refused: ${String(shown.reason ?? 'unknown reason')}`);
    return;
  }
  const plan = planFromPreview(runId, shown ?? {}, currentText);
  if (plan) {
    const sides = await showDiff(env.previews, plan);
    env.lastDiff = { ...sides, after: plan.after };
  }
}

/** After a refusal: offer the ways that cannot overwrite anything; the chosen mode or undefined. */
async function chooseAlternative(env: Env, reason: string, alternatives: unknown, current: string | undefined): Promise<string | undefined> {
  const labels: Record<string, string> = { insertAtEnd: 'Insert at End', newFile: 'New File' };
  const offered = (Array.isArray(alternatives) ? (alternatives as string[]) : []).filter((a) => labels[a] && a !== current);
  const choice = await env.prompts.notify('warning', `CodeAct: not applied: ${reason}`, ...offered.map((a) => labels[a]));
  return offered.find((a) => labels[a] === choice);
}

/**
 * Accept = preview, diff, confirm, apply; when the server refuses (the target changed since the
 * run started), offer its alternatives and go round again with the chosen mode.
 */
export async function acceptFlow(env: Env, arg: Json, send: (arg: Json) => Promise<unknown>): Promise<unknown> {
  const runId = typeof arg.runId === 'string' ? arg.runId : undefined;
  if (!runId) {
    return send(arg);
  }
  const showDiffFirst = vscode.workspace.getConfiguration('codeact').get<boolean>('accept.showDiff', true);
  let mode = typeof arg.mode === 'string' ? arg.mode : undefined;
  for (let round = 0; round < 3; round++) {
    if (showDiffFirst) {
      let shown: Json;
      try {
        shown = await preview(env, runId, mode, arg.newFileUri);
      } catch (e) {
        void env.prompts.notify('error', `CodeAct: cannot preview the accept: ${(e as Error).message}`);
        return undefined;
      }
      if (shown.ok === false) {
        const reason = String(shown.reason ?? 'refused');
        mode = await chooseAlternative(env, reason, shown.alternatives, mode);
        if (!mode) {
          return { applied: false, reason };
        }
        continue;
      }
      const plan = planFromPreview(runId, shown, currentText);
      if (!plan) {
        void env.prompts.notify('warning', `CodeAct: run ${runId} has nothing to accept.`);
        return undefined;
      }
      const sides = await showDiff(env.previews, plan);
      env.lastDiff = { ...sides, after: plan.after };
      const where = plan.targetUri ? vscode.workspace.asRelativePath(vscode.Uri.parse(plan.targetUri)) : 'a new file';
      const answer = await env.prompts.confirm(
        `Accept run ${runId}: ${plan.createsFile ? 'create' : 'write its program into'} ${where}?`,
        plan.summary || 'The diff shows the change. It is applied as one undoable edit, and refused if the file changed since the preview.',
        'Accept',
      );
      await closeDiff(env.previews, sides.right);
      if (answer !== 'Accept') {
        return { applied: false, reason: 'not confirmed' };
      }
    }
    const result = (await send(mode ? { ...arg, runId, mode } : { ...arg, runId })) as Json | undefined;
    if (result && result.applied === false && typeof result.reason === 'string') {
      mode = await chooseAlternative(env, result.reason, result.alternatives, mode);
      if (mode) {
        continue;
      }
    }
    return result;
  }
  return { applied: false, reason: 'gave up after repeated refusals' };
}
