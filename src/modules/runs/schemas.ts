// Request and response schemas of the runs endpoints (api.md §2.4, §8).
import { DateTime, Nullable, OptNull, T, Uuid } from '../../http/schemas.js';

export const RunStatusSchema = T.Union([
  T.Literal('running'),
  T.Literal('waiting_for_input'),
  T.Literal('completed'),
  T.Literal('failed'),
  T.Literal('cancelled'),
]);

export const CreateRunBody = T.Object({
  route_id: OptNull(Uuid()),
  persona_id: OptNull(T.String({ minLength: 1, maxLength: 100 })),
  model: OptNull(T.String({ minLength: 1, maxLength: 200 })),
});

export const RunCreatedSchema = T.Object({ run_id: Uuid(), trace_id: T.String() });

const listItemFields = {
  run_id: Uuid(),
  org_id: Uuid(),
  thread_id: Uuid(),
  status: RunStatusSchema,
  model: Nullable(T.String()),
  persona_id: Nullable(T.String()),
  total_input_tokens: T.Integer(),
  total_output_tokens: T.Integer(),
  total_cost_usd: T.Number(),
  duration_ms: Nullable(T.Integer()),
  cache_hit_rate: Nullable(T.Number()),
  credits_used: T.Integer(),
  created_at: DateTime(),
  completed_at: Nullable(DateTime()),
  failed_at: Nullable(DateTime()),
  cancelled_at: Nullable(DateTime()),
  created_by_user_id: Uuid(),
  created_by_user_name: T.String(),
  created_by_email: Nullable(T.String()),
};

export const RunListItemSchema = T.Object(listItemFields);

export const RunDetailSchema = T.Object({
  ...listItemFields,
  trace_id: T.String(),
  route_id: Nullable(Uuid()),
  requested_model: Nullable(T.String()),
  error_class: Nullable(T.String()),
  error_message: Nullable(T.String()),
  total_cache_read_tokens: T.Integer(),
  total_cache_write_tokens: T.Integer(),
  last_seq: T.Integer(),
  cancel_requested: T.Boolean(),
  updated_at: DateTime(),
});

export const RunEventSchema = T.Object({
  event_id: Uuid(),
  run_id: Uuid(),
  seq: T.Integer(),
  type: T.String(),
  data: T.Object({}, { additionalProperties: true }),
  ts: DateTime(),
  created_at: DateTime(),
});
