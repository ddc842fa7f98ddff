"""A local AWS Batch, written from AWS's documented semantics (not moto's behaviour).

    rules.py     what Batch checks and decides: request limits, job names, retry rules
    engine.py    jobs, dependencies, array children, attempts, processes, state-change events
    events.py    EventBridge rules of the stack (pattern, input transformer, Batch target)
    api.py       the Batch REST API on loopback, so boto3 (and BatchSubmitter) talk to it
    stack.py     job definitions and event rules read from infra/template.yaml

`make local-run`, `redrive --submitter local` and the tests run executor
children through it, so a bad day plays out locally as it would in AWS.
"""
