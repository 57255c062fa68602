import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { refusalChoices } from '../../accept-plan';

describe('Accept refusals', () => {
  it("offers the server's choices in its words", () => {
    const result = {
      applied: false,
      choices: [
        { label: 'Insert at End', mode: 'insertAtEnd' },
        { label: 'New File', mode: 'newFile' },
        { label: 'Show Diff', action: 'showDiff' },
        { nolabel: true },
      ],
    };
    assert.deepEqual(refusalChoices(result), [
      { label: 'Insert at End', mode: 'insertAtEnd', action: undefined },
      { label: 'New File', mode: 'newFile', action: undefined },
      { label: 'Show Diff', mode: undefined, action: 'showDiff' },
    ]);
  });

  it('labels the modes of an older server', () => {
    assert.deepEqual(refusalChoices({ alternatives: ['newFile', 'insertAtEnd', 'other'] }), [
      { label: 'New File', mode: 'newFile' },
      { label: 'Insert at End', mode: 'insertAtEnd' },
    ]);
    assert.deepEqual(refusalChoices({}), []);
  });
});
