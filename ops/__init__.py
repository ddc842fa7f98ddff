"""Operator commands, run by people (or the smoke test), not by Batch: status, redrive,
verify, submit (and the canary it follows), migrate."""
