-- Admin surface (api.md §21): the user list is paged newest first over an index, and the
-- dashboard counts recent runs (today, the last 30 days) over an index on their creation time.
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX runs_created_idx ON runs (created_at);
