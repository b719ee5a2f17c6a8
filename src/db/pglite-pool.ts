// A node-postgres-shaped pool over one embedded PGlite instance, for Kysely's
// PostgresDialect. Written by hand because PGlite is a single session: a transaction must
// own the session until it ends, so `connect()` hands out the one client behind a FIFO lock.
// (Generic PGlite dialects share the session between concurrent transactions.)
import type { PGlite } from '@electric-sql/pglite';

interface QueryResultLike {
  command: string;
  rowCount: number;
  rows: unknown[];
}

export interface PgliteClient {
  query(sql: string, params?: readonly unknown[]): Promise<QueryResultLike>;
  release(): void;
}

const COMMAND = /^\s*(?:with\b[\s\S]*?\)\s*)?(insert|update|delete|merge|select)\b/i;

export class PglitePool {
  private queue: Array<() => void> = [];
  private busy = false;
  private closed = false;

  constructor(readonly pg: PGlite) {}

  private readonly client: PgliteClient = {
    query: async (sql, params) => {
      const res = await this.pg.query(sql, params ? [...params] : []);
      const m = COMMAND.exec(sql);
      return {
        command: m ? m[1].toUpperCase() : '',
        rowCount: res.affectedRows ?? res.rows.length,
        rows: res.rows,
      };
    },
    release: () => this.releaseLock(),
  };

  async connect(): Promise<PgliteClient> {
    if (this.closed) throw new Error('database is closed');
    if (!this.busy) {
      this.busy = true;
      return this.client;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
    return this.client;
  }

  private releaseLock(): void {
    const next = this.queue.shift();
    // Hand over on the next macrotask: PGlite's work chains through microtasks, and without
    // a turn of the event loop between holders, sockets (new connections) starve under load.
    if (next) setImmediate(next);
    else this.busy = false;
  }

  async end(): Promise<void> {
    this.closed = true;
  }
}
