// The little logic the client has, kept free of the `vscode` module so it runs under node's test
// runner. Everything a user sees about a run comes from the server; these helpers only decide which
// interpreter starts it, which run a command is about, and how to word what the client itself shows.

import * as path from 'path';

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['finished', 'failed', 'cancelled', 'max_iters']);

/** Where the server interpreter came from, so an error message can tell the user what to change. */
export type PythonSource = 'setting' | 'environment' | 'workspace venv' | 'default';

export interface PythonChoice {
  python: string;
  source: PythonSource;
}

/**
 * The interpreter that runs `python -m codeact_lsp`: the setting, then `CODEACT_PYTHON`, then the
 * first workspace folder's `.venv`/`venv` (where `pip install -e .` usually put the server), then
 * `python3`. `exists` is injected so the order can be tested without a file system.
 */
export function chooseServerPython(
  setting: string | undefined,
  env: Record<string, string | undefined>,
  workspaceFolders: readonly string[],
  exists: (file: string) => boolean,
  platform: string = process.platform,
): PythonChoice {
  const configured = (setting ?? '').trim();
  if (configured) {
    return { python: expandHome(configured, env), source: 'setting' };
  }
  const fromEnv = (env.CODEACT_PYTHON ?? '').trim();
  if (fromEnv) {
    return { python: expandHome(fromEnv, env), source: 'environment' };
  }
  const bin = platform === 'win32' ? path.join('Scripts', 'python.exe') : path.join('bin', 'python');
  for (const folder of workspaceFolders) {
    for (const venv of ['.venv', 'venv']) {
      const candidate = path.join(folder, venv, bin);
      if (exists(candidate)) {
        return { python: candidate, source: 'workspace venv' };
      }
    }
  }
  return { python: platform === 'win32' ? 'python' : 'python3', source: 'default' };
}

function expandHome(p: string, env: Record<string, string | undefined>): string {
  const home = env.HOME ?? env.USERPROFILE;
  if (home && (p === '~' || p.startsWith('~/'))) {
    return path.join(home, p.slice(1));
  }
  return p;
}

/** Quote one shell word only when it needs it, so the suggested command stays copy-pasteable. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Result of probing the interpreter before starting the server. */
export type ProbeOutcome = { ok: true } | { ok: false; reason: 'no-python' | 'no-package' | 'too-old'; detail: string };

/**
 * Interpret the probe `python -c <PROBE_SCRIPT>`: exit 0 = ready, 3 = package missing,
 * 4 = Python too old; a spawn error (ENOENT) means there is no such interpreter.
 */
export function interpretProbe(exitCode: number | null, spawnError: string | undefined, output: string): ProbeOutcome {
  if (spawnError) {
    return { ok: false, reason: 'no-python', detail: spawnError };
  }
  if (exitCode === 0) {
    return { ok: true };
  }
  if (exitCode === 4) {
    return { ok: false, reason: 'too-old', detail: output.trim() };
  }
  if (exitCode === 3) {
    return { ok: false, reason: 'no-package', detail: output.trim() };
  }
  return { ok: false, reason: 'no-python', detail: output.trim() || `exited with code ${exitCode}` };
}

export const PROBE_SCRIPT =
  'import sys, importlib.util\n' +
  'if sys.version_info < (3, 11):\n    print(sys.version.split()[0]); sys.exit(4)\n' +
  'sys.exit(0 if importlib.util.find_spec("codeact_lsp") else 3)\n';

/**
 * The sentence shown when the server cannot start, with the fix in it. `install`: the command
 * that installs the server into that interpreter (see present.ts `installCommandFor`), if known.
 */
export function probeMessage(outcome: ProbeOutcome, choice: PythonChoice, install?: string): string {
  if (outcome.ok) {
    return '';
  }
  const where = choice.source === 'setting' ? ' (setting codeact.server.python)' : choice.source === 'environment' ? ' (CODEACT_PYTHON)' : '';
  const how = install ? `Install it with: ${install}` : 'Install the codeact-lsp package from its source checkout into it (pip install PATH/TO/codeact-lsp).';
  switch (outcome.reason) {
    case 'no-package':
      return `CodeAct: the language server is not installed in ${choice.python}${where}. ${how}`;
    case 'too-old':
      return `CodeAct: ${choice.python}${where} is Python ${outcome.detail}; the server needs Python 3.11 or newer. Set codeact.server.python to a newer interpreter.`;
    case 'no-python':
      return `CodeAct: cannot run ${choice.python}${where}: ${outcome.detail}. Set codeact.server.python to a Python 3.11+ interpreter that has the codeact-lsp package.`;
  }
}

