-- The smoke test's canary (docs/deploy.md "Smoke test"): a run on a weekend date with one empty
-- chunk that proves every role end to end. Its finalizer removes the run's rows
-- afterwards, but the batch role may not DELETE runs (infra/db-grants.sql). This
-- function, owned by the schema's owner, deletes exactly that and nothing else: a
-- run on a Saturday or Sunday that no plan execution, transaction or quote refers to.
CREATE OR REPLACE FUNCTION delete_canary_run(target text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    removed integer;
BEGIN
    IF NOT EXISTS (
        SELECT FROM batch_runs
        WHERE run_id = target AND extract(isodow FROM run_date) IN (6, 7)
    ) THEN
        RETURN 0;
    END IF;
    IF EXISTS (SELECT FROM plan_executions WHERE run_id = target)
        OR EXISTS (SELECT FROM transactions WHERE run_id = target)
        OR EXISTS (SELECT FROM run_quotes WHERE run_id = target) THEN
        RAISE EXCEPTION 'run % bought or priced something: not a canary', target;
    END IF;
    DELETE FROM batch_chunks WHERE run_id = target;
    DELETE FROM batch_runs WHERE run_id = target;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;

REVOKE ALL ON FUNCTION delete_canary_run(text) FROM PUBLIC;
