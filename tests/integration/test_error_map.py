"""common/adapters/error_map.py's table, row by row, over errors that real servers produced.

S3 and Batch: moto's server over HTTP (one of its own with IAM enforced for access
denied), loopback stubs for what moto never answers (throttling, 5xx, a server that
stalls) and a closed port. PostgreSQL: the embedded server (an unknown database or
role, a terminated backend, a statement timeout, a missing table, a closed
connection, a closed port) and a loopback stub speaking the start of PostgreSQL's
protocol for what a server that trusts local connections never says (a wrong
password, no pg_hba.conf entry).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.exceptions
import psycopg2
import psycopg2.extensions
import pytest
from botocore.config import Config

from common.adapters.batch import batch_errors
from common.adapters.db import connect
from common.adapters.error_map import (
    AWS_CODES,
    BOTOCORE_CLASSES,
    PG_SQLSTATES,
    database_cannot_hear,
    translate,
    translated,
)
from common.domain.errors import (
    ConfigError,
    DatabaseTlsRefused,
    DatabaseUnavailable,
    ExitCode,
    InternalError,
    ServiceRefused,
    StorageUnavailable,
    SubmissionRefused,
    TransientError,
)
from tests.conftest import AwsStack
from tests.servers import MotoServer

CONFIG, TRANSIENT, REFUSED = ExitCode.CONFIG, ExitCode.TEMPFAIL, ExitCode.FAILED
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=0.5)


def caught(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the call did not fail")


def client(service: str, endpoint: str, **keys: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys.get("key", "testing"),
        aws_secret_access_key=keys.get("secret", "testing"),
        config=NO_RETRIES,
    )


def assert_sorted(exc: BaseException, code: ExitCode) -> None:
    error = translate(exc)
    assert error.exit_code == code, (type(exc).__name__, str(exc), error)
    kind = {CONFIG: ConfigError, TRANSIENT: TransientError, REFUSED: ServiceRefused}[code]
    assert isinstance(error, kind)
    assert "\n" not in str(error)


# -- S3 and Batch on moto -------------------------------------------------------------------


def _no_such_bucket(aws: AwsStack) -> Any:
    return aws.s3().get_object(Bucket="nosuchbucket-worthy", Key="run.json")


def _no_such_bucket_on_put(aws: AwsStack) -> Any:
    return aws.s3().put_object(Bucket="nosuchbucket-worthy", Key="run.json", Body=b"{}")


def _bucket_name_botocore_refuses(aws: AwsStack) -> Any:
    return aws.s3().put_object(Bucket="not a bucket!", Key="k", Body=b"")


def _bucket_name_s3_refuses(aws: AwsStack) -> Any:
    return aws.s3().create_bucket(Bucket="ab")  # shorter than S3's 3 characters


def _unknown_job_definition(aws: AwsStack) -> Any:
    return aws.batch().submit_job(jobName="x", jobQueue=aws.queue, jobDefinition="nosuch-def")


def _unknown_job_queue(aws: AwsStack) -> Any:
    return aws.batch().submit_job(
        jobName="x", jobQueue="nosuch-queue", jobDefinition=aws.executor_definition
    )


def _unknown_queue_listing(aws: AwsStack) -> Any:
    return aws.batch().describe_job_queues(jobQueues=["nosuch-queue"]) and aws.batch().list_jobs(
        jobQueue="nosuch-queue"
    )


def _batch_refuses_a_definition(aws: AwsStack) -> Any:
    return aws.batch().register_job_definition(jobDefinitionName="x", type="bogus")


def _closed_port(aws: AwsStack) -> Any:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return client("s3", f"http://127.0.0.1:{port}").get_object(Bucket="b", Key="k")


MOTO_ROWS = [
    (_no_such_bucket, CONFIG, "NoSuchBucket"),
    (_no_such_bucket_on_put, CONFIG, "NoSuchBucket"),
    (_bucket_name_botocore_refuses, CONFIG, "ParamValidationError"),
    (_bucket_name_s3_refuses, CONFIG, "InvalidBucketName"),
    (_unknown_job_definition, CONFIG, "ClientException"),
    (_unknown_job_queue, CONFIG, "ClientException"),
    (_unknown_queue_listing, CONFIG, "ClientException"),
    (_batch_refuses_a_definition, REFUSED, "ClientException"),
    (_closed_port, TRANSIENT, "EndpointConnectionError"),
]


@pytest.mark.parametrize(
    ("call", "code", "raised"), MOTO_ROWS, ids=lambda v: getattr(v, "__name__", str(v))
)
def test_aws_errors_from_moto_get_their_exit_code(
    aws: AwsStack, call: Callable[[AwsStack], Any], code: ExitCode, raised: str
) -> None:
    exc = caught(lambda: call(aws))
    names = {k.__name__ for k in type(exc).__mro__}
    error_code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    assert raised in names or raised == error_code, (type(exc), error_code)
    assert_sorted(exc, code)


@pytest.fixture(scope="module")
def moto_with_iam() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto server that enforces IAM after its first three requests, and the keys of a
    user with no policy at all."""
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        iam = client("iam", server.endpoint)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        client("s3", server.endpoint).create_bucket(Bucket="guarded")
        yield server.endpoint, {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        server.stop()


def test_access_denied_is_configuration(moto_with_iam: tuple[str, dict[str, str]]) -> None:
    endpoint, keys = moto_with_iam
    exc = caught(lambda: client("s3", endpoint, **keys).get_object(Bucket="guarded", Key="k"))
    assert isinstance(exc, botocore.exceptions.ClientError)
    assert exc.response["Error"]["Code"] == "AccessDenied"
    assert_sorted(exc, CONFIG)


def test_an_unknown_access_key_is_configuration(moto_with_iam: tuple[str, dict[str, str]]) -> None:
    endpoint, _ = moto_with_iam
    s3 = client("s3", endpoint, key="AKIANOSUCHKEY0000000", secret="x")
    exc = caught(lambda: s3.get_object(Bucket="guarded", Key="k"))
    assert isinstance(exc, botocore.exceptions.ClientError)
    assert exc.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert_sorted(exc, CONFIG)


# -- what moto never answers: a loopback stub --------------------------------------------


class _Stub(BaseHTTPRequestHandler):
    """Answers every request with the status, headers and body the path's first part
    names (set by the test), or stalls."""

    answers: dict[str, tuple[int, str, bytes]] = {}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        kind = self.server.kind  # type: ignore[attr-defined]
        if kind == "stall":
            time.sleep(2)
            return
        status, content_type, body = self.answers[kind]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


def _s3_error(status: int, code: str) -> tuple[int, str, bytes]:
    body = f"<Error><Code>{code}</Code><Message>stub says {code}</Message></Error>"
    return status, "application/xml", body.encode()


def _batch_error(status: int, code: str) -> tuple[int, str, bytes]:
    body = json.dumps({"__type": code, "message": f"stub says {code}"})
    return status, "application/json", body.encode()


_Stub.answers = {
    "slowdown": _s3_error(503, "SlowDown"),
    "internal": _s3_error(500, "InternalError"),
    "unlisted5xx": _s3_error(502, "BadGatewayOfSomeKind"),
    "batch429": _batch_error(429, "TooManyRequestsException"),
    "batch500": _batch_error(500, "ServerException"),
}


@pytest.fixture
def stub() -> Iterator[Callable[[str], str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def answering(kind: str) -> str:
        server.kind = kind  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield answering
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("kind", "service", "code"),
    [
        ("slowdown", "s3", "SlowDown"),
        ("internal", "s3", "InternalError"),
        ("unlisted5xx", "s3", "BadGatewayOfSomeKind"),
        ("batch429", "batch", "TooManyRequestsException"),
        ("batch500", "batch", "ServerException"),
        ("stall", "s3", "ReadTimeoutError"),
    ],
)
def test_throttling_5xx_and_timeouts_are_transient(
    stub: Callable[[str], str], kind: str, service: str, code: str
) -> None:
    aws = client(service, stub(kind))
    if service == "s3":
        exc = caught(lambda: aws.get_object(Bucket="b", Key="k"))
    else:
        exc = caught(lambda: aws.list_jobs(jobQueue="q"))
    found = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or type(
        exc
    ).__name__
    assert found == code
    assert_sorted(exc, TRANSIENT)


# -- PostgreSQL ---------------------------------------------------------------------------


def _closed_pg_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"host=127.0.0.1 port={port} dbname=x user=x connect_timeout=3 sslmode=disable"


def _terminated(dsn: str) -> None:
    victim = psycopg2.connect(dsn)
    killer = psycopg2.connect(dsn)
    killer.autocommit = True
    try:
        with killer.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (victim.get_backend_pid(),))
        with victim.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        killer.close()
        victim.close()


def _statement_timeout(dsn: str) -> None:
    conn = psycopg2.connect(dsn, options="-c statement_timeout=50")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(2)")
    finally:
        conn.close()


def _missing_table(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM no_such_table_worthy")
    finally:
        conn.close()


def _closed_connection(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.close()
    conn.cursor()


PG_ROWS: list[tuple[str, Callable[[str], Any], ExitCode]] = [
    (
        "unknown database",
        lambda dsn: psycopg2.connect(psycopg2.extensions.make_dsn(dsn, dbname="no_such_db_w")),
        CONFIG,
    ),
    (
        "unknown role",
        lambda dsn: psycopg2.connect(psycopg2.extensions.make_dsn(dsn, user="no_such_role_w")),
        CONFIG,
    ),
    ("malformed DSN", lambda dsn: psycopg2.connect("not-a-dsn"), CONFIG),
    ("missing table (not migrated)", _missing_table, CONFIG),
    ("connection refused", lambda dsn: psycopg2.connect(_closed_pg_port()), TRANSIENT),
    ("backend terminated", _terminated, TRANSIENT),
    ("statement timeout", _statement_timeout, TRANSIENT),
    ("connection already closed", _closed_connection, TRANSIENT),
]


@pytest.mark.parametrize(("what", "call", "code"), PG_ROWS, ids=[r[0] for r in PG_ROWS])
def test_database_errors_from_the_embedded_server_get_their_exit_code(
    database_dsn: str, what: str, call: Callable[[str], Any], code: ExitCode
) -> None:
    exc = caught(lambda: call(database_dsn))
    assert isinstance(exc, psycopg2.Error), exc
    assert_sorted(exc, code)


def _twice_the_same_key(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE once_w (k int PRIMARY KEY)")
            cur.execute("INSERT INTO once_w VALUES (1), (1)")
    finally:
        conn.close()


# What the server raised, and whether the database can still hear (the executor writes
# down why a chunk failed only when it can).
HEARING: list[tuple[str, Callable[[str], Any], bool]] = [
    ("connection refused", lambda dsn: psycopg2.connect(_closed_pg_port()), False),
    ("backend terminated", _terminated, False),
    ("statement timeout", _statement_timeout, False),
    ("connection already closed", _closed_connection, False),
    ("missing table (not migrated)", _missing_table, True),
    ("unique violation", _twice_the_same_key, True),
]


@pytest.mark.parametrize(("what", "call", "hears"), HEARING, ids=[r[0] for r in HEARING])
def test_the_database_cannot_hear_after_a_lost_connection_only(
    database_dsn: str, what: str, call: Callable[[str], Any], hears: bool
) -> None:
    exc = caught(lambda: call(database_dsn))
    assert isinstance(exc, psycopg2.Error), exc
    assert database_cannot_hear(exc) is not hears, (what, type(exc).__name__, exc)


def test_the_database_cannot_hear_what_our_own_connect_gave_up_on() -> None:
    gave_up = caught(lambda: connect(_closed_pg_port(), attempts=1, sleep=lambda _: None))
    assert isinstance(gave_up, DatabaseUnavailable)
    assert database_cannot_hear(gave_up)
    assert not database_cannot_hear(StorageUnavailable("s3://b/k"))
    assert not database_cannot_hear(_client_error("ThrottlingException", "slow", "SubmitJob"))
    assert not database_cannot_hear(ZeroDivisionError("x"))


def test_connect_gives_up_at_once_on_what_retrying_cannot_fix(database_dsn: str) -> None:
    slept: list[float] = []
    wrong = psycopg2.extensions.make_dsn(database_dsn, dbname="no_such_db_w")
    with pytest.raises(ConfigError, match="the database or role does not exist"):
        connect(wrong, attempts=5, sleep=slept.append)
    assert slept == []  # no backoff: the next attempt would fail the same way
    with pytest.raises(DatabaseUnavailable, match="after 2 attempt"):
        connect(_closed_pg_port(), attempts=2, sleep=slept.append)
    assert len(slept) == 1


def test_a_malformed_dsn_is_not_quoted_in_the_message() -> None:
    exc = caught(lambda: psycopg2.connect("password=SECRET-w9 garbage"))
    assert "SECRET-w9" not in str(translate(exc))


@contextmanager
def _pg_refusing(sqlstate: str, message: str) -> Iterator[str]:
    """A loopback server that answers any startup with one FATAL ErrorResponse."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            with peer:
                (length,) = struct.unpack("!I", peer.recv(4))
                peer.recv(length - 4)
                fields = (
                    b"".join(
                        tag + text.encode() + b"\0"
                        for tag, text in ((b"S", "FATAL"), (b"C", sqlstate), (b"M", message))
                    )
                    + b"\0"
                )
                peer.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)

    threading.Thread(target=serve, daemon=True).start()
    yield f"host=127.0.0.1 port={port} dbname=worthy user=worthy sslmode=disable"
    listener.close()


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("28P01", 'password authentication failed for user "worthy"'),
        ("28000", 'no pg_hba.conf entry for host "127.0.0.1", user "worthy", database "worthy"'),
        ("53300", "sorry, too many clients already"),
        ("57P03", "the database system is starting up"),
    ],
)
def test_a_server_refusing_the_login_is_sorted_by_its_words(sqlstate: str, message: str) -> None:
    with _pg_refusing(sqlstate, message) as dsn:
        exc = caught(partial(psycopg2.connect, dsn))
        assert isinstance(exc, psycopg2.OperationalError)
        assert message in str(exc)
        expected = PG_SQLSTATES[sqlstate].kind.value
        assert_sorted(exc, expected)


def test_a_tls_refusal_stays_database_tls_refused() -> None:
    # A server that answers libpq's SSLRequest with "N" (no TLS) while TLS is required.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def refuse_tls() -> None:
        peer, _ = listener.accept()
        with peer:
            peer.recv(8)
            peer.sendall(b"N")

    threading.Thread(target=refuse_tls, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        exc = caught(
            lambda: psycopg2.connect(f"host=127.0.0.1 port={port} dbname=x user=x sslmode=require")
        )
    finally:
        listener.close()
    assert "server does not support SSL" in str(exc)
    assert isinstance(translate(exc), DatabaseTlsRefused)
    assert translate(exc).exit_code == CONFIG


# -- every row of the tables, and what is not in them -------------------------------------


@pytest.mark.parametrize("code", sorted(AWS_CODES))
def test_every_aws_code_in_the_table_maps_as_listed(code: str) -> None:
    status = 500 if AWS_CODES[code].kind.value == TRANSIENT else 403
    exc = botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )
    assert translate(exc).exit_code == AWS_CODES[code].kind.value


@pytest.mark.parametrize("name", sorted(BOTOCORE_CLASSES))
def test_every_botocore_class_in_the_table_is_a_botocore_error(name: str) -> None:
    assert issubclass(getattr(botocore.exceptions, name), botocore.exceptions.BotoCoreError)


def test_anything_else_is_an_internal_error() -> None:
    assert isinstance(translate(ZeroDivisionError("x")), InternalError)
    assert translate(ZeroDivisionError("x")).exit_code == ExitCode.SOFTWARE
    integrity = caught(lambda: (_ for _ in ()).throw(psycopg2.IntegrityError("dup")))
    assert translate(integrity).exit_code == ExitCode.SOFTWARE


# -- the block form, and the Batch adapter's boundary --------------------------------------


def _client_error(code: str, message: str, operation: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        operation,
    )


def test_a_foreign_error_leaves_a_translated_block_as_ours() -> None:
    bad = pytest.raises(ConfigError, match=r"bucket does not exist .*reading s3://b/k")
    with bad, translated("reading s3://b/k"):
        raise _client_error("NoSuchBucket", "gone", "GetObject")
    with pytest.raises(TransientError, match="database unavailable"), translated():
        raise psycopg2.OperationalError("server closed the connection unexpectedly")


def test_other_errors_pass_through_a_translated_block_untouched() -> None:
    with pytest.raises(ZeroDivisionError), translated("dividing"):
        raise ZeroDivisionError("x")
    refused = SubmissionRefused("worthy-execute-x", "too many")
    with pytest.raises(SubmissionRefused) as raised, translated():
        raise refused
    assert raised.value is refused


def test_a_batch_refusal_names_the_job_and_an_unknown_queue_is_configuration() -> None:
    limits = _client_error("ClientException", "Array size exceeds the limit", "SubmitJob")
    doing = batch_errors("submitting the planner job", "worthy-plan-x")
    with pytest.raises(SubmissionRefused, match="refused job worthy-plan-x: Array size"), doing:
        raise limits
    unknown = _client_error("ClientException", "Job queue nowhere does not exist", "SubmitJob")
    doing = batch_errors("submitting the planner job", "worthy-plan-x")
    with pytest.raises(ConfigError, match="unknown job definition or queue"), doing:
        raise unknown
