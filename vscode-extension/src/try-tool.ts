// Try Tool: pick the tool, type its arguments (a template from its schema), call it through the
// server's tool host, and show what came back in words: the value, or the error type and message
// with the raising line of the tool's file one click away.

import * as vscode from 'vscode';
import { Env } from './env';
import { argsTemplate, parseToolArgs, truncate } from './logic';
import { formatTryResult } from './present';
import { ToolSchema } from './protocol';

type Json = Record<string, unknown>;

export async function toolSchemas(env: Env): Promise<ToolSchema[]> {
  const listed = await env.conn.call('codeact.listTools', {});
  return (listed?.tools ?? []).filter((t) => t && typeof t.name === 'string');
}

/** The arguments for `name`, asked with a template; `{}` when the tool takes none; undefined = Escape. */
export async function askToolArgs(env: Env, name: string): Promise<Json | unknown[] | undefined> {
  let template = '{}';
  let signature = name;
  try {
    const schema = (await toolSchemas(env)).find((t) => t.name === name);
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
  const text = await env.prompts.input({
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

/** The palette's "Try Tool…": which tool first, then the same flow as the lens. */
export async function pickTool(env: Env): Promise<string | undefined> {
  const tools = await toolSchemas(env);
  if (tools.length === 0) {
    void env.prompts.notify('warning', 'CodeAct: no tools found. Configure `tools` in [tool.codeact] (default: tools.py, tools/**/*.py).');
    return undefined;
  }
  const picked = await env.prompts.pick(
    tools.map((t) => ({ label: String(t.name), description: typeof t.signature === 'string' ? t.signature : '', detail: typeof t.doc === 'string' ? t.doc : '' })),
    { title: 'CodeAct: Try which tool?', matchOnDescription: true },
  );
  return picked?.label;
}

/** Show the outcome: the output channel gets the whole account, the notification its headline. */
export function showToolResult(env: Env, name: string, result: unknown): void {
  const root = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
  const shown = formatTryResult(name, (result ?? {}) as Parameters<typeof formatTryResult>[1], root);
  env.log.appendLine(`[try] ${shown.details}`);
  if (shown.ok) {
    void env.prompts.notify('info', `CodeAct: ${shown.headline}`, 'Show Output').then((c) => c && env.log.show(true));
    return;
  }
  const where = shown.location;
  const open = where ? `Open ${vscode.workspace.asRelativePath(where.file)}:${where.line}` : undefined;
  void env.prompts.notify('error', `CodeAct: ${shown.headline}`, ...(open ? [open] : []), 'Show Output').then(async (c) => {
    if (c === open && where) {
      const line = Math.max(0, where.line - 1);
      await vscode.window.showTextDocument(vscode.Uri.file(where.file), { selection: new vscode.Range(line, 0, line, 0), preview: false });
    } else if (c) {
      env.log.show(true);
    }
  });
}
