// What Accept will write, as the server describes it — kept apart from the `vscode` module so the
// shapes it understands can be unit-tested.

import { LspRange, applyRangeEdit } from './logic';

/** What the server says Accept will do, in the shapes this client understands. */
export interface AcceptPlan {
  runId: string;
  targetUri?: string;
  /** Text of the whole target after Accept (what the diff's right side shows). */
  after: string;
  /** Human summary for the confirmation dialog. */
  summary: string;
  /** Accept creates the target (the "New File" alternative). */
  createsFile?: boolean;
}

type Json = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Turn the server's preview answer into the text after Accept. Understood shapes: a full text
 * (`after`/`newDocumentText`/`preview`), or an edit (`uri`, `range`, `newText`) applied to the
 * current target text, or a WorkspaceEdit-like `edit.changes`.
 */
export function planFromPreview(runId: string, preview: Json, currentText: (uri: string) => string | undefined): AcceptPlan | undefined {
  const target = (preview.target && typeof preview.target === 'object' ? (preview.target as Json) : {}) as Json;
  const uri = str(preview.uri) ?? str(preview.targetUri) ?? str(target.uri);
  const createsFile = preview.createsFile === true ? { createsFile: true } : {};
  const full = str(preview.after) ?? str(preview.documentAfter) ?? str(preview.document_after) ?? str(preview.newDocumentText) ?? str(preview.documentText) ?? str(preview.preview);
  if (full !== undefined) {
    return { runId, targetUri: uri, after: full, summary: str(preview.summary) ?? '', ...createsFile };
  }
  const newText = str(preview.newText) ?? str(preview.text) ?? str(preview.insert);
  if (newText !== undefined && uri) {
    const before = currentText(uri) ?? '';
    const range = (preview.range ?? target.range) as LspRange | undefined;
    return { runId, targetUri: uri, after: applyRangeEdit(before, range, newText), summary: str(preview.summary) ?? '', ...createsFile };
  }
  const edit = preview.edit as { changes?: Record<string, Array<{ range: LspRange; newText: string }>> } | undefined;
  if (edit?.changes) {
    const [editUri, edits] = Object.entries(edit.changes)[0] ?? [];
    if (editUri && edits) {
      let text = currentText(editUri) ?? '';
      for (const e of [...edits].sort((a, b) => b.range.start.line - a.range.start.line || b.range.start.character - a.range.start.character)) {
        text = applyRangeEdit(text, e.range, e.newText);
      }
      return { runId, targetUri: editUri, after: text, summary: str(preview.summary) ?? '' };
    }
  }
  const program = str(preview.program);
  if (program !== undefined) {
    return { runId, targetUri: uri, after: program, summary: str(preview.summary) ?? '' };
  }
  return undefined;
}

export interface AcceptChoice {
  label: string;
  mode?: string;
  action?: string;
}

/** The buttons a refusal offers: the server's `choices`, or labels for its `alternatives`. */
export function refusalChoices(result: Json): AcceptChoice[] {
  if (Array.isArray(result.choices)) {
    return (result.choices as Json[])
      .filter((c) => typeof c?.label === 'string')
      .map((c) => ({ label: String(c.label), mode: typeof c.mode === 'string' ? c.mode : undefined, action: typeof c.action === 'string' ? c.action : undefined }));
  }
  const labels: Record<string, string> = { insertAtEnd: 'Insert at End', newFile: 'New File' };
  const alternatives = Array.isArray(result.alternatives) ? (result.alternatives as string[]) : [];
  return alternatives.filter((a) => labels[a]).map((a) => ({ label: labels[a], mode: a }));
}
