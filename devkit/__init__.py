"""The dev kit: what `make local-run` and the tests need, never shipped in the image.

    embedded_pg.py       an embedded PostgreSQL under .local/ (pgserver)
    stubs/               the three price providers on loopback (real shapes, faults, limits)
    batch/               AWS Batch emulated from its documented rules, with the stack's
                         job definitions and EventBridge rules (infra/template.yaml)
    local_submitter.py   `--submitter local`: children on the emulator, as processes
    local_run.py, demo.py `make local-run` and its demo plans
    local_s3.py          the local runs' S3: moto, its objects kept in .local/s3/ (SQLite)
    local_state.py       make local-ops, psql, reset-local: .local/ after local-run
    template.py          infra/template.yaml read as data

The shipped code never imports it: it registers itself under the entry-point group
`worthy_batch.devkit` (pyproject.toml), which `common.platform.plugins` looks up.
"""
