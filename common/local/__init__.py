"""Local stand-ins: the demo data and the one-machine run behind `make local-run`."""
