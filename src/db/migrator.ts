// Numbered, forward-only SQL migrations (migrations/NNNN_name.sql), applied in one
// transaction under an advisory lock so two processes starting at once apply each once.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

export function listMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: f.slice(0, 4),
      name: f.slice(5, -4),
      sql: readFileSync(MIGRATIONS_DIR + f, 'utf8'),
    }));
}

/** The schema version this code expects: the newest migration file. */
export function expectedSchemaVersion(): string {
  const all = listMigrations();
  return all.length ? all[all.length - 1].version : '0000';
}

export async function migrate(database: Database): Promise<{ applied: string[]; version: string }> {
  const migrations = listMigrations();
  return database.withScriptTransaction(async (s) => {
    await s.query(`SELECT pg_advisory_xact_lock(7244113901)`);
    await s.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const rows = await s.query<{ version: string }>(`SELECT version FROM schema_migrations`);
    const done = new Set(rows.map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await s.exec(m.sql);
      await s.query(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    return { applied, version: migrations.length ? migrations[migrations.length - 1].version : '0000' };
  });
}

/** Latest applied version, or null when no migration table exists yet. */
export async function currentSchemaVersion(database: Database): Promise<string | null> {
  const { sql } = await import('kysely');
  try {
    const res = await sql<{ v: string | null }>`SELECT max(version) AS v FROM schema_migrations`.execute(database.db);
    return res.rows[0]?.v ?? null;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return null;
    throw err;
  }
}
