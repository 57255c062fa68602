// End-to-end: the real extension, the real language server (`python -m codeact_lsp` from
// CODEACT_TEST_PYTHON via the codeact.server.python setting), real sandboxes and tool hosts, inside
// a real VS Code. The workspace is a temporary copy of examples/quickstart; the model is the
// scripted stand-in (the only one allowed offline).
import * as assert from 'assert';
import * as vscode from 'vscode';
import type { CodeActApi } from '../../extension';
import { defaultPrompts } from '../../ui';
import { EXTENSION_ID, api, eventually, lensTitles, lineOf, workspaceRoot, writeFile } from './helpers';

type Json = Record<string, unknown>;

const QUOTE_TASK = 'What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?';

/**
 * Accept's hunks need confirmation, so VS Code lists them unticked in its Refactor Preview: tick
 * the file (the first row, which ticks all its hunks) and press Apply, as a person would. Before
 * the preview shows, these commands find nothing to act on; pressed before the tree took the
 * focus, Apply applies nothing and Accept reports the preview cancelled (nothing written), so the
 * person tries again.
 */
async function throughRefactorPreview(start: () => Thenable<Json>): Promise<Json> {
  let result: Json = {};
  for (let attempt = 0; attempt < 5; attempt++) {
    let settled = false;
    const done = Promise.resolve(start()).finally(() => (settled = true));
    await eventually(
      'the Refactor Preview, applied',
      async () => {
        if (!settled) {
          await vscode.commands.executeCommand('list.focusFirst');
          await vscode.commands.executeCommand('refactorPreview.toggleCheckedState');
          await vscode.commands.executeCommand('refactorPreview.apply');
        }
        return settled;
      },
      (s) => s,
    );
    result = (await done) ?? {};
    if (result.cancelled !== true) {
      return result;
    }
  }
  return result;
}

