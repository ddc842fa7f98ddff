"""The finalizer, the third Batch stage: a run's results -> report.json, its final status."""
