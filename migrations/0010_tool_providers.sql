-- Tool providers (api.md §14): the backend configuration of the tool groups web_search and
-- web_fetch, per scope — an account's (scope org, org_id set) or the platform's (scope platform,
-- org_id null). One row per scope + provider, created on first write; the catalogue itself is
-- code (src/modules/tool-providers/catalogue.ts). The partial unique indexes keep at most one
-- active provider per scope + group.
CREATE TABLE tool_provider_configs (
  id             uuid PRIMARY KEY,
  org_id         uuid REFERENCES accounts (id) ON DELETE CASCADE,
  scope          text NOT NULL CHECK (scope IN ('org', 'platform')),
  group_name     text NOT NULL,
  provider_name  text NOT NULL,
  is_active      boolean NOT NULL DEFAULT false,
  api_key_enc    text,
  key_prefix     text,
  base_url       text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CHECK ((scope = 'org') = (org_id IS NOT NULL))
);
CREATE UNIQUE INDEX tool_provider_configs_org_provider_key ON tool_provider_configs (org_id, provider_name) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX tool_provider_configs_platform_provider_key ON tool_provider_configs (provider_name) WHERE org_id IS NULL;
CREATE UNIQUE INDEX tool_provider_configs_org_active_key ON tool_provider_configs (org_id, group_name) WHERE org_id IS NOT NULL AND is_active;
CREATE UNIQUE INDEX tool_provider_configs_platform_active_key ON tool_provider_configs (group_name) WHERE org_id IS NULL AND is_active;
