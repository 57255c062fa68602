// Unit tests of the client's own logic (no VS Code): node's test runner, `npm run test:unit`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RunTracker,
  applyRangeEdit,
  argsTemplate,
  buildRunArgs,
  chooseServerPython,
  describeTaskResults,
  firstArg,
  hasCodeactTable,
  interpretProbe,
  parseToolArgs,
  probeMessage,
  pruneSettings,
  resolveRunId,
  runIdFromPath,
  serverSettings,
  trajectoriesToSave,
  validateSignature,
  validateTask,
} from '../../logic';
import { planFromPreview } from '../../accept-plan';
import { installCommandFor, installSource, statusBarText } from '../../present';

describe('chooseServerPython', () => {
  const none = (): boolean => false;
  it('prefers the setting, expanding ~', () => {
    const c = chooseServerPython('~/venv/bin/python', { HOME: '/home/me', CODEACT_PYTHON: '/x' }, ['/ws'], () => true, 'linux');
    assert.deepEqual(c, { python: '/home/me/venv/bin/python', source: 'setting' });
  });
  it('then CODEACT_PYTHON', () => {
    assert.deepEqual(chooseServerPython('  ', { CODEACT_PYTHON: '/opt/py' }, ['/ws'], () => true, 'linux'), {
      python: '/opt/py',
      source: 'environment',
    });
  });
  it("then the workspace's .venv, then venv", () => {
    assert.equal(chooseServerPython('', {}, ['/ws'], (p) => p === '/ws/venv/bin/python', 'linux').python, '/ws/venv/bin/python');
    assert.equal(chooseServerPython('', {}, ['/ws'], () => true, 'linux').python, '/ws/.venv/bin/python');
  });
  it('falls back to python3 (python on Windows)', () => {
    assert.deepEqual(chooseServerPython(undefined, {}, ['/ws'], none, 'linux'), { python: 'python3', source: 'default' });
    assert.equal(chooseServerPython(undefined, {}, [], none, 'win32').python, 'python');
  });
});

describe('probe outcome and message', () => {
  const choice = { python: '/my venv/bin/python', source: 'setting' as const };
  it('reads the exit codes of the probe script', () => {
    assert.deepEqual(interpretProbe(0, undefined, ''), { ok: true });
    assert.equal(interpretProbe(3, undefined, '').ok, false);
    assert.deepEqual(interpretProbe(3, undefined, ''), { ok: false, reason: 'no-package', detail: '' });
    assert.deepEqual(interpretProbe(4, undefined, '3.9.1\n'), { ok: false, reason: 'too-old', detail: '3.9.1' });
    assert.deepEqual(interpretProbe(null, 'spawn python9 ENOENT', ''), { ok: false, reason: 'no-python', detail: 'spawn python9 ENOENT' });
  });
  it('names the one command that installs the server, quoted for the shell', () => {
    // codeact-lsp is not on PyPI: the bundled wheel, else the checkout the extension runs from
    assert.equal(installSource(['/ext/bundled/README', '/ext/bundled/codeact_lsp-0.1.0-py3-none-any.whl'], '/repo'), '/ext/bundled/codeact_lsp-0.1.0-py3-none-any.whl');
    assert.equal(installSource([], '/repo'), '/repo');
    assert.equal(installSource([], undefined), undefined);
    const install = installCommandFor('/my venv/bin/python', '/src/codeact lsp');
    assert.equal(install, `'/my venv/bin/python' -m pip install '/src/codeact lsp'`);
    assert.equal(installCommandFor('python3', undefined), undefined);
    const msg = probeMessage({ ok: false, reason: 'no-package', detail: '' }, choice, install);
    assert.match(msg, /not installed in \/my venv\/bin\/python \(setting codeact.server.python\)/);
    assert.ok(msg.endsWith(`Install it with: ${install}`));
    assert.doesNotMatch(probeMessage({ ok: false, reason: 'no-package', detail: '' }, choice), /pip install codeact-lsp/);
  });
  it('explains an old or missing interpreter', () => {
    assert.match(probeMessage({ ok: false, reason: 'too-old', detail: '3.9.1' }, choice), /Python 3\.9\.1; the server needs Python 3\.11/);
    assert.match(probeMessage({ ok: false, reason: 'no-python', detail: 'ENOENT' }, choice), /cannot run .*codeact.server.python/);
  });
});

