// Identical reads asked for in the same turn of the event loop share one read, issued once
// that turn is over. Unlike a single flight (which also hands a read already under way to
// later callers), every caller of a batch was registered before its read started, so the
// read's snapshot is never older than anything a caller did first (e.g. subscribe to live
// events). A burst of event-stream opens on the same run thus costs one query per run and
// turn instead of one per stream.
//
// Hand-written on purpose: a Map and setImmediate; the batching libraries (dataloader and the
// like) batch different keys into one call, which these reads cannot be.

interface Pending<V> {
  promise: Promise<V>;
}

export class TurnBatch<V> {
  private readonly pending = new Map<string, Pending<V>>();

  /** `read()`'s result, shared with every other call for `key` made before the turn ended. */
  run(key: string, read: () => Promise<V>): Promise<V> {
    const joined = this.pending.get(key);
    if (joined) return joined.promise;
    const promise = new Promise<V>((resolve, reject) => {
      setImmediate(() => {
        this.pending.delete(key);
        read().then(resolve, reject);
      });
    });
    this.pending.set(key, { promise });
    return promise;
  }
}
