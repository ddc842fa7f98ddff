"""Foreign errors sorted once, where they enter the program: the table and `translate`.

Whatever botocore (S3, AWS Batch, CloudWatch Logs) or psycopg2 (PostgreSQL)
raises becomes one of worthy-batch's errors, and with it an exit code:

    78 configuration   retrying cannot fix it: a bucket that does not exist, a name
                       that is not a name, access denied, an unknown job definition
                       or queue, a wrong password or database, a schema not migrated
    75 transient       the same call later will likely work: throttling, 5xx,
                       timeouts, refused or dropped connections, a restarted server
     1 refused         AWS Batch refused a request for another reason (its limits);
                       `SubmissionRefused` names the job
    70 internal        anything else: a bug, please report it

The tables below are data; `translate(exc)` reads them; `database_cannot_hear(exc)`
tells a caller whether the database is the trouble (so writing down why something
failed is pointless). It imports neither
botocore nor psycopg2: an error of theirs can only exist once they are loaded,
so this module costs nothing to the process edge (entry/cli.py) that calls it.
Self-contained on purpose: it needs only common.domain.errors, where the errors
it returns live with every other.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

from common.domain.errors import (
    DatabaseTlsRefused,
    DatabaseUnavailable,
    ExitCode,
    InternalError,
    ServiceConfigError,
    ServiceRefused,
    ServiceTransientError,
    WorthyError,
)


class Kind(Enum):
    CONFIG = ExitCode.CONFIG
    TRANSIENT = ExitCode.TEMPFAIL
    REFUSED = ExitCode.FAILED


@dataclass(frozen=True)
class Rule:
    kind: Kind
    what: str  # the one line's words: what is wrong, and what to look at
    quote: bool = True  # False: the foreign message may hold a secret (a DSN); leave it out


# AWS error codes (ClientError.response["Error"]["Code"]) of S3, Batch and CloudWatch Logs.
AWS_CODES: dict[str, Rule] = {
    "NoSuchBucket": Rule(Kind.CONFIG, "the bucket does not exist (check MANIFEST_BUCKET)"),
    "InvalidBucketName": Rule(Kind.CONFIG, "not a valid bucket name (check MANIFEST_BUCKET)"),
    "AccessDenied": Rule(Kind.CONFIG, "access denied (check the role's IAM policy)"),
    "AccessDeniedException": Rule(Kind.CONFIG, "access denied (check the role's IAM policy)"),
    "AllAccessDisabled": Rule(Kind.CONFIG, "access to the bucket is disabled"),
    "InvalidAccessKeyId": Rule(Kind.CONFIG, "unknown AWS access key (check the credentials)"),
    "SignatureDoesNotMatch": Rule(Kind.CONFIG, "bad AWS secret key (check the credentials)"),
    "UnrecognizedClientException": Rule(Kind.CONFIG, "bad AWS credentials"),
    "InvalidClientTokenId": Rule(Kind.CONFIG, "bad AWS credentials"),
    "ExpiredToken": Rule(Kind.CONFIG, "the AWS session token expired (renew the credentials)"),
    "ExpiredTokenException": Rule(Kind.CONFIG, "the AWS session token expired"),
    "AuthorizationHeaderMalformed": Rule(Kind.CONFIG, "wrong AWS region for the bucket"),
    "PermanentRedirect": Rule(Kind.CONFIG, "the bucket is in another region (AWS_REGION)"),
    "Throttling": Rule(Kind.TRANSIENT, "throttled by AWS"),
    "ThrottlingException": Rule(Kind.TRANSIENT, "throttled by AWS"),
    "TooManyRequestsException": Rule(Kind.TRANSIENT, "throttled by AWS"),
    "RequestLimitExceeded": Rule(Kind.TRANSIENT, "throttled by AWS"),
    "SlowDown": Rule(Kind.TRANSIENT, "throttled by S3 (SlowDown)"),
    "ServiceUnavailable": Rule(Kind.TRANSIENT, "the AWS service is unavailable"),
    "ServerException": Rule(Kind.TRANSIENT, "AWS Batch failed on its side"),
    "InternalError": Rule(Kind.TRANSIENT, "the AWS service failed on its side"),
    "RequestTimeout": Rule(Kind.TRANSIENT, "the AWS request timed out"),
    "RequestTimeoutException": Rule(Kind.TRANSIENT, "the AWS request timed out"),
}
# A Batch ClientException that names a job definition or queue it cannot find.
BATCH_UNKNOWN_RESOURCE = re.compile(
    r"job ?(definition|queue).*(does not exist|not found|not exist)", re.IGNORECASE
)
BATCH_UNKNOWN = Rule(
    Kind.CONFIG,
    "unknown job definition or queue (check BATCH_JOB_QUEUE and *_JOB_DEFINITION)",
)
BATCH_REFUSED = Rule(Kind.REFUSED, "AWS Batch refused the request")
# A ClientError whose code is not listed: by its HTTP status.
AWS_SERVER_FAILURE = Rule(Kind.TRANSIENT, "AWS failed on its side (HTTP 5xx)")
AWS_CLIENT_FAILURE = Rule(Kind.CONFIG, "AWS refused the request")

# botocore exceptions raised before or instead of an answer, by class name (the class
# itself or any base class).
BOTOCORE_CLASSES: dict[str, Rule] = {
    "NoCredentialsError": Rule(Kind.CONFIG, "no AWS credentials found"),
    "PartialCredentialsError": Rule(Kind.CONFIG, "incomplete AWS credentials"),
    "NoRegionError": Rule(Kind.CONFIG, "no AWS region (set AWS_REGION)"),
    "ParamValidationError": Rule(Kind.CONFIG, "a name or value AWS cannot accept"),
    "InvalidEndpointConfigurationError": Rule(Kind.CONFIG, "bad AWS endpoint configuration"),
    "EndpointConnectionError": Rule(Kind.TRANSIENT, "AWS unreachable"),
    "ConnectTimeoutError": Rule(Kind.TRANSIENT, "AWS connection timed out"),
    "ReadTimeoutError": Rule(Kind.TRANSIENT, "AWS did not answer in time"),
    "ConnectionClosedError": Rule(Kind.TRANSIENT, "AWS closed the connection"),
    "HTTPClientError": Rule(Kind.TRANSIENT, "AWS connection failed"),
    "ConnectionError": Rule(Kind.TRANSIENT, "AWS connection failed"),
    "BotoCoreError": Rule(Kind.TRANSIENT, "AWS call failed"),
}

BOTOCORE_BAD_BUCKET = re.compile(r'Invalid bucket name "[^"]*"')

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
PG_SQLSTATES: dict[str, Rule] = {
    "28P01": Rule(Kind.CONFIG, "password authentication failed (check DATABASE_URL)"),
    "28000": Rule(Kind.CONFIG, "the server refuses this role or host (check DATABASE_URL)"),
    "3D000": Rule(Kind.CONFIG, "the database does not exist (check DATABASE_URL)"),
    "42501": Rule(Kind.CONFIG, "permission denied (check the role's grants)"),
    "42P01": Rule(Kind.CONFIG, "a table is missing (run `worthy-batch migrate`)"),
    "42703": Rule(Kind.CONFIG, "a column is missing (run `worthy-batch migrate`)"),
    "53300": Rule(Kind.TRANSIENT, "the database has too many connections"),
    "57P01": Rule(Kind.TRANSIENT, "the server terminated the connection"),
    "57P02": Rule(Kind.TRANSIENT, "the server crashed"),
    "57P03": Rule(Kind.TRANSIENT, "the server is starting up or shutting down"),
    "57014": Rule(Kind.TRANSIENT, "a statement timed out"),
    "55P03": Rule(Kind.TRANSIENT, "a lock was not granted in time"),
    "40001": Rule(Kind.TRANSIENT, "a serialization failure"),
    "40P01": Rule(Kind.TRANSIENT, "a deadlock"),
}
# libpq's words when it fails before any SQLSTATE exists (connecting), in order.
PG_MESSAGES: tuple[tuple[str, Rule], ...] = (
    ("password authentication failed", PG_SQLSTATES["28P01"]),
    ("no password supplied", PG_SQLSTATES["28P01"]),
    ("no pg_hba.conf entry", PG_SQLSTATES["28000"]),
    ("does not exist", Rule(Kind.CONFIG, "the database or role does not exist (DATABASE_URL)")),
    ("invalid dsn", Rule(Kind.CONFIG, "DATABASE_URL is not a PostgreSQL DSN", quote=False)),
    ("invalid connection option", Rule(Kind.CONFIG, "DATABASE_URL has an unknown option")),
    ("invalid sslmode", Rule(Kind.CONFIG, "bad sslmode (check DATABASE_SSLMODE)")),
)
PG_TLS_REFUSALS = (
    "certificate verify failed",
    "does not match host name",
    "root certificate file",
    "server does not support ssl",
    "certificate is not yet valid",
    "certificate has expired",
)
PG_TLS = Rule(Kind.CONFIG, "TLS refused")
# Any other OperationalError or InterfaceError: refused, reset, closed, timed out.
PG_CONNECTION = Rule(Kind.TRANSIENT, "database unavailable")
PG_CONNECTION_CLASSES = ("OperationalError", "InterfaceError")


def rule_for(exc: BaseException) -> tuple[Rule, str, str] | None:
    """The table's row for `exc`, the service it came from and its detail; None: not ours
    to sort (not a botocore or psycopg2 error)."""
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None and isinstance(exc, botocore.ClientError):
        return _aws_rule(exc)
    if botocore is not None and isinstance(exc, botocore.BotoCoreError):
        bad_name = BOTOCORE_BAD_BUCKET.search(str(exc))
        if bad_name:  # botocore checks a bucket's name before sending anything
            return AWS_CODES["InvalidBucketName"], "S3", bad_name.group(0)
        for klass in type(exc).__mro__:
            if klass.__name__ in BOTOCORE_CLASSES:
                return BOTOCORE_CLASSES[klass.__name__], "AWS", " ".join(str(exc).split())
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is not None and isinstance(exc, psycopg2.Error):
        return _pg_rule(exc)
    return None


def translate(exc: BaseException, doing: str = "") -> WorthyError:
    """`exc` as worthy-batch's error. `doing` ("reading s3://b/k") goes into the message.
    A WorthyError is returned as it is; anything unknown is an `InternalError` (70)."""
    if isinstance(exc, WorthyError):
        return exc
    found = rule_for(exc)
    if found is None:
        return InternalError(exc)
    rule, service, detail = found
    where = f" {doing}" if doing else ""
    text = f"{rule.what}{where}: {detail}" if detail and rule.quote else f"{rule.what}{where}"
    if rule is PG_TLS:
        return DatabaseTlsRefused(detail)
    if rule.kind is Kind.CONFIG:
        return ServiceConfigError(service, text)
    if rule.kind is Kind.TRANSIENT:
        return ServiceTransientError(f"{service}: {text}")
    return ServiceRefused(service, detail)


@contextmanager
def translated(doing: str = "") -> Iterator[None]:
    """botocore's and psycopg2's errors raised inside the block leave it as worthy-batch's
    (`translate`); every other exception passes through untouched."""
    try:
        yield
    except foreign_errors() as exc:
        raise translate(exc, doing) from None


def database_cannot_hear(exc: BaseException) -> bool:
    """Whether `exc` says the database itself is out of reach: `DatabaseUnavailable`, or
    psycopg2's OperationalError or InterfaceError (a lost, closed or refused connection,
    a terminated backend, a statement cancelled). Writing to it is then pointless."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    psycopg2 = sys.modules.get("psycopg2")
    return psycopg2 is not None and isinstance(
        exc, (psycopg2.OperationalError, psycopg2.InterfaceError)
    )


