// Personas of accounts and of the platform (api.md §10): the SQL of the personas module, and
// the layers a run's persona is resolved through (org > platform > built-in files).
import type { Insertable, Kysely, Selectable, Updateable } from 'kysely';
import type { DB, PersonasTable } from '../../db/schema.js';
import { iso } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';
import { builtinPersonaSource } from './builtin.js';
import { PersonaLayer, parsePersonaRef, resolvePersona, resolveRunPersona } from './resolve.js';
import { emptyBudgets, type Persona, type ResolvedPersona } from './types.js';
import type { PersonaDefinition } from './validate.js';

export type PersonaRow = Selectable<PersonasTable>;
export type StoredPersona = Persona & { scope: 'org' | 'platform' };

export function toPersona(r: PersonaRow): StoredPersona {
  return {
    id: r.id,
    org_id: r.org_id,
    scope: r.scope,
    persona_key: r.persona_key,
    version: r.version,
    display_name: r.display_name,
    description: r.description,
    prompt_md: r.prompt_md,
    tool_allowlist: r.tool_allowlist,
    tool_denylist: r.tool_denylist,
    tool_approval: r.tool_approval,
    budgets: { ...emptyBudgets(), ...(r.budgets as Partial<Persona['budgets']>) },
    model: r.model,
    preferred_credential: r.preferred_credential,
    reasoning_mode: r.reasoning_mode as Persona['reasoning_mode'],
    stream_thinking: r.stream_thinking,
    prompt_cache_control: r.prompt_cache_control as Persona['prompt_cache_control'],
    executor_type: r.executor_type as Persona['executor_type'],
    roles: r.roles as Persona['roles'],
    is_active: r.is_active,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** Column values of a validated definition (jsonb columns as JSON text). */
export function definitionColumns(d: PersonaDefinition) {
  return {
    persona_key: d.persona_key,
    version: d.version,
    display_name: d.display_name,
    description: d.description,
    prompt_md: d.prompt_md,
    tool_allowlist: d.tool_allowlist === null ? null : JSON.stringify(d.tool_allowlist),
    tool_denylist: JSON.stringify(d.tool_denylist),
    tool_approval: JSON.stringify(d.tool_approval),
    budgets: JSON.stringify(d.budgets),
    model: d.model,
    preferred_credential: d.preferred_credential,
    reasoning_mode: d.reasoning_mode,
    stream_thinking: d.stream_thinking,
    prompt_cache_control: d.prompt_cache_control,
    executor_type: d.executor_type,
    roles: JSON.stringify(d.roles),
    is_active: d.is_active,
  };
}

/** Every version of one account's (`orgId`) or the platform's (`orgId` null) personas, by key, newest first. */
export async function listPersonas(db: Kysely<DB>, orgId: string | null, opts: { key?: string; includeInactive: boolean }): Promise<StoredPersona[]> {
  let q = db.selectFrom('personas').selectAll();
  q = orgId === null ? q.where('org_id', 'is', null) : q.where('org_id', '=', orgId);
  if (opts.key !== undefined) q = q.where('persona_key', '=', opts.key);
  if (!opts.includeInactive) q = q.where('is_active', '=', true);
  const rows = await q.orderBy('persona_key').orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  return rows.map(toPersona);
}

/** A persona the account may address: its own or a platform one (the caller decides who may see those). */
export async function findPersona(db: Kysely<DB>, orgId: string, id: string): Promise<StoredPersona | undefined> {
  const row = await db
    .selectFrom('personas')
    .selectAll()
    .where('id', '=', id)
    .where((eb) => eb.or([eb('org_id', '=', orgId), eb('org_id', 'is', null)]))
    .executeTakeFirst();
  return row && toPersona(row);
}

export async function insertPersona(db: Kysely<DB>, p: Omit<Insertable<PersonasTable>, 'id'>): Promise<StoredPersona> {
  return toPersona(await db.insertInto('personas').values({ id: newId(), ...p }).returningAll().executeTakeFirstOrThrow());
}

export async function updatePersona(db: Kysely<DB>, id: string, patch: Updateable<PersonasTable>): Promise<StoredPersona> {
  return toPersona(await db.updateTable('personas').set({ ...patch, updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow());
}

export async function deletePersona(db: Kysely<DB>, id: string): Promise<void> {
  await db.deleteFrom('personas').where('id', '=', id).execute();
}

/**
 * The layers of one account, highest first: its active personas, the platform's, the
 * built-ins — read in one statement (only `key` when given: a run needs one persona).
 */
export async function personaLayers(db: Kysely<DB>, orgId: string, key?: string): Promise<PersonaLayer[]> {
  let q = db
    .selectFrom('personas')
    .selectAll()
    .where('is_active', '=', true)
    .where((eb) => eb.or([eb('org_id', '=', orgId), eb('org_id', 'is', null)]));
  if (key !== undefined) q = q.where('persona_key', '=', key);
  const rows = (await q.execute()).map(toPersona);
  return [
    new PersonaLayer('org', rows.filter((p) => p.scope === 'org')),
    new PersonaLayer('platform', rows.filter((p) => p.scope === 'platform')),
    builtinPersonaSource(),
  ];
}

/** `key` / `key@version` as a run of this account would use it; unknown or malformed → null. */
export async function resolveAccountPersona(db: Kysely<DB>, orgId: string, input: string): Promise<ResolvedPersona | null> {
  const ref = parsePersonaRef(input);
  if (!ref) return null;
  return resolvePersona(await personaLayers(db, orgId, ref.key), input);
}

/** The persona a run executes with: its stored `persona_id`, else the account's default (§27.1 step 4). */
export async function resolveAccountRunPersona(db: Kysely<DB>, orgId: string, personaId: string | null): Promise<ResolvedPersona | null> {
  const key = personaId === null ? 'default' : parsePersonaRef(personaId)?.key;
  if (key === undefined) return null;
  return resolveRunPersona(await personaLayers(db, orgId, key), personaId);
}
