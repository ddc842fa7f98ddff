-- One release per run (docs/operating.md "Releases and runs"): the job definitions, as revision
-- ARNs, that the planner submitted the run's executor and finalizer with, and the
-- executor attempt's timeout it derived from its estimate. Redrives reuse them, so
-- every job of a run runs the release that planned it. NULL: a run planned before
-- this migration, or by a submitter without revisions (local, none).
ALTER TABLE batch_runs
    ADD COLUMN executor_job_definition  TEXT,
    ADD COLUMN finalizer_job_definition TEXT,
    ADD COLUMN executor_timeout_seconds INT CHECK (executor_timeout_seconds >= 60);
