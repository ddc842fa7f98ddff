"""Operator commands: finalize, status, redrive, verify, submit."""
