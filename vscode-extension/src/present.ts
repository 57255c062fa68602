// How the client words and decorates what the server reports: status words, codicons, ages, the
// Runs view's lines, Try Tool results, and which action fits an error. Pure functions (no `vscode`
// import) so node's test runner covers them; the data itself always comes from the server.

import * as path from 'path';
import { RunState, shellQuote, truncate } from './logic';

/** Words a person reads, not the trajectory's enum names (DESIGN.md §3 statuses). */
const STATUS_WORDS: Record<string, string> = {
  running: 'running',
  awaiting_approval: 'waiting for you',
  finished: 'finished',
  failed: 'failed',
  cancelled: 'cancelled',
  max_iters: 'step budget spent',
};

/** Codicons (render everywhere VS Code does, unlike emoji). */
const STATUS_ICONS: Record<string, string> = {
  running: 'sync~spin',
  awaiting_approval: 'debug-pause',
  finished: 'check',
  failed: 'error',
  cancelled: 'circle-slash',
  max_iters: 'warning',
};

export function statusWords(status: string): string {
  return STATUS_WORDS[status] ?? status.replace(/_/g, ' ');
}

export function statusIcon(status: string): string {
  return STATUS_ICONS[status] ?? 'circle-outline';
}

/** "12 s", "3 min 05 s", "2 h 10 min": how long something has taken. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  }
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "just now", "4 min ago", "3 h ago", "2 d ago". */
export function age(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 10) {
    return 'just now';
  }
  if (s < 60) {
    return `${s} s ago`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ago`;
  }
  return `${Math.floor(s / 86400)} d ago`;
}

/** A short rendering of the run's answer (outputs with one field show just the value). */
export function answerText(answer: unknown, max = 60): string | undefined {
  if (answer === undefined || answer === null) {
    return undefined;
  }
  let value: unknown = answer;
  if (typeof answer === 'object' && !Array.isArray(answer)) {
    const keys = Object.keys(answer as object);
    if (keys.length === 1) {
      value = (answer as Record<string, unknown>)[keys[0]];
    }
  }
  return truncate(typeof value === 'string' ? value : JSON.stringify(value), max);
}

/** The live part of a running run: "step 2 · 14 s · calling convert_currency". */
export function liveDetail(run: RunState, nowSeconds: number): string {
  const parts: string[] = [];
  const step = run.currentStep ?? run.steps;
  if (step) {
    parts.push(`step ${step}${run.maxIters ? ` of ${run.maxIters}` : ''}`);
  }
  if (run.createdAt) {
    parts.push(duration(nowSeconds - run.createdAt));
  }
  if (run.status === 'awaiting_approval') {
    // the status words say it
  } else if (run.tool) {
    parts.push(`calling ${run.tool}`);
  } else if (run.status === 'running') {
    parts.push('model writing');
  }
  return parts.join(' · ');
}

/** Status-bar text and tooltip for the runs in flight (codicons in `$(...)`). */
export function statusBarText(runs: readonly RunState[], nowSeconds: number = Date.now() / 1000): { text: string; tooltip: string } {
  const waiting = runs.filter((r) => r.status === 'awaiting_approval');
  if (runs.length === 0) {
    return { text: '$(hubot) CodeAct', tooltip: 'CodeAct: no run in progress. Click to show runs.' };
  }
  let text: string;
  if (runs.length === 1) {
    const [run] = runs;
    const detail = liveDetail(run, nowSeconds);
    text = `$(${statusIcon(run.status)}) CodeAct: ${statusWords(run.status)}${detail ? ` · ${detail}` : ''}`;
  } else {
    text =
      waiting.length > 0
        ? `$(debug-pause) CodeAct: ${waiting.length} waiting for you` + (runs.length > waiting.length ? `, ${runs.length - waiting.length} running` : '')
        : `$(sync~spin) CodeAct: ${runs.length} running`;
  }
  const lines = runs.map((r) => `${statusWords(r.status)}: ${truncate(r.task ?? r.runId, 60)}`);
  return { text, tooltip: lines.join('\n') };
}

/** The Runs view's description of a run (after its task). */
export function runDescription(run: RunState, nowSeconds: number): string {
  const live = run.status === 'running' || run.status === 'awaiting_approval';
  const parts = [statusWords(run.status)];
  if (live) {
    const detail = liveDetail(run, nowSeconds);
    if (detail) {
      parts.push(detail);
    }
    return parts.join(' · ');
  }
  if (run.steps !== undefined) {
    parts.push(`${run.steps} step${run.steps === 1 ? '' : 's'}`);
  }
  const when = run.updatedAt ?? run.createdAt;
  if (when) {
    parts.push(age(nowSeconds - when));
  }
  const answer = answerText(run.answer, 30);
  if (answer !== undefined && run.status === 'finished') {
    parts.push(`→ ${answer}`);
  }
  if (run.accepted) {
    parts.push('accepted');
  }
  return parts.join(' · ');
}

/**
 * The tree item's context value: which inline actions fit (package.json `view/item/context`
 * matches these words with `viewItem =~ /\bword\b/`).
 */
export function runContext(run: RunState): string {
  const words = ['run', run.status];
  const live = run.status === 'running' || run.status === 'awaiting_approval';
  if (live && run.live !== false) {
    words.push('cancellable');
  }
  if (run.status === 'awaiting_approval' && run.live !== false) {
    words.push('waiting');
  }
  if (run.status === 'finished' && !run.accepted) {
    words.push('acceptable');
  }
  if (!live) {
    words.push('followable', 'discardable');
  }
  if (run.status === 'max_iters' && run.live !== false) {
    words.push('continuable');
  }
  return words.join(' ');
}

/** A tool's failure as the server reports it (`codeact.tryTool` → `{error}`). */
export interface ToolFailure {
  type?: string;
  message?: string;
  file?: string | null;
  line?: number | null;
  traceback?: string;
}

/** Try Tool's outcome in words: the headline for a notification and the text for the output channel. */
export function formatTryResult(
  name: string,
  result: { result?: unknown; error?: ToolFailure | string | null; stdout?: string; durationMs?: number },
  workspace?: string,
): { ok: boolean; headline: string; details: string; location?: { file: string; line: number } } {
  const took = typeof result.durationMs === 'number' ? ` (${result.durationMs < 1 ? '<1' : Math.round(result.durationMs)} ms)` : '';
  const out: string[] = [];
  if (result.error !== undefined && result.error !== null) {
    const e: ToolFailure = typeof result.error === 'string' ? splitError(result.error) : result.error;
    const what = `${e.type ?? 'Error'}: ${e.message ?? ''}`.trim();
    const where = e.file && e.line ? `${workspace ? path.relative(workspace, e.file) || e.file : e.file}:${e.line}` : undefined;
    out.push(`${name} raised ${what}${took}`);
    if (where) {
      out.push(`  raised at ${where}`);
    }
    if (result.stdout) {
      out.push('  printed:', ...indent(result.stdout));
    }
    if (e.traceback) {
      out.push('  traceback:', ...indent(e.traceback));
    }
    return {
      ok: false,
      headline: `${name} raised ${truncate(what, 200)}${where ? ` at ${where}` : ''}`,
      details: out.join('\n'),
      location: e.file && e.line ? { file: e.file, line: e.line } : undefined,
    };
  }
  const value = result.result;
  const shown = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value, null, 2) ?? String(value);
  out.push(`${name} returned${took}:`, ...indent(shown));
  if (result.stdout) {
    out.push('  printed:', ...indent(result.stdout));
  }
  return { ok: true, headline: `${name} → ${truncate(JSON.stringify(value) ?? String(value), 200)}`, details: out.join('\n') };
}

function indent(text: string): string[] {
  return text.replace(/\s+$/, '').split('\n').map((l) => `    ${l}`);
}

function splitError(text: string): ToolFailure {
  const m = /^(\w[\w.]*):\s*([\s\S]*)$/.exec(text);
  return m ? { type: m[1], message: m[2] } : { message: text };
}

/** A button offered with an error, and what it does. */
export type ErrorAction = { title: string; kind: 'openConfig' } | { title: string; kind: 'settings'; query: string } | { title: string; kind: 'showLog' };

/** The buttons that fit a server error: open the config it names, the setting it names, or the log. */
export function errorActions(message: string): ErrorAction[] {
  const actions: ErrorAction[] = [];
  const mentionsConfig = /\[tool\.codeact\]|pyproject\.toml|codeact\.toml/.test(message);
  if (mentionsConfig) {
    actions.push({ title: 'Open pyproject.toml', kind: 'openConfig' });
  }
  if (/no model configured/i.test(message)) {
    actions.push({ title: 'Settings', kind: 'settings', query: 'codeact.model' });
  } else {
    const setting = /\bcodeact\.[a-z][\w.]*/i.exec(message.replace(/codeact\.toml/g, ''));
    if (setting && !/^codeact\.(run|getRun|cancel|approve|reject|accept|rerun|followUp|listTools|tryTool|runTasks|discard|listRuns|showStep|acceptPreview)\b/.test(setting[0])) {
      actions.push({ title: 'Settings', kind: 'settings', query: setting[0] });
    } else if (mentionsConfig) {
      actions.push({ title: 'Settings', kind: 'settings', query: 'codeact' });
    }
  }
  if (actions.length === 0) {
    actions.push({ title: 'Show Log', kind: 'showLog' });
  }
  return actions;
}

/** The server's message as a person reads it: capitalised, prefixed once with "CodeAct:". */
export function errorText(message: string): string {
  const m = message.replace(/^CodeAct:\s*/, '').trim();
  return `CodeAct: ${m.charAt(0).toUpperCase()}${m.slice(1)}`;
}

/**
 * Where the server package can be installed from on this machine: the wheel bundled in the VSIX
 * (`bundled/codeact_lsp-*.whl`), else the source checkout the extension runs from. `codeact-lsp`
 * is not on PyPI, so a bare `pip install codeact-lsp` would fail on a fresh machine.
 */
export function installSource(bundledWheels: readonly string[], checkout: string | undefined): string | undefined {
  const wheel = [...bundledWheels].filter((w) => /codeact_lsp-.*\.whl$/.test(w)).sort().pop();
  return wheel ?? checkout;
}

/** The one command that installs the server into `python`, or undefined when there is no source. */
export function installCommandFor(python: string, source: string | undefined): string | undefined {
  return source ? `${shellQuote(python)} -m pip install ${shellQuote(source)}` : undefined;
}

/** Server log lines that are noise to a user (routine, harmless, and worded like a problem). */
export function isLogNoise(line: string): boolean {
  return /Cancel notification for unknown message id/.test(line);
}

/**
 * A log line as the user should read it. vscode-languageclient reports every server exit as an
 * error, also the clean one (code 0) that ends each restart: that one is information.
 */
export function logLine(line: string): string {
  return line.replace(/^\[Error( - [^\]]*)\] (Server process exited with code 0\.)$/, '[Info$1] $2');
}

/** The server's lens glyphs (portable Unicode for any editor) and the codicons VS Code draws instead. */
const GLYPH_ICONS: Array<[RegExp, string]> = [
  [/✗ Reject/g, '$(close) Reject'],
  [/[✓✔]/g, '$(check)'],
  [/✗/g, '$(error)'],
  [/⏸/g, '$(debug-pause)'],
  [/⟳/g, '$(sync~spin)'],
  [/⊘/g, '$(circle-slash)'],
  [/∅/g, '$(circle-outline)'],
  [/■/g, '$(debug-stop)'],
  [/⚠/g, '$(warning)'],
  [/🗑\uFE0F?/gu, '$(trash)'],
  [/↪/g, '$(reply)'],
  [/[▶▷]/g, '$(play)'],
  [/↻/g, '$(debug-restart)'],
  [/⏩/g, '$(debug-continue)'],
  [/^… /, '$(ellipsis) '],
];

/** A lens title with codicons for the glyphs (emoji render as empty boxes without an emoji font). */
export function codiconTitle(title: string): string {
  let out = title;
  for (const [glyph, icon] of GLYPH_ICONS) {
    out = out.replace(glyph, icon);
  }
  return out;
}

/** The `[[task]]` tables of a task-suite file: each one's `name` and the line of its header. */
export function findTasks(text: string): Array<{ name: string; line: number }> {
  const lines = text.split('\n');
  const out: Array<{ name: string; line: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\[\[\s*task\s*\]\]/.test(lines[i])) {
      continue;
    }
    for (let j = i + 1; j < lines.length && !/^\s*\[/.test(lines[j]); j++) {
      const m = /^\s*name\s*=\s*["']([^"']+)["']/.exec(lines[j]);
      if (m) {
        out.push({ name: m[1], line: i });
        break;
      }
    }
  }
  return out;
}