def foreign_errors() -> tuple[type[BaseException], ...]:
    """The base classes of botocore's and psycopg2's errors, of those loaded (an error of
    theirs can only exist once its module is)."""
    found: list[type[BaseException]] = []
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        found += [botocore.BotoCoreError, botocore.ClientError]
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is not None:
        found.append(psycopg2.Error)
    return tuple(found)


def _aws_rule(exc: BaseException) -> tuple[Rule, str, str]:
    response = getattr(exc, "response", {}) or {}
    error = response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    message = str(error.get("Message") or "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    service = _service_of(exc)
    detail = f"{code}: {message}".strip(": ") if message else code
    if code == "ClientException":  # AWS Batch's one code for every refusal
        rule = BATCH_UNKNOWN if BATCH_UNKNOWN_RESOURCE.search(message) else BATCH_REFUSED
        return rule, "AWS Batch", message or code
    if code in AWS_CODES:
        return AWS_CODES[code], service, detail
    if status >= 500 or status == 429 or code.isdigit() and int(code) >= 500:
        return AWS_SERVER_FAILURE, service, detail
    return AWS_CLIENT_FAILURE, service, detail


def _service_of(exc: BaseException) -> str:
    operation = str(getattr(exc, "operation_name", "") or "")
    if operation.endswith(("Object", "Objects", "ObjectVersions", "Bucket", "ObjectsV2")):
        return "S3"
    if operation.endswith(("Job", "Jobs")):
        return "AWS Batch"
    if operation.endswith("LogEvents"):
        return "CloudWatch Logs"
    return "AWS"


def _pg_rule(exc: BaseException) -> tuple[Rule, str, str] | None:
    detail = _one_line(exc)
    lowered = str(exc).lower()
    code = getattr(exc, "pgcode", None)
    if code and code in PG_SQLSTATES:
        return PG_SQLSTATES[code], "PostgreSQL", detail
    if any(words in lowered for words in PG_TLS_REFUSALS):
        return PG_TLS, "PostgreSQL", detail
    names = {klass.__name__ for klass in type(exc).__mro__}
    if names & {"OperationalError", "ProgrammingError", "InterfaceError"} and not code:
        for words, rule in PG_MESSAGES:
            if words in lowered:
                return rule, "PostgreSQL", detail
    if names & set(PG_CONNECTION_CLASSES):
        return PG_CONNECTION, "PostgreSQL", detail
    return None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(exc).__name__
