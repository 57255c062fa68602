// Accept as a flow: preview, diff, confirm, apply, and on a refusal the alternatives that cannot
// overwrite anything. The flow is accept.ts's; this file wires it to the connection and the UI.

import * as vscode from 'vscode';
import { acceptRun, planFromPreview, showDiff } from './accept';
import { Env } from './env';
import { AcceptArgs } from './protocol';

type Json = Record<string, unknown>;

function currentText(uri: string): string | undefined {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri)?.getText();
}

/** What the server says Accept would do (`codeact.acceptPreview`), or the run's program. */
async function preview(env: Env, runId: string, mode: string | undefined, newFileUri: unknown): Promise<Json> {
  if (env.conn.has('codeact.acceptPreview')) {
    const arg: AcceptArgs = { runId };
    if (mode) {
      arg.mode = mode as AcceptArgs['mode']; // as the lens sent it: the server checks it
    }
    if (typeof newFileUri === 'string') {
      arg.newFileUri = newFileUri;
    }
    return { ...(await env.conn.call('codeact.acceptPreview', arg)) };
  }
  // No preview command: show the run's program (from the server) against the target, unchanged.
  const run = await env.conn.call('codeact.getRun', { runId });
  return { program: run?.program ?? '', uri: run?.target?.uri };
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

function pruneUndefined(arg: Json): Json {
  return Object.fromEntries(Object.entries(arg).filter(([, v]) => v !== undefined));
}

/** Accept: the flow lives in `accept.ts` (acceptRun); this wires it to the server and the UI. */
export async function acceptFlow(env: Env, arg: Json, send: (arg: Json) => Promise<unknown>): Promise<unknown> {
  const settings = vscode.workspace.getConfiguration('codeact');
  const review = settings.get<string>('accept.review', 'preview') === 'diff' ? 'diff' : 'preview';
  return acceptRun(
    {
      prompts: env.prompts,
      previews: env.previews,
      preview: async (a) => {
        const { runId, mode, newFileUri, replace, name, form } = a;
        if (!env.conn.has('codeact.acceptPreview')) {
          return preview(env, String(runId), typeof mode === 'string' ? mode : undefined, newFileUri);
        }
        return ((await env.conn.request('codeact.acceptPreview', pruneUndefined({ runId, mode, newFileUri, replace, name, form }))) as Json) ?? {};
      },
      send: async (a) => (await send(a)) as Json | undefined,
      currentText,
      shown: (diff) => (env.lastDiff = diff),
      status: (message) => {
        env.lastStatus = message;
        vscode.window.setStatusBarMessage(message, 10000);
      },
    },
    arg,
    review,
  );
}
