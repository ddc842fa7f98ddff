import psycopg2.extensions

from common.adapters.store.migrate import bundled_migrations
from tests.e2e.conftest import Runner


def test_help_lists_the_subcommands(cli: Runner) -> None:
    done = cli("--help")
    assert done.returncode == 0
    assert "migrate" in done.stdout
    assert "exit codes" in done.stdout


def test_migrate_twice_succeeds_and_the_second_run_changes_nothing(
    cli: Runner, db: psycopg2.extensions.connection
) -> None:
    first = cli("migrate")
    second = cli("migrate")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stdout
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM schema_migrations")
        assert cur.fetchone() == (len(bundled_migrations()),)


def test_a_malformed_database_url_exits_78_with_one_line(cli: Runner) -> None:
    done = cli("migrate", env={"DATABASE_URL": "not-a-dsn"})
    assert done.returncode == 78
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DATABASE_URL" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unreachable_database_exits_75(cli: Runner) -> None:
    done = cli(
        "migrate",
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "DB_CONNECT_ATTEMPTS": "1"},
    )
    assert done.returncode == 75
    assert len(done.stderr.strip().splitlines()) == 1
    assert "database unavailable" in done.stderr


def test_bad_arguments_exit_78_with_one_line(cli: Runner) -> None:
    done = cli("no-such-command")
    assert done.returncode == 78
    assert len(done.stderr.strip().splitlines()) == 1


def test_each_stage_runs_as_a_module_as_the_console_script_does() -> None:
    import subprocess
    import sys

    for module, command in (
        ("planner", "plan"),
        ("executor", "execute"),
        ("finalizer", "finalize"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert f"usage: worthy-batch {command}" in done.stdout


def test_an_install_without_the_dev_kit_says_so_for_what_needs_it() -> None:
    import subprocess
    import sys

    # As in the image: the entry points are declared, the devkit package cannot be imported.
    hidden = "import sys; sys.modules['devkit'] = None; from entry.cli import main; "
    for args, what in (
        (["local-run", "--date", "2026-11-27"], "worthy-batch local-run"),
        (["plan", "--submitter", "local", "--run-date", "2026-11-27"], "--submitter local"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", hidden + f"sys.exit(main({args!r}))"],
            capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "MANIFEST_BUCKET": "b",
                 "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"},
        )  # fmt: skip
        assert done.returncode == 78, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert what in line and "needs the dev kit" in line


def test_a_command_in_its_own_process_freezes_its_imports_and_a_caller_s_process_not() -> None:
    import subprocess
    import sys

    # `worthy-batch` (cli.start) loads the handler's imports with the collector off and
    # freezes them; `main` called by another program (the tests) leaves its process alone.
    # A bad setting makes the executor stop (78) right after its imports.
    probe = (
        "import gc, sys; from entry import cli; sys.argv = ['worthy-batch', 'execute']; "
        "code = {call}; print(code, gc.get_freeze_count(), gc.isenabled())"
    )
    frozen = {}
    for name, call in (("start", "cli.start()"), ("main", "cli.main(['execute'])")):
        done = subprocess.run(
            [sys.executable, "-c", probe.format(call=call)],
            capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "FINNHUB_CALLS_PER_MINUTE": "0"},
        )  # fmt: skip
        code, count, enabled = done.stdout.split()
        assert (code, enabled) == ("78", "True"), done.stderr
        assert "FINNHUB_CALLS_PER_MINUTE" in done.stderr
        frozen[name] = int(count)
    assert frozen["main"] == 0
    assert frozen["start"] > 50_000  # pydantic, botocore, psycopg2, requests and ours
