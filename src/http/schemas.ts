// Shared request/response schema pieces and small shaping helpers used by every module.
import { Type, type TSchema } from '@sinclair/typebox';
import { fieldError } from './errors.js';
import { isUuid } from '../lib/ids.js';

export const T = Type;

export const Uuid = () => T.String({ format: 'uuid' });
export const DateTime = () => T.String({ format: 'date-time' });
export const Nullable = <S extends TSchema>(s: S) => T.Union([s, T.Null()]);
/** Optional on create; `null` counts as absent (§1.1). */
export const OptNull = <S extends TSchema>(s: S) => T.Optional(T.Union([s, T.Null()]));

/** Query booleans: true/false/1/0, anything else → 400 (§1.1). */
export const QueryBool = () => T.Union([T.Literal('true'), T.Literal('false'), T.Literal('1'), T.Literal('0')]);
export function parseQueryBool(v: string | undefined, def: boolean): boolean {
  if (v === undefined) return def;
  return v === 'true' || v === '1';
}

export const Limit = (def = 20) => T.Integer({ minimum: 1, maximum: 200, default: def });

/** `limit` and `before` of cursor-paged lists (§1.7); `before` is validated by the handler. */
export const PageQuery = (def = 20) => T.Object({ limit: T.Optional(Limit(def)), before: T.Optional(T.String({ maxLength: 100 })) });

/** A `before` cursor must be a UUID; whether it names an item of the list is checked by the caller. */
export function parseCursor(before: string | undefined, field = 'before'): string | null {
  if (before === undefined || before === '') return null;
  if (!isUuid(before)) throw fieldError(field, 'must be the id of an item of this list');
  return before.toLowerCase();
}

export function badCursor(field = 'before') {
  return fieldError(field, 'does not name an item of this list');
}

/** `limit` and `cursor` of admin lists, with `before` accepted as its alias (§1.7). */
export const CursorPageQuery = (def = 20) =>
  T.Object({ limit: T.Optional(Limit(def)), cursor: T.Optional(T.String({ maxLength: 100 })), before: T.Optional(T.String({ maxLength: 100 })) });

/** The id named by `cursor` (or its alias `before`) and the field that named it, for badCursor. */
export function parsePageCursor(q: { cursor?: string; before?: string }): { id: string; field: 'cursor' | 'before' } | null {
  const field = q.cursor !== undefined ? 'cursor' : 'before';
  const id = parseCursor(q[field], field);
  return id ? { id, field } : null;
}

/** The largest value an `integer` (int4) column holds. */
export const MAX_INT4 = 2_147_483_647;

export const OkResponse = T.Object({ ok: T.Boolean() });

export function iso(d: Date | string): string;
export function iso(d: Date | string | null | undefined): string | null;
export function iso(d: Date | string | null | undefined): string | null {
  if (d === null || d === undefined) return null;
  return (d instanceof Date ? d : new Date(d)).toISOString();
}

/** UTF-8 byte length, for limits stated in bytes. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