/** True when a pyproject.toml text has a `[tool.codeact]` table (or one of its sub-tables). */
export function hasCodeactTable(pyprojectText: string): boolean {
  if (/^\s*\[\s*tool\s*\.\s*codeact\s*[\].]/m.test(pyprojectText)) {
    return true;
  }
  // `[tool]` with an inline `codeact = {...}` table.
  return /^\s*\[\s*tool\s*\]/m.test(pyprojectText) && /^\s*codeact\s*=/m.test(pyprojectText);
}

/** The run a trajectory document (`<ws>/.codeact/runs/<id>.py`) shows, else undefined. */
export function runIdFromPath(fsPath: string): string | undefined {
  const parts = fsPath.split(/[\\/]/);
  const n = parts.length;
  if (n < 3 || parts[n - 2] !== 'runs' || parts[n - 3] !== '.codeact') {
    return undefined;
  }
  const file = parts[n - 1];
  return file.endsWith('.py') && file.length > 3 ? file.slice(0, -3) : undefined;
}

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface RunInput {
  task: string;
  signature?: string;
  inputs?: Record<string, unknown>;
  model?: string;
  approval?: string;
  maxIters?: number;
}

/** The `codeact.run` argument: the user's task plus where Accept should write (DESIGN.md §3). */
export function buildRunArgs(input: RunInput, target?: { uri: string; range?: LspRange }): Record<string, unknown> {
  const args: Record<string, unknown> = { task: input.task.trim() };
  const signature = input.signature?.trim();
  if (signature) {
    args.signature = signature;
  }
  if (input.inputs && Object.keys(input.inputs).length > 0) {
    args.inputs = input.inputs;
  }
  for (const key of ['model', 'approval'] as const) {
    const v = input[key]?.trim();
    if (v) {
      args[key] = v;
    }
  }
  if (input.maxIters !== undefined) {
    args.maxIters = input.maxIters;
  }
  if (target) {
    args.uri = target.uri;
    if (target.range) {
      args.range = target.range;
    }
  }
  return args;
}

/** Input-box check for the task; undefined = fine (the VS Code convention). */
export function validateTask(text: string): string | undefined {
  return text.trim() ? undefined : 'Describe what the agent should do, e.g. "What does 3× SKU-42 shipped to DE cost in EUR?"';
}

/** Input-box check for the optional signature `inputs -> outputs`. */
export function validateSignature(text: string): string | undefined {
  const s = text.trim();
  if (!s) {
    return undefined;
  }
  const parts = s.split('->');
  if (parts.length !== 2 || !parts[1].trim()) {
    return 'A signature looks like "question -> answer" or "sku: str, units: int -> total_eur: float" (leave empty for task -> answer).';
  }
  return undefined;
}

/** Parse the JSON arguments typed for Try Tool: an object (by name) or a list (by position). */
export function parseToolArgs(text: string): { ok: true; value: Record<string, unknown> | unknown[] } | { ok: false; message: string } {
  const s = text.trim();
  if (!s) {
    return { ok: true, value: {} };
  }
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch (e) {
    return { ok: false, message: `Not JSON: ${(e as Error).message}. Type e.g. {"amount": 10, "from_currency": "USD"}` };
  }
  if (Array.isArray(value) || (typeof value === 'object' && value !== null)) {
    return { ok: true, value: value as Record<string, unknown> | unknown[] };
  }
  return { ok: false, message: 'Type a JSON object of arguments by name, or a JSON list by position.' };
}

/** A starting point for the Try Tool input box, from the tool's JSON-schema parameters. */
export function argsTemplate(parameters: unknown): string {
  const props = (parameters as { properties?: Record<string, { type?: unknown; default?: unknown }> } | undefined)?.properties;
  if (!props || typeof props !== 'object') {
    return '{}';
  }
  const sample: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(props)) {
    if (schema && 'default' in schema) {
      sample[name] = schema.default;
      continue;
    }
    const t = Array.isArray(schema?.type) ? schema.type[0] : schema?.type;
    sample[name] =
      t === 'integer' || t === 'number' ? 0 : t === 'boolean' ? false : t === 'array' ? [] : t === 'object' ? {} : t === 'null' ? null : '';
  }
  return JSON.stringify(sample);
}