describe('hasCodeactTable', () => {
  it('finds [tool.codeact] and its sub-tables', () => {
    assert.ok(hasCodeactTable('[project]\nname="x"\n\n[tool.codeact]\ntools=["t.py"]\n'));
    assert.ok(hasCodeactTable('[tool.codeact.sandbox]\ntimeout = 3\n'));
    assert.ok(hasCodeactTable('[tool]\ncodeact = { model = "m" }\n'));
  });
  it('ignores other tools and comments', () => {
    assert.ok(!hasCodeactTable('[tool.ruff]\nline-length = 100\n# [tool.codeact]\n'));
    assert.ok(!hasCodeactTable('[tool.codeactive]\n'));
  });
});

describe('runIdFromPath', () => {
  it('knows trajectory documents', () => {
    assert.equal(runIdFromPath('/ws/.codeact/runs/3f2a9c.py'), '3f2a9c');
    assert.equal(runIdFromPath('C:\\ws\\.codeact\\runs\\abc.py'), 'abc');
  });
  it('and nothing else', () => {
    assert.equal(runIdFromPath('/ws/tools.py'), undefined);
    assert.equal(runIdFromPath('/ws/.codeact/runs/abc.json'), undefined);
    assert.equal(runIdFromPath('/ws/runs/abc.py'), undefined);
  });
});

describe('buildRunArgs', () => {
  it('keeps only what was given, trimmed, in the contract names', () => {
    assert.deepEqual(buildRunArgs({ task: '  price?  ', signature: ' ', model: '' }), { task: 'price?' });
    const range = { start: { line: 3, character: 0 }, end: { line: 3, character: 0 } };
    assert.deepEqual(
      buildRunArgs({ task: 't', signature: 'q -> a: float', maxIters: 4, approval: 'review', inputs: { q: 1 } }, { uri: 'file:///ws/a.py', range }),
      { task: 't', signature: 'q -> a: float', inputs: { q: 1 }, approval: 'review', maxIters: 4, uri: 'file:///ws/a.py', range },
    );
  });
  it('validates what the person types', () => {
    assert.ok(validateTask('   '));
    assert.equal(validateTask('do it'), undefined);
    assert.equal(validateSignature(''), undefined);
    assert.equal(validateSignature('question -> answer: float'), undefined);
    assert.ok(validateSignature('question'));
    assert.ok(validateSignature('a -> '));
  });
});

describe('Try Tool arguments', () => {
  it('parses JSON objects and lists, explains the rest', () => {
    assert.deepEqual(parseToolArgs(''), { ok: true, value: {} });
    assert.deepEqual(parseToolArgs('{"amount": 10}'), { ok: true, value: { amount: 10 } });
    assert.deepEqual(parseToolArgs('[1, "USD"]'), { ok: true, value: [1, 'USD'] });
    const bad = parseToolArgs('{amount: 10}');
    assert.equal(bad.ok, false);
    assert.equal(parseToolArgs('42').ok, false);
  });
  it('templates from the JSON schema', () => {
    const schema = {
      type: 'object',
      properties: { amount: { type: 'number' }, units: { type: 'integer', default: 3 }, to: { type: 'string' }, ok: { type: ['boolean', 'null'] } },
    };
    assert.deepEqual(JSON.parse(argsTemplate(schema)), { amount: 0, units: 3, to: '', ok: false });
    assert.equal(argsTemplate(undefined), '{}');
  });
});

describe('settings sent to the server', () => {
  it('leaves out unset values and client-only settings', () => {
    const section = {
      model: '',
      maxIters: 4,
      approval: null,
      confirm: ['reserve'],
      server: { python: '/py', extraArgs: [] },
      trace: { server: 'off' },
      accept: { showDiff: true },
      sandbox: { backend: null, timeout: 5, readPaths: null },
      tools: null,
    };
    assert.deepEqual(serverSettings(section), { maxIters: 4, confirm: ['reserve'], sandbox: { timeout: 5 } });
    assert.deepEqual(pruneSettings({ sandbox: { backend: null } }), {});
    assert.equal(serverSettings(null), null);
  });
});

