"""Every error worthy-batch raises on purpose, and the exit code each one means.

    WorthyError                      base; carries an exit code and a one-line message
    ├── ConfigError        (78)      a setting or option is missing or malformed
    │   ├── UnknownRun               no run with that id (names the latest ones)
    │   ├── ChunkOutOfRange          no chunk with that index (names the run's chunks)
    │   ├── DatabaseTlsRefused       the database's TLS certificate did not verify
    │   ├── EstimateTooLong          the day's pricing cannot fit an executor attempt
    │   ├── UnsupportedMarket        no calendar for that market (also a ValueError, for parsers)
    │   ├── RunDateRefused           a day that must not run: in the future, or outside the
    │   │                            years the market's calendar data covers
    │   ├── Unreachable              the canary could not reach a provider or AWS Batch
    │   └── ServiceConfigError       AWS or PostgreSQL refused us: access denied, no such
    │                                bucket, queue or database, a wrong password
    ├── InputError         (65)      data we were handed is wrong; retrying will not help
    │   └── ManifestError            run.json or a chunk is corrupt, tampered or mismatched
    ├── TransientError     (75)      something outside us is down; Batch retries the job
    │   ├── DatabaseUnavailable      PostgreSQL unreachable, restarted, or a connection dropped
    │   ├── StorageUnavailable       S3 unreachable or failing
    │   ├── ProvidersUnavailable     price providers failed for items still pending
    │   ├── ServiceTransientError    AWS or PostgreSQL throttling, failing or unreachable
    │   └── WaitTimedOut             `submit --wait` gave up following a job (it goes on)
    ├── MarketDataError               one provider call went wrong (the price chain handles these)
    │   ├── ProviderUnavailable      timeout, connection error, 5xx: try again later
    │   │   └── Throttled            429, or a throttle notice in the body; may carry Retry-After
    │   ├── ProviderAccessDenied     bad or missing key, plan without access (401/403)
    │   ├── ProviderBadResponse      garbage body, error body we cannot use
    │   ├── UnknownSymbol            the provider answered: it has no such symbol or pair
    │   └── QuotaExhausted           our daily budget for the provider is spent; no call made
    ├── LedgerViolation    (1)       `verify` found the ledger inconsistent
    ├── JobFailed          (1)       `submit --wait` saw the planner job fail
    ├── SubmissionRefused  (1)       AWS Batch refused a job for a reason of its own (its limits);
    │                                an unknown queue or job definition is a ConfigError (78)
    ├── ServiceRefused     (1)       AWS Batch refused a request for a reason of its own
    └── InternalError      (70)      an exception nobody expected: a bug

Foreign errors (botocore, psycopg2) become these in one place: common/adapters/error_map.py.
An exception nobody translated is a bug: exit 70 (`InternalError`). Ctrl-C: exit 130.
The tree is the domain's vocabulary of what goes wrong: plain classes, no I/O, so it sits in
the lowest layer, where the pure rules raise it too and every layer above can.

Messages never contain secrets: adapters build them from redacted URLs and
provider names, never from request headers or raw query strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, from sysexits.h so that Batch retry rules can key on them."""

    OK = 0
    FAILED = 1  # the thing checked or followed failed (verify, submit --wait)
    SOFTWARE = 70  # a bug: an exception nobody translated
    DATA = 65
    TEMPFAIL = 75
    CONFIG = 78
    INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2, as a shell reports it


class WorthyError(Exception):
    """Base of every deliberate error. `str()` is the one line an operator reads."""

    exit_code: ExitCode = ExitCode.SOFTWARE
    hint: str = ""

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} - {self.hint}" if self.hint else message


class ConfigError(WorthyError):
    """One or more settings are missing or malformed. `problems` maps the name to what is wrong."""

    exit_code = ExitCode.CONFIG
    hint = "fix the configuration and run again"

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        detail = "; ".join(f"{name}: {why}" for name, why in sorted(self.problems.items()))
        super().__init__(f"bad configuration: {detail}")


