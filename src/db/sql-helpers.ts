// Small SQL fragments shared by every module.
import { sql, type RawBuilder } from 'kysely';

/** A timestamptz as the API's ISO-8601 UTC text with milliseconds (`2026-01-02T03:04:05.678Z`). */
export function isoSql(column: RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}
