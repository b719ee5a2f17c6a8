-- Admin broadcasts (api.md §19.4–19.7) and the indexes of the audit-log listing (§22.1).

-- A time-ordered UUID (v7 layout: 48-bit Unix milliseconds, version 7, random rest) for rows
-- written by INSERT … SELECT, where the application cannot hand out ids one by one
-- (broadcast fan-out). PostgreSQL before 18 has no uuidv7(): the random bytes of a v4 are
-- kept, the first six replaced by the time and the version nibble turned from 4 into 7.
CREATE FUNCTION arkloop_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE broadcasts (
  id            uuid PRIMARY KEY,
  type          text NOT NULL,
  title         text NOT NULL,
  body          text NOT NULL,
  target_type   text NOT NULL CHECK (target_type IN ('all', 'org')),
  target_id     uuid REFERENCES accounts (id),
  payload       jsonb NOT NULL DEFAULT '{}',
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
  sent_count    integer NOT NULL DEFAULT 0,
  -- Fan-out progress: the last user id notified (users are walked in id order), saved in the
  -- statement that writes each batch, so a restarted job continues where it stopped.
  fanout_after  uuid,
  created_by    uuid NOT NULL REFERENCES users (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  completed_at  timestamptz,
  deleted_at    timestamptz
);
CREATE INDEX broadcasts_created_idx ON broadcasts (created_at DESC, id DESC);

-- The broadcast a notification came from: a deleted broadcast withdraws its notifications
-- (they are filtered out, whenever they were written), and one notification per user and
-- broadcast is guaranteed even if a batch is ever written twice.
ALTER TABLE notifications ADD COLUMN broadcast_id uuid REFERENCES broadcasts (id);
CREATE UNIQUE INDEX notifications_broadcast_user_key ON notifications (broadcast_id, user_id) WHERE broadcast_id IS NOT NULL;

-- GET /v1/audit-logs: an account's log by action (exact or prefix: text_pattern_ops lets
-- LIKE 'prefix%' use the index whatever the collation), by actor and by target; the platform
-- admin's cross-account view by action. The plain account view and the whole log use the
-- (org_id, created_at) and (created_at) indexes of 0001.
CREATE INDEX audit_logs_org_action_idx ON audit_logs (org_id, action text_pattern_ops, created_at DESC, id DESC);
CREATE INDEX audit_logs_action_idx ON audit_logs (action text_pattern_ops, created_at DESC, id DESC);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_user_id, created_at DESC, id DESC) WHERE actor_user_id IS NOT NULL;
CREATE INDEX audit_logs_target_idx ON audit_logs (target_type, target_id, created_at DESC, id DESC) WHERE target_type IS NOT NULL;
