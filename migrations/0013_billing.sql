-- Money (api.md §16–§18, §21.14–21.21): plans with their entitlement values, subscriptions,
-- entitlement overrides, the daily usage rollup the admin views read, and the indexes the
-- admin lists of invite codes, referrals and redemption codes page through.

-- Deleted plans are kept (deleted_at) so the subscriptions that used them keep their plan_id;
-- only live plans hold a name.
CREATE TABLE plans (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  display_name  text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  deleted_at    timestamptz
);
CREATE UNIQUE INDEX plans_name_key ON plans (name) WHERE deleted_at IS NULL;

CREATE TABLE plan_entitlements (
  id          uuid PRIMARY KEY,
  plan_id     uuid NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  key         text NOT NULL,
  value       text NOT NULL,
  value_type  text NOT NULL CHECK (value_type IN ('integer', 'boolean', 'string')),
  UNIQUE (plan_id, key)
);

-- status is what was decided (active or cancelled); `expired` is derived from the period end.
CREATE TABLE subscriptions (
  id                    uuid PRIMARY KEY,
  org_id                uuid NOT NULL REFERENCES accounts (id),
  plan_id               uuid NOT NULL REFERENCES plans (id),
  status                text NOT NULL CHECK (status IN ('active', 'cancelled')),
  current_period_start  timestamptz NOT NULL,
  current_period_end    timestamptz NOT NULL,
  cancelled_at          timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_org_idx ON subscriptions (org_id, created_at DESC, id DESC);
CREATE INDEX subscriptions_created_idx ON subscriptions (created_at DESC, id DESC);
CREATE INDEX subscriptions_plan_active_idx ON subscriptions (plan_id) WHERE status = 'active';

CREATE TABLE entitlement_overrides (
  id                  uuid PRIMARY KEY,
  org_id              uuid NOT NULL REFERENCES accounts (id),
  key                 text NOT NULL,
  value               text NOT NULL,
  value_type          text NOT NULL CHECK (value_type IN ('integer', 'boolean', 'string')),
  reason              text,
  expires_at          timestamptz,
  created_by_user_id  uuid,
  created_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, key)
);

-- Usage of closed UTC days, summed per (day, account, model). Days before
-- usage_rollup_state.rolled_until are read from here, later days from usage_records, so the
-- admin views are exact whatever the rollup's progress (modules/usage/rollup.ts).
CREATE TABLE usage_daily (
  day            date NOT NULL,
  org_id         uuid NOT NULL,
  model          text NOT NULL,
  input_tokens   bigint NOT NULL,
  output_tokens  bigint NOT NULL,
  cost_usd       numeric(30, 10) NOT NULL,
  record_count   bigint NOT NULL,
  PRIMARY KEY (day, org_id, model)
);
CREATE TABLE usage_rollup_state (
  id            integer PRIMARY KEY CHECK (id = 1),
  rolled_until  date
);
INSERT INTO usage_rollup_state (id, rolled_until) VALUES (1, NULL);
CREATE INDEX usage_records_created_idx ON usage_records (created_at);

-- Redemption batch ids are caller-chosen strings (§21.19).
ALTER TABLE redemption_codes ALTER COLUMN batch_id TYPE text;
CREATE INDEX redemption_codes_created_idx ON redemption_codes (created_at DESC, id DESC);
CREATE INDEX redemption_codes_batch_idx ON redemption_codes (batch_id, created_at DESC);
CREATE INDEX invite_codes_created_idx ON invite_codes (created_at DESC, id DESC);
CREATE INDEX referrals_created_idx ON referrals (created_at DESC, id DESC);
CREATE INDEX referrals_inviter_idx ON referrals (inviter_user_id, created_at DESC);
