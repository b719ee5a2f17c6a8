// The two ways concurrent identical reads are shared: a credential lookup (single flight that
// an invalidation cuts off) and a stream open's replay read (shared within one turn only).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CredentialCache } from '../src/modules/auth/cache.js';
import { SingleFlight, TurnBatch } from '../src/lib/shared-reads.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('CredentialCache.shared', () => {
  it('concurrent misses share one load; after an invalidation a new caller loads again', async () => {
    const cache = new CredentialCache<string>();
    let loads = 0;
    const first = deferred<string>();
    const load = () => {
      loads++;
      return loads === 1 ? first.promise : Promise.resolve('fresh');
    };
    const a = cache.shared('k', load);
    const b = cache.shared('k', load);
    assert.equal(loads, 1);
    cache.invalidateUser('someone'); // any invalidation: the load under way may have read the old state
    const c = cache.shared('k', load);
    assert.equal(loads, 2);
    first.resolve('stale');
    assert.deepEqual(await Promise.all([a, b, c]), ['stale', 'stale', 'fresh']);
    // Settled flights are gone: the next miss loads.
    await cache.shared('k', load);
    assert.equal(loads, 3);
  });

  it('a failed load fails its callers and is not kept', async () => {
    const cache = new CredentialCache<string>();
    let loads = 0;
    const failing = () => {
      loads++;
      return Promise.reject(new Error('down'));
    };
    await assert.rejects(Promise.all([cache.shared('k', failing), cache.shared('k', failing)]), /down/);
    assert.equal(loads, 1);
    assert.equal(await cache.shared('k', async () => 'back'), 'back');
  });
});

describe('SingleFlight', () => {
  it('a forgotten read finishes for its callers but never removes the newer read of its key', async () => {
    const flights = new SingleFlight<string>();
    const old = deferred<string>();
    let reads = 0;
    const a = flights.run('k', () => (reads++, old.promise));
    flights.forget('k');
    const fresh = deferred<string>();
    const b = flights.run('k', () => (reads++, fresh.promise));
    old.resolve('old');
    assert.equal(await a, 'old');
    const c = flights.run('k', () => (reads++, Promise.resolve('third'))); // joins b, still under way
    fresh.resolve('fresh');
    assert.deepEqual(await Promise.all([b, c]), ['fresh', 'fresh']);
    assert.equal(reads, 2);
  });
});

describe('TurnBatch', () => {
  it('shares a read among the calls of one turn, never with a call made after it started', async () => {
    const batch = new TurnBatch<number>();
    let reads = 0;
    const read = async () => ++reads;
    const sameTurn = [batch.run('x', read), batch.run('x', read), batch.run('y', read)];
    assert.equal(reads, 0, 'nothing is read before the turn ends');
    assert.deepEqual((await Promise.all(sameTurn)).sort(), [1, 1, 2]);
    const slow = deferred<number>();
    const started = batch.run('x', () => {
      reads++;
      return slow.promise;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(reads, 3, 'the read has started');
    const later = batch.run('x', read); // must not join the read already under way
    slow.resolve(-1);
    assert.equal(await started, -1);
    assert.equal(await later, 4);
  });
});
