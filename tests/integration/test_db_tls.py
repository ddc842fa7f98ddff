"""TLS to the database, for real: libpq with sslmode=verify-full against the embedded
PostgreSQL behind a test certificate (tests/tls.py), accepted when the certificate
verifies and refused, as a configuration error (exit 78), when it does not.

Also the other form of the database secret: Amazon RDS's JSON, as managed rotation
writes it, turned into a working connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2.extensions
import pytest

from common.adapters.db import RDS_CA_BUNDLE, connect, database_url
from common.domain.errors import ConfigError, DatabaseTlsRefused, ExitCode
from common.platform.config import Settings, load_settings
from common.platform.redact import redact
from entry.cli import main
from tests.conftest import SENTINEL_DATABASE_PASSWORD
from tests.tls import Authority, PostgresTlsFront, tls_front


@dataclass(frozen=True)
class Pki:
    ca: Authority
    other_ca: Authority
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority.create(directory, "test-ca")
    cert_file, key_file = ca.issue(directory, "localhost")
    return Pki(ca, Authority.create(directory, "other-ca"), cert_file, key_file)


@pytest.fixture(scope="module")
def front(database_dsn: str, pki: Pki) -> Iterator[PostgresTlsFront]:
    params = psycopg2.extensions.parse_dsn(database_dsn)
    host, port = params.get("host", "/tmp"), int(params.get("port", 5432))
    backend = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    with tls_front(backend, pki.cert_file, pki.key_file) as served:
        yield served


def through(front: PostgresTlsFront, database_dsn: str, host: str = "localhost") -> str:
    """The test database's DSN, reached over TCP through the TLS front."""
    dsn: str = psycopg2.extensions.make_dsn(database_dsn, host=host, port=front.port)
    return dsn


def never_sleep(seconds: float) -> None:
    raise AssertionError(f"a TLS refusal was retried (sleep {seconds})")


def test_verify_full_against_the_servers_ca_connects_over_tls(
    front: PostgresTlsFront, database_dsn: str, pki: Pki
) -> None:
    settings = Settings(
        database_url=through(front, database_dsn),
        database_sslmode="verify-full",
        database_sslrootcert=str(pki.ca.cert_file),
    )
    conn = connect(database_url(settings), attempts=1)
    try:
        assert conn.info.ssl_in_use
        assert conn.info.ssl_attribute("protocol") in ("TLSv1.2", "TLSv1.3")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM batch_runs")
            assert cur.fetchone() is not None
    finally:
        conn.close()


def test_inside_aws_batch_tls_is_verify_full_whatever_the_dsn_says(
    front: PostgresTlsFront, database_dsn: str, pki: Pki
) -> None:
    plaintext = psycopg2.extensions.make_dsn(through(front, database_dsn), sslmode="disable")
    settings = Settings(
        database_url=plaintext,
        aws_batch_job_id="job-1",
        database_sslrootcert=str(pki.ca.cert_file),
    )
    assert psycopg2.extensions.parse_dsn(database_url(settings))["sslmode"] == "verify-full"
    conn = connect(database_url(settings), attempts=1)
    try:
        assert conn.info.ssl_in_use
    finally:
        conn.close()
    # The front serves TLS only: the DSN's own sslmode=disable would not even connect.
    with pytest.raises(Exception, match="server closed the connection|EOF"):
        psycopg2.connect(plaintext, connect_timeout=5)


def test_inside_aws_batch_the_default_root_is_the_bundle_in_the_image(database_dsn: str) -> None:
    settings = Settings(database_url=database_dsn, aws_batch_job_id="job-1")
    if Path(RDS_CA_BUNDLE).is_file():
        pytest.fail(f"{RDS_CA_BUNDLE} exists on a test machine; this test assumes the image")
    with pytest.raises(ConfigError) as caught:
        database_url(settings)
    assert caught.value.problems == {"DATABASE_SSLROOTCERT": f"{RDS_CA_BUNDLE}: no such file"}


def test_a_certificate_for_another_host_is_refused_at_once(
    front: PostgresTlsFront, database_dsn: str, pki: Pki
) -> None:
    settings = Settings(
        database_url=through(front, database_dsn, host="127.0.0.1"),  # the cert says localhost
        database_sslmode="verify-full",
        database_sslrootcert=str(pki.ca.cert_file),
    )
    with pytest.raises(DatabaseTlsRefused) as caught:
        connect(database_url(settings), attempts=5, sleep=never_sleep)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert re.search(
        r'server certificate for "localhost".* does not match host name "127\.0\.0\.1"',
        str(caught.value),
    )


def test_a_server_whose_certificate_another_ca_signed_is_refused(
    front: PostgresTlsFront, database_dsn: str, pki: Pki
) -> None:
    settings = Settings(
        database_url=through(front, database_dsn),
        database_sslmode="verify-full",
        database_sslrootcert=str(pki.other_ca.cert_file),
    )
    with pytest.raises(DatabaseTlsRefused, match="certificate verify failed"):
        connect(database_url(settings), attempts=5, sleep=never_sleep)


def test_a_refusal_ends_a_command_with_exit_78_and_one_line(
    front: PostgresTlsFront,
    database_dsn: str,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", through(front, database_dsn))
    monkeypatch.setenv("DATABASE_SSLMODE", "verify-full")
    monkeypatch.setenv("DATABASE_SSLROOTCERT", str(pki.other_ca.cert_file))
    assert main(["status"]) == ExitCode.CONFIG
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("worthy-batch status: bad configuration: DATABASE_URL: TLS refused:")
    assert "retrying will not help" in line
    assert SENTINEL_DATABASE_PASSWORD not in line


def test_an_rds_json_secret_becomes_a_working_tls_connection(
    front: PostgresTlsFront,
    database_dsn: str,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = psycopg2.extensions.parse_dsn(database_dsn)
    # Secrets Manager's structure for an RDS PostgreSQL secret (what rotation rewrites).
    secret = {
        "engine": "postgres",
        "host": "localhost",
        "port": front.port,
        "username": params["user"],
        "password": SENTINEL_DATABASE_PASSWORD,
        "dbname": params["dbname"],
        "dbInstanceIdentifier": "worthy",
    }
    monkeypatch.setenv("DATABASE_URL", json.dumps(secret))
    monkeypatch.setenv("DATABASE_SSLMODE", "verify-full")
    monkeypatch.setenv("DATABASE_SSLROOTCERT", str(pki.ca.cert_file))
    dsn = database_url(load_settings())
    assert redact(f"password {SENTINEL_DATABASE_PASSWORD}") == "password ***"
    conn = connect(dsn, attempts=1)
    try:
        assert conn.info.ssl_in_use
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), current_user")
            assert cur.fetchone() == (params["dbname"], params["user"])
    finally:
        conn.close()
