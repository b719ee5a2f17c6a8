// Concurrent identical reads that share one call, in the two ways the code needs:
//
// - SingleFlight: a caller joins a read already under way for the same key (credential
//   lookups, cache loads, MCP discovery). Callers that must not get a read older than some
//   change drop the flight (`forget`) when the change happens; a read that settles after being
//   forgotten never removes a newer flight of the same key.
// - TurnBatch: only the calls made in the same turn of the event loop share a read, issued once
//   that turn is over. Every caller was registered before the read started, so its snapshot is
//   never older than anything a caller did first (e.g. subscribe to live events): a burst of
//   event-stream opens on the same run costs one query per run and turn instead of one per
//   stream, without a stream missing an event.
//
// Hand-written on purpose: a Map each; the batching libraries (dataloader and the like) batch
// different keys into one call, which these reads cannot be.

export class SingleFlight<V> {
  private readonly flights = new Map<string, Promise<V>>();

  /** `read()`'s result, shared with every caller for `key` until it settles or is forgotten. */
  run(key: string, read: () => Promise<V>): Promise<V> {
    const joined = this.flights.get(key);
    if (joined) return joined;
    const promise: Promise<V> = read().finally(() => {
      if (this.flights.get(key) === promise) this.flights.delete(key);
    });
    this.flights.set(key, promise);
    return promise;
  }

  /** Later callers of `key` (every key without one) start a read of their own. */
  forget(key?: string): void {
    if (key === undefined) this.flights.clear();
    else this.flights.delete(key);
  }
}

export class TurnBatch<V> {
  private readonly pending = new Map<string, Promise<V>>();

  /** `read()`'s result, shared with every other call for `key` made before the turn ended. */
  run(key: string, read: () => Promise<V>): Promise<V> {
    const joined = this.pending.get(key);
    if (joined) return joined;
    const promise = new Promise<V>((resolve, reject) => {
      setImmediate(() => {
        this.pending.delete(key);
        read().then(resolve, reject);
      });
    });
    this.pending.set(key, promise);
    return promise;
  }
}
