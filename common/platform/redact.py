"""Keep secrets out of every string we emit.

Adapters register each secret once at bootstrap (`register_secret`); the log
formatter, error messages, results and reports pass text through `redact`.
`redact_url` strips keys that providers carry in URLs (Alpha Vantage's
`apikey=` query, ExchangeRate-API's path segment) even before registration.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_KEYS = frozenset({"apikey", "api_key", "token", "key", "access_key", "password"})
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it everywhere from now on."""
    global _secrets, _pattern
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        # Longest first, so a secret that contains another is masked whole.
        _secrets = tuple(sorted({*_secrets, value}, key=len, reverse=True))
        _pattern = re.compile("|".join(re.escape(s) for s in _secrets))


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    pattern = _pattern
    return pattern.sub(MASK, text) if pattern is not None else text


def redact_url(url: str) -> str:
    """A URL safe to log: secret query values and registered secrets masked."""
    parts = urlsplit(url)
    query = urlencode(
        [
            (k, MASK if k.lower() in _SECRET_QUERY_KEYS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))
