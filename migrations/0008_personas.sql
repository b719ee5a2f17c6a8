-- Personas of accounts (scope org) and of the platform (scope platform, org_id null), api.md
-- §10. Built-in personas are files (personas/), not rows. A (scope, account, key, version) is
-- one persona; versions are immutable identities.
CREATE TABLE personas (
  id                    uuid PRIMARY KEY,
  org_id                uuid REFERENCES accounts (id) ON DELETE CASCADE,
  scope                 text NOT NULL CHECK (scope IN ('org', 'platform')),
  persona_key           text NOT NULL,
  version               text NOT NULL,
  display_name          text NOT NULL,
  description           text,
  prompt_md             text NOT NULL,
  tool_allowlist        jsonb,
  tool_denylist         jsonb NOT NULL DEFAULT '[]',
  tool_approval         jsonb NOT NULL DEFAULT '[]',
  budgets               jsonb NOT NULL DEFAULT '{}',
  model                 text,
  preferred_credential  text,
  reasoning_mode        text,
  stream_thinking       boolean NOT NULL DEFAULT true,
  prompt_cache_control  text,
  executor_type         text NOT NULL DEFAULT 'agent.simple',
  roles                 jsonb NOT NULL DEFAULT '{}',
  is_active             boolean NOT NULL DEFAULT true,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((scope = 'org') = (org_id IS NOT NULL))
);
CREATE UNIQUE INDEX personas_org_key_version_key ON personas (org_id, persona_key, version) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX personas_platform_key_version_key ON personas (persona_key, version) WHERE org_id IS NULL;
