// A node-postgres-shaped pool over one embedded PGlite instance, for Kysely's
// PostgresDialect. Written by hand for two reasons no PGlite dialect covers:
//  - PGlite is a single session: a transaction must own the session until it ends, so
//    `connect()` hands out the one client behind a FIFO lock (generic dialects share the
//    session between concurrent transactions);
//  - speed: statements are prepared once under a name and then executed with one protocol
//    round trip (Bind/Describe/Execute/Sync batched), where `PGlite.query` re-parses and
//    re-plans every statement over five round trips into the WASM engine.
import { protocol, types, type PGlite } from '@electric-sql/pglite';

interface QueryResultLike {
  command: string;
  rowCount: number;
  rows: unknown[];
}

export interface PgliteClient {
  query(sql: string, params?: readonly unknown[]): Promise<QueryResultLike>;
  release(): void;
}

interface Prepared {
  name: string;
  paramTypes: number[];
}

/** Distinct statement texts are bounded by the code; this caps the cache regardless. */
const MAX_PREPARED = 2000;
const { serialize } = protocol;

function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

interface Field {
  name: string;
  dataTypeID: number;
}

export class PglitePool {
  private queue: Array<() => void> = [];
  private busy = false;
  private closed = false;
  private readonly statements = new Map<string, Prepared>();
  private counter = 0;

  /**
   * `typeParsers` win over PGlite's own: the `parsers` option of the PGlite constructor does not
   * reach the protocol-level path used here (numeric came back as a string).
   */
  constructor(
    readonly pg: PGlite,
    private readonly typeParsers: Record<number, (value: string) => unknown> = {},
  ) {}

  private parsersCache: Record<number, (value: string) => unknown> | null = null;

  private readonly client: PgliteClient = {
    query: (sql, params) => this.run(sql, params ? [...params] : []),
    release: () => this.releaseLock(),
  };

  private async prepare(text: string): Promise<Prepared> {
    const known = this.statements.get(text);
    if (known) return known;
    const name = this.statements.size < MAX_PREPARED ? `ark_${++this.counter}` : '';
    const { messages } = await this.pg.execProtocol(
      concat([serialize.parse({ name, text, types: [] }), serialize.describe({ type: 'S', name }), serialize.sync()]),
      { syncToFs: false },
    );
    const desc = messages.find((m) => m.name === 'parameterDescription') as { dataTypeIDs?: number[] } | undefined;
    const prepared = { name, paramTypes: desc?.dataTypeIDs ?? [] };
    if (name) this.statements.set(text, prepared);
    return prepared;
  }

  private async run(text: string, params: unknown[]): Promise<QueryResultLike> {
    const stmt = await this.prepare(text);
    const serializers = this.pg.serializers;
    const values = params.map((v, i) => {
      if (v === null || v === undefined) return null;
      const ser = serializers[stmt.paramTypes[i]];
      return ser ? ser(v) : (v as { toString(): string }).toString();
    });
    const { messages } = await this.pg.execProtocol(
      concat([
        serialize.bind({ statement: stmt.name, values }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      ]),
    );
    let fields: Field[] = [];
    const rows: unknown[] = [];
    let command = '';
    let rowCount = 0;
    const parsers = (this.parsersCache ??= { ...this.pg.parsers, ...this.typeParsers });
    for (const m of messages) {
      if (m.name === 'rowDescription') {
        fields = (m as unknown as { fields: Field[] }).fields;
      } else if (m.name === 'dataRow') {
        const values = (m as unknown as { fields: (string | null)[] }).fields;
        const row: Record<string, unknown> = {};
        for (let i = 0; i < fields.length; i++) row[fields[i].name] = types.parseType(values[i], fields[i].dataTypeID, parsers);
        rows.push(row);
      } else if (m.name === 'commandComplete') {
        const words = (m as unknown as { text: string }).text.split(' ');
        command = words[0];
        rowCount = Number.parseInt(words[words.length - 1], 10) || 0;
      }
    }
    return { command, rowCount: command === 'SELECT' ? rows.length : rowCount, rows };
  }

  async connect(): Promise<PgliteClient> {
    if (this.closed) throw new Error('database is closed');
    if (!this.busy) {
      this.busy = true;
      return this.client;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
    return this.client;
  }

  /** The one session: busy or not, and how many callers wait for it. */
  stats(): { inUse: number; idle: number; waiting: number; max: number } {
    return { inUse: this.busy ? 1 : 0, idle: this.busy ? 0 : 1, waiting: this.queue.length, max: 1 };
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
