// The codeact.* command contract: arguments and replies (docs/protocol.md).
// Generated from the server's pydantic models by `python -m codeact_lsp.lsp.protocol_ts`;
// do not edit by hand (tests/lsp/test_protocol_ts.py checks that it is current).

export interface AcceptArgs {
  runId: string;
  mode?: "target" | "newFile" | "insertAtEnd";
  newFileUri?: string | null;
  /** replace the run's selection (else insert after it) */
  replace?: boolean;
  /** the function's name (default: the task's) */
  name?: string | null;
  /** "script" adds an `if __name__ == "__main__":` block */
  form?: ("function" | "script") | null;
  /** ask the editor to show its preview before applying (change annotations) */
  confirm?: boolean;
}

/** A button after a refused Accept: its words, and the mode or client action it stands for. */
export interface AcceptChoice {
  label: string;
  mode?: string | null;
  action?: string | null;
}

export interface AcceptHunk {
  range: Range | null;
  newText: string;
  kind: string;
}

/** What a diff needs: the target, the text to insert and the document after Accept. */
export interface AcceptPreview {
  ok: boolean;
  reason: string | null;
  alternatives: string[];
  targetUri: string;
  range: Range | null;
  version: number | null;
  createsFile: boolean;
  newText: string;
  documentAfter: string | null;
  program: string;
  choices?: AcceptChoice[];
  edits?: AcceptHunk[];
  functionRange?: Range | null;
  name?: string;
  message?: string | null;
  selection?: boolean;
}

export interface AcceptReply {
  applied: boolean;
  reason?: string | null;
  alternatives?: string[] | null;
  choices?: AcceptChoice[] | null;
  cancelled?: boolean | null;
  uri?: string | null;
  version?: number | null;
  range?: Range | null;
  name?: string | null;
  created?: boolean | null;
  message?: string | null;
}

/** Where and what Accept applied, so the views can tell whether it is still there. */
export interface Acceptance {
  uri: string;
  range?: (Record<string, unknown>) | null;
  text: string;
  version?: number | null;
  at?: number;
  mode?: string | null;
  name?: string;
}

export interface ApproveArgs {
  runId: string;
  /** your edited version of the pending step */
  code?: string | null;
}

export interface ApproveReply {
  status: "running" | "awaiting_approval" | "finished" | "failed" | "cancelled" | "max_iters";
  step: number | null;
  edited: boolean;
}

/** A command the client may offer as a button (e.g. "Undo discard"). */
export interface CommandRef {
  title: string;
  command: string;
  arguments: Array<Record<string, unknown>>;
}

export interface DiscardReply {
  discarded: boolean;
  closeDocument?: string | null;
  undo?: CommandRef | null;
}

/** Where a tool raised, in the tool's own source (the editor puts a diagnostic there). */
export interface ErrorLocation {
  type: string;
  message: string;
  file?: string | null;
  line?: number | null;
  traceback?: string;
  exception?: (Record<string, unknown>) | null;
}

export interface FollowUpArgs {
  runId: string;
  task: string;
  replay?: "recorded" | "real";
}

export interface ListRunsArgs {
  /** also the discarded runs (marked `discarded`), to restore one */
  includeDiscarded?: boolean;
}

export type NoArgs = Record<string, never>;

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** How a re-run or follow-up got the earlier steps' state (shown by every view). */
export interface Rebuild {
  session?: "live" | "rebuilt" | "fresh";
  mode?: "recorded" | "real";
  reason?: string;
  steps?: RebuiltStep[];
  divergence?: ReplayDivergence | null;
  choice?: ("pending" | "real" | "stop") | null;
}

/** One earlier step run again to rebuild a session's state. */
export interface RebuiltStep {
  run_id: string;
  index: number;
  mode?: "recorded" | "real";
  status?: "matched" | "diverged" | "ran" | "rejected" | "failed";
  calls?: number;
  tool_calls?: ToolCall[];
}

export interface RejectArgs {
  runId: string;
  feedback?: string | null;
}

export interface RejectReply {
  status: "running" | "awaiting_approval" | "finished" | "failed" | "cancelled" | "max_iters";
  step: number | null;
}

