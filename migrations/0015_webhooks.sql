-- Webhooks (api.md §2.8, §20): endpoints with their encrypted signing secret, and one delivery
-- row per (event, endpoint) written in the transaction of the event (the outbox), beside its
-- `webhook.deliver` job.
CREATE TABLE webhook_endpoints (
  id           uuid PRIMARY KEY,
  org_id       uuid NOT NULL REFERENCES accounts (id),
  url          text NOT NULL,
  events       jsonb NOT NULL,
  enabled      boolean NOT NULL DEFAULT true,
  description  text,
  secret_enc   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  deleted_at   timestamptz
);
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
  id                uuid PRIMARY KEY,
  org_id            uuid NOT NULL,
  endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id),
  event_id          uuid NOT NULL,
  event_type        text NOT NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts          integer NOT NULL DEFAULT 0,
  last_status_code  integer,
  last_error        text,
  response_body     text,
  next_attempt_at   timestamptz,
  delivered_at      timestamptz,
  payload           jsonb NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

-- Jobs that share a key (a webhook endpoint) run at most a lane's per-key limit at a time, and
-- the lane's queue is shared round-robin between keys (worker.ts, jobs.ts leaseKeyedJobs).
ALTER TABLE jobs ADD COLUMN concurrency_key text;
CREATE INDEX jobs_key_leased_idx ON jobs (concurrency_key) WHERE state = 'leased' AND concurrency_key IS NOT NULL;
