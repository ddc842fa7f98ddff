"""Provider quotas in PostgreSQL: `provider_limits` and `provider_daily_calls`.

One row per provider and API key (by fingerprint) holds the next free call
slot and any pause; every lease is one `INSERT ... ON CONFLICT DO UPDATE ...
RETURNING` that moves it on atomically, so however many children lease at
once, no two get the same slot. Slot times are the database's own clock
(`clock_timestamp()`), the one clock every host shares; each lease also
returns that clock's now, so a child can wait on its own clock.

Daily budgets: one row per provider, key and UTC day, counted up by one
before each call while under the budget, in the same one statement.

The store keeps a connection of its own, in autocommit, opened at the first
use and given back by `close()` (the executor closes it once pricing is
done, so the connection budget does not grow). Calls from several threads
take turns on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date

from psycopg2.extensions import connection

from common.domain.pacing import Lease

_LEASE = """
    INSERT INTO provider_limits AS l (provider, key_fingerprint, next_slot, updated_at)
    VALUES (%(provider)s, %(key)s, clock_timestamp() + %(span)s * interval '1 second',
            clock_timestamp())
    ON CONFLICT (provider, key_fingerprint) DO UPDATE
    SET next_slot = greatest(l.next_slot, l.paused_until, clock_timestamp())
                    + %(span)s * interval '1 second',
        updated_at = clock_timestamp()
    RETURNING extract(epoch FROM l.next_slot)::float8, extract(epoch FROM clock_timestamp())::float8
"""

_PAUSE = """
    INSERT INTO provider_limits AS l (provider, key_fingerprint, next_slot, paused_until)
    VALUES (%(provider)s, %(key)s, clock_timestamp(),
            clock_timestamp() + %(seconds)s * interval '1 second')
    ON CONFLICT (provider, key_fingerprint) DO UPDATE
    SET paused_until = greatest(l.paused_until, excluded.paused_until),
        updated_at = clock_timestamp()
"""

_SPEND = """
    INSERT INTO provider_daily_calls AS d (provider, key_fingerprint, day, calls)
    SELECT %(provider)s, %(key)s,
           coalesce(%(day)s::date, (clock_timestamp() AT TIME ZONE 'UTC')::date), 1
    WHERE %(budget)s > 0
    ON CONFLICT (provider, key_fingerprint, day) DO UPDATE
    SET calls = d.calls + 1, updated_at = clock_timestamp()
    WHERE d.calls < %(budget)s
    RETURNING calls
"""


class PostgresQuotas:
    """`QuotaStore` on the batch's database, shared by every child, host and rerun."""

    def __init__(self, connect: Callable[[], connection]) -> None:
        self._connect = connect
        self._conn: connection | None = None
        self._lock = threading.Lock()
        self.round_trips = 0
        self.seconds = 0.0  # spent in round trips, summed over the threads that made them

    def lease(self, provider: str, key_id: str, count: int, spacing: float) -> tuple[Lease, float]:
        span = count * spacing
        row = self._one(_LEASE, {"provider": provider, "key": key_id, "span": span})
        assert row is not None  # an upsert always returns its row
        end, now = row
        return Lease(first=end - span, spacing=spacing, count=count), now

    def pause(self, provider: str, key_id: str, seconds: float) -> None:
        self._one(_PAUSE, {"provider": provider, "key": key_id, "seconds": seconds}, fetch=False)

    def spend(self, provider: str, key_id: str, budget: int, day: date | None = None) -> bool:
        params = {"provider": provider, "key": key_id, "budget": budget, "day": day}
        return self._one(_SPEND, params) is not None

    def close(self) -> None:
        """Give the connection back; the next call opens a new one."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _one(
        self, sql: str, params: dict[str, object], fetch: bool = True
    ) -> tuple[float, ...] | None:
        with self._lock:
            started = time.perf_counter()
            if self._conn is None:
                self._conn = self._connect()
                self._conn.autocommit = True
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                row = cur.fetchone() if fetch else None
            self.round_trips += 1
            self.seconds += time.perf_counter() - started
            return row
