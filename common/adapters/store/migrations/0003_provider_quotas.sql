-- Provider quotas shared by every executor child (docs/market-data.md "Market data").
-- A provider counts calls per API key, so the limiter's state is keyed by the
-- provider and a fingerprint of the key (the first 16 hex digits of its
-- SHA-256): never the key itself.

-- The per-minute limit as call slots (common/domain/pacing.py): the next slot
-- nobody has leased yet, and a provider's Retry-After that holds every child.
CREATE TABLE provider_limits (
    provider        TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL CHECK (key_fingerprint ~ '^[0-9a-f]{16}$'),
    next_slot       TIMESTAMPTZ NOT NULL,
    paused_until    TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key_fingerprint)
);

-- Calls counted against a daily budget (`*_CALLS_PER_DAY`), per UTC day. A row
-- a provider a day: small enough to keep as a record of what each day used.
CREATE TABLE provider_daily_calls (
    provider        TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL CHECK (key_fingerprint ~ '^[0-9a-f]{16}$'),
    day             DATE NOT NULL,
    calls           INT NOT NULL CHECK (calls >= 0),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key_fingerprint, day)
);
