"""klines_with_history against FakeBinance: REST history, then live, no gap, no duplicate."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from rxbinance import BinanceStreams
from rxbinance.errors import BinanceAPIError, ConnectionFailure, RequestError
from rxbinance.events import Gap
from rxbinance.models import Kline
from rxbinance.pipelines import klines_with_history
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

SECOND = 1000


class MarketKlines:
    """GET /api/v3/klines answered straight from the fake's market; ``script`` entries run
    first, one per call: an exception to raise, or a callable to call between taking the
    answer and returning it."""

    def __init__(self, fake: FakeBinance, script: list[Any] | None = None) -> None:
        self.fake = fake
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []

    def klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[list[Any]]:
        self.calls.append({"symbol": symbol, "start_time": start_time, "limit": limit})
        step = self.script.pop(0) if self.script else None
        if isinstance(step, BaseException):
            raise step
        answer = self.fake.with_market(
            lambda m: m.rest_klines(symbol, interval, start_time, end_time, limit or 500)
        )
        if callable(step):
            step()  # e.g. hang: the answer was taken before, as a slow response would be
        return answer


def caught_up(fake: FakeBinance) -> Callable[[Collector], bool]:
    """True once the candle that closed last on the market has been emitted closed."""
    rows = fake.with_market(lambda m: m.rest_klines("BTCUSDT", "1s"))
    last_closed = rows[-2][0]
    return lambda c: any(
        isinstance(k, Kline) and k.closed and k.open_time == last_closed for k in c.items
    )


def miss_four_candles(fake: FakeBinance) -> None:
    """The kline socket drops and stays down while four 1 s candles close, then comes back."""
    first = max(c.id for c in fake.connections)
    fake.refuse_connections()
    fake.drop_connections()
    fake.step(40)
    fake.accept_connections()
    fake.wait_for(lambda f: any(c.id > first and c.closed_at is None for c in f.connections))


def check_series(fake: FakeBinance, emitted: list[Kline]) -> None:
    """No duplicate, no gap, never backwards, and every closed candle equals Binance's."""
    opens = [k.open_time for k in emitted]
    assert opens == sorted(opens), "never backwards"
    distinct = sorted(set(opens))
    assert distinct == list(range(distinct[0], distinct[-1] + 1, SECOND)), "no gap"
    for earlier, later in itertools.pairwise(emitted):
        if earlier.open_time == later.open_time:
            assert not earlier.closed, "nothing after a candle closed"
            assert later.closed or later.trades > earlier.trades, "no repeat"
    rows = {row[0]: row for row in fake.with_market(lambda m: m.rest_klines("BTCUSDT", "1s"))}
    closed = [k for k in emitted if k.closed]
    assert closed
    for candle in closed:
        row = rows[candle.open_time]
        ohlcv = [candle.open, candle.high, candle.low, candle.close, candle.volume]
        # Decimal, not str: an empty candle's "0.00000000" prints as 0E-8.
        assert ohlcv == [Decimal(x) for x in row[1:6]]
        assert (candle.close_time, candle.trades) == (row[6], row[8])
    # Every candle but the last open one was closed exactly once.
    assert [k.open_time for k in closed] == distinct[: len(closed)]
    assert len(closed) >= len(distinct) - 1


