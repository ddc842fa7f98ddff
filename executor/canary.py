"""The canary's network proof: one real quote and one FX rate, as a real child gets them.

Through the chunk's own `PriceChain`: the configured providers and base URLs,
the one HTTP session, the retry policy and each provider's shared quota, so
the canary's calls count against the providers' budgets like any other. A
provider that answered, even without a usable quote (`price_unavailable`),
was reached; one that did not (`provider_error`: no route, a timeout, a
refused key) fails the canary with one line naming it and its URL.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from common.adapters.marketdata.quotes import PriceFailure
from common.domain.calendar import market_timezone
from common.domain.errors import Unreachable
from common.domain.statuses import Reason
from common.platform.logging import get_logger

if TYPE_CHECKING:
    from common.adapters.marketdata.chain import PriceChain

log = get_logger(__name__)

CANARY_SYMBOL = "SPY"  # listed on every price provider, traded every market day
CANARY_FX_BASE = "EUR"  # a base every FX provider publishes


def prove_network(chain: PriceChain, market: str, run_date: date) -> str:
    """Fetch the canary's quote and FX rates; return what answered. Raises Unreachable."""
    quote = chain.price(CANARY_SYMBOL, run_date, market_timezone(market))
    _check("price providers", quote)
    rates = chain.fx(CANARY_FX_BASE, run_date)
    _check("FX provider", rates)
    priced = quote.key if isinstance(quote, PriceFailure) else f"{quote.symbol} by {quote.provider}"
    converted = (
        rates.key if isinstance(rates, PriceFailure) else f"{rates.base} by {rates.provider}"
    )
    return f"canary: providers reached: {priced}; {converted} rates ({dict(chain.calls)} call(s))"


def _check(what: str, answer: object) -> None:
    if isinstance(answer, PriceFailure) and answer.reason == Reason.PROVIDER_ERROR:
        raise Unreachable(what, answer.detail)
    if isinstance(answer, PriceFailure):
        log.info("canary: %s answered without a usable quote: %s", what, answer.detail)