/** Where replayed code stopped matching its record: the state from there on is not rebuilt. */
export interface ReplayDivergence {
  run_id: string;
  step: number;
  call?: number | null;
  expected?: string | null;
  got?: string | null;
  message?: string;
}

export interface RerunArgs {
  runId: string;
  step: number;
  code?: string | null;
  replay?: "recorded" | "real";
}

export interface RestoreReply {
  restored: boolean;
  runId: string;
  trajectoryUri: string;
}

/** The first thing that went wrong in a task's run: a tool's exception or a step's error. */
export interface RootError {
  kind: "tool" | "step";
  type: string;
  message: string;
  step: number;
  line?: number | null;
  tool?: string | null;
  file?: string | null;
  file_line?: number | null;
}

export interface RunArgs {
  /** what the agent should do */
  task: string;
  /** e.g. "question -> answer: float" */
  signature?: string | null;
  inputs?: Record<string, unknown>;
  /** document Accept writes the program into */
  uri?: string | null;
  range?: Range | null;
  model?: string | null;
  approval?: ("auto" | "review" | "confirm-tools") | null;
  maxIters?: number | null;
}

export interface RunIdArgs {
  runId: string;
}

export interface RunList {
  runs: RunSummary[];
}

/** codeact.run / rerun / followUp: the run goes on in the background. */
export interface RunStarted {
  runId: string;
  trajectoryUri: string;
}

/** A run as the Runs view shows it: codeact.listRuns, and each `codeact/runState` push. */
export interface RunSummary {
  runId: string;
  task: string;
  status: "running" | "awaiting_approval" | "finished" | "failed" | "cancelled" | "max_iters";
  trajectoryUri: string;
  live: boolean;
  accepted: boolean;
  updatedAt: number;
  createdAt: number;
  steps: number;
  currentStep?: number | null;
  tool?: string | null;
  pendingStep?: number | null;
  answer?: (Record<string, unknown>) | null;
  error?: string | null;
  maxIters: number;
  discarded?: boolean;
  parent?: string | null;
}

export interface RunTasksArgs {
  file?: string | null;
  names?: string[] | null;
}

export interface SandboxInfo {
  backend?: string;
  isolation?: string[];
  not_enforced?: string[];
}

/** codeact.cancel. */
export interface StatusReply {
  status: "running" | "awaiting_approval" | "finished" | "failed" | "cancelled" | "max_iters";
}

export interface Step {
  index: number;
  code?: string;
  stdout?: string;
  stderr?: string;
  value?: string | null;
  error?: StepError | null;
  tool_calls?: ToolCall[];
  duration_ms?: number;
  usage?: Usage;
  status?: "proposed" | "awaiting_approval" | "running" | "ok" | "error" | "rejected" | "no_code" | "cancelled";
  reply?: string;
  feedback?: string | null;
  edited?: boolean;
  state_lost?: boolean;
  final?: boolean;
  model_duration_ms?: number;
  started_at?: number | null;
  replayed?: boolean;
  reexecuted?: boolean;
  extracted?: boolean;
  cut_off?: boolean;
  tool_calls_omitted?: number;
}

export interface StepError {
  type: string;
  message: string;
  line?: number | null;
  traceback?: string;
}

export interface StepReply {
  step: Step;
  markdown: string;
}

export interface SuiteReply {
  file: string;
  results: TaskResult[];
  passed: number;
  total: number;
}

/** Where Accept will put the program: a document, a range in it, and the text seen at start. */
export interface Target {
  uri: string;
  range?: (Record<string, unknown>) | null;
  version?: number | null;
  text?: string | null;
}

/** One run of a task and its verdict. Also what MCP's `run_task` answers (a run with no expected answer: `passed` is "it finished") and what the editor keeps for its lenses. */
export interface TaskResult {
  name: string;
  passed: boolean;
  status: string;
  answer?: unknown;
  outputs?: (Record<string, unknown>) | null;
  message?: string;
  error?: string | null;
  run_id?: string | null;
  trajectory?: string | null;
  steps?: number;
  duration_s?: number;
  scripted?: boolean;
  root_error?: RootError | null;
  consequence?: string;
  isolation?: "fresh" | "shared";
  tool_host_pid?: number | null;
  model?: string;
  repeat?: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  cost_usd?: number | null;
  node?: string | null;
  attempts?: number;
}

