-- LLM providers and their models (api.md §12). A provider is account-owned (scope org,
-- org_id set) or platform-wide (scope platform, org_id null); its models are the routes.
CREATE TABLE llm_providers (
  id               uuid PRIMARY KEY,
  org_id           uuid REFERENCES accounts (id) ON DELETE CASCADE,
  scope            text NOT NULL CHECK (scope IN ('org', 'platform')),
  provider         text NOT NULL CHECK (provider IN ('openai', 'anthropic', 'stub')),
  name             text NOT NULL,
  api_key_enc      text,
  key_prefix       text,
  base_url         text,
  openai_api_mode  text,
  advanced_json    jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((scope = 'org') = (org_id IS NOT NULL))
);
CREATE UNIQUE INDEX llm_providers_org_name_key ON llm_providers (org_id, name) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX llm_providers_platform_name_key ON llm_providers (name) WHERE org_id IS NULL;

CREATE TABLE llm_models (
  id                       uuid PRIMARY KEY,
  provider_id              uuid NOT NULL REFERENCES llm_providers (id) ON DELETE CASCADE,
  model                    text NOT NULL,
  priority                 integer NOT NULL DEFAULT 0,
  is_default               boolean NOT NULL DEFAULT false,
  tags                     jsonb NOT NULL DEFAULT '[]',
  when_json                jsonb NOT NULL DEFAULT '{}',
  advanced_json            jsonb NOT NULL DEFAULT '{}',
  multiplier               double precision NOT NULL DEFAULT 1,
  cost_per_1k_input        numeric,
  cost_per_1k_output       numeric,
  cost_per_1k_cache_write  numeric,
  cost_per_1k_cache_read   numeric,
  created_at               timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT llm_models_provider_model_key UNIQUE (provider_id, model)
);
