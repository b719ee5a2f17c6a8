// The run event log (api.md §26.3): every event gets the next `seq` of its run from the
// run row's counter in the same statement that inserts it, so concurrent writers (worker,
// API cancel/input, reaper) never produce a gap or a duplicate. On PostgreSQL the same
// statement NOTIFYs, so live delivery follows commit order in every process; the embedded
// engine publishes in process after commit (see EventPublisher).
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../db/schema.js';
import { isoSql } from '../db/sql-helpers.js';
import { newId } from '../lib/ids.js';

export const RUN_EVENTS_CHANNEL = 'arkloop_run_events';

export interface RunEvent {
  event_id: string;
  run_id: string;
  seq: number;
  type: string;
  data: Record<string, unknown>;
  ts: string;
  created_at: string;
}

export const TERMINAL_EVENTS = new Set(['run.completed', 'run.failed', 'run.cancelled']);

interface EventRow {
  id: string;
  run_id: string;
  seq: number;
  type: string;
  data: Record<string, unknown>;
  created_at: Date;
}

export function toRunEvent(r: EventRow): RunEvent {
  const at = r.created_at.toISOString();
  return { event_id: r.id, run_id: r.run_id, seq: r.seq, type: r.type, data: r.data, ts: at, created_at: at };
}

/** A NOTIFY payload carries the whole event when it fits (8000-byte limit), else a reference. */
const NOTIFY_INLINE_MAX = 7900;

/** Appends one event to a run (see appendRunEvents); null when the run is missing or has ended. */
export async function appendRunEvent(
  db: Kysely<DB>,
  runId: string,
  type: string,
  data: Record<string, unknown>,
  opts: { notify: boolean; outputEmitted?: boolean },
): Promise<RunEvent | null> {
  const [event] = await appendRunEvents(db, runId, [{ type, data }], opts);
  return event ?? null;
}

/** Events of a run after `afterSeq`, ascending, at most `limit`. */
export async function listRunEvents(db: Kysely<DB>, runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> {
  const rows = await db
    .selectFrom('run_events')
    .select(['id', 'run_id', 'seq', 'type', 'data', 'created_at'])
    .where('run_id', '=', runId)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => toRunEvent(r as EventRow));
}

/** Parses a NOTIFY payload: a whole event, or a reference `{run_id, seq}` to read. */
export function parseEventPayload(payload: string): { event: RunEvent } | { runId: string; seq: number } | null {
  try {
    const p = JSON.parse(payload) as Record<string, unknown>;
    if (p.ref) return { runId: String(p.run_id), seq: Number(p.seq) };
    const at = String(p.created_at);
    return {
      event: {
        event_id: String(p.event_id),
        run_id: String(p.run_id),
        seq: Number(p.seq),
        type: String(p.type),
        data: (p.data ?? {}) as Record<string, unknown>,
        ts: at,
        created_at: at,
      },
    };
  } catch {
    return null;
  }
}

export interface NewEvent {
  type: string;
  data: Record<string, unknown>;
}

/**
 * The CTEs that append `events` to a run's log, for composing into a larger statement:
 * `counter` names a CTE of at most one row whose `last_seq` is the run's counter AFTER
 * adding `events.length` (no row = nothing is written). With `notify`, each event is also
 * pg_notified in the same statement (PostgreSQL). The caller's final SELECT must include
 * `columns`: it returns the written events (see eventsOf) and makes the NOTIFY CTE run.
 */
export function eventCtes(runId: string, counter: string, events: NewEvent[], notify: boolean): { ctes: RawBuilder<unknown>; columns: RawBuilder<unknown> } {
  const n = events.length;
  const ids = events.map(() => newId());
  const types = events.map((e) => e.type);
  const datas = events.map((e) => JSON.stringify(e.data));
  const ctes = sql`ev AS (
      INSERT INTO run_events (run_id, seq, id, type, data)
      SELECT ${runId}::uuid, s.last_seq - ${n} + e.ord::int, e.id, e.type, e.data
        FROM ${sql.table(counter)} s, unnest(${ids}::uuid[], ${types}::text[], ${datas}::jsonb[]) WITH ORDINALITY AS e(id, type, data, ord)
      RETURNING run_id, seq, id, type, data, created_at
    )${notify ? sql`, ev_n AS (
        SELECT pg_notify(${RUN_EVENTS_CHANNEL},
          CASE WHEN octet_length(j.payload) <= ${NOTIFY_INLINE_MAX} THEN j.payload
               ELSE json_build_object('run_id', ins.run_id, 'seq', ins.seq, 'ref', true)::text END)
          FROM (SELECT * FROM ev ORDER BY seq) ins, LATERAL (SELECT json_build_object(
            'event_id', ins.id, 'run_id', ins.run_id, 'seq', ins.seq, 'type', ins.type, 'data', ins.data,
            'created_at', ${isoSql(sql`ins.created_at`)})::text AS payload) j
      )` : sql``}`;
  const columns = sql`${eventsJsonSql(sql`ev`)} AS ev_rows${notify ? sql`, (SELECT count(*) FROM ev_n) AS ev_notified` : sql``}`;
  return { ctes, columns };
}

/** The event rows of `from` (a table expression with run_events' columns) as one json array in seq order. */
function eventsJsonSql(from: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`(SELECT json_agg(json_build_object('id', x.id, 'run_id', x.run_id, 'seq', x.seq, 'type', x.type, 'data', x.data,
      'created_at', ${isoSql(sql`x.created_at`)}) ORDER BY x.seq) FROM ${from} x)`;
}

/** A run's events after `afterSeq` (at most `limit`), for composing into a read; parse with eventsOf. */
export function eventsAfterSql(runId: RawBuilder<unknown>, afterSeq: number, limit: number): RawBuilder<unknown> {
  return eventsJsonSql(sql`(SELECT * FROM run_events e WHERE e.run_id = ${runId} AND e.seq > ${afterSeq} ORDER BY e.seq LIMIT ${limit})`);
}

/** The events a statement built with eventCtes or eventsAfterSql returned, in seq order. */
export function eventsOf(row: { ev_rows?: unknown } | undefined): RunEvent[] {
  const rows = (row?.ev_rows ?? null) as Array<{ id: string; run_id: string; seq: number; type: string; data: Record<string, unknown>; created_at: string }> | null;
  if (!rows) return [];
  return rows.map((r) => ({ event_id: r.id, run_id: r.run_id, seq: r.seq, type: r.type, data: r.data, ts: r.created_at, created_at: r.created_at }));
}

/**
 * Appends events to a run in one statement, with consecutive seqs in the given order, and
 * returns them. `notify` = also pg_notify each one in the same statement (PostgreSQL).
 * Returns [] when the run does not exist or has ended: nothing is ever written after a
 * terminal event (a terminal writer sets the status and appends its event in one statement).
 */
export async function appendRunEvents(
  db: Kysely<DB>,
  runId: string,
  events: NewEvent[],
  opts: { notify: boolean; outputEmitted?: boolean },
): Promise<RunEvent[]> {
  const marksOutput = opts.outputEmitted ? sql`, output_emitted = true` : sql``;
  const { ctes, columns } = eventCtes(runId, 's', events, opts.notify);
  const res = await sql<{ ev_rows: unknown }>`
    WITH s AS (
      UPDATE runs SET last_seq = last_seq + ${events.length}, updated_at = now()${marksOutput}
       WHERE id = ${runId} AND status IN ('running', 'waiting_for_input') RETURNING last_seq
    ),
    ${ctes}
    SELECT ${columns}`.execute(db);
  return eventsOf(res.rows[0]);
}
