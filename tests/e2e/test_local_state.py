"""`make local-run`'s state under .local/ outlives the command: Ctrl-C in the middle of a
day and the same command again finishes it, buying each due plan once; the operator
commands work against it afterwards (`make local-ops`); a different PLANS starts the
demo over; `make reset-local` removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2.extensions

from tests.conftest import leaked_sentinels
from tests.e2e.conftest import CLI, Runner
from tests.factories import insert_plans, plan, rows, scalar
from tests.runs import child_env

RUN = "XNYS-20261127"
LOCAL_RUN = ["local-run", "--date", "2026-11-27"]


def _processes_using(directory: Path) -> list[int]:
    """Every process (but this one) whose environment names `directory` as its local dir."""
    wanted = f"WORTHY_LOCAL_DIR={directory}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile, or not ours
    return found


def _ops(database_dsn: str, local: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make local-ops ARGS="..."` (the Makefile runs exactly this)."""
    done = subprocess.run(
        [sys.executable, "-m", "devkit.local_state", *args],
        env=child_env(database_dsn, WORTHY_LOCAL_DIR=str(local)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not leaked_sentinels(done.stdout, done.stderr)
    return done


def _wait_for_pricing(local_run: subprocess.Popen[str], local: Path) -> None:
    """Until the executor has started its chunk (pricing comes first), and 2 s more."""
    logs = local / "runs" / RUN
    deadline = time.monotonic() + 60
    while not any("chunk started" in p.read_text() for p in logs.glob("*execute*.log")):
        assert time.monotonic() < deadline and local_run.poll() is None, "pricing never began"
        time.sleep(0.2)
    time.sleep(2)


def _purchases_once_each(db: psycopg2.extensions.connection) -> None:
    """Every plan of the run has one outcome; each purchased one exactly one transaction."""
    due = scalar(db, "SELECT plans_due FROM batch_runs WHERE run_id = %s", (RUN,))
    executions = rows(
        db,
        "SELECT plan_id, count(*) FROM plan_executions WHERE run_id = %s "
        "AND chunk_index IS NOT NULL GROUP BY 1",
        (RUN,),
    )
    assert len(executions) == due and all(n == 1 for _, n in executions)
    bought = rows(
        db,
        "SELECT e.plan_id, count(t.id) FROM plan_executions e "
        "LEFT JOIN transactions t ON t.plan_id = e.plan_id AND t.run_id = e.run_id "
        "WHERE e.run_id = %s AND e.status = 'purchased' GROUP BY 1",
        (RUN,),
    )
    assert bought and all(n == 1 for _, n in bought)
    assert scalar(db, "SELECT count(*) FROM transactions") == len(bought)


def test_ctrl_c_in_the_middle_of_pricing_then_the_same_command_finishes_the_day(
    cli: Runner, db: psycopg2.extensions.connection, database_dsn: str, tmp_path: Path
) -> None:
    # 60 symbols at 240 a minute: pricing takes some 15 s, so the interrupt lands in it.
    env = child_env(database_dsn, WORTHY_LOCAL_DIR=str(tmp_path), FINNHUB_CALLS_PER_MINUTE="240")
    argv = [CLI, *LOCAL_RUN, "--plans", "60"]
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as first:
        _wait_for_pricing(first, tmp_path)
        first.send_signal(signal.SIGINT)  # `kill -INT`: only local-run gets it
        out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert scalar(db, "SELECT count(*) FROM transactions") == 0  # it stopped before buying
    assert scalar(db, "SELECT status FROM batch_runs") == "submitting"
    last = err.strip().splitlines()[-1]
    assert "interrupted" in last and "run the same command again to resume it" in last, err
    assert "--date 2026-11-27" in last
    assert _processes_using(tmp_path) == []  # its stages and their children stopped with it

    # Another number of plans must not start the demo over under an unfinished run.
    other = cli(*LOCAL_RUN, "--plans", "70", env={"WORTHY_LOCAL_DIR": str(tmp_path)})
    assert other.returncode == 78, other.stdout + other.stderr
    assert f"run {RUN} is unfinished" in other.stderr

    again = cli(
        *LOCAL_RUN,
        "--plans",
        "60",
        env={"WORTHY_LOCAL_DIR": str(tmp_path), "FINNHUB_CALLS_PER_MINUTE": "240"},
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"== {RUN}: succeeded ==" in again.stdout
    assert scalar(db, "SELECT status FROM batch_runs") == "succeeded"
    _purchases_once_each(db)
    verified = cli("verify", "--run-id", RUN)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_after_local_run_is_killed_the_same_command_stops_what_it_left_and_finishes(
    cli: Runner, db: psycopg2.extensions.connection, database_dsn: str, tmp_path: Path
) -> None:
    env = {"WORTHY_LOCAL_DIR": str(tmp_path), "FINNHUB_CALLS_PER_MINUTE": "240"}
    argv = [CLI, *LOCAL_RUN, "--plans", "60"]
    with subprocess.Popen(
        argv, env=child_env(database_dsn, **env), stdout=subprocess.DEVNULL, text=True
    ) as first:
        _wait_for_pricing(first, tmp_path)
        first.kill()  # SIGKILL (the OOM killer): nothing of local-run cleans up
        first.wait(timeout=10)
    assert _processes_using(tmp_path) != []  # its stages, cut off from S3 and market data

    again = cli(*LOCAL_RUN, "--plans", "60", env=env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "stopped the stages an earlier, killed local-run left running" in again.stdout
    assert f"== {RUN}: succeeded ==" in again.stdout
    assert _processes_using(tmp_path) == []
    _purchases_once_each(db)


def test_operator_commands_work_after_local_run_against_its_state(
    cli: Runner, db: psycopg2.extensions.connection, database_dsn: str, tmp_path: Path
) -> None:
    done = cli(*LOCAL_RUN, "--plans", "40", env={"WORTHY_LOCAL_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    before = rows(db, "SELECT * FROM transactions ORDER BY id")
    assert before

    status = _ops(database_dsn, tmp_path, "ops", "status", "--run-id", RUN)
    assert status.returncode == 0, status.stderr
    assert f"run {RUN}  succeeded" in status.stdout
    # finalize reads every results/N.json from S3: the objects outlived local-run's moto
    finalized = _ops(database_dsn, tmp_path, "ops", "finalize", "--run-id", RUN)
    assert finalized.returncode == 0, finalized.stderr
    executed = _ops(database_dsn, tmp_path, "ops", "execute", "--run-id", RUN, "--chunk-index", "0")
    assert executed.returncode == 0, executed.stderr
    redriven = _ops(database_dsn, tmp_path, "ops", "redrive", "--run-id", RUN)
    assert redriven.returncode == 0, redriven.stderr
    assert "nothing to redrive" in redriven.stdout + redriven.stderr
    verified = _ops(database_dsn, tmp_path, "ops", "verify", "--run-id", RUN)
    assert verified.returncode == 0, verified.stderr
    assert rows(db, "SELECT * FROM transactions ORDER BY id") == before  # nothing twice
    assert _processes_using(tmp_path) == []


def test_another_number_of_plans_starts_the_demo_over_and_reset_removes_it(
    cli: Runner, db: psycopg2.extensions.connection, database_dsn: str, tmp_path: Path
) -> None:
    env = {"WORTHY_LOCAL_DIR": str(tmp_path)}
    first = cli(*LOCAL_RUN, "--plans", "30", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "30 demo plans" in first.stdout

    same = cli(*LOCAL_RUN, env=env)  # no --plans: what is seeded
    assert same.returncode == 0 and "already complete" in same.stdout
    assert "30 demo plans" in same.stdout

    bigger = cli(*LOCAL_RUN, "--plans", "45", env=env)
    assert bigger.returncode == 0, bigger.stdout + bigger.stderr
    assert "the demo held 30 plans, --plans asks for 45: started it over" in bigger.stdout
    assert f"== {RUN}: succeeded ==" in bigger.stdout  # run afresh, not "already complete"
    assert scalar(db, "SELECT count(*) FROM recurring_investments") == 45
    assert scalar(db, "SELECT count(*) FROM batch_runs") == 1
    _purchases_once_each(db)

    reset = _ops(database_dsn, tmp_path, "reset")
    assert reset.returncode == 0, reset.stderr
    assert not tmp_path.exists()


def test_local_run_help_names_the_latest_market_day_as_the_default_date(cli: Runner) -> None:
    done = cli("local-run", "--help")
    assert done.returncode == 0
    assert "default: the latest market day" in " ".join(done.stdout.split())
    assert "default: today" not in done.stdout


def test_psql_opens_the_local_database(
    db: psycopg2.extensions.connection, database_dsn: str, tmp_path: Path
) -> None:
    insert_plans(db, [plan(user_id="psql", symbol="AAPL")])
    done = _ops(
        database_dsn, tmp_path, "psql", "-At", "-c", "SELECT user_id FROM recurring_investments"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "psql"


def test_without_any_psql_a_line_of_sql_still_gets_its_rows(
    db: psycopg2.extensions.connection, database_dsn: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from devkit.local_state import repl; sys.exit(repl(sys.argv[1]))",
            database_dsn,
        ],
        input="SELECT 40 + 2, 'x'\nSELECT nonsense\nSELECT 7\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "42\tx" in lines and "7" in lines
    assert any(line.startswith("error: ") and "nonsense" in line for line in lines)
