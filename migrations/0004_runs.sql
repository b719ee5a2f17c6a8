-- Runs, their event log and the job queue (api.md §8, §26).

CREATE TABLE runs (
  id                        uuid PRIMARY KEY,
  org_id                    uuid NOT NULL REFERENCES accounts (id),
  thread_id                 uuid NOT NULL REFERENCES threads (id),
  created_by_user_id        uuid NOT NULL REFERENCES users (id),
  status                    text NOT NULL CHECK (status IN ('running', 'waiting_for_input', 'completed', 'failed', 'cancelled')),
  persona_id                text,
  route_id                  uuid,
  requested_model           text,
  model                     text,
  provider_kind             text,
  credential_name           text,
  persona_model             text,
  trace_id                  text NOT NULL,
  error_class               text,
  error_message             text,
  total_input_tokens        bigint NOT NULL DEFAULT 0,
  total_output_tokens       bigint NOT NULL DEFAULT 0,
  total_cache_read_tokens   bigint NOT NULL DEFAULT 0,
  total_cache_write_tokens  bigint NOT NULL DEFAULT 0,
  total_cost_usd            numeric(20, 10) NOT NULL DEFAULT 0,
  credits_used              bigint NOT NULL DEFAULT 0,
  last_seq                  integer NOT NULL DEFAULT 0,
  cancel_requested          boolean NOT NULL DEFAULT false,
  cancel_reason             text,
  cancel_requested_by       uuid,
  -- Time spent in `running` (waiting for input excluded) for the run timeout.
  running_ms                bigint NOT NULL DEFAULT 0,
  running_since             timestamptz,
  waiting_since             timestamptz,
  -- A message.delta or tool.call was emitted (decides what a lost worker means).
  output_emitted            boolean NOT NULL DEFAULT false,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  completed_at              timestamptz,
  failed_at                 timestamptz,
  cancelled_at              timestamptz
);
CREATE INDEX runs_org_idx ON runs (org_id, created_at DESC, id DESC);
CREATE INDEX runs_thread_idx ON runs (thread_id, created_at DESC, id DESC);
CREATE INDEX runs_active_idx ON runs (org_id) WHERE status IN ('running', 'waiting_for_input');

CREATE TABLE run_events (
  run_id      uuid NOT NULL REFERENCES runs (id),
  seq         integer NOT NULL,
  id          uuid NOT NULL,
  type        text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, seq)
);

-- The job queue: leased with FOR UPDATE SKIP LOCKED, lease expiry and heartbeats.
CREATE TABLE jobs (
  id                uuid PRIMARY KEY,
  type              text NOT NULL,
  payload           jsonb NOT NULL,
  state             text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'leased', 'done', 'failed')),
  run_at            timestamptz NOT NULL DEFAULT now(),
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL DEFAULT 5,
  lease_expires_at  timestamptz,
  leased_by         text,
  last_error        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_ready_idx ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_leased_idx ON jobs (lease_expires_at) WHERE state = 'leased';
