"""What the stub market server is scripted to do wrong, and what it has been asked.

Faults are per provider and per key (a symbol, an FX base, or "*" for any),
for the next N calls or for good. The call log counts every provider request
by provider, endpoint and key, with the stub clock's time of each call.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FINNHUB = "finnhub"
ALPHA_VANTAGE = "alphavantage"
EXCHANGE_RATE = "exchangerate"
PROVIDERS = (FINNHUB, ALPHA_VANTAGE, EXCHANGE_RATE)
ANY_KEY = "*"

# Faults every provider can show.
HTTP_429 = "http_429"  # 429 with a Retry-After header
HTTP_500 = "http_500"
SLOW = "slow"  # answer only after `delay` seconds (longer than the client's read timeout)
GARBAGE = "garbage"  # HTTP 200 with a body that is not JSON
STALE = "stale"  # a well-formed answer dated STALE_DAYS ago
COMMON_FAULTS = frozenset({HTTP_429, HTTP_500, SLOW, GARBAGE, STALE})

FAULTS: dict[str, frozenset[str]] = {
    FINNHUB: COMMON_FAULTS | {"zeros", "http_401"},
    ALPHA_VANTAGE: COMMON_FAULTS | {"note", "information", "error_message", "empty_quote"},
    EXCHANGE_RATE: COMMON_FAULTS
    | {"invalid-key", "quota-reached", "unsupported-code", "malformed-request", "inactive-account"},
}


@dataclass
class Fault:
    """One scripted fault. `remaining` None means every call until cleared."""

    name: str
    remaining: int | None = None
    retry_after: float = 1.0
    delay: float | None = None  # for SLOW; None means the server's default


class FaultBook:
    """Thread-safe table of scripted faults, consumed call by call."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str], Fault] = {}
        self._lock = threading.Lock()

    def set(
        self,
        provider: str,
        key: str,
        fault: str,
        times: int | None = None,
        *,
        retry_after: float = 1.0,
        delay: float | None = None,
    ) -> None:
        if provider not in FAULTS:
            raise ValueError(f"unknown provider {provider!r}: expected one of {PROVIDERS}")
        if fault not in FAULTS[provider]:
            raise ValueError(f"{provider} has no fault {fault!r}: {sorted(FAULTS[provider])}")
        if times is not None and times <= 0:
            raise ValueError("times must be positive (or None for always)")
        with self._lock:
            self._faults[(provider, key)] = Fault(fault, times, retry_after, delay)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, provider: str, key: str) -> Fault | None:
        """The fault for this call (an exact key before "*"), used up by one."""
        with self._lock:
            for slot in ((provider, key), (provider, ANY_KEY)):
                fault = self._faults.get(slot)
                if fault is None:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del self._faults[slot]
                return fault
        return None

    def set_from_json(self, document: Any) -> None:
        """Apply `{"provider", "key", "fault", "times"?, "retry_after"?, "delay"?}` or a list."""
        for item in document if isinstance(document, list) else [document]:
            if not isinstance(item, dict):
                raise ValueError("each fault is a JSON object")
            self.set(
                str(item["provider"]),
                str(item.get("key", ANY_KEY)),
                str(item["fault"]),
                item.get("times"),
                retry_after=float(item.get("retry_after", 1.0)),
                delay=float(item["delay"]) if item.get("delay") is not None else None,
            )


class CallLog:
    """Counts of provider requests by (provider, endpoint, key), and when each came."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._times: dict[str, list[float]] = {p: [] for p in PROVIDERS}
        self.served: Counter[tuple[str, str]] = Counter()  # (provider, fault) answers given
        self._lock = threading.Lock()

    def record(self, provider: str, endpoint: str, key: str) -> float:
        """Count one call; returns the stub clock's time of it."""
        with self._lock:
            at = self._clock()
            self._counts[(provider, endpoint, key)] += 1
            self._times[provider].append(at)
            return at

    def note_fault(self, provider: str, fault: str) -> None:
        """Count one faulty answer (scripted, or the stub's own rate limit)."""
        with self._lock:
            self.served[(provider, fault)] += 1

    def count(
        self, provider: str | None = None, endpoint: str | None = None, key: str | None = None
    ) -> int:
        with self._lock:
            return sum(
                n
                for (p, e, k), n in self._counts.items()
                if provider in (None, p) and endpoint in (None, e) and key in (None, k)
            )

    def times(self, provider: str) -> list[float]:
        with self._lock:
            return list(self._times[provider])

    def as_json(self) -> dict[str, Any]:
        """`{"total": n, "<provider>": {"total": n, "<endpoint>": {"total": n, "<key>": n}}}`."""
        with self._lock:
            tree: dict[str, Any] = {"total": sum(self._counts.values())}
            for (provider, endpoint, key), n in sorted(self._counts.items()):
                node = tree.setdefault(provider, {"total": 0})
                node["total"] += n
                leaf = node.setdefault(endpoint, {"total": 0})
                leaf["total"] += n
                leaf[key] = n
            tree["faults_served"] = {f"{p} {f}": n for (p, f), n in sorted(self.served.items())}
            return tree

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self.served.clear()
            for times in self._times.values():
                times.clear()
