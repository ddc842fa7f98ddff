from entry.cli import run_module

run_module("plan")
