// The palette's and the Runs view's commands (`codeact-lsp.*`). Each finds the run it is about,
// asks for what it needs, and forwards to the server's `codeact.*` command (through the middleware).

import * as path from 'path';
import * as vscode from 'vscode';
import { Env } from './env';
import { surface } from './errors';
import { LspRange, RunInput, TERMINAL_STATUSES, TrackedRun, buildRunArgs, describeTaskResults, firstArg, resolveRunId, runIdFromPath, truncate, validateSignature, validateTask } from './logic';
import { statusWords } from './present';
import { RUNS_VIEW } from './runs-view';
import { pickTool } from './try-tool';

type Json = Record<string, unknown>;
type Command = (arg: unknown) => unknown;

const waiting = (r: TrackedRun): boolean => r.status === 'awaiting_approval' && r.live !== false;
const active = (r: TrackedRun): boolean => !TERMINAL_STATUSES.has(r.status) && r.live !== false;
const finished = (r: TrackedRun): boolean => r.status === 'finished' && !r.accepted;
const done = (r: TrackedRun): boolean => TERMINAL_STATUSES.has(r.status);

/** The argument to pass on: a Runs-view item stands for its run only (its fields are not arguments). */
function passOn(arg: unknown): Json {
  const a = firstArg([arg]);
  return 'updated' in a && 'status' in a ? {} : a;
}

export function registerCommands(env: Env): vscode.Disposable[] {
  const commands: Record<string, Command> = {
    'codeact-lsp.runTask': (arg) => runTask(env, arg, false),
    'codeact-lsp.runTaskOnSelection': (arg) => runTask(env, arg, true),
    'codeact-lsp.cancel': (arg) => forward(env, 'codeact.cancel', arg, 'cancel', active),
    'codeact-lsp.accept': (arg) => forward(env, 'codeact.accept', arg, 'accept', finished),
    'codeact-lsp.approve': (arg) => forward(env, 'codeact.approve', arg, 'approve', waiting),
    'codeact-lsp.reject': (arg) => forward(env, 'codeact.reject', arg, 'reject the pending step of', waiting),
    'codeact-lsp.discard': (arg) => forward(env, 'codeact.discard', arg, 'discard', done),
    'codeact-lsp.followUp': (arg) => forward(env, 'codeact.followUp', arg, 'follow up', done),
    'codeact-lsp.continue': (arg) => continueRun(env, arg),
    'codeact-lsp.tryTool': (arg) => tryTool(env, arg),
    'codeact-lsp.runTasks': (arg) => runTasks(env, arg),
    'codeact-lsp.showRuns': () => vscode.commands.executeCommand(`${RUNS_VIEW}.focus`),
    'codeact-lsp.refreshRuns': () => env.store.load(),
    'codeact-lsp.openRun': (arg) => openRunCommand(env, arg),
    'codeact-lsp.openLastRun': () => openLastRun(env),
    'codeact-lsp.restartServer': () => env.conn.restart(),
    'codeact-lsp.showLog': () => env.log.show(),
  };
  return Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, guard(env, fn)));
}

/** Show a failure once, with its fix; a start failure was already shown with its own. */
function guard(env: Env, fn: Command): Command {
  return async (arg) => {
    try {
      return await fn(arg);
    } catch (e) {
      if ((e as Error).message !== env.conn.failure) {
        void surface(e, env.prompts, () => env.log.show(true));
      }
      return undefined;
    }
  };
}

/** Which run a command is about: the argument, the trajectory in front, the only candidate, or ask. */
async function pickRun(env: Env, arg: unknown, purpose: string, filter: (r: TrackedRun) => boolean): Promise<string | undefined> {
  const editor = vscode.window.activeTextEditor?.document.uri;
  const id = resolveRunId(arg, editor?.scheme === 'file' ? editor.fsPath : undefined, env.store.tracker.all().filter(filter));
  if (id) {
    return id;
  }
  const items = (await env.store.load())
    .filter(filter)
    .map((r) => ({ label: truncate(r.task ?? r.runId, 80), description: `${statusWords(r.status)} · ${r.runId}`, runId: r.runId }));
  if (items.length === 0) {
    void env.prompts.notify('info', `CodeAct: no run to ${purpose}. Start one with "CodeAct: Run Task…".`);
    return undefined;
  }
  const picked = await env.prompts.pick(items, { title: `CodeAct: which run to ${purpose}?` });
  return picked?.runId;
}

async function forward(env: Env, server: string, arg: unknown, purpose: string, filter: (r: TrackedRun) => boolean): Promise<unknown> {
  await env.conn.ready();
  const runId = await pickRun(env, arg, purpose, filter);
  if (!runId) {
    return undefined;
  }
  return vscode.commands.executeCommand(server, { ...passOn(arg), runId });
}

