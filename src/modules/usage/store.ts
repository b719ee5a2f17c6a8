// Usage records: one per model call (api.md §27.7), read by the usage endpoints.
import type { Kysely } from 'kysely';
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

export async function insertUsageRecord(db: Kysely<DB>, u: UsageRecord): Promise<void> {
  await db
    .insertInto('usage_records')
    .values({
      id: newId(),
      org_id: u.orgId,
      user_id: u.userId,
      run_id: u.runId,
      thread_id: u.threadId,
      provider_name: u.providerName,
      provider_kind: u.providerKind,
      model: u.model,
      input_tokens: u.inputTokens,
      output_tokens: u.outputTokens,
      cache_read_tokens: u.cacheReadTokens,
      cache_write_tokens: u.cacheWriteTokens,
      cost_usd: u.costUsd,
    })
    .execute();
}
