-- Speech-to-text credentials (api.md §15): account-owned (scope org, org_id set) or
-- platform-wide (scope platform, org_id null). The API key is stored encrypted; at most one
-- credential per scope and account is the default.
CREATE TABLE asr_credentials (
  id           uuid PRIMARY KEY,
  org_id       uuid REFERENCES accounts (id) ON DELETE CASCADE,
  scope        text NOT NULL CHECK (scope IN ('org', 'platform')),
  provider     text NOT NULL CHECK (provider IN ('groq', 'openai')),
  name         text NOT NULL,
  api_key_enc  text NOT NULL,
  key_prefix   text NOT NULL,
  base_url     text,
  model        text NOT NULL,
  is_default   boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((scope = 'org') = (org_id IS NOT NULL))
);
CREATE INDEX asr_credentials_org_idx ON asr_credentials (org_id, created_at);
CREATE UNIQUE INDEX asr_credentials_org_default_key ON asr_credentials (org_id) WHERE is_default AND org_id IS NOT NULL;
CREATE UNIQUE INDEX asr_credentials_platform_default_key ON asr_credentials (scope) WHERE is_default AND org_id IS NULL;
