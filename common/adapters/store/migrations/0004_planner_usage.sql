-- The planner's Fargate usage, recorded on its run when it submits the run's jobs
-- (docs/sizing-and-cost.md "Cost per run"): {"seconds", "vcpu", "memory_mib"}, numbers as strings.
-- The finalizer adds it to the executors' and its own in report.json's cost.
ALTER TABLE batch_runs ADD COLUMN IF NOT EXISTS planner_usage JSONB;