describe('RunTracker', () => {
  it('merges pushed states and command answers, newest first, telling only real changes', () => {
    const t = new RunTracker();
    const seen: string[] = [];
    t.onChange((r) => seen.push(`${r.runId}:${r.status}${r.tool ? `:${r.tool}` : ''}`));
    t.observe({ runId: 'a', trajectoryUri: 'file:///ws/.codeact/runs/a.py' }, 'first task');
    t.observe({ runId: 'b' }, 'second');
    assert.deepEqual(
      t.active().map((r) => r.runId),
      ['b', 'a'],
    );
    t.observe({ runId: 'a', status: 'running', tool: 'price_of', steps: 1 });
    t.observe({ runId: 'a', status: 'finished', tool: null, steps: 2, answer: { answer: 76.9 } });
    t.observe({ runId: 'a', status: 'finished', tool: null, steps: 2, answer: { answer: 76.9 } }); // no change, no event
    assert.deepEqual(seen, ['a:running', 'b:running', 'a:running:price_of', 'a:finished']);
    const a = t.get('a');
    assert.equal(a?.trajectoryUri, 'file:///ws/.codeact/runs/a.py', 'kept when a state leaves it out');
    assert.equal(a?.task, 'first task');
    assert.deepEqual(a?.answer, { answer: 76.9 });
    assert.deepEqual(
      t.active().map((r) => r.runId),
      ['b'],
    );
    assert.equal(t.observe({ status: 'x' }), undefined);
    assert.equal(t.observe('nope'), undefined);
    t.forget('b');
    assert.equal(t.active().length, 0);
    assert.equal(seen.at(-1), 'b:running', 'forgetting tells the views');
  });
  it('words the status bar with codicons and words, not enum names', () => {
    assert.match(statusBarText([]).text, /^\$\(hubot\) CodeAct$/);
    const running = { runId: 'a', status: 'running', task: 'price of SKU-42', steps: 2, currentStep: 2, tool: 'convert_currency', createdAt: 100 };
    const waiting = { runId: 'b', status: 'awaiting_approval', task: 'reserve' };
    assert.equal(statusBarText([running], 112).text, '$(sync~spin) CodeAct: running · step 2 · 12 s · calling convert_currency');
    assert.equal(statusBarText([waiting], 112).text, '$(debug-pause) CodeAct: waiting for you');
    assert.equal(statusBarText([running, waiting]).text, '$(debug-pause) CodeAct: 1 waiting for you, 1 running');
    assert.match(statusBarText([running, waiting]).tooltip, /waiting for you: reserve/);
    assert.doesNotMatch(statusBarText([running, waiting]).tooltip, /awaiting_approval/);
  });
});

describe('resolveRunId', () => {
  const runs = [{ runId: 'only', status: 'finished', updated: 1 }];
  it('explicit id, then the trajectory in front, then the only candidate', () => {
    assert.equal(resolveRunId({ runId: 'x' }, '/ws/.codeact/runs/y.py', runs), 'x');
    assert.equal(resolveRunId('x', undefined, runs), 'x');
    assert.equal(resolveRunId(undefined, '/ws/.codeact/runs/y.py', runs), 'y');
    assert.equal(resolveRunId(undefined, '/ws/tools.py', runs), 'only');
    assert.equal(resolveRunId(undefined, '/ws/tools.py', [...runs, { runId: 'two', status: 'finished', updated: 2 }]), undefined);
  });
  it('reads the one object argument of a command', () => {
    assert.deepEqual(firstArg([{ runId: 'a' }]), { runId: 'a' });
    assert.deepEqual(firstArg([]), {});
    assert.deepEqual(firstArg(['x']), {});
    assert.deepEqual(firstArg(undefined), {});
  });
});

