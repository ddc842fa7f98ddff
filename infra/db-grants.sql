-- infra/db-grants.sql: the database role worthy-batch runs as, with only what it needs.
--
-- Run as the owner of the schema (the role that runs `worthy-batch migrate`),
-- after the migrations and again after any migration that adds a table:
--
--   psql "$OWNER_DATABASE_URL" -v ON_ERROR_STOP=1 -f infra/db-grants.sql
--
-- then give the role a password and put its DSN in the database secret
-- (docs/deploy.md "Deploy"). Safe to run again: it revokes and re-grants in one
-- transaction, so the file is the whole truth about the role and a running
-- batch never sees a gap.
--
-- The role cannot change the schema (migrations run as the owner), delete
-- anything but an unsubmitted run's chunk list and a finished canary run, or
-- touch the plan table beyond its schedule columns.

BEGIN;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'worthy_batch') THEN
        CREATE ROLE worthy_batch LOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently
END
$$;

-- The connection budget (docs/database.md "Connection budget"): at most MaxVcpus / JobVcpus
-- = 8 / 0.25 = 32 containers at once with the defaults, each holding up to
-- WRITE_CONNECTIONS = 2 connections: 64, plus 6 for an operator's status,
-- redrive or verify. A container refused a connection exits 75 and Batch
-- retries it. Raise it with MaxVcpus or WRITE_CONNECTIONS.
ALTER ROLE worthy_batch CONNECTION LIMIT 70;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO worthy_batch', current_database());
    -- The executor stages each batch in a temporary table (ON COMMIT DELETE ROWS).
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO worthy_batch', current_database());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO worthy_batch', current_schema());
END
$$;

REVOKE ALL ON recurring_investments, assets, transactions,
              batch_runs, batch_chunks, plan_executions, run_quotes, schema_migrations,
              provider_limits, provider_daily_calls
    FROM worthy_batch;

-- The app's plans: the planner snapshots them; the executor re-reads one
-- (SELECT ... FOR UPDATE, which column-level UPDATE allows) and moves its
-- schedule forward. Amounts, symbols and owners stay read-only.
GRANT SELECT ON recurring_investments TO worthy_batch;
GRANT UPDATE (next_run_date, runs_completed, status, updated_at)
    ON recurring_investments TO worthy_batch;

-- The ledger: the executor creates or updates a holding and records the buy;
-- a recorded buy is never changed.
GRANT SELECT, INSERT, UPDATE ON assets TO worthy_batch;
GRANT SELECT, INSERT ON transactions TO worthy_batch;

-- The batch's own tables. Reruns overwrite with INSERT ... ON CONFLICT DO
-- UPDATE; the only DELETE is the planner replacing the chunk list of a run it
-- is resuming, which it does only while nothing was submitted.
GRANT SELECT, INSERT, UPDATE ON batch_runs, batch_chunks, plan_executions, run_quotes
    TO worthy_batch;
GRANT DELETE ON batch_chunks TO worthy_batch;

-- The shared provider limiter: every child leases call slots and counts daily
-- budgets in these rows (INSERT ... ON CONFLICT DO UPDATE).
GRANT SELECT, INSERT, UPDATE ON provider_limits, provider_daily_calls TO worthy_batch;

-- Read-only: the batch may check the schema version, never record one.
GRANT SELECT ON schema_migrations TO worthy_batch;

-- The canary's finalizer removes its own run (a weekend run that bought and priced
-- nothing) through this owner's function; the role still cannot DELETE runs itself.
REVOKE ALL ON FUNCTION delete_canary_run(text) FROM worthy_batch;
GRANT EXECUTE ON FUNCTION delete_canary_run(text) TO worthy_batch;

-- IDs: identity columns need no grant, but a database where the app created
-- its tables with serial columns does.
DO $$
DECLARE
    sequence_name text;
BEGIN
    FOR sequence_name IN
        SELECT pg_get_serial_sequence(table_name, 'id')
        FROM unnest(ARRAY['assets', 'transactions']) AS table_name
    LOOP
        IF sequence_name IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO worthy_batch', sequence_name);
        END IF;
    END LOOP;
END
$$;

COMMIT;
