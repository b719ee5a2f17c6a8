// Usage records: one per model call (api.md §27.7), read by the usage endpoints.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export interface UsageRecord {
  orgId: string;
  userId: string;
  runId: string;
  threadId: string;
  providerName: string;
  providerKind: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
}

/**
 * Records one model call: its usage record, and the run's last-call model (RunListItem
 * `model`), in one statement — the worker writes this once per model turn.
 */
export async function recordModelCall(db: Kysely<DB>, u: UsageRecord): Promise<void> {
  await sql`
    WITH usage AS (
      INSERT INTO usage_records (id, org_id, user_id, run_id, thread_id, provider_name, provider_kind, model,
                                 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd)
      VALUES (${newId()}, ${u.orgId}, ${u.userId}, ${u.runId}, ${u.threadId}, ${u.providerName}, ${u.providerKind}, ${u.model},
              ${u.inputTokens}, ${u.outputTokens}, ${u.cacheReadTokens}, ${u.cacheWriteTokens}, ${u.costUsd})
    )
    UPDATE runs SET model = ${u.model}, provider_kind = ${u.providerKind}, credential_name = ${u.providerName} WHERE id = ${u.runId}`.execute(db);
}
