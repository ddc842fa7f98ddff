"""The front door: each package declares its commands, the CLI offers them all, and a
command in a process of its own loads only its own package's table."""

import subprocess
import sys

import pytest

from common.adapters.submitters.batch import BatchSubmitter
from common.domain.errors import ConfigError
from entry.bootstrap import Root
from entry.cli import TABLES, build_parser


def test_every_command_is_declared_by_the_package_the_cli_names_for_it() -> None:
    for names, table in TABLES:
        assert tuple(c.name for c in table()) == names


def test_the_parser_offers_every_command_in_the_tables_order() -> None:
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    assert list(choices) == [name for names, _ in TABLES for name in names]


def test_an_executor_child_parses_its_command_without_the_other_tables() -> None:
    probe = (
        "import sys; from entry.cli import build_parser, commands_for; "
        "build_parser(commands_for(['execute'])).parse_args(['execute', '--chunk-index', '2']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'planner', 'ops', 'finalizer'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_root_parses_the_settings_once_and_checks_what_each_caller_requires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MANIFEST_BUCKET", raising=False)
    root = Root()
    settings = root.settings()
    assert root.settings() is settings
    with pytest.raises(ConfigError, match="MANIFEST_BUCKET"):
        root.settings(required=["manifest_bucket"])


def test_the_root_builds_each_aws_client_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("BATCH_JOB_QUEUE", "q")
    monkeypatch.setenv("EXECUTOR_JOB_DEFINITION", "e")
    monkeypatch.setenv("FINALIZER_JOB_DEFINITION", "f")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    root = Root()
    assert root.s3() is root.s3()
    assert root.manifest_store() is root.manifest_store()
    assert root.batch() is root.batch()
    submitter = root.submitter("batch")
    assert isinstance(submitter, BatchSubmitter)
    assert Root().s3() is not root.s3()  # one per root: a test's `main` call gets its own


def test_the_parser_is_built_by_a_short_loop_and_no_string_names_a_handler() -> None:
    import inspect
    import re
    from pathlib import Path

    assert len(inspect.getsource(build_parser).splitlines()) <= 60
    handler_string = re.compile(r'"[a-z_]*\.[a-z_]*:[a-z_]*"')
    root = Path(__file__).resolve().parents[2]
    for package in ("entry", "common", "planner", "executor", "finalizer", "ops"):
        for source in (root / package).rglob("*.py"):
            assert not handler_string.search(source.read_text()), source
