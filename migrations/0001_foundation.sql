-- Foundation: identity, accounts, conversations, projects, audit, settings, idempotency,
-- credits and usage (the tables the Me endpoints read).

CREATE TABLE users (
  id                 uuid PRIMARY KEY,
  login              text NOT NULL,
  email              text,
  email_verified     boolean NOT NULL DEFAULT false,
  password_hash      text,
  username           text NOT NULL,
  locale             text NOT NULL DEFAULT 'en',
  timezone           text,
  avatar_url         text,
  status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
  is_platform_admin  boolean NOT NULL DEFAULT false,
  last_login_at      timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_login_lower_key ON users (lower(login));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE accounts (
  id             uuid PRIMARY KEY,
  slug           text NOT NULL UNIQUE,
  name           text NOT NULL,
  type           text NOT NULL CHECK (type IN ('personal', 'workspace')),
  owner_user_id  uuid REFERENCES users (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_personal_owner_key ON accounts (owner_user_id) WHERE type = 'personal';

CREATE TABLE account_memberships (
  account_id  uuid NOT NULL REFERENCES accounts (id),
  user_id     uuid NOT NULL REFERENCES users (id),
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, user_id)
);
CREATE INDEX account_memberships_user_idx ON account_memberships (user_id);

CREATE TABLE teams (
  id          uuid PRIMARY KEY,
  account_id  uuid NOT NULL REFERENCES accounts (id),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX teams_account_name_key ON teams (account_id, lower(name));

CREATE TABLE team_members (
  team_id     uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id),
  account_id  uuid NOT NULL REFERENCES accounts (id),
  role        text NOT NULL CHECK (role IN ('admin', 'member')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_account_user_idx ON team_members (account_id, user_id);

CREATE TABLE invitations (
  id                  uuid PRIMARY KEY,
  account_id          uuid NOT NULL REFERENCES accounts (id),
  invited_by_user_id  uuid NOT NULL REFERENCES users (id),
  email               text NOT NULL,
  role                text NOT NULL CHECK (role IN ('admin', 'member')),
  token_hash          text NOT NULL UNIQUE,
  expires_at          timestamptz NOT NULL,
  accepted_at         timestamptz,
  accepted_by_user_id uuid REFERENCES users (id),
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invitations_account_idx ON invitations (account_id, created_at DESC, id DESC);

-- A session is one sign-in; its refresh tokens form the rotating family.
CREATE TABLE sessions (
  id          uuid PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES users (id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  ip_address  text,
  user_agent  text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
  id          uuid PRIMARY KEY,
  session_id  uuid NOT NULL REFERENCES sessions (id),
  token_hash  text NOT NULL UNIQUE,
  expires_at  timestamptz NOT NULL,
  rotated_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE email_verification_tokens (
  id          uuid PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES users (id),
  email       text NOT NULL,
  token_hash  text NOT NULL UNIQUE,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_verification_tokens_user_idx ON email_verification_tokens (user_id);

CREATE TABLE email_otps (
  id               uuid PRIMARY KEY,
  user_id          uuid NOT NULL REFERENCES users (id),
  code_hash        text NOT NULL,
  expires_at       timestamptz NOT NULL,
  used_at          timestamptz,
  failed_attempts  integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_otps_user_idx ON email_otps (user_id, created_at DESC);

CREATE TABLE api_keys (
  id            uuid PRIMARY KEY,
  org_id        uuid NOT NULL REFERENCES accounts (id),
  user_id       uuid NOT NULL REFERENCES users (id),
  name          text NOT NULL,
  key_prefix    text NOT NULL,
  key_hash      text NOT NULL UNIQUE,
  scopes        jsonb NOT NULL DEFAULT '[]',
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org_user_idx ON api_keys (org_id, user_id, created_at DESC, id DESC);

CREATE TABLE projects (
  id                  uuid PRIMARY KEY,
  org_id              uuid NOT NULL REFERENCES accounts (id),
  team_id             uuid REFERENCES teams (id) ON DELETE SET NULL,
  name                text NOT NULL,
  description         text,
  visibility          text NOT NULL CHECK (visibility IN ('private', 'shared')),
  created_by_user_id  uuid NOT NULL REFERENCES users (id),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  deleted_at          timestamptz
);
CREATE INDEX projects_org_idx ON projects (org_id, created_at DESC, id DESC);

CREATE TABLE threads (
  id                  uuid PRIMARY KEY,
  org_id              uuid NOT NULL REFERENCES accounts (id),
  created_by_user_id  uuid NOT NULL REFERENCES users (id),
  title               text,
  project_id          uuid REFERENCES projects (id),
  is_private          boolean NOT NULL DEFAULT false,
  active_run_id       uuid,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  deleted_at          timestamptz
);
CREATE INDEX threads_org_creator_idx ON threads (org_id, created_by_user_id, created_at DESC, id DESC);
CREATE INDEX threads_project_idx ON threads (project_id, created_at DESC, id DESC) WHERE project_id IS NOT NULL;

CREATE TABLE thread_stars (
  user_id     uuid NOT NULL REFERENCES users (id),
  thread_id   uuid NOT NULL REFERENCES threads (id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, thread_id)
);

CREATE TABLE messages (
  id                  uuid PRIMARY KEY,
  org_id              uuid NOT NULL REFERENCES accounts (id),
  thread_id           uuid NOT NULL REFERENCES threads (id),
  created_by_user_id  uuid REFERENCES users (id),
  role                text NOT NULL CHECK (role IN ('user', 'assistant')),
  content             text NOT NULL,
  run_id              uuid,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_thread_idx ON messages (thread_id, created_at DESC, id DESC);

CREATE TABLE audit_logs (
  id             uuid PRIMARY KEY,
  org_id         uuid,
  actor_user_id  uuid,
  action         text NOT NULL,
  target_type    text,
  target_id      text,
  trace_id       text NOT NULL,
  metadata       jsonb NOT NULL DEFAULT '{}',
  ip_address     text,
  user_agent     text,
  before_state   jsonb,
  after_state    jsonb,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_org_idx ON audit_logs (org_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_created_idx ON audit_logs (created_at DESC, id DESC);

CREATE TABLE platform_settings (
  key                 text PRIMARY KEY,
  value               jsonb NOT NULL,
  updated_by_user_id  uuid,
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
  scope_hash       text PRIMARY KEY,
  request_hash     text NOT NULL,
  state            text NOT NULL CHECK (state IN ('in_progress', 'done')),
  response_status  integer,
  response_body    jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Credits: one balance row per account, every change a transaction row.
CREATE TABLE credit_balances (
  org_id      uuid PRIMARY KEY REFERENCES accounts (id),
  balance     bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_transactions (
  id              uuid PRIMARY KEY,
  org_id          uuid NOT NULL REFERENCES accounts (id),
  amount          bigint NOT NULL,
  type            text NOT NULL CHECK (type IN ('credit', 'debit')),
  reference_type  text NOT NULL,
  reference_id    text,
  note            text,
  thread_title    text,
  balance_after   bigint NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_transactions_org_idx ON credit_transactions (org_id, created_at DESC, id DESC);

CREATE TABLE usage_records (
  id                  uuid PRIMARY KEY,
  org_id              uuid NOT NULL REFERENCES accounts (id),
  user_id             uuid,
  run_id              uuid,
  thread_id           uuid,
  provider_name       text,
  provider_kind       text,
  model               text NOT NULL,
  input_tokens        bigint NOT NULL DEFAULT 0,
  output_tokens       bigint NOT NULL DEFAULT 0,
  cache_read_tokens   bigint NOT NULL DEFAULT 0,
  cache_write_tokens  bigint NOT NULL DEFAULT 0,
  cost_usd            numeric(20, 10) NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_org_created_idx ON usage_records (org_id, created_at);
CREATE INDEX usage_records_user_created_idx ON usage_records (org_id, user_id, created_at);

CREATE TABLE invite_codes (
  id          uuid PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES users (id),
  code        text NOT NULL UNIQUE,
  max_uses    integer NOT NULL DEFAULT 0,
  use_count   integer NOT NULL DEFAULT 0,
  is_active   boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invite_codes_user_idx ON invite_codes (user_id, created_at DESC);

CREATE TABLE referrals (
  id               uuid PRIMARY KEY,
  inviter_user_id  uuid NOT NULL REFERENCES users (id),
  invitee_user_id  uuid NOT NULL UNIQUE REFERENCES users (id),
  invite_code_id   uuid NOT NULL REFERENCES invite_codes (id),
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE redemption_codes (
  id                  uuid PRIMARY KEY,
  code                text NOT NULL UNIQUE,
  type                text NOT NULL DEFAULT 'credits',
  value               text NOT NULL,
  max_uses            integer NOT NULL DEFAULT 1,
  use_count           integer NOT NULL DEFAULT 0,
  is_active           boolean NOT NULL DEFAULT true,
  expires_at          timestamptz,
  batch_id            uuid,
  created_by_user_id  uuid,
  created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE redemptions (
  id                  uuid PRIMARY KEY,
  redemption_code_id  uuid NOT NULL REFERENCES redemption_codes (id),
  user_id             uuid NOT NULL REFERENCES users (id),
  org_id              uuid NOT NULL REFERENCES accounts (id),
  created_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (redemption_code_id, user_id)
);

CREATE TABLE feature_flags (
  id             uuid PRIMARY KEY,
  key            text NOT NULL UNIQUE,
  description    text,
  default_value  boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feature_flag_overrides (
  flag_key    text NOT NULL REFERENCES feature_flags (key) ON DELETE CASCADE ON UPDATE CASCADE,
  org_id      uuid NOT NULL REFERENCES accounts (id),
  enabled     boolean NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (flag_key, org_id)
);
