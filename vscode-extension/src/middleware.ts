// Every `codeact.*` command — from a code lens, the Runs view or the palette — passes here on its
// way to the server: the client asks for what only the person can type (a follow-up task, a
// rejection's reason, a tool's arguments), saves an edited trajectory first, sends the request
// itself so a failure shows the server's own message with its fix, and follows the runs it starts.

import * as vscode from 'vscode';
import { Middleware } from 'vscode-languageclient/node';
import { acceptFlow, showPlan } from './accept-flow';
import { Env } from './env';
import { surface } from './errors';
import { firstArg, trajectoriesToSave, validateTask } from './logic';
import { DiscardReply } from './protocol';
import { askToolArgs, showToolResult } from './try-tool';

type Json = Record<string, unknown>;

const RUN_STARTERS = new Set(['codeact.run', 'codeact.rerun', 'codeact.followUp']);

export function commandMiddleware(env: () => Env): Middleware {
  return {
    executeCommand: async (command, args) => {
      const e = env();
      try {
        return await route(e, command, firstArg(args));
      } catch (error) {
        void surface(error, e.prompts, () => e.log.show(true));
        return undefined;
      }
    },
  };
}

async function route(env: Env, command: string, arg: Json): Promise<unknown> {
  const send = (a: Json): Promise<unknown> => env.conn.request(command, a);
  switch (command) {
    case 'codeact.accept':
      return acceptFlow(env, arg, send);
    case 'codeact.acceptPreview': {
      const preview = await send(arg);
      await showPlan(env, String(arg.runId ?? ''), preview as Json);
      return preview;
    }
    case 'codeact.showStep': {
      const shown = (await send(arg)) as Json | undefined;
      await showStep(env, String(arg.runId ?? ''), Number(arg.step), shown);
      return shown;
    }
    case 'codeact.followUp':
      if (typeof arg.task !== 'string') {
        const task = await env.prompts.input({
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
        const feedback = await env.prompts.input({
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
        const typed = await askToolArgs(env, arg.name);
        if (typed === undefined) {
          return undefined;
        }
        arg.args = typed;
      }
      break;
  }
  await saveTrajectoryOf(env, command, arg);
  const result = await send(arg);
  observe(env, command, arg, result);
  if (command === 'codeact.tryTool') {
    showToolResult(env, String(arg.name), result);
  }
  return result;
}

function observe(env: Env, command: string, arg: Json, result: unknown): void {
  const r = (result ?? {}) as Json;
  if (RUN_STARTERS.has(command) && typeof r.runId === 'string') {
    env.store.tracker.observe(r, typeof arg.task === 'string' && command === 'codeact.run' ? arg.task : undefined);
    env.store.follow(r.runId);
  } else if (command === 'codeact.discard' && typeof arg.runId === 'string') {
    env.store.tracker.forget(arg.runId);
    void afterDiscard(env, r as Partial<DiscardReply>);
  }
}

/** A discarded run's document closes; the notification offers the server's Undo. */
async function afterDiscard(env: Env, reply: Partial<DiscardReply>): Promise<void> {
  if (reply.closeDocument) {
    const uri = reply.closeDocument;
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === uri);
    if (tabs.length > 0) {
      await vscode.window.tabGroups.close(tabs, true);
    }
  }
  const undo = reply.undo;
  const picked = await env.prompts.notify('info', 'CodeAct: run discarded.', ...(undo ? [undo.title] : []));
  if (undo && picked === undo.title) {
    await vscode.commands.executeCommand(undo.command, ...(undo.arguments ?? []));
  }
}

/** Save the run's edited trajectory first, so the live view goes on with the step (see logic). */
async function saveTrajectoryOf(env: Env, command: string, arg: Json): Promise<void> {
  const open = vscode.workspace.textDocuments.map((doc) => ({ doc, fsPath: doc.uri.scheme === 'file' ? doc.uri.fsPath : undefined, isDirty: doc.isDirty }));
  for (const { doc } of trajectoriesToSave(command, arg, open)) {
    if (!(await doc.save())) {
      env.log.appendLine(`[client] could not save ${vscode.workspace.asRelativePath(doc.uri)} before ${command}; the live view stays paused until it is saved`);
    }
  }
}

/**
 * The step lens: the step's account rendered — the server's hover on the step's header, shown
 * where the step is, so the trajectory keeps its width. Without the trajectory in an editor, a
 * rendered markdown preview of the same account.
 */
async function showStep(env: Env, runId: string, step: number, shown: Json | undefined): Promise<void> {
  const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.scheme === 'file' && e.document.uri.path.endsWith(`/.codeact/runs/${runId}.py`));
  if (editor) {
    const header = new RegExp(`^#.*\\bstep ${step}\\b`);
    for (let line = 0; line < editor.document.lineCount; line++) {
      if (header.test(editor.document.lineAt(line).text)) {
        await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
        const at = new vscode.Position(line, 0);
        editor.selection = new vscode.Selection(at, at);
        editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
        await vscode.commands.executeCommand('editor.action.showHover');
        return;
      }
    }
  }
  if (typeof shown?.markdown === 'string') {
    const uri = vscode.Uri.from({ scheme: 'codeact-preview', path: `/${runId}/step-${step}.md` });
    env.previews.set(uri, shown.markdown);
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  }
}

function isEmptyArgs(args: unknown): boolean {
  if (args === undefined || args === null) {
    return true;
  }
  return Array.isArray(args) ? args.length === 0 : typeof args === 'object' && Object.keys(args).length === 0;
}
