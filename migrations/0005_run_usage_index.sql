-- A run's totals are summed over its usage records (api.md §27.7) when it finishes.
CREATE INDEX usage_records_run_idx ON usage_records (run_id) WHERE run_id IS NOT NULL;
