"""The store: every SQL statement the batch sends, one module per table or concern.

runs.py           batch_runs and batch_chunks: claim, move, record
snapshot.py       the due plans, read once per run (the planner's snapshot)
invalid_plans.py  plans the planner found invalid, recorded skipped
ledger.py         purchases written exactly once (COPY + one statement per batch)
quotes.py         run_quotes: each symbol and FX base fetched once per run
quotas.py         provider_limits and provider_daily_calls: the shared limiter
verify.py         the ledger's invariants
migrate.py        the schema, from common/adapters/store/migrations/*.sql
unit_of_work.py   the stages' units of work on PostgreSQL (ports: common/adapters/ports.py)
sql.py            fragments several statements share (the final-outcome rule)
"""
