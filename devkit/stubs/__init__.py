"""Loopback stand-ins for outside services, for tests and `make local-run`."""