class UnknownRun(ConfigError):
    """A run id this database has no run for; the message names the latest it has."""

    hint = "check the id (`worthy-batch status` shows the latest run)"

    def __init__(self, run_id: str, known: list[str], limit: int) -> None:
        self.run_id = run_id
        listed = (
            f"known runs: {', '.join(known)} (latest {limit})"
            if known
            else "this database has no runs yet"
        )
        super().__init__({"--run-id": f"no run {run_id}; {listed}"})


class ChunkOutOfRange(ConfigError):
    """A chunk index the run does not have; the message names the ones it has."""

    hint = "pick one of those"

    def __init__(self, run_id: str, index: int, count: int) -> None:
        self.run_id, self.index, self.count = run_id, index, count
        if count == 0:
            has = "has no chunks"
        elif count == 1:
            has = "has 1 chunk: 0"
        else:
            has = f"has {count} chunks: 0-{count - 1}"
        super().__init__({"--chunk-index": f"{index} is not a chunk of run {run_id}, which {has}"})


class DatabaseTlsRefused(ConfigError):
    """TLS to the database failed verification: wrong CA bundle, wrong host name in the DSN,
    a server without TLS, or an impostor. Retrying cannot fix it, so it is not transient."""

    hint = (
        "check DATABASE_SSLMODE, DATABASE_SSLROOTCERT and the DSN's host "
        '(docs/database.md "Database TLS"); retrying will not help'
    )

    def __init__(self, reason: str) -> None:
        super().__init__({"DATABASE_URL": f"TLS refused: {reason}"})


class EstimateTooLong(ConfigError):
    """The planner's estimate says an executor attempt could not finish the day: refused
    before anything is written (a setting must change: a rate, the chunks, the ceiling)."""

    hint = 'nothing was written (docs/operating.md "Timeouts")'

    def __init__(self, why: str) -> None:
        self.problems = {"EXECUTOR_MAX_TIMEOUT_SECONDS": why}
        WorthyError.__init__(self, f"cannot plan this day: {why}")


class UnsupportedMarket(ConfigError, ValueError):
    """A market identifier code we have no calendar for. Also a ValueError, so an option's
    parser (common/platform/commands.py) reports it as argparse reports a bad value."""

    hint = ""

    def __init__(self, mic: str, supported: Iterable[str]) -> None:
        self.mic = mic
        why = f"unsupported market {mic!r}: expected one of {', '.join(sorted(supported))}"
        self.problems = {"--market": why}
        WorthyError.__init__(self, why)


class RunDateRefused(ConfigError):
    """A run date that must not run: after the market's today (unless the operator says
    so), or outside the years its calendar data covers (where every weekday looks open)."""

    def __init__(self, why: str, option: str = "--run-date") -> None:
        self.why = why
        super().__init__({option: why})


class Unreachable(ConfigError):
    """The canary found a provider or AWS Batch unreachable from where it runs (a VPC
    without egress: no NAT gateway, no VPC endpoint). Not retried: the network must change."""

    hint = 'check the VPC\'s NAT gateway or VPC endpoints (docs/deploy.md "Smoke test")'

    def __init__(self, what: str, detail: str) -> None:
        self.problems = {what: detail}
        WorthyError.__init__(self, f"canary: {what} unreachable: {detail}")


class InputError(WorthyError):
    """Input data is wrong: never retried, because the same input fails the same way."""

    exit_code = ExitCode.DATA
    hint = "the input will not get better by retrying; re-plan the run"


class ManifestError(InputError):
    """A manifest or chunk failed verification (checksum, schema, gzip, index)."""

    def __init__(self, uri: str, problem: str) -> None:
        self.uri = uri
        self.problem = problem
        super().__init__(f"manifest {uri} rejected: {problem}")


class TransientError(WorthyError):
    """Something we depend on is down; the same job later will likely succeed."""

    exit_code = ExitCode.TEMPFAIL
    hint = "transient; AWS Batch retries it, or rerun the same command later"


class DatabaseUnavailable(TransientError):
    def __init__(self, what: str, attempts: int = 1) -> None:
        self.attempts = attempts
        super().__init__(f"database unavailable after {attempts} attempt(s): {what}")


