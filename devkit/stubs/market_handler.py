"""Request handling for the stub market server: the three provider APIs and `/_stub/*`.

Routes (base URLs as the settings take them):
    GET  /finnhub/api/v1/quote?symbol=S            key: X-Finnhub-Token header (or ?token=)
    GET  /alphavantage/query?function=GLOBAL_QUOTE&symbol=S&apikey=K
    GET  /exchangerate/v6/<K>/latest/<BASE>
    GET  /_stub/calls     DELETE /_stub/calls     call counters
    POST /_stub/faults    DELETE /_stub/faults    script faults from another process
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from common.domain.currencies import ISO_4217
from common.platform.logging import get_logger
from devkit.stubs import market_bodies as bodies
from devkit.stubs.market_faults import (
    ALPHA_VANTAGE,
    COMMON_FAULTS,
    EXCHANGE_RATE,
    FINNHUB,
    GARBAGE,
    HTTP_429,
    HTTP_500,
    SLOW,
    STALE,
    Fault,
)
from devkit.stubs.market_limits import DAY, MINUTE

if TYPE_CHECKING:
    from devkit.stubs.market_server import StubMarketServer

log = get_logger(__name__)
NEW_YORK = ZoneInfo("America/New_York")
STALE_DAYS = 30
AV_BAD_KEY = "the parameter apikey is invalid or missing. Please claim your free API key."
AV_NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."
)
AV_BAD_CALL = "Invalid API call. Please retry or visit the documentation for GLOBAL_QUOTE."
AV_INFORMATION = "Thank you for using Alpha Vantage! Our standard API rate limit is 25 per day."
# How each provider says "slow down" when a key is past the stub's limits: per minute, per day.
LIMIT_FAULT = {
    (FINNHUB, MINUTE): HTTP_429,
    (FINNHUB, DAY): HTTP_429,
    (ALPHA_VANTAGE, MINUTE): "note",
    (ALPHA_VANTAGE, DAY): "information",
    (EXCHANGE_RATE, MINUTE): "quota-reached",
    (EXCHANGE_RATE, DAY): "quota-reached",
}


class MarketHandler(BaseHTTPRequestHandler):
    """One request. `self.server.stub` is the StubMarketServer that owns the socket."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs and requests' pool expect
    # Headers and body go out in two writes; with Nagle on, keep-alive clients
    # wait out a delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True

    @property
    def stub(self) -> StubMarketServer:
        return self.server.stub  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        # The default writes the request line to stderr, Alpha Vantage key and all.
        return

    def do_GET(self) -> None:  # noqa: N802 (stdlib's name)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/").split("/")
        if parts.path == "/_stub/calls":
            self._send(200, self.stub.call_counts())
        elif parts.path == "/finnhub/api/v1/quote":
            token = self.headers.get("X-Finnhub-Token") or query.get("token", "")
            self._finnhub(query.get("symbol", "").upper(), token)
        elif parts.path == "/alphavantage/query":
            self._alpha_vantage(query)
        elif len(path) == 6 and path[1:3] == ["exchangerate", "v6"] and path[4] == "latest":
            self._exchange_rate(path[5].upper(), path[3])
        else:
            self._send(404, {"error": "no such endpoint"})

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/_stub/faults":
            self._send(404, {"error": "no such endpoint"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.stub.faults.set_from_json(json.loads(self.rfile.read(length) or b"null"))
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, {"error": f"bad fault: {exc}"})
            return
        self._send(200, {"ok": True})

    def do_DELETE(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path == "/_stub/faults":
            self.stub.clear_faults()
        elif path == "/_stub/calls":
            self.stub.reset_calls()
        else:
            self._send(404, {"error": "no such endpoint"})
            return
        self._send(200, {"ok": True})

    # -- providers -------------------------------------------------------------

    def _finnhub(self, symbol: str, token: str) -> None:
        self.stub.calls_log.record(FINNHUB, "quote", symbol)
        if token != self.stub.finnhub_key:
            self._send(401, {"error": "Invalid API key"})
            return
        fault = self._fault(FINNHUB, symbol, token)
        name = fault.name if fault else None
        if name == "zeros":
            self._send(200, bodies.FINNHUB_UNKNOWN)
        elif name == "http_401":
            self._send(401, {"error": "Invalid API key"})
        elif self._common(fault):
            return
        elif symbol in self.stub.unknown_symbols:
            self._send(200, bodies.FINNHUB_UNKNOWN)
        else:
            when = self._now(stale=name == STALE)
            self._send(200, bodies.finnhub_quote(self.stub.price_of(symbol), when))

    def _alpha_vantage(self, query: dict[str, str]) -> None:
        function = query.get("function", "")
        symbol = query.get("symbol", "").upper()
        self.stub.calls_log.record(ALPHA_VANTAGE, function, symbol)
        if query.get("apikey") != self.stub.alpha_vantage_key:
            self._send(200, {"Error Message": AV_BAD_KEY})
            return
        fault = self._fault(ALPHA_VANTAGE, symbol, query["apikey"])
        name = fault.name if fault else None
        if function != "GLOBAL_QUOTE" or name == "error_message":
            self._send(200, {"Error Message": AV_BAD_CALL})
        elif name == "note":
            self._send(200, {"Note": AV_NOTE})
        elif name == "information":
            self._send(200, {"Information": AV_INFORMATION})
        elif name == "empty_quote":
            self._send(200, {"Global Quote": {}})
        elif self._common(fault):
            return
        elif symbol in self.stub.unknown_symbols:
            self._send(200, {"Global Quote": {}})
        else:
            day = self._now(stale=name == STALE).astimezone(NEW_YORK).date()
            self._send(200, bodies.av_global_quote(symbol, self.stub.price_of(symbol), day))

    def _exchange_rate(self, base: str, key: str) -> None:
        self.stub.calls_log.record(EXCHANGE_RATE, "latest", base)
        if key != self.stub.exchange_rate_key:
            self._send(200, bodies.er_error("invalid-key"))
            return
        fault = self._fault(EXCHANGE_RATE, base, key)
        if fault is not None and fault.name not in COMMON_FAULTS:
            self._send(200, bodies.er_error(fault.name))
        elif self._common(fault):
            return
        elif base not in ISO_4217:
            self._send(200, bodies.er_error("unsupported-code"))
        else:
            published = self._now(stale=fault is not None and fault.name == STALE)
            self._send(200, bodies.er_latest(base, self.stub.rates_of(base), published))

    # -- shared ----------------------------------------------------------------

    def _fault(self, provider: str, key: str, api_key: str) -> Fault | None:
        """The provider's own throttle when `api_key` is past its limits, else the scripted
        fault for this call (if any)."""
        refused = self.stub.admit(provider, api_key)
        if refused is not None:
            fault: Fault | None = Fault(
                LIMIT_FAULT[(provider, refused.kind)], retry_after=refused.retry_after
            )
        else:
            fault = self.stub.faults.take(provider, key)
        if fault is not None:
            self.stub.calls_log.note_fault(provider, fault.name)
        return fault

    def _common(self, fault: Fault | None) -> bool:
        """Answer a fault every provider shares; False when the normal answer should follow."""
        if fault is None or fault.name == STALE:
            return False
        if fault.name == HTTP_429:
            retry = f"{fault.retry_after:g}"
            self._send(429, {"error": "API limit reached"}, headers={"Retry-After": retry})
        elif fault.name == HTTP_500:
            self._send_raw(500, b"Internal Server Error", "text/plain")
        elif fault.name == GARBAGE:
            self._send_raw(200, b"<html><body>upstream hiccup</body></html>{", "text/html")
        elif fault.name == SLOW:
            # Wait past the client's read timeout, then answer as if all were well;
            # the event lets stop() end the wait at once.
            self.stub.stopping.wait(fault.delay or self.stub.slow_seconds)
            return False
        else:
            return False
        return True

    def _now(self, *, stale: bool) -> datetime:
        now = self.stub.as_of or datetime.fromtimestamp(self.stub.clock(), UTC)
        return now - timedelta(days=STALE_DAYS) if stale else now

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, bodies.dumps(body), "application/json", headers)

    def _send_raw(
        self, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
