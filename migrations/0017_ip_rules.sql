-- IP rules of an account (api.md §23): allow- and blocklist CIDRs, stored as their network
-- address (e.g. 10.0.0.0/8, 2001:db8::/32). One rule per (account, type, cidr).
CREATE TABLE ip_rules (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL REFERENCES accounts (id),
  type        text NOT NULL CHECK (type IN ('allowlist', 'blocklist')),
  cidr        text NOT NULL,
  note        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ip_rules_org_type_cidr_key UNIQUE (org_id, type, cidr)
);
CREATE INDEX ip_rules_org_idx ON ip_rules (org_id, created_at, id);

-- When an `ip_rule.denied` audit row was last written for (account, client IP): the row is
-- written by a conditional upsert on this table, so there is at most one per IP per account
-- per minute however many processes refuse that IP at once (§22).
CREATE TABLE ip_rule_denials (
  org_id          uuid NOT NULL,
  ip              text NOT NULL,
  last_logged_at  timestamptz NOT NULL,
  PRIMARY KEY (org_id, ip)
);
CREATE INDEX ip_rule_denials_logged_idx ON ip_rule_denials (last_logged_at);