/** Settings only the client reads; the server would take them for workspace-configuration keys. */
export const CLIENT_ONLY_SETTINGS: readonly string[] = ['server', 'trace', 'accept'];

/** The `codeact` section as the server should see it: client-only settings and unset values left out. */
export function serverSettings(section: unknown): unknown {
  if (section === null || typeof section !== 'object' || Array.isArray(section)) {
    return section;
  }
  const copy: Record<string, unknown> = { ...(section as Record<string, unknown>) };
  for (const key of CLIENT_ONLY_SETTINGS) {
    delete copy[key];
  }
  return pruneSettings(copy);
}

/**
 * Unset values (empty strings, nulls, empty objects) left out, so the workspace file's value
 * applies instead of an empty one.
 */
export function pruneSettings(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value;
  }
  if (value === null || typeof value !== 'object') {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === null || v === undefined || v === '') {
      continue;
    }
    const pruned = pruneSettings(v);
    if (pruned !== null && typeof pruned === 'object' && !Array.isArray(pruned) && Object.keys(pruned).length === 0) {
      continue;
    }
    out[k] = pruned;
  }
  return out;
}

/**
 * What the server pushes about a run (`codeact/runState`) and lists (`codeact.listRuns`): the
 * protocol's RunSummary, with every field but the id optional (a command's answer says less).
 */
export interface RunState {
  runId: string;
  task?: string;
  status: string;
  trajectoryUri?: string;
  /** Steps so far. */
  steps?: number;
  /** The step being written or run, while the run is live. */
  currentStep?: number | null;
  /** The tool being called right now, if any. */
  tool?: string | null;
  /** Unix seconds. */
  createdAt?: number;
  updatedAt?: number;
  answer?: unknown;
  error?: string | null;
  accepted?: boolean;
  discarded?: boolean;
  /** The server holds the run's engine handle (it can still be cancelled, approved, continued). */
  live?: boolean;
  maxIters?: number;
  pendingStep?: number | null;
  parent?: string | null;
}

export interface TrackedRun extends RunState {
  /** Order of the last change this window saw (newest first in pickers). */
  updated: number;
}

const STATE_KEYS = [
  'task',
  'status',
  'trajectoryUri',
  'steps',
  'currentStep',
  'tool',
  'createdAt',
  'updatedAt',
  'answer',
  'error',
  'accepted',
  'discarded',
  'live',
  'maxIters',
  'pendingStep',
  'parent',
] as const;

/** Runs as the server last described them, so the views and run pickers need no extra request. */
export class RunTracker {
  private readonly runs = new Map<string, TrackedRun>();
  private clock = 0;
  private readonly listeners: Array<(run: TrackedRun) => void> = [];

  onChange(listener: (run: TrackedRun) => void): { dispose(): void } {
    this.listeners.push(listener);
    return {
      dispose: () => {
        const i = this.listeners.indexOf(listener);
        if (i >= 0) {
          this.listeners.splice(i, 1);
        }
      },
    };
  }

  /**
   * Record what the server said about a run: a pushed or listed run state, a `codeact.run`
   * answer (`{runId, trajectoryUri}`), or a command's `{runId, status}`. Fields left out keep
   * their last value; listeners hear only real changes.
   */
  observe(value: unknown, task?: string): TrackedRun | undefined {
    if (!value || typeof value !== 'object') {
      return undefined;
    }
    const v = value as Record<string, unknown>;
    const runId = typeof v.runId === 'string' ? v.runId : undefined;
    if (!runId) {
      return undefined;
    }
    const prev = this.runs.get(runId);
    const run: TrackedRun = { ...(prev ?? { runId, status: 'running' }), runId, updated: prev?.updated ?? 0 };
    const fields = run as unknown as Record<string, unknown>;
    for (const key of STATE_KEYS) {
      if (key in v && v[key] !== undefined) {
        fields[key] = v[key];
      }
    }
    if (run.task === undefined && task !== undefined) {
      run.task = task;
    }
    const changed = !prev || STATE_KEYS.some((k) => JSON.stringify(prev[k]) !== JSON.stringify(run[k]));
    if (!changed) {
      return prev;
    }
    run.updated = ++this.clock;
    this.runs.set(runId, run);
    for (const l of [...this.listeners]) {
      l(run);
    }
    return run;
  }

  forget(runId: string): void {
    const run = this.runs.get(runId);
    if (run && this.runs.delete(runId)) {
      for (const l of [...this.listeners]) {
        l({ ...run, discarded: true });
      }
    }
  }

