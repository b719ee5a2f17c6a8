// MCP configs (api.md §13): the SQL of the mcp-configs module, the McpConfig shape, and the
// decrypted form the MCP runtime (src/mcp/) starts a server from. The bearer token and the env
// map are stored encrypted (AES-256-GCM, ctx.secrets.encryptionKey); only the env variable
// names are kept in clear and ever returned.
import type { Insertable, Kysely, Selectable, Updateable } from 'kysely';
import type { DB, McpConfigsTable } from '../../db/schema.js';
import { iso } from '../../http/schemas.js';
import { decryptSecret } from '../../lib/crypto.js';
import { newId } from '../../lib/ids.js';

export type McpConfigRow = Selectable<McpConfigsTable>;
export type McpTransport = McpConfigRow['transport'];

export const REMOTE_TRANSPORTS: readonly McpTransport[] = ['http_sse', 'streamable_http'];

/** The account's configs, oldest first (§13.2). */
export async function listConfigs(db: Kysely<DB>, orgId: string): Promise<McpConfigRow[]> {
  return db.selectFrom('mcp_configs').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').execute();
}

/** The account's active configs, oldest first: what a run of the account may use (§27.5). */
export async function activeConfigs(db: Kysely<DB>, orgId: string): Promise<McpConfigRow[]> {
  return db
    .selectFrom('mcp_configs')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('is_active', '=', true)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** A config of this account; another account's is not found (tenancy). */
export async function findConfig(db: Kysely<DB>, orgId: string, id: string): Promise<McpConfigRow | undefined> {
  return db.selectFrom('mcp_configs').selectAll().where('id', '=', id).where('org_id', '=', orgId).executeTakeFirst();
}

/** The current version (updated_at) of each of these configs that still exists. */
export async function configVersions(db: Kysely<DB>, ids: string[]): Promise<Map<string, Date>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('mcp_configs').select(['id', 'updated_at']).where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id, r.updated_at]));
}

export async function insertConfig(db: Kysely<DB>, c: Omit<Insertable<McpConfigsTable>, 'id'>): Promise<McpConfigRow> {
  return db.insertInto('mcp_configs').values({ id: newId(), ...c }).returningAll().executeTakeFirstOrThrow();
}

export async function updateConfig(db: Kysely<DB>, id: string, patch: Updateable<McpConfigsTable>): Promise<McpConfigRow> {
  return db.updateTable('mcp_configs').set({ ...patch, updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export async function deleteConfig(db: Kysely<DB>, id: string): Promise<void> {
  await db.deleteFrom('mcp_configs').where('id', '=', id).execute();
}

/** The McpConfig object (§2.6): no token, no env values. */
export function shapeConfig(c: McpConfigRow) {
  return {
    id: c.id,
    org_id: c.org_id,
    name: c.name,
    transport: c.transport,
    url: c.url,
    has_auth: c.bearer_token_enc !== null,
    command: c.command,
    args: c.args,
    cwd: c.cwd,
    env_keys: c.env_keys,
    inherit_parent_env: c.inherit_parent_env,
    call_timeout_ms: c.call_timeout_ms,
    is_active: c.is_active,
    created_at: iso(c.created_at),
    updated_at: iso(c.updated_at),
  };
}

/** What an MCP server is started or reached with: the row with its secrets decrypted. */
export interface McpServerSpec {
  id: string;
  orgId: string;
  name: string;
  transport: McpTransport;
  url: string | null;
  bearerToken: string | null;
  command: string | null;
  args: string[];
  cwd: string | null;
  env: Record<string, string>;
  inheritParentEnv: boolean;
  callTimeoutMs: number;
  /** Changes whenever anything the server is started or reached with changes. */
  fingerprint: string;
}

export function serverSpec(c: McpConfigRow, encryptionKey: string): McpServerSpec {
  return {
    id: c.id,
    orgId: c.org_id,
    name: c.name,
    transport: c.transport,
    url: c.url,
    bearerToken: c.bearer_token_enc ? decryptSecret(c.bearer_token_enc, encryptionKey) : null,
    command: c.command,
    args: c.args,
    cwd: c.cwd,
    env: c.env_enc ? (JSON.parse(decryptSecret(c.env_enc, encryptionKey)) as Record<string, string>) : {},
    inheritParentEnv: c.inherit_parent_env,
    callTimeoutMs: c.call_timeout_ms,
    fingerprint: configFingerprint(c),
  };
}

/**
 * Every stored field a server is started or reached with (secrets in their sealed form, whose
 * random nonce changes whenever they are rewritten), plus updated_at: a running server or a
 * cached tool list belongs to exactly one version of its config.
 */
export function configFingerprint(c: McpConfigRow): string {
  return JSON.stringify([
    c.name,
    c.transport,
    c.url,
    c.bearer_token_enc,
    c.command,
    c.args,
    c.cwd,
    c.env_enc,
    c.inherit_parent_env,
    c.call_timeout_ms,
    iso(c.updated_at),
  ]);
}
