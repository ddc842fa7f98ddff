"""HTTP for the market-data adapters: one shared session, explicit timeouts, typed failures.

`get_json` turns what every provider has in common (timeouts, connection
errors, 5xx, 429 with Retry-After, non-JSON bodies) into `common.domain.errors`
exceptions, and hands the rest back so that each adapter reads its own
provider's error shapes. Bodies are parsed with `parse_float=Decimal`: a
price never passes through a float.
"""

from __future__ import annotations

import json
import math
import os
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from common.domain.errors import (
    ProviderAccessDenied,
    ProviderBadResponse,
    ProviderUnavailable,
    Throttled,
)
from common.platform.redact import redact, redact_url

USER_AGENT = "worthy-batch/0.1"
DETAIL_LIMIT = 160  # characters of a provider's own message kept in an error

Timeout = tuple[float, float]  # (connect, read) seconds, as requests takes it
Clock = Callable[[], float]  # seconds since the epoch, like time.time


def build_session(pool_size: int = 10) -> requests.Session:
    """The process's one session: pooled connections, and no retries of its own."""
    session = requests.Session()
    # The price chain retries with backoff inside a budget; urllib3 retrying
    # underneath it would multiply attempts and hide them from the call counts.
    adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    if not urllib.request.getproxies():
        # With trust_env on, requests scans the whole environment for proxies on
        # every call (~1 ms with a large environment). Without proxies, read
        # the one other thing it looks for (a CA bundle) once, here.
        session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    return session


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider's answer that was not a transport failure, 429 or 5xx."""

    status: int
    body: Any  # the parsed JSON; None when the body was not JSON
    url: str  # redacted, safe to put in a message


def get_json(
    session: requests.Session,
    url: str,
    *,
    provider: str,
    key: str,
    timeout: Timeout,
    clock: Clock,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """GET `url`; raise for what is never the adapter's business, return the rest."""
    shown = redact_url(requests.Request("GET", url, params=params).prepare().url or url)
    try:
        response = session.get(url, params=params, headers=headers, timeout=timeout)
    # `from None` on purpose: requests' messages quote the full URL, and Alpha
    # Vantage and ExchangeRate-API carry the key in it.
    except requests.Timeout:
        raise ProviderUnavailable(provider, key, f"timed out: GET {shown}") from None
    except requests.RequestException as exc:
        raise ProviderUnavailable(provider, key, f"{type(exc).__name__}: GET {shown}") from None
    status = response.status_code
    if status == 429:
        wait = parse_retry_after(response.headers.get("Retry-After"), clock())
        raise Throttled(provider, key, f"HTTP 429 from GET {shown}", retry_after=wait)
    if status >= 500:
        raise ProviderUnavailable(provider, key, f"HTTP {status} from GET {shown}")
    return Reply(status=status, body=_parse(response.content), url=shown)


def deny_unauthorized(reply: Reply, *, provider: str, key: str) -> None:
    """Raise `ProviderAccessDenied` for 401/403, quoting the provider's `error` text."""
    if reply.status in (401, 403):
        said = reply.body.get("error") if isinstance(reply.body, dict) else None
        why = f": {short(str(said))}" if said else ""
        raise ProviderAccessDenied(provider, key, f"HTTP {reply.status}{why}")


def require_object(reply: Reply, *, provider: str, key: str) -> dict[str, Any]:
    """The body as a JSON object, or `ProviderBadResponse` (any other status included)."""
    if not 200 <= reply.status < 300:
        raise ProviderBadResponse(provider, key, f"HTTP {reply.status} from GET {reply.url}")
    if not isinstance(reply.body, dict):
        raise ProviderBadResponse(provider, key, f"not a JSON object from GET {reply.url}")
    return reply.body


def as_decimal(value: object) -> Decimal:
    """A JSON number or numeric string as a Decimal; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(f"not a number: {type(value).__name__}")
    try:
        return Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError("not a number") from None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def short(text: str, limit: int = DETAIL_LIMIT) -> str:
    """`text` made safe (secrets masked) and short enough for an error or a results file."""
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def utc_from_unix(seconds: object) -> datetime:
    """An aware UTC instant from a JSON unix timestamp; ValueError when it is not one."""
    number = as_decimal(seconds)
    if not number.is_finite():
        raise ValueError("not a finite timestamp")
    try:
        return datetime.fromtimestamp(int(number), UTC)
    except (OverflowError, OSError):
        raise ValueError("timestamp out of range") from None


def _parse(content: bytes) -> Any:
    try:
        # parse_constant: NaN and Infinity become Decimals the chain can reject.
        return json.loads(content, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError):
        return None
