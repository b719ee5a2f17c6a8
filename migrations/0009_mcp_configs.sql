-- MCP configs (api.md §13): an account's MCP servers whose tools its runs may call (§27.5).
-- `stdio` configs start a local command (command, args, cwd, env); `http_sse` and
-- `streamable_http` configs reach a URL. The bearer token and the env map are stored
-- encrypted (AES-256-GCM); only the env variable names are kept in clear (`env_keys`).
CREATE TABLE mcp_configs (
  id                  uuid PRIMARY KEY,
  org_id              uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name                text NOT NULL,
  transport           text NOT NULL CHECK (transport IN ('stdio', 'http_sse', 'streamable_http')),
  url                 text,
  bearer_token_enc    text,
  command             text,
  args                jsonb NOT NULL DEFAULT '[]',
  cwd                 text,
  env_enc             text,
  env_keys            jsonb NOT NULL DEFAULT '[]',
  inherit_parent_env  boolean NOT NULL DEFAULT false,
  call_timeout_ms     integer NOT NULL DEFAULT 10000 CHECK (call_timeout_ms BETWEEN 100 AND 600000),
  is_active           boolean NOT NULL DEFAULT true,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT mcp_configs_org_name_key UNIQUE (org_id, name),
  CHECK ((transport = 'stdio') = (command IS NOT NULL)),
  CHECK ((transport = 'stdio') = (url IS NULL))
);
