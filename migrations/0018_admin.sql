-- Admin surface (api.md §21): the user list is paged newest first over an index, and the
-- dashboard reads the runs of the days not rolled up yet over an index on their creation time
-- (covering the account and creator, so no run row is read).
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX runs_created_idx ON runs (created_at) INCLUDE (org_id, created_by_user_id);

-- Runs of closed UTC days, counted per (day, account, creator), so the dashboard's totals and
-- its active accounts and users of the last 30 days do not read every run. Days before
-- run_activity_rollup_state.rolled_until are read from here, later days from runs
-- (modules/runs/activity.ts).
CREATE TABLE run_activity_daily (
  day        date NOT NULL,
  org_id     uuid NOT NULL,
  user_id    uuid NOT NULL,
  run_count  bigint NOT NULL,
  PRIMARY KEY (day, org_id, user_id)
);
CREATE TABLE run_activity_rollup_state (
  id            integer PRIMARY KEY CHECK (id = 1),
  rolled_until  date
);
INSERT INTO run_activity_rollup_state (id, rolled_until) VALUES (1, NULL);

-- Users who signed in within the last 30 days (the dashboard's active users).
CREATE INDEX users_last_login_idx ON users (last_login_at) INCLUDE (id, status) WHERE last_login_at IS NOT NULL;
