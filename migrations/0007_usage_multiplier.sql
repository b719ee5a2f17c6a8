-- The model multiplier of each call (api.md §12.6), so a run's credits weigh each call's cost
-- by its model's multiplier (§27.7): credits = ⌈Σ(cost × multiplier) × credit.per_usd × tier⌉.
ALTER TABLE usage_records ADD COLUMN multiplier double precision NOT NULL DEFAULT 1;