/** "Continue (N more steps)" of a run that spent its budget: a follow-up in the same sandbox. */
async function continueRun(env: Env, arg: unknown): Promise<unknown> {
  await env.conn.ready();
  const runId = await pickRun(env, arg, 'continue', (r) => r.status === 'max_iters');
  const run = runId ? env.store.tracker.get(runId) : undefined;
  if (!runId) {
    return undefined;
  }
  const task = (run?.task ?? '').replace(/^Continue: /, '');
  return vscode.commands.executeCommand('codeact.followUp', { runId, task: `Continue: ${task}` });
}

async function runTask(env: Env, arg: unknown, onSelection: boolean): Promise<unknown> {
  // The server first: a person's typed task must not be lost to a server that cannot start.
  await env.conn.ready();
  const given = firstArg([arg]) as Partial<RunInput> & { uri?: string; range?: LspRange };
  let task = typeof given.task === 'string' ? given.task : undefined;
  let signature = typeof given.signature === 'string' ? given.signature : undefined;
  const editor = vscode.window.activeTextEditor;
  // a file or an unsaved buffer can receive the program; output panes, diffs and trajectories cannot
  const hasTarget = !!editor && ['file', 'untitled'].includes(editor.document.uri.scheme) && !runIdFromPath(editor.document.uri.fsPath);
  if (task === undefined) {
    const where = hasTarget ? vscode.workspace.asRelativePath(editor.document.uri) : undefined;
    task = await env.prompts.input({
      title: 'CodeAct: Run Task (1/2)',
      prompt: where ? `What should the agent do? Accept will write its program ${onSelection ? 'over the selection' : 'at the cursor'} in ${where}.` : 'What should the agent do?',
      placeHolder: 'e.g. What does it cost in EUR to ship 3 units of SKU-42 to Germany?',
      validateInput: validateTask,
    });
    if (task === undefined) {
      return undefined;
    }
    signature = await env.prompts.input({
      title: 'CodeAct: Run Task (2/2) — signature, optional',
      prompt: 'Typed inputs and outputs, e.g. "question -> answer: float". Leave empty for "task -> answer".',
      value: env.context.workspaceState.get<string>('codeact.lastSignature', ''),
      validateInput: validateSignature,
    });
    if (signature === undefined) {
      return undefined;
    }
    await env.context.workspaceState.update('codeact.lastSignature', signature);
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
  return vscode.commands.executeCommand('codeact.run', buildRunArgs({ ...given, task, signature }, target));
}

async function tryTool(env: Env, arg: unknown): Promise<unknown> {
  await env.conn.ready();
  const given = firstArg([arg]);
  if (typeof given.name !== 'string') {
    const name = await pickTool(env);
    if (!name) {
      return undefined;
    }
    given.name = name;
  }
  return vscode.commands.executeCommand('codeact.tryTool', given);
}

let taskChannel: vscode.OutputChannel | undefined;

async function runTasks(env: Env, arg: unknown): Promise<unknown> {
  await env.conn.ready();
  const result = await vscode.commands.executeCommand('codeact.runTasks', firstArg([arg]));
  if (!result) {
    return result; // refused: already shown
  }
  const { lines, passed, total } = describeTaskResults(result);
  taskChannel ??= vscode.window.createOutputChannel('CodeAct Tasks');
  taskChannel.appendLine(`[${new Date().toLocaleTimeString()}] task suite: ${passed}/${total} passed`);
  for (const line of lines) {
    taskChannel.appendLine(`  ${line}`);
  }
  void env.prompts.notify(passed === total ? 'info' : 'warning', `CodeAct task suite: ${passed}/${total} passed.`, 'Show Details').then((c) => {
    if (c) {
      taskChannel?.show(true);
    }
  });
  return result;
}

async function openRunCommand(env: Env, arg: unknown): Promise<void> {
  const runId = await pickRun(env, arg, 'open', () => true);
  const run = runId ? env.store.tracker.get(runId) : undefined;
  if (run) {
    await openRun(env, run);
  }
}

/** Reopen the newest trajectory of the workspace (also after a restart: the server lists stored runs). */
async function openLastRun(env: Env): Promise<void> {
  await env.conn.ready();
  const runs = await env.store.load();
  const last = [...runs].sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0) || b.updated - a.updated)[0];
  if (!last) {
    void env.prompts.notify('info', 'CodeAct: no runs yet. Start one with "CodeAct: Run Task…".');
    return;
  }
  await openRun(env, last);
}

async function openRun(env: Env, run: TrackedRun): Promise<void> {
  let uri = run.trajectoryUri;
  if (!uri) {
    const traj = await env.conn.call('codeact.getRun', { runId: run.runId });
    if (typeof traj?.workspace === 'string') {
      uri = vscode.Uri.file(path.join(traj.workspace, '.codeact', 'runs', `${run.runId}.py`)).toString();
    }
  }
  if (uri) {
    await vscode.window.showTextDocument(vscode.Uri.parse(uri), { preview: false });
  }
}