class StorageUnavailable(TransientError):
    def __init__(self, what: str, attempts: int = 1) -> None:
        self.attempts = attempts
        super().__init__(f"S3 unavailable after {attempts} attempt(s): {what}")


class ProvidersUnavailable(TransientError):
    """The chunk finished but some plans could not be priced because providers failed."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        super().__init__(f"{pending} plan(s) still pending: price providers failed")


class MarketDataError(WorthyError):
    """One provider call failed. Carries the provider and the symbol (or FX base)."""

    exit_code = ExitCode.TEMPFAIL

    def __init__(self, provider: str, key: str, detail: str, attempts: int = 1) -> None:
        self.provider = provider
        self.key = key
        self.detail = detail
        self.attempts = attempts
        super().__init__(provider, key, detail)

    def __str__(self) -> str:
        # Built on demand: the retry loop sets `attempts` after the error was raised.
        return f"{self.provider} {self.key}: {self.detail} (attempts: {self.attempts})"


class ProviderUnavailable(MarketDataError):
    """Timeout, connection failure or 5xx: the provider may answer later."""


class Throttled(ProviderUnavailable):
    """The provider is rate limiting us. `retry_after` is in seconds when it said so."""

    def __init__(
        self, provider: str, key: str, detail: str, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(provider, key, detail)


class ProviderAccessDenied(MarketDataError):
    """Bad or missing key, or the key's plan has no access to this data."""


class ProviderBadResponse(MarketDataError):
    """The provider answered with something we cannot use."""


class UnknownSymbol(MarketDataError):
    """The provider answered and says it has no such symbol (or currency pair)."""


class QuotaExhausted(MarketDataError):
    """The provider's daily budget (`*_CALLS_PER_DAY`) is spent: the call was not made.

    Not a provider failure: retrying today cannot help, so the chain skips
    the provider (reason `quota_exhausted`) without counting it against it.
    """

    def __init__(self, provider: str, key: str, budget: int) -> None:
        self.budget = budget
        super().__init__(provider, key, f"daily budget of {budget} call(s) spent", attempts=0)


class LedgerViolation(WorthyError):
    """`worthy-batch verify` found broken invariants; `violations` lists them."""

    exit_code = ExitCode.FAILED

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        super().__init__(f"ledger check failed: {len(self.violations)} violation(s)")


class JobFailed(WorthyError):
    """A Batch job followed by `submit --wait` ended FAILED."""

    exit_code = ExitCode.FAILED

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id} failed: {reason or 'no reason given'}")


class SubmissionRefused(WorthyError):
    """AWS Batch refused a SubmitJob request (a ClientException): that job does not exist.

    Not transient: Batch said no to this request (its limits, a parameter it
    rejects), and says why. A queue or job definition that does not exist is a
    configuration error instead (exit 78, common/adapters/error_map.py)."""

    exit_code = ExitCode.FAILED

    def __init__(self, job_name: str, message: str) -> None:
        self.job_name = job_name
        self.message = message
        super().__init__(
            f"AWS Batch refused job {job_name}: {message} - nothing was submitted for it; "
            "fix what the message names, then run the same command again (it resumes)"
        )


class ServiceConfigError(ConfigError):
    """AWS or the database refused us for a reason that retrying cannot fix."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__({service: detail})


class ServiceTransientError(TransientError):
    """AWS or the database is throttling, failing or unreachable: later may work."""


class WaitTimedOut(TransientError):
    """`submit --wait` followed a job longer than its --timeout; the job itself goes on."""

    def __init__(self, job_id: str, seconds: float) -> None:
        super().__init__(f"job {job_id} still running after {seconds:.0f}s; it goes on")


class ServiceRefused(WorthyError):
    """AWS Batch refused a request for a reason of its own (its message says which)."""

    exit_code = ExitCode.FAILED

    def __init__(self, service: str, message: str) -> None:
        self.message = message
        super().__init__(f"{service} refused the request: {message}")


class InternalError(WorthyError):
    """Nobody expected this exception: a bug. Exit 70, logged whole by the edge."""

    exit_code = ExitCode.SOFTWARE

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"internal error: {type(exc).__name__}: {exc} - please report it")