export interface ToolCall {
  name: string;
  args?: Record<string, unknown>;
  result?: unknown;
  error?: string | null;
  duration_ms?: number;
  error_detail?: ErrorLocation | null;
  stdout?: string;
  line?: number | null;
  wire?: unknown;
}

/** Something about a tool module that leaves the model guessing or stops tools from loading. */
export interface ToolDiagnostic {
  file: string;
  line?: number;
  end_line?: number | null;
  column?: number;
  severity?: "error" | "warning" | "info" | "hint";
  message: string;
  code: string;
  tool?: string | null;
  source?: "static" | "runtime" | "config";
}

export interface ToolList {
  tools: ToolSchema[];
  diagnostics: ToolDiagnostic[];
  error?: string | null;
}

/** A tool as served at runtime: what the prompt shows and what arguments are validated against. */
export interface ToolSchema {
  name: string;
  module?: string;
  signature: string;
  doc?: string;
  parameters?: Record<string, unknown>;
  returns?: (Record<string, unknown>) | null;
  confirm?: boolean;
  is_async?: boolean;
  kind?: "function" | "async" | "method" | "callable" | "partial" | "builtin";
  file?: string | null;
  line?: number | null;
  validated?: boolean;
  local?: string | null;
}

export interface Trajectory {
  id: string;
  task: string;
  signature?: string;
  model?: string;
  status?: "running" | "awaiting_approval" | "finished" | "failed" | "cancelled" | "max_iters";
  outputs?: (Record<string, unknown>) | null;
  error?: string | null;
  steps?: Step[];
  usage?: Usage;
  sandbox?: SandboxInfo;
  inputs?: Record<string, unknown>;
  scripted?: boolean;
  approval?: string;
  max_iters?: number;
  workspace?: string | null;
  target?: Target | null;
  parent?: string | null;
  created_at?: number;
  updated_at?: number;
  program?: string | null;
  relation?: ("follow_up" | "rerun") | null;
  rerun_from?: number | null;
  rebuild?: Rebuild | null;
  pid?: number | null;
  extracted?: boolean;
  discarded_at?: number | null;
  accepted?: Acceptance | null;
}

export interface TryResult {
  result?: unknown;
  error?: ErrorLocation | null;
  stdout: string;
  durationMs: number;
}

export interface TryToolArgs {
  name: string;
  args?: (Record<string, unknown>) | unknown[];
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  cost_usd?: number | null;
}

/** Each command's one JSON-object argument and its reply. */
export interface Commands {
  "codeact.run": { args: RunArgs; reply: RunStarted };
  "codeact.getRun": { args: RunIdArgs; reply: Trajectory };
  "codeact.cancel": { args: RunIdArgs; reply: StatusReply };
  "codeact.approve": { args: ApproveArgs; reply: ApproveReply };
  "codeact.reject": { args: RejectArgs; reply: RejectReply };
  "codeact.accept": { args: AcceptArgs; reply: AcceptReply };
  "codeact.rerun": { args: RerunArgs; reply: RunStarted };
  "codeact.followUp": { args: FollowUpArgs; reply: RunStarted };
  "codeact.listTools": { args: NoArgs; reply: ToolList };
  "codeact.tryTool": { args: TryToolArgs; reply: TryResult };
  "codeact.runTasks": { args: RunTasksArgs; reply: SuiteReply };
  "codeact.acceptPreview": { args: AcceptArgs; reply: AcceptPreview };
  "codeact.discard": { args: RunIdArgs; reply: DiscardReply };
  "codeact.restore": { args: RunIdArgs; reply: RestoreReply };
  "codeact.listRuns": { args: ListRunsArgs; reply: RunList };
  "codeact.showStep": { args: RerunArgs; reply: StepReply };
}

export type CommandName = keyof Commands;
