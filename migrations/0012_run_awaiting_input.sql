-- What a run waiting for input awaits (api.md §8.6, §27.5a): {kind:"input"} or
-- {kind:"tool_approval", tool_call_id, arguments_sha256}. The answer is matched against it in
-- the statement that takes it, so a wrong or second approval cannot slip in. NULL otherwise.
ALTER TABLE runs ADD COLUMN awaiting_input jsonb;