  get(runId: string): TrackedRun | undefined {
    return this.runs.get(runId);
  }

  /** Most recently changed first. */
  all(): TrackedRun[] {
    return [...this.runs.values()].sort((a, b) => b.updated - a.updated);
  }

  active(): TrackedRun[] {
    return this.all().filter((r) => !TERMINAL_STATUSES.has(r.status));
  }
}

export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/**
 * Which run a command is about: an explicit id, else the trajectory document in front of the user,
 * else the only candidate; undefined means "ask" (a quick pick over `candidates`).
 */
export function resolveRunId(
  explicit: unknown,
  activeDocumentPath: string | undefined,
  candidates: readonly TrackedRun[],
): string | undefined {
  if (explicit && typeof explicit === 'object' && typeof (explicit as { runId?: unknown }).runId === 'string') {
    return (explicit as { runId: string }).runId;
  }
  if (typeof explicit === 'string' && explicit) {
    return explicit;
  }
  const fromDoc = activeDocumentPath ? runIdFromPath(activeDocumentPath) : undefined;
  if (fromDoc) {
    return fromDoc;
  }
  return candidates.length === 1 ? candidates[0].runId : undefined;
}

/** The first object argument of a command call (the server's commands take exactly one). */
export function firstArg(args: readonly unknown[] | undefined): Record<string, unknown> {
  const a = args?.[0];
  return a && typeof a === 'object' && !Array.isArray(a) ? { ...(a as Record<string, unknown>) } : {};
}

/** Apply one LSP range replacement to a text (for the Accept preview's right-hand side). */
export function applyRangeEdit(text: string, range: LspRange | undefined, newText: string): string {
  if (!range) {
    return newText;
  }
  const offset = (p: LspPosition): number => {
    let line = 0;
    let i = 0;
    while (line < p.line) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) {
        return text.length;
      }
      i = nl + 1;
      line++;
    }
    const eol = text.indexOf('\n', i);
    const lineEnd = eol < 0 ? text.length : eol;
    return Math.min(i + p.character, lineEnd);
  };
  const a = offset(range.start);
  const b = Math.max(a, offset(range.end));
  return text.slice(0, a) + newText + text.slice(b);
}

/** One line per task-suite result for the output channel, whatever shape the server's entries take. */
export function describeTaskResults(result: unknown): { lines: string[]; passed: number; total: number } {
  const raw = result as { results?: unknown; tasks?: unknown } | unknown[] | undefined;
  const list: unknown[] = Array.isArray(raw) ? raw : Array.isArray(raw?.results) ? raw.results : Array.isArray(raw?.tasks) ? raw.tasks : [];
  let passed = 0;
  const lines = list.map((entry, i) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const ok = e.passed === true || e.ok === true || e.status === 'passed';
    if (ok) {
      passed++;
    }
    const name = typeof e.name === 'string' ? e.name : `task ${i + 1}`;
    const why = typeof e.reason === 'string' ? e.reason : typeof e.error === 'string' ? e.error : typeof e.message === 'string' ? e.message : '';
    const answer = 'answer' in e ? ` · answer ${JSON.stringify(e.answer)}` : 'outputs' in e ? ` · ${JSON.stringify(e.outputs)}` : '';
    return `${ok ? '✓' : '✗'} ${name}${answer}${why && !ok ? ` · ${why}` : ''}`;
  });
  return { lines, passed, total: list.length };
}

/** Commands that run or replace a run's pending step: the server takes edited steps from its document. */
export const STEP_COMMANDS: ReadonlySet<string> = new Set(['codeact.approve', 'codeact.rerun', 'codeact.reject']);

export interface OpenDocument {
  /** File path, or undefined for a document that is not a file. */
  fsPath: string | undefined;
  isDirty: boolean;
}

/**
 * The open documents to save before forwarding `command`: the run's trajectory, when it has unsaved
 * edits. The server does not rewrite a dirty trajectory (no save conflict), so a step approved from
 * an edited document would otherwise leave the live view paused until the person saves.
 */
export function trajectoriesToSave<T extends OpenDocument>(command: string, arg: Record<string, unknown>, docs: readonly T[]): T[] {
  const runId = arg.runId;
  if (!STEP_COMMANDS.has(command) || typeof runId !== 'string' || !runId) {
    return [];
  }
  return docs.filter((d) => d.isDirty && d.fsPath !== undefined && runIdFromPath(d.fsPath) === runId);
}
