import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUuid, newId } from '../src/lib/ids.js';

describe('ids', () => {
  it('are unique UUID v7 strings in creation order, also within one millisecond', () => {
    const ids = Array.from({ length: 50_000 }, () => newId());
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    for (const id of ids.slice(0, 100)) {
      assert.ok(isUuid(id));
      assert.equal(id[14], '7');
      assert.ok('89ab'.includes(id[19]));
    }
    const embeddedMs = parseInt(ids[0].slice(0, 8) + ids[0].slice(9, 13), 16);
    assert.ok(Math.abs(embeddedMs - Date.now()) < 5_000);
  });
});
