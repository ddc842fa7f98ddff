"""Market data: prices (Finnhub, then Alpha Vantage) and FX rates (ExchangeRate-API).

The executor builds it once per process with `bootstrap.build_market_data(settings,
quota_store)`, when a chunk first needs a price it has not stored, and prices through
`MarketData.chain`:

    chain.price(symbol, run_date, tz)       -> Quote | PriceFailure
    chain.fx(base, run_date)                -> FxRates | PriceFailure
    chain.calls                             -> Counter of requests per provider
    chain.quota_exhausted                   -> Counter of keys skipped, budget spent

Import from the modules themselves: this package imports none of them, so a module
that needs only the values (`quotes`) or the provider rows (`providers`) does not
load requests with the clients.
"""
