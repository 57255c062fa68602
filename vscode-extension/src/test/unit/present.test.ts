// Unit tests of how the client words and decorates what the server reports (present.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { age, answerText, codiconTitle, findTasks, duration, errorActions, errorText, formatTryResult, isLogNoise, liveDetail, logLine, runContext, runDescription, statusIcon, statusWords } from '../../present';

describe('status words and icons', () => {
  const table: Array<[string, string, string]> = [
    ['running', 'running', 'sync~spin'],
    ['awaiting_approval', 'waiting for you', 'debug-pause'],
    ['finished', 'finished', 'check'],
    ['failed', 'failed', 'error'],
    ['cancelled', 'cancelled', 'circle-slash'],
    ['max_iters', 'step budget spent', 'warning'],
  ];
  for (const [status, words, icon] of table) {
    it(`${status} → "${words}", $(${icon})`, () => {
      assert.equal(statusWords(status), words);
      assert.equal(statusIcon(status), icon);
    });
  }
  it('an unknown status still reads as words', () => {
    assert.equal(statusWords('some_new_state'), 'some new state');
  });
});

describe('times', () => {
  it('durations and ages', () => {
    assert.equal(duration(4.7), '4 s');
    assert.equal(duration(65), '1 min 05 s');
    assert.equal(duration(7260), '2 h 01 min');
    assert.equal(age(3), 'just now');
    assert.equal(age(42), '42 s ago');
    assert.equal(age(600), '10 min ago');
    assert.equal(age(3 * 86400), '3 d ago');
  });
});

describe('the Runs view lines', () => {
  const now = 1000;
  it('a running run: step, elapsed, tool', () => {
    const run = { runId: 'r', status: 'running', steps: 2, currentStep: 2, maxIters: 6, tool: 'price_of', createdAt: 990 };
    assert.equal(liveDetail(run, now), 'step 2 of 6 · 10 s · calling price_of');
    assert.equal(runDescription(run, now), 'running · step 2 of 6 · 10 s · calling price_of');
    assert.equal(liveDetail({ ...run, tool: null }, now), 'step 2 of 6 · 10 s · model writing');
  });
  it('a finished run: steps, age, answer, accepted', () => {
    const run = { runId: 'r', status: 'finished', steps: 3, updatedAt: 400, answer: { answer: 76.9 }, accepted: true };
    assert.equal(runDescription(run, now), 'finished · 3 steps · 10 min ago · → 76.9 · accepted');
    assert.equal(runDescription({ runId: 'r', status: 'max_iters', steps: 1, updatedAt: 995 }, now), 'step budget spent · 1 step · just now');
  });
  it('answers: one field shows its value, more show the object', () => {
    assert.equal(answerText({ answer: 'EUR 12' }), 'EUR 12');
    assert.equal(answerText({ a: 1, b: 2 }), '{"a":1,"b":2}');
    assert.equal(answerText(null), undefined);
  });
  it('context values offer the actions that fit', () => {
    const words = (s: string): string[] => s.split(' ');
    assert.deepEqual(words(runContext({ runId: 'r', status: 'running', live: true })), ['run', 'running', 'cancellable']);
    assert.ok(words(runContext({ runId: 'r', status: 'awaiting_approval', live: true })).includes('waiting'));
    const finished = words(runContext({ runId: 'r', status: 'finished', live: true }));
    assert.ok(finished.includes('acceptable') && finished.includes('discardable') && finished.includes('followable'));
    assert.ok(!words(runContext({ runId: 'r', status: 'finished', accepted: true })).includes('acceptable'));
    assert.ok(words(runContext({ runId: 'r', status: 'max_iters', live: true })).includes('continuable'));
    assert.ok(!words(runContext({ runId: 'r', status: 'awaiting_approval', live: false })).includes('waiting'), 'a stored run cannot be approved');
  });
});