describe('applyRangeEdit', () => {
  const text = 'a\nbc\nd\n';
  it('inserts, replaces and clamps like an editor', () => {
    assert.equal(applyRangeEdit(text, { start: { line: 1, character: 1 }, end: { line: 1, character: 1 } }, 'X'), 'a\nbXc\nd\n');
    assert.equal(applyRangeEdit(text, { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } }, 'Z\n'), 'Z\nd\n');
    assert.equal(applyRangeEdit(text, { start: { line: 1, character: 99 }, end: { line: 9, character: 0 } }, '!'), 'a\nbc!');
    assert.equal(applyRangeEdit(text, undefined, 'all new'), 'all new');
  });
});

describe('planFromPreview', () => {
  const current = (uri: string): string | undefined => (uri === 'file:///ws/q.py' ? '# header\n\n' : undefined);
  it('uses the whole text after Accept when the server gives it', () => {
    const plan = planFromPreview('r1', { uri: 'file:///ws/q.py', documentAfter: 'new text' }, current);
    assert.deepEqual(plan, { runId: 'r1', targetUri: 'file:///ws/q.py', after: 'new text', summary: '' });
  });
  it('applies an edit (uri, range, newText) to the current target text', () => {
    const plan = planFromPreview(
      'r1',
      { uri: 'file:///ws/q.py', range: { start: { line: 2, character: 0 }, end: { line: 2, character: 0 } }, newText: 'x = 1\n' },
      current,
    );
    assert.equal(plan?.after, '# header\n\nx = 1\n');
  });
  it('marks a new file, and reads a WorkspaceEdit', () => {
    const plan = planFromPreview('r1', { targetUri: 'file:///ws/codeact_r1.py', createsFile: true, documentAfter: 'x = 1\n' }, current);
    assert.equal(plan?.createsFile, true);
    const edit = {
      edit: {
        changes: {
          'file:///ws/q.py': [
            { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, newText: 'A\n' },
            { range: { start: { line: 2, character: 0 }, end: { line: 2, character: 0 } }, newText: 'B\n' },
          ],
        },
      },
    };
    assert.equal(planFromPreview('r1', edit, current)?.after, 'A\n# header\n\nB\n');
  });
  it('falls back to the program, and to nothing', () => {
    assert.equal(planFromPreview('r1', { program: 'print(1)\n', uri: 'file:///ws/q.py' }, current)?.after, 'print(1)\n');
    assert.equal(planFromPreview('r1', {}, current), undefined);
  });
});

describe('describeTaskResults', () => {
  it('counts passes in the shapes a suite result may take', () => {
    const r = describeTaskResults({ results: [{ name: 'quote', passed: true, answer: 76.9 }, { name: 'bad', passed: false, reason: 'expected 1, got 2' }] });
    assert.equal(r.passed, 1);
    assert.equal(r.total, 2);
    assert.deepEqual(r.lines, ['✓ quote · answer 76.9', '✗ bad · expected 1, got 2']);
    assert.equal(describeTaskResults([{ ok: true }]).lines[0], '✓ task 1');
    assert.equal(describeTaskResults(undefined).total, 0);
  });
});

describe('trajectoriesToSave', () => {
  const docs = [
    { fsPath: '/ws/.codeact/runs/r1.py', isDirty: true },
    { fsPath: '/ws/.codeact/runs/r2.py', isDirty: true },
    { fsPath: '/ws/.codeact/runs/r3.py', isDirty: false },
    { fsPath: '/ws/r1.py', isDirty: true },
    { fsPath: undefined, isDirty: true },
  ];
  it('saves the dirty trajectory of the run a step command is about', () => {
    for (const command of ['codeact.approve', 'codeact.rerun', 'codeact.reject']) {
      assert.deepEqual(trajectoriesToSave(command, { runId: 'r1', step: 2 }, docs), [docs[0]], command);
    }
  });
  it('leaves clean documents, other runs and other commands alone', () => {
    assert.deepEqual(trajectoriesToSave('codeact.approve', { runId: 'r3' }, docs), []);
    assert.deepEqual(trajectoriesToSave('codeact.approve', { runId: 'r9' }, docs), []);
    assert.deepEqual(trajectoriesToSave('codeact.approve', {}, docs), []);
    assert.deepEqual(trajectoriesToSave('codeact.cancel', { runId: 'r1' }, docs), []);
    assert.deepEqual(trajectoriesToSave('codeact.accept', { runId: 'r1' }, docs), []);
  });
});