def test_history_then_live_without_gap_or_duplicate(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    fake.step(100)  # 10 s of 1 s candles
    rest = MarketKlines(fake)
    out = Collector()
    sub = klines_with_history(streams, "BTCUSDT", "1s", history=5, rest=rest).subscribe(out)
    try:
        out.wait_count(5)
        history = list(out.items)
        assert [k.closed for k in history] == [True, True, True, True, False]
        assert all(k.first_trade_id == -1 for k in history)  # REST does not report them
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        fake.step(45)
        out.wait_for(caught_up(fake))
    finally:
        sub.dispose()
    assert rest.calls == [{"symbol": "BTCUSDT", "start_time": None, "limit": 5}]
    check_series(fake, out.items)
    assert out.items[-1].symbol == "BTCUSDT"
    assert out.items[-1].interval == "1s"


def test_live_candles_buffered_during_the_rest_call_join_seamlessly(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    fake.step(30)
    asked, release = threading.Event(), threading.Event()

    def hang() -> None:
        asked.set()
        assert release.wait(10)

    rest = MarketKlines(fake, script=[hang])
    out = Collector()
    sub = klines_with_history(streams, "BTCUSDT", "1s", history=3, rest=rest).subscribe(out)
    try:
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        assert asked.wait(10)
        fake.step(25)  # candles close and updates arrive while the REST answer is in flight
        assert not out.items
        release.set()
        out.wait_for(caught_up(fake))  # the buffered candles, after the history
        fake.step(20)
        out.wait_for(caught_up(fake))
    finally:
        sub.dispose()
    check_series(fake, out.items)


def test_candles_missed_while_disconnected_are_fetched_again(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    fake.step(20)
    rest = MarketKlines(fake)
    out = Collector()
    sub = klines_with_history(streams, "BTCUSDT", "1s", history=2, rest=rest).subscribe(out)
    try:
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        out.wait_count(2)  # the history
        fake.step(15)
        out.wait_for(caught_up(fake))
        miss_four_candles(fake)
        fake.step(25)
        out.wait_for(caught_up(fake))
    finally:
        sub.dispose()
    check_series(fake, out.items)
    # The raw kline stream refilled the closed candles it missed from REST, by time (one
    # mechanism for klines() and klines_with_history): the pipeline's own client fetched only
    # the history.
    backfill = [r for r in fake.rest_requests if r.path == "/api/v3/klines"]
    assert backfill
    assert all("startTime=" in r.query and "limit=1000" in r.query for r in backfill)
    assert len(rest.calls) == 1


def test_a_hole_the_kline_stream_cannot_refill_is_its_gap_passed_on_in_place(
    fake: FakeBinance,
) -> None:
    # The streams' REST refuses every connection (a port bound, not listening), so the kline
    # stream's own repair gives up with a Gap; the pipeline passes it on where the hole is and
    # does not fetch the same candles again with its own client (one repair mechanism).
    fake.step(20)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    settings = {"retry_delay": 0.01, "max_retry_delay": 0.05}
    rest_url = f"http://127.0.0.1:{refused.getsockname()[1]}"
    try:
        with BinanceStreams(ws_url=fake.ws_url, rest_url=rest_url, **settings) as streams:
            rest = MarketKlines(fake)
            out = Collector()
            klines_with_history(streams, "BTCUSDT", "1s", history=2, rest=rest).subscribe(out)
            fake.wait_for_connections(1, stream="btcusdt@kline_1s")
            out.wait_count(2)  # the history
            fake.step(15)
            out.wait_for(caught_up(fake))
            miss_four_candles(fake)
            fake.step(25)
            out.wait_for(lambda c: any(isinstance(k, Gap) for k in c.items))
            out.wait_for(caught_up(fake))
    finally:
        refused.close()
    (gap,) = [k for k in out.items if isinstance(k, Gap)]
    at = out.items.index(gap)
    before, after = out.items[:at], out.items[at + 1 :]
    assert gap.stream == "btcusdt@kline_1s"
    assert gap.reason.startswith("REST failed")
    # Exactly the closed candles never heard: after the last one closed before the hole, up
    # to the one before the first candle after it.
    last_closed = max(k.open_time for k in before if k.closed)
    assert gap.first == last_closed + SECOND
    assert gap.last == after[0].open_time - SECOND
    assert gap.last >= gap.first + 3 * SECOND
    check_series(fake, before)
    check_series(fake, after)
    assert len(rest.calls) == 1  # the history only


def test_transient_rest_errors_are_retried_and_fatal_ones_end_the_subscription(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    fake.step(20)
    retried = Collector()
    rest = MarketKlines(
        fake, script=[RequestError("connection reset"), BinanceAPIError(503, None, "busy")]
    )
    sub = klines_with_history(streams, "BTCUSDT", "1s", history=2, rest=rest).subscribe(retried)
    try:
        retried.wait_count(2)
    finally:
        sub.dispose()
    assert len(rest.calls) == 3
    assert not retried.errors

    fatal = Collector()
    bad = MarketKlines(fake, script=[BinanceAPIError(400, -1121, "Invalid symbol.")])
    klines_with_history(streams, "BTCUSDT", "1s", rest=bad).subscribe(fatal)
    fatal.wait_for(lambda c: bool(c.errors))
    assert isinstance(fatal.errors[0], BinanceAPIError)
    assert fatal.errors[0].code == -1121
    assert len(bad.calls) == 1


def test_giving_up_ends_the_subscription_with_a_connection_failure(fake: FakeBinance) -> None:
    fake.step(20)
    with BinanceStreams(
        ws_url=fake.ws_url, max_retries=1, retry_delay=0.01, max_retry_delay=0.02
    ) as streams:
        out = Collector()
        klines_with_history(streams, "BTCUSDT", "1s", rest=MarketKlines(fake)).subscribe(out)
        fake.wait_for_connections(1)
        out.wait_count(1)
        fake.refuse_connections()
        fake.drop_connections()
        out.wait_for(lambda c: bool(c.errors))
    assert isinstance(out.errors[0], ConnectionFailure)
    assert "Max reconnect retries reached" in str(out.errors[0])


def test_bad_arguments_raise_at_once(streams: BinanceStreams) -> None:
    with pytest.raises(ValueError, match="interval"):
        klines_with_history(streams, "BTCUSDT", "2m")
    with pytest.raises(ValueError, match="history"):
        klines_with_history(streams, "BTCUSDT", "1m", history=0)
    with pytest.raises(ValueError, match="history"):
        klines_with_history(streams, "BTCUSDT", "1m", history=1001)


def test_history_over_http_with_the_streams_rest_client(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    fake.step(60)
    out = Collector()
    sub = klines_with_history(streams, "BTCUSDT", "1s", history=4).subscribe(out)
    try:
        out.wait_count(4)
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        fake.step(30)
        out.wait_for(caught_up(fake))
    finally:
        sub.dispose()
    (request,) = [r for r in fake.rest_requests if r.path == "/api/v3/klines"]
    assert "limit=4" in request.query
    assert request.weight == 2
    check_series(fake, out.items)