describe('Try Tool outcome', () => {
  it('an error: type, message, the raising line relative to the workspace, the traceback once', () => {
    const shown = formatTryResult(
      'price_of',
      { error: { type: 'KeyError', message: "'SKU-999'", file: '/ws/tools.py', line: 42, traceback: 'Traceback (most recent call last):\n  File "/ws/tools.py", line 42\nKeyError' }, durationMs: 0.4 },
      '/ws',
    );
    assert.equal(shown.ok, false);
    assert.equal(shown.headline, "price_of raised KeyError: 'SKU-999' at tools.py:42");
    assert.deepEqual(shown.location, { file: '/ws/tools.py', line: 42 });
    assert.match(shown.details, /raised at tools\.py:42/);
    assert.equal(shown.details.split('Traceback').length, 2, 'the traceback once');
    assert.doesNotMatch(shown.details, /\\n|\{"/, 'no raw JSON, no escaped newlines');
  });
  it('a value', () => {
    const shown = formatTryResult('convert_currency', { result: 9.2, stdout: 'rate 0.92\n', durationMs: 3.2 });
    assert.equal(shown.ok, true);
    assert.equal(shown.headline, 'convert_currency → 9.2');
    assert.match(shown.details, /returned \(3 ms\):\n {4}9\.2\n {2}printed:\n {4}rate 0\.92/);
  });
  it('an error given as one string', () => {
    assert.equal(formatTryResult('f', { error: 'ValueError: bad' }).headline, 'f raised ValueError: bad');
  });
});

describe('errors in front of the user', () => {
  it('a missing model: its message, Open pyproject.toml and Settings', () => {
    const message = 'no model configured: set `model` in [tool.codeact] (pyproject.toml) or codeact.toml, pass --model, or set CODEACT_MODEL';
    assert.deepEqual(
      errorActions(message).map((a) => a.title),
      ['Open pyproject.toml', 'Settings'],
    );
    assert.equal(errorText(message), `CodeAct: N${message.slice(1)}`);
    assert.equal(errorText('CodeAct: already prefixed'), 'CodeAct: Already prefixed');
  });
  it('a named setting opens that setting; anything else offers the log', () => {
    assert.deepEqual(errorActions('set codeact.server.python to an interpreter')[0], { title: 'Settings', kind: 'settings', query: 'codeact.server.python' });
    assert.deepEqual(errorActions('run abc is finished, not waiting').map((a) => a.kind), ['showLog']);
    assert.deepEqual(errorActions('re-run it with codeact.rerun').map((a) => a.kind), ['showLog'], 'a command name is not a setting');
  });
  it('leaves routine pygls warnings out of the log', () => {
    assert.ok(isLogNoise('WARNING:pygls.protocol.json_rpc:Cancel notification for unknown message id "12"'));
    assert.ok(!isLogNoise('ERROR: the tool host died'));
  });
  it('a clean server exit (every restart) is information, another exit stays an error', () => {
    assert.equal(logLine('[Error - 8:31:52 PM] Server process exited with code 0.'), '[Info - 8:31:52 PM] Server process exited with code 0.');
    assert.equal(logLine('[Error - 8:31:52 PM] Server process exited with code 1.'), '[Error - 8:31:52 PM] Server process exited with code 1.');
  });
});

describe('lens titles', () => {
  const table: Array<[string, string]> = [
    ['✓ finished · 2 steps · scripted', '$(check) finished · 2 steps · scripted'],
    ['✔ Accept', '$(check) Accept'],
    ['🗑 Discard', '$(trash) Discard'],
    ['↪ Follow up', '$(reply) Follow up'],
    ['▶ Run step', '$(play) Run step'],
    ['✗ Reject', '$(close) Reject'],
    ['✗ step 2 · 1 tool call (1 failed)', '$(error) step 2 · 1 tool call (1 failed)'],
    ['⏸ waiting for you · 1 step', '$(debug-pause) waiting for you · 1 step'],
    ['■ Cancel', '$(debug-stop) Cancel'],
    ['↻ Re-run from here', '$(debug-restart) Re-run from here'],
    ['▷ Run task · last ✓ 1.2 s', '$(play) Run task · last $(check) 1.2 s'],
    ['⚠ step budget spent', '$(warning) step budget spent'],
    ['… step 3', '$(ellipsis) step 3'],
    ['⏩ Continue (4 more steps)', '$(debug-continue) Continue (4 more steps)'],
    ['used 1× in last run · 0 errors', 'used 1× in last run · 0 errors'],
  ];
  for (const [server, shown] of table) {
    it(`"${server}" → "${shown}"`, () => {
      assert.equal(codiconTitle(server), shown);
    });
  }
});

describe('task-suite files', () => {
  it('finds each [[task]] name and its header line', () => {
    const text = '# suite\n\n[[task]]\nname = "quote-to-germany"\ntask = "x"\n\n[[task]]\ntask = "no name"\n\n[[task]]\n  name = \'second\'\n[tool]\nname = "not a task"\n';
    assert.deepEqual(findTasks(text), [
      { name: 'quote-to-germany', line: 2 },
      { name: 'second', line: 9 },
    ]);
  });
});
