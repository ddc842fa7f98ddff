import psycopg2.extensions

from common.store.migrate import bundled_migrations
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
