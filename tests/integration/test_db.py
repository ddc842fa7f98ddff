from datetime import date

import psycopg2.extensions
from hypothesis import given
from hypothesis import strategies as st

from common.adapters.db import array_literal

BIGINTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
DATES = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))


@given(ids=st.lists(BIGINTS, max_size=50), days=st.lists(DATES, max_size=50))
def test_array_literals_reach_postgresql_unchanged(
    db: psycopg2.extensions.connection, ids: list[int], days: list[date]
) -> None:
    with db.cursor() as cur:
        cur.execute("SELECT %s::bigint[], %s::date[]", (array_literal(ids), array_literal(days)))
        assert cur.fetchone() == (ids, days)