describe('CodeAct in VS Code', function () {
  let codeact: CodeActApi;
  let root: vscode.Uri;
  let target: vscode.Uri;
  let tools: vscode.Uri;

  before(async function () {
    codeact = await api();
    root = workspaceRoot();
    target = vscode.Uri.joinPath(root, 'quote.py');
    tools = vscode.Uri.joinPath(root, 'tools.py');
    await writeFile(target, '"""Shipping quotes."""\n\n# The agent\'s program goes here.\n');
    await writeFile(
      vscode.Uri.joinPath(root, 'replies', 'broken.json'),
      JSON.stringify([
        'First the price.\n```python\nitem = price_of("SKU-999")\n```',
        'That SKU does not exist; check the arithmetic instead.\n```python\nunits = 3\nratio = units / 0\n```',
        '```python\nfinal_answer(0)\n```',
      ]),
    );
    await writeFile(
      vscode.Uri.joinPath(root, 'replies', 'review.json'),
      JSON.stringify([
        '```python\nitem = price_of("SKU-42")\nprint(item)\n```',
        '```python\nleft = reserve("SKU-42", 3)\n```',
        '```python\nfinal_answer(round(item["usd"] * 3, 2))\n```',
      ]),
    );
  });

  afterEach(function () {
    codeact.prompts = defaultPrompts;
  });

  it('starts the server and registers its commands', async function () {
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['codeact.run', 'codeact.getRun', 'codeact.accept', 'codeact-lsp.runTask', 'codeact-lsp.accept', 'codeact-lsp.discard', 'codeact-lsp.openRun']) {
      assert.ok(commands.includes(id), `command ${id} missing`);
    }
    // the palette: Run Task on Selection only with a selection; Discard and Reject are two commands
    const pkg = vscode.extensions.getExtension(EXTENSION_ID)?.packageJSON as { contributes: { commands: Json[]; menus: Record<string, Json[]> } };
    const when = (menu: string, id: string): unknown => pkg.contributes.menus[menu].find((m) => m.command === id)?.when;
    assert.equal(when('commandPalette', 'codeact-lsp.runTaskOnSelection'), 'editorHasSelection');
    const title = (id: string): unknown => pkg.contributes.commands.find((c) => c.command === id)?.title;
    assert.equal(title('codeact-lsp.discard'), 'Discard Run');
    assert.equal(title('codeact-lsp.reject'), 'Reject Pending Step…');
    assert.match(String(when('view/item/context', 'codeact-lsp.approve')), /viewItem =~ \/\\bwaiting\\b\//);
  });

  it('puts a failing step and the raising tool line under diagnostics', async function () {
    const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', {
      task: 'Price of SKU-999?',
      model: 'scripted:replies/broken.json',
    })) as Json;
    assert.ok(typeof started?.runId === 'string', `codeact.run answered ${JSON.stringify(started)}`);
    assert.equal(await codeact.waitForRun(String(started.runId)), 'finished');
    const trajUri = vscode.Uri.parse(String(started.trajectoryUri));
    const doc = await vscode.workspace.openTextDocument(trajUri);
    const zeroLine = () => lineOf(doc, 'ratio = units / 0');
    const diags = await eventually(
      'a ZeroDivisionError diagnostic on the trajectory',
      () => vscode.languages.getDiagnostics(trajUri),
      (ds) => ds.some((d) => /ZeroDivisionError/.test(d.message)),
    );
    const zero = diags.find((d) => /ZeroDivisionError/.test(d.message));
    assert.equal(zero?.severity, vscode.DiagnosticSeverity.Error);
    assert.equal(zero?.range.start.line, zeroLine(), 'diagnostic on the failing line');
    assert.ok(!zero?.relatedInformation?.length, 'the traceback is in the hover, not in four related entries');
    // one diagnostic per failure: the failed tool call is one error at the call line, with the
    // raising line of tools.py as its related information (not an error and a warning)
    const listed = diags.map((d) => `${d.range.start.line} ${d.severity}: ${d.message}`).join(' | ');
    assert.equal(diags.length, 2, listed);
    const call = diags.find((d) => d.range.start.line === lineOf(doc, 'price_of("SKU-999")'));
    assert.ok(call && /`price_of` raised KeyError/.test(call.message), listed);
    assert.equal(call.severity, vscode.DiagnosticSeverity.Error);
    const [raisedAt] = call.relatedInformation ?? [];
    assert.equal(raisedAt?.location.uri.toString(), tools.toString(), 'related: the raising line in tools.py');
    // the tool's own file: the exception at the line that raised it
    // (diagnostics are pulled for documents shown in the editor, as a person would look at them)
    const toolsDoc = await vscode.workspace.openTextDocument(tools);
    await vscode.window.showTextDocument(toolsDoc, { preview: false });
    const raising = lineOf(toolsDoc, 'raise KeyError');
    await eventually(
      'the KeyError diagnostic at its raising line in tools.py',
      () => vscode.languages.getDiagnostics(tools),
      (ds) => ds.some((d) => d.range.start.line === raising && /KeyError|SKU-999/.test(d.message)),
    );
    assert.equal(raisedAt.location.range.start.line, raising, 'the related location is the raising line');
  });

  it('runs a task, shows the trajectory with code lenses, and accepts it after a diff', async function () {
    const doc = await vscode.workspace.openTextDocument(target);
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(3, 0, 3, 0);
    const before = doc.getText();

    const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', { task: QUOTE_TASK })) as Json;
    const runId = String(started.runId);
    const trajUri = vscode.Uri.parse(String(started.trajectoryUri));
    assert.equal(await codeact.waitForRun(runId), 'finished');
    const run = (await codeact.server('codeact.getRun', { runId })) as Json;
    assert.deepEqual(run.outputs, { answer: 76.9 });
    assert.equal((run.target as Json)?.uri, target.toString(), 'the editor and cursor became the target');

    // the server opened the trajectory document (window/showDocument)
    await eventually(
      'the trajectory document to be shown',
      () => vscode.window.visibleTextEditors.map((e) => e.document.uri.toString()),
      (uris) => uris.includes(trajUri.toString()),
    );
    const trajDoc = await vscode.workspace.openTextDocument(trajUri);
    await eventually('the finished trajectory text', () => trajDoc.getText(), (t) => t.includes('convert_currency(') && t.includes('finished'));

    const lenses = await eventually(
      'Accept and per-step lenses on the trajectory',
      () => lensTitles(trajUri),
      (ls) => ls.some((l) => l.command === 'codeact.accept') && ls.filter((l) => l.command === 'codeact.rerun').length === 2,
    );
    assert.equal(lenses.find((l) => l.command === 'codeact.accept')?.line, 0, 'run lenses sit on the first line');
    const step2 = lineOf(trajDoc, '# ━━ step 2');
    assert.ok(lenses.some((l) => l.line === step2 && l.command === 'codeact.showStep' && l.title.startsWith('$(check) step 2')), JSON.stringify(lenses));
    // codicons, not emoji (which render as empty boxes without an emoji font), and words
    assert.ok(lenses.find((l) => l.line === 0)?.title.startsWith('$(check) finished'), JSON.stringify(lenses));
    for (const l of lenses) {
      assert.doesNotMatch(l.title, /[✓✔✗⏸⟳⊘∅■⚠🗑↪▶▷↻]/u, `a glyph left in "${l.title}"`);
      assert.doesNotMatch(l.title, /awaiting_approval|max_iters/);
    }
    assert.deepEqual(
      ['$(check) Accept', '$(trash) Discard', '$(reply) Follow up'].filter((t) => !lenses.some((l) => l.title === t)),
      [],
    );
    assert.ok(lenses.some((l) => l.command === 'codeact.discard') && lenses.some((l) => l.command === 'codeact.followUp'));
    // the step lens shows the server's account of the step rendered, as the hover on the step
    // (no markdown source beside the trajectory, which keeps its width)
    const stepLens = lenses.find((l) => l.line === step2 && l.command === 'codeact.showStep');
    const columns = vscode.window.visibleTextEditors.length;
    await vscode.commands.executeCommand(stepLens?.command ?? '', ...(stepLens?.args ?? []));
    const active = vscode.window.activeTextEditor;
    assert.equal(active?.document.uri.toString(), trajUri.toString(), 'the trajectory stays in front');
    assert.equal(active?.selection.active.line, step2, 'at the step');
    assert.equal(vscode.window.visibleTextEditors.length, columns, 'nothing opened beside it');
    const hovers = (await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', trajUri, new vscode.Position(step2, 0))) ?? [];
    const rendered = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : 'value' in c ? c.value : ''))).join('\n');
    assert.match(rendered, /convert_currency/);
    assert.deepEqual(
      vscode.languages.getDiagnostics(trajUri).filter((d) => d.severity === vscode.DiagnosticSeverity.Error),
      [],
      'a clean run has no error diagnostics',
    );

    // Accept: VS Code's Refactor Preview shows the annotated edit; applying it inserts the function
    const accepted = await throughRefactorPreview(() => vscode.commands.executeCommand('codeact-lsp.accept', { runId }) as Thenable<Json>);
    assert.equal(accepted?.applied, true, JSON.stringify(accepted));
    const text = doc.getText();
    assert.ok(text.startsWith('"""Shipping quotes."""\n\nfrom tools import convert_currency, price_of, shipping_quote, stock_level\n'), text);
    assert.ok(text.includes('    shipping = await shipping_quote(item["kg"] * units, "DE")\n'), text);
    assert.ok(/\nasync def \w+\(\) -> float:\n/.test(text), text);
    assert.ok(!text.includes('final_answer') && !text.includes('asyncio.run'), text);
    assert.ok(text.includes("# The agent's program goes here."), 'the text around the cursor kept');
    assert.match(codeact.lastStatus ?? '', /^Accepted: \w+\(\) inserted into quote\.py at line \d+, imports merged\.$/);
    // the function is revealed and selected
    const shown = await eventually(
      'the inserted function selected',
      () => vscode.window.activeTextEditor,
      (e) => e?.document.uri.toString() === target.toString() && !e.selection.isEmpty,
    );
    assert.ok(shown?.document.lineAt(shown.selection.start.line).text.startsWith('async def '));
    assert.equal(shown?.document.lineAt(shown.selection.end.line).text, '    return total');
    const diffTabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputTextDiff);
    assert.equal(diffTabs.length, 0, 'no diff tab left behind');
    await eventually('the accepted state in the lenses', () => lensTitles(trajUri), (ls) => !ls.some((l) => l.command === 'codeact.accept'));
    const recorded = (await codeact.server('codeact.getRun', { runId })) as Json;
    assert.equal((recorded.accepted as Json)?.uri, target.toString());
    // one undo takes it all back, imports included
    await vscode.commands.executeCommand('undo');
    await eventually('the undo of Accept', () => doc.getText(), (t) => t === before);
  });

  it('shows tool-bench lenses on the tools file', async function () {
    const doc = await vscode.workspace.openTextDocument(tools);
    await vscode.window.showTextDocument(doc);
    const names = ['convert_currency', 'shipping_quote', 'stock_level', 'price_of', 'reserve'];
    const lenses = await eventually(
      'a Try lens above every tool',
      () => lensTitles(tools),
      (ls) => names.every((n) => ls.some((l) => l.command === 'codeact.tryTool' && l.line === lineOf(doc, `def ${n}(`))),
    );
    const usage = lenses.find((l) => l.line === lineOf(doc, 'def convert_currency(') && l.command !== 'codeact.tryTool');
    assert.match(usage?.title ?? '', /used 1× in last run · 0 errors/, JSON.stringify(lenses));
    const unused = lenses.find((l) => l.line === lineOf(doc, 'def reserve(') && l.command !== 'codeact.tryTool');
    assert.match(unused?.title ?? '', /not used/);
  });

  it('tries a tool from its lens, asking for the arguments', async function () {
    const doc = await vscode.workspace.openTextDocument(tools);
    const lens = (await lensTitles(tools)).find((l) => l.command === 'codeact.tryTool' && l.line === lineOf(doc, 'def convert_currency('));
    assert.ok(lens);
    let template = '';
    codeact.prompts = {
      ...defaultPrompts,
      input: async (options) => ((template = options.value ?? ''), '{"amount": 10, "from_currency": "USD", "to_currency": "EUR"}'),
      notify: async () => undefined,
    };
    const result = (await vscode.commands.executeCommand(lens.command, ...lens.args)) as Json;
    assert.equal(result?.result, 9.2, JSON.stringify(result));
    assert.deepEqual(Object.keys(JSON.parse(template)), ['amount', 'from_currency', 'to_currency'], 'template from the schema');
  });

  it('formats a Try error: type, message, and the raising tools.py line one click away', async function () {
    const doc = await vscode.workspace.openTextDocument(tools);
    const raising = lineOf(doc, 'raise KeyError');
    const said: Array<{ message: string; buttons: string[] }> = [];
    codeact.prompts = {
      ...defaultPrompts,
      input: async () => '{"sku": "SKU-999"}',
      notify: async (_kind, message, ...buttons) => (said.push({ message, buttons }), buttons.find((b) => b.startsWith('Open tools.py'))),
    };
    const result = (await vscode.commands.executeCommand('codeact.tryTool', { name: 'price_of', args: {} })) as Json;
    assert.ok(result?.error, JSON.stringify(result));
    const [shown] = said;
    assert.match(String(shown?.message), new RegExp(`^CodeAct: price_of raised KeyError: .*SKU-999.* at tools\\.py:${raising + 1}$`), JSON.stringify(said));
    assert.doesNotMatch(shown.message, /[{}\\]|Traceback/, 'no raw JSON or escaped traceback');
    assert.deepEqual(shown.buttons, [`Open tools.py:${raising + 1}`, 'Show Output']);
    await eventually('tools.py at the raising line', () => vscode.window.activeTextEditor, (e) => e?.document.uri.toString() === tools.toString() && e.selection.active.line === raising);
    const account = codeact.logLines.join('\n');
    assert.match(account, /price_of raised KeyError: .*SKU-999/);
    assert.equal(account.split(`raised at tools.py:${raising + 1}`).length - 1, 1, 'the location once');
  });

  it('waits for approval in review mode: run step, reject with feedback', async function () {
    const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', {
      task: 'Price of 3 units of SKU-42 in USD',
      model: 'scripted:replies/review.json',
      approval: 'review',
    })) as Json;
    const runId = String(started.runId);
    const trajUri = vscode.Uri.parse(String(started.trajectoryUri));
    const lensFor = async (command: string): Promise<{ command: string; args: unknown[] }> => {
      try {
        const lens = await eventually(`a ${command} lens`, async () => (await lensTitles(trajUri)).find((l) => l.command === command), (l) => !!l, 20000);
        return lens ?? { command, args: [] };
      } catch (e) {
        const inEditor = (await vscode.workspace.openTextDocument(trajUri)).getText();
        const onDisk = Buffer.from(await vscode.workspace.fs.readFile(trajUri)).toString('utf8');
        throw new Error(`${(e as Error).message}\n--- editor:\n${inEditor}\n--- disk:\n${onDisk}\n--- lenses: ${JSON.stringify(await lensTitles(trajUri))}`);
      }
    };

    const approve1 = await lensFor('codeact.approve');
    // the person edits the pending step in the trajectory, then runs it from its lens: the client
    // saves the document first, so the live view goes on without a manual save
    const trajDoc = await vscode.workspace.openTextDocument(trajUri);
    await vscode.window.showTextDocument(trajDoc, { preview: false });
    await eventually('the pending step in the trajectory', () => trajDoc.getText(), (t) => t.includes('print(item)'));
    const edit = new vscode.WorkspaceEdit();
    edit.replace(trajUri, trajDoc.lineAt(lineOf(trajDoc, 'print(item)')).range, 'print("edited", item)');
    assert.ok(await vscode.workspace.applyEdit(edit));
    assert.ok(trajDoc.isDirty, 'the edit is unsaved');
    await vscode.commands.executeCommand(approve1.command, ...approve1.args);
    assert.equal(trajDoc.isDirty, false, 'Run step saved the edited trajectory');
    await eventually(
      'step 2 to wait',
      () => codeact.server('codeact.getRun', { runId }) as Promise<Json>,
      (r) => r.status === 'awaiting_approval' && (r.steps as Json[]).length === 2,
    );
    const ran = (await codeact.server('codeact.getRun', { runId })) as Json;
    assert.match(String((ran.steps as Json[])[0].code), /print\("edited", item\)/, 'the edited step ran');
    const onDisk = async (): Promise<string> => Buffer.from(await vscode.workspace.fs.readFile(trajUri)).toString('utf8');
    await eventually('the trajectory file to show step 2 (the live view went on)', onDisk, (t) => t.includes('reserve("SKU-42", 3)') && t.includes('print("edited", item)'));
    await eventually('the editor to show step 2', () => trajDoc.getText(), (t) => t.includes('reserve("SKU-42", 3)') && !trajDoc.isDirty);
    await eventually('the status bar to count the run waiting for the user', () => codeact.runs.active().map((r) => r.status), (s) => s.includes('awaiting_approval'));
    const reject = await lensFor('codeact.reject');
    codeact.prompts = { ...defaultPrompts, input: async () => 'do not reserve stock, just compute' };
    await vscode.commands.executeCommand(reject.command, ...reject.args);
    codeact.prompts = defaultPrompts;
    await eventually(
      'step 3 to wait',
      () => codeact.server('codeact.getRun', { runId }) as Promise<Json>,
      (r) => r.status === 'awaiting_approval' && (r.steps as Json[]).length === 3,
    );
    await vscode.commands.executeCommand('codeact-lsp.approve', { runId });
    assert.equal(await codeact.waitForRun(runId), 'finished');
    const run = (await codeact.server('codeact.getRun', { runId })) as Json;
    const steps = run.steps as Json[];
    assert.equal(steps[1].status, 'rejected');
    assert.equal(steps[1].feedback, 'do not reserve stock, just compute');
    assert.deepEqual(run.outputs, { answer: 75 });
  });

  it('runs on a selection after asking; Accept refuses after an edit and offers Insert at End', async function () {
    const file = vscode.Uri.joinPath(root, 'selection.py');
    await writeFile(file, 'import math\n\n# TODO: compute the quote here\n');
    const doc = await vscode.workspace.openTextDocument(file);
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(2, 0, 2, doc.lineAt(2).text.length);
    const asked: string[] = [];
    const answers = [QUOTE_TASK, 'question -> answer: float'];
    codeact.prompts = { ...defaultPrompts, input: async (options) => (asked.push(options.title ?? ''), answers.shift()) };
    const started = (await vscode.commands.executeCommand('codeact-lsp.runTaskOnSelection')) as Json;
    assert.deepEqual(asked, ['CodeAct: Run Task (1/2)', 'CodeAct: Run Task (2/2) — signature, optional']);
    const runId = String(started.runId);
    assert.equal(await codeact.waitForRun(runId), 'finished');
    const run = (await codeact.server('codeact.getRun', { runId })) as Json;
    assert.equal(run.signature, 'question -> answer: float');
    assert.deepEqual((run.target as Json).range, { start: { line: 2, character: 0 }, end: { line: 2, character: doc.lineAt(2).text.length } });

    // the person edits the file meanwhile: Accept must not overwrite it
    const change = new vscode.WorkspaceEdit();
    change.insert(file, new vscode.Position(0, 0), '# my own change\n');
    assert.ok(await vscode.workspace.applyEdit(change));
    const warnings: string[] = [];
    const picks: string[] = [];
    codeact.prompts = {
      ...defaultPrompts,
      pick: async (items, options) => (picks.push(options.title ?? ''), items[0]),
      notify: async (_kind, message, ...buttons) => (warnings.push(message), buttons.includes('Insert at End') ? 'Insert at End' : undefined),
    };
    const accepted = await throughRefactorPreview(() => vscode.commands.executeCommand('codeact-lsp.accept', { runId }) as Thenable<Json>);
    assert.equal(accepted?.applied, true, JSON.stringify(accepted));
    assert.ok(picks.length >= 1 && picks.every((p) => p === 'CodeAct: Accept — the run was given a selection'), 'asked whether to replace the selection');
    assert.ok(warnings.some((w) => /selection\.py was edited after the run started \(1 line added\)/.test(w)), warnings.join(' | '));
    assert.ok(!warnings.some((w) => /file:\/\/|newFile|insertAtEnd/.test(w)), warnings.join(' | '));
    const text = doc.getText();
    // the person's text kept; the tools imported beside the file's own imports; the function at the end
    assert.ok(
      text.startsWith('# my own change\nimport math\n\nfrom tools import convert_currency, price_of, shipping_quote, stock_level\n\n# TODO: compute the quote here\n'),
      text,
    );
    assert.ok(text.trimEnd().endsWith('return total'), text);
  });

  it('cancels the run in front of the user', async function () {
    const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', {
      task: 'Price of 3 units of SKU-42 in USD',
      model: 'scripted:replies/review.json',
      approval: 'review',
    })) as Json;
    const runId = String(started.runId);
    await eventually('the run to wait for approval', () => codeact.server('codeact.getRun', { runId }) as Promise<Json>, (r) => r.status === 'awaiting_approval');
    await eventually(
      'its trajectory to be the active editor',
      () => vscode.window.activeTextEditor?.document.uri.toString(),
      (u) => u === String(started.trajectoryUri),
    );
    await vscode.commands.executeCommand('codeact-lsp.cancel'); // no argument: the run in front
    assert.equal(await codeact.waitForRun(runId), 'cancelled');
  });

  it('shows pushed run state in the Runs view, the status bar and a progress with Cancel — no polling', async function () {
    const cts = new vscode.CancellationTokenSource();
    const progress: { options?: vscode.ProgressOptions; reports: string[]; ended: boolean } = { reports: [], ended: false };
    codeact.prompts = {
      ...defaultPrompts,
      progress: (options, task) => {
        progress.options = options;
        return task({ report: (v) => progress.reports.push(v.message ?? '') }, cts.token).then((r) => ((progress.ended = true), r));
      },
    };
    const from = codeact.sent.length;
    const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', {
      task: 'Price of 3 units of SKU-42 in USD (pushed)',
      model: 'scripted:replies/review.json',
      approval: 'review',
    })) as Json;
    const runId = String(started.runId);
    const trajUri = vscode.Uri.parse(String(started.trajectoryUri));
    const item = (): vscode.TreeItem | undefined => codeact.runItems().find((i) => i.id === runId);
    // the state arrives pushed: the view, the status bar and the lenses agree
    await eventually('the Runs view to show the run waiting', () => String(item()?.description ?? ''), (d) => d.startsWith('waiting for you'));
    const waiting = item();
    assert.equal(waiting?.label, 'Price of 3 units of SKU-42 in USD (pushed)');
    assert.match(String(waiting?.description), /^waiting for you · step 1 of \d+ · \d+ s$/);
    assert.equal((waiting?.iconPath as vscode.ThemeIcon).id, 'debug-pause');
    assert.deepEqual(String(waiting?.contextValue).split(' ').sort(), ['awaiting_approval', 'cancellable', 'run', 'waiting']);
    assert.match(codeact.statusText, /^\$\(debug-pause\) CodeAct: waiting for you/);
    const stateAt = Date.now();
    await eventually('the lens to agree', () => lensTitles(trajUri), (ls) => ls.some((l) => l.line === 0 && l.title.startsWith('$(debug-pause) waiting for you')));
    console.log(`e2e: lens agreed with the pushed state after ${Date.now() - stateAt} ms`);
    // a progress notification with Cancel, worded from the same state
    assert.equal(progress.options?.location, vscode.ProgressLocation.Notification);
    assert.equal(progress.options?.cancellable, true);
    assert.match(String(progress.options?.title), /Price of 3 units of SKU-42/);
    await eventually('the progress to say the run waits', () => progress.reports, (r) => r.some((m) => m.startsWith('waiting for you · step 1')));
    // the Runs view's inline action, as VS Code calls it (with the item's element): Run step
    const element = codeact.runs.get(runId);
    await vscode.commands.executeCommand('codeact-lsp.approve', element);
    await eventually('step 2 to wait', () => codeact.runs.get(runId), (r) => r?.status === 'awaiting_approval' && r.pendingStep === 2);
    // Cancel in the progress notification ends the run
    cts.cancel();
    assert.equal(await codeact.waitForRun(runId), 'cancelled');
    await eventually('the progress to close', () => progress.ended, (e) => e);
    await eventually('the view to say cancelled', () => String(item()?.description ?? ''), (d) => d.startsWith('cancelled · 2 steps'));
    assert.match(codeact.statusText, /^\$\(hubot\) CodeAct$/);
    const sent = codeact.sent.slice(from);
    assert.deepEqual(sent.filter((c) => c === 'codeact.getRun'), [], `no polling: ${sent.join(', ')}`);
    // Discard from the view: the run leaves it, its document closes, and Undo brings it back
    let undo = true;
    codeact.prompts = { ...defaultPrompts, notify: async (_kind, message, ...buttons) => (/discarded/.test(message) && undo ? buttons[0] : undefined) };
    await vscode.window.showTextDocument(trajUri, { preview: false });
    await vscode.commands.executeCommand('codeact-lsp.discard', codeact.runs.get(runId));
    await eventually('the run back in the view after Undo', () => item(), (i) => i !== undefined && !codeact.runs.get(runId)?.discarded);
    undo = false;
    await vscode.commands.executeCommand('codeact-lsp.discard', codeact.runs.get(runId));
    await eventually('the run to leave the view', () => item(), (i) => i === undefined);
    const open = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === trajUri.toString());
    assert.deepEqual(open, [], 'the discarded run document closed');
  });

  it('lists stored runs in the Runs view with words, age, steps, answer and accepted state', async function () {
    await vscode.commands.executeCommand('codeact-lsp.refreshRuns');
    const items = codeact.runItems();
    const accepted = items.find((i) => /accepted$/.test(String(i.description)));
    assert.ok(accepted, items.map((i) => i.description).join(' | '));
    assert.match(String(accepted.description), /^finished · 2 steps · (just now|\d+ s ago|\d+ min ago) · → 76\.9 · accepted$/);
    assert.equal((accepted.iconPath as vscode.ThemeIcon).id, 'check');
    assert.ok(!String(accepted.contextValue).includes('acceptable'), 'no Accept for an accepted run');
    assert.equal(accepted.command?.command, 'codeact-lsp.openRun');
    for (const i of items) {
      assert.doesNotMatch(String(i.description), /awaiting_approval|max_iters/);
    }
    const open = accepted.command;
    await vscode.commands.executeCommand(open?.command ?? '', ...(open?.arguments ?? []));
    await eventually('the run opened from the view', () => vscode.window.activeTextEditor?.document.uri.path, (p) => !!p?.endsWith(`/.codeact/runs/${accepted.id}.py`));
  });

  it('follows up a finished run from its lens, asking for the task', async function () {
    const runs = (await codeact.server('codeact.listRuns', {})) as { runs: Json[] };
    const parent = runs.runs.filter((r) => r.status === 'finished').pop();
    assert.ok(parent, 'a finished run to follow up');
    const trajUri = vscode.Uri.parse(String(parent.trajectoryUri));
    await vscode.window.showTextDocument(trajUri);
    const lens = await eventually('the Follow up lens', async () => (await lensTitles(trajUri)).find((l) => l.command === 'codeact.followUp'), (l) => !!l);
    codeact.prompts = { ...defaultPrompts, input: async () => 'And for 4 units?' };
    const started = (await vscode.commands.executeCommand(lens?.command ?? '', ...(lens?.args ?? []))) as Json;
    assert.ok(typeof started?.runId === 'string' && started.runId !== parent.runId, JSON.stringify(started));
    await codeact.waitForRun(String(started.runId));
    const child = (await codeact.server('codeact.getRun', { runId: started.runId })) as Json;
    assert.equal(child.task, 'And for 4 units?');
    assert.equal(child.parent, parent.runId);
  });

  it('runs the task suite and reports it', async function () {
    const said: string[] = [];
    codeact.prompts = { ...defaultPrompts, notify: async (_kind, message) => (said.push(message), undefined) };
    const result = (await vscode.commands.executeCommand('codeact-lsp.runTasks')) as Json;
    assert.equal(result?.total, 1, JSON.stringify(result));
    assert.equal(result?.passed, 1, JSON.stringify(result));
    assert.ok(said.includes('CodeAct task suite: 1/1 passed.'), said.join(' | '));
  });

  it('runs the task suite from the Testing view: one test per task, the verdict from the server', async function () {
    const tests = codeact.taskTests;
    const [suite] = await tests.discover();
    assert.equal(suite?.label, 'tasks.toml');
    const names: string[] = [];
    suite.children.forEach((c) => names.push(c.label));
    assert.deepEqual(names, ['quote-to-germany']);
    const item = suite.children.get(`${suite.id}#quote-to-germany`);
    assert.equal(item?.range?.start.line, lineOf(await vscode.workspace.openTextDocument(suite.uri as vscode.Uri), '[[task]]'));
    const cts = new vscode.CancellationTokenSource();
    await tests.run(new vscode.TestRunRequest(item ? [item] : undefined), cts.token);
    assert.deepEqual(tests.verdicts.get(`${suite.id}#quote-to-germany`), { passed: true, message: '' });
  });

  it('passes codeact.* settings to the server, and changes to them', async function () {
    const config = vscode.workspace.getConfiguration('codeact');
    await config.update('maxIters', 1, vscode.ConfigurationTarget.Workspace);
    try {
      // a settings change reaches the server shortly after (it pulls them when told they changed)
      const run = await eventually(
        'a run limited to one step by the changed setting',
        async () => {
          const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', { task: QUOTE_TASK })) as Json;
          await codeact.waitForRun(String(started.runId));
          return (await codeact.server('codeact.getRun', { runId: started.runId })) as Json;
        },
        (r) => r.status === 'max_iters',
        30000,
      );
      assert.equal((run.steps as Json[]).length, 1);
      assert.equal(run.model, 'scripted:replies/quote.json', 'the model came from the codeact.model setting');
      // the step budget ran out: the lens offers to go on in the same sandbox with the same budget
      const budgetRun = codeact.runs.get(String(run.id));
      assert.ok(budgetRun?.trajectoryUri, 'the run is known from its pushed state');
      const lenses = await eventually('the Continue lens', () => lensTitles(vscode.Uri.parse(String(budgetRun.trajectoryUri))), (ls) => ls.some((l) => l.command === 'codeact.followUp' && l.title.startsWith('$(debug-continue) Continue')));
      const cont = lenses.find((l) => l.title.startsWith('$(debug-continue) Continue'));
      assert.equal(cont?.title, '$(debug-continue) Continue (1 more step)');
      const item = codeact.runItems().find((i) => i.id === run.id);
      assert.ok(String(item?.contextValue).split(' ').includes('continuable'));
      const next = (await vscode.commands.executeCommand(cont?.command ?? '', ...(cont?.args ?? []))) as Json;
      assert.equal(await codeact.waitForRun(String(next.runId)), 'finished');
      assert.deepEqual(((await codeact.server('codeact.getRun', { runId: next.runId })) as Json).outputs, { answer: 76.9 }, 'the script went on where it stopped');
    } finally {
      await config.update('maxIters', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  it('offers an install that works in a fresh venv, and checks the server before asking for a task', async function () {
    this.timeout(120000);
    const fresh = process.env.CODEACT_E2E_FRESH_PYTHON;
    assert.ok(fresh, 'scripts/e2e.sh provides a fresh venv without codeact-lsp');
    const config = vscode.workspace.getConfiguration('codeact');
    const good = config.get<string>('server.python');
    assert.ok(good, 'the e2e settings name the server interpreter');
    const shown: Array<{ message: string; buttons: string[] }> = [];
    let installs = 0;
    let asked = 0;
    codeact.prompts = {
      ...defaultPrompts,
      input: async () => (asked++, undefined),
      notify: async (_kind, message, ...buttons) => {
        shown.push({ message, buttons });
        // the first offer: the person clicks Install (a task in a terminal, then a restart)
        return buttons.includes('Install') && installs++ === 0 ? 'Install' : undefined;
      },
    };
    try {
      await config.update('server.python', fresh, vscode.ConfigurationTarget.Workspace);
      const offer = await eventually('the install offer', () => shown, (s) => s.some((m) => m.buttons.includes('Install')));
      const message = offer.find((m) => m.buttons.includes('Install'))?.message ?? '';
      // codeact-lsp is not on PyPI: the offered command installs the wheel the extension bundles
      assert.match(message, /-m pip install \S*bundled\/codeact_lsp-[\w.-]+\.whl/, message);
      assert.doesNotMatch(message, /pip install codeact-lsp\b/);
      assert.equal(codeact.installCommand && message.endsWith(codeact.installCommand), true, message);
      // Run Task while the server is missing: the failure first, no task asked for (nothing typed is lost)
      await vscode.commands.executeCommand('codeact-lsp.runTask');
      assert.equal(asked, 0, 'no input box before the server is up');
      // the install runs and the client restarts the server with it
      await eventually('the server to run from the fresh venv', () => codeact.ready().then(() => codeact.server('codeact.listTools', {})), (r) => Array.isArray((r as Json)?.tools), 90000);
      const { execFileSync } = await import('child_process');
      assert.match(execFileSync(fresh, ['-c', 'import codeact_lsp, sys; print(codeact_lsp.__file__)']).toString(), /site-packages/);
    } finally {
      // back to the suite's interpreter (removing the workspace value drops the user one here too)
      await config.update('server.python', good, vscode.ConfigurationTarget.Workspace);
    }
    await eventually('the server to start again', () => codeact.ready().then(() => true), (ok) => ok);
  });

  it('surfaces a missing model with the message of the server and its fixes', async function () {
    const config = vscode.workspace.getConfiguration('codeact');
    const said: Array<{ kind: string; message: string; buttons: string[] }> = [];
    codeact.prompts = {
      ...defaultPrompts,
      notify: async (kind, message, ...buttons) => (said.push({ kind, message, buttons }), buttons.includes('Open pyproject.toml') ? 'Open pyproject.toml' : undefined),
    };
    await config.update('model', '', vscode.ConfigurationTarget.Workspace);
    try {
      const started = await eventually(
        'the run to be refused for want of a model',
        async () => {
          said.length = 0;
          return { result: await vscode.commands.executeCommand('codeact-lsp.runTask', { task: 'Price of SKU-42?' }), said: [...said] };
        },
        (r) => r.said.length > 0,
        30000,
      );
      assert.equal(started.result, undefined);
      const [error] = started.said;
      assert.equal(error.kind, 'error');
      assert.match(error.message, /^CodeAct: No model configured: set `model` in \[tool\.codeact\]/);
      assert.doesNotMatch(error.message, /Request workspace\/executeCommand failed/);
      assert.deepEqual(error.buttons, ['Open pyproject.toml', 'Settings']);
      await eventually('pyproject.toml in front', () => vscode.window.activeTextEditor?.document.uri.path, (p) => !!p?.endsWith('/pyproject.toml'));
    } finally {
      await config.update('model', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  it('restarts the server without an error line in the log', async function () {
    const from = codeact.logLines.length;
    await vscode.commands.executeCommand('codeact-lsp.restartServer');
    await codeact.ready();
    assert.ok(await codeact.server('codeact.listRuns', {}));
    const lines = codeact.logLines.slice(from);
    assert.ok(lines.some((l) => /starting .* -m codeact_lsp/.test(l)), lines.join('\n'));
    assert.deepEqual(
      lines.filter((l) => /\b(error|ERROR|Error)\b|Traceback|Cancel notification for unknown message id/.test(l)),
      [],
      lines.join('\n'),
    );
  });
});
