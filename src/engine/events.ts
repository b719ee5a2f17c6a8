// The run event log (api.md §26.3): every event gets the next `seq` of its run from the
// run row's counter in the same statement that inserts it, so concurrent writers (worker,
// API cancel/input, reaper) never produce a gap or a duplicate. On PostgreSQL the same
// statement NOTIFYs, so live delivery follows commit order in every process; the embedded
// engine publishes in process after commit (see EventPublisher).
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
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

/**
 * Appends events to a run in one statement, with consecutive seqs in the given order, and
 * returns them. `notify` = also pg_notify each one in the same statement (PostgreSQL).
 * Returns [] when the run does not exist or has ended: nothing is ever written after a
 * terminal event, so a terminal writer appends its event before it sets the terminal status
 * (in the same transaction).
 */
export async function appendRunEvents(
  db: Kysely<DB>,
  runId: string,
  events: Array<{ type: string; data: Record<string, unknown> }>,
  opts: { notify: boolean; outputEmitted?: boolean },
): Promise<RunEvent[]> {
  const n = events.length;
  const ids = events.map(() => newId());
  const types = events.map((e) => e.type);
  const datas = events.map((e) => JSON.stringify(e.data));
  const marksOutput = opts.outputEmitted ? sql`, output_emitted = true` : sql``;
  const notify = opts.notify
    ? sql`, n AS (
        SELECT pg_notify(${RUN_EVENTS_CHANNEL},
          CASE WHEN octet_length(j.payload) <= ${NOTIFY_INLINE_MAX} THEN j.payload
               ELSE json_build_object('run_id', ins.run_id, 'seq', ins.seq, 'ref', true)::text END)
          FROM (SELECT * FROM ins ORDER BY seq) ins, LATERAL (SELECT json_build_object(
            'event_id', ins.id, 'run_id', ins.run_id, 'seq', ins.seq, 'type', ins.type, 'data', ins.data,
            'created_at', to_char(ins.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text AS payload) j
      )`
    : sql``;
  const res = await sql<EventRow>`
    WITH s AS (
      UPDATE runs SET last_seq = last_seq + ${n}, updated_at = now()${marksOutput}
       WHERE id = ${runId} AND status IN ('running', 'waiting_for_input') RETURNING last_seq
    ),
    ins AS (
      INSERT INTO run_events (run_id, seq, id, type, data)
      SELECT ${runId}::uuid, s.last_seq - ${n} + e.ord::int, e.id, e.type, e.data
        FROM s, unnest(${ids}::uuid[], ${types}::text[], ${datas}::jsonb[]) WITH ORDINALITY AS e(id, type, data, ord)
      RETURNING run_id, seq, id, type, data, created_at
    )${notify}
    SELECT ins.* FROM ins${opts.notify ? sql`, (SELECT count(*) FROM n) AS _n` : sql``} ORDER BY ins.seq`.execute(db);
  return res.rows.map(toRunEvent);
}
