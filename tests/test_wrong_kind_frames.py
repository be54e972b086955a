"""Valid JSON of the wrong kind (``{"e": "junk"}`` on an aggTrade socket) is a MalformedFrame
event and is skipped: raw subscribers never see it, typed pipelines never end on it."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex.operators as ops

import rxbinance
from rxbinance import BinanceStreams
from rxbinance.events import MalformedFrame
from rxbinance.protocol.frames import expected_event
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

AGG = {
    "e": "aggTrade",
    "E": 1672515782136,
    "s": "BTCUSDT",
    "a": 7,
    "p": "0.001",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 1672515782136,
    "m": True,
    "M": True,
}


@pytest.mark.parametrize(
    ("stream", "event"),
    [
        ("btcusdt@trade", "trade"),
        ("btcusdt@aggTrade", "aggTrade"),
        ("btcusdt@kline_1m", "kline"),
        ("btcusdt@kline_1M", "kline"),
        ("btcusdt@depth", "depthUpdate"),
        ("btcusdt@depth@100ms", "depthUpdate"),
        ("btcusdt@depth20@100ms", "depthUpdate"),
        ("btcusdt@depth@250ms", "depthUpdate"),
        ("btcusdt@miniTicker", "24hrMiniTicker"),
        ("!miniTicker@arr", "24hrMiniTicker"),
        ("btcusdt@ticker", "24hrTicker"),
        ("btcusdt@ticker_1h", "1hTicker"),
        ("!ticker_1d@arr", "1dTicker"),
        ("btcusdt@bookTicker", "bookTicker"),
        ("btcusdt@avgPrice", "avgPrice"),
        ("btcusdt@markPrice@1s", "markPriceUpdate"),
        ("!markPrice@arr", "markPriceUpdate"),
        ("btcusdt@forceOrder", "forceOrder"),
        ("btcusdt_perpetual@continuousKline_1m", "continuous_kline"),
        ("userData", None),
        ("nonsense", None),
    ],
)
def test_expected_event(stream: str, event: str | None) -> None:
    assert expected_event(stream) == event


def malformed_events(streams: BinanceStreams) -> Collector:
    collector = Collector()
    streams.events.pipe(ops.filter(lambda e: isinstance(e, MalformedFrame))).subscribe(collector)
    return collector


def test_junk_on_a_raw_agg_trade_socket_is_reported_and_skipped(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    malformed = malformed_events(streams)
    data = Collector()
    streams.agg_trades("BTCUSDT").subscribe(data)
    fake.wait_for_connections(1, stream="btcusdt@aggTrade")
    fake.publish("btcusdt@aggTrade", AGG)
    fake.publish("btcusdt@aggTrade", {"e": "junk", "x": 1})
    fake.publish("btcusdt@aggTrade", {**AGG, "a": 8})
    data.wait_count(2)
    malformed.wait_count(1)
    assert [m["a"] for m in data.items] == [7, 8]
    event = malformed.items[0]
    assert event.stream == "btcusdt@aggTrade"
    assert "'junk'" in event.error
    assert "aggTrade" in event.error
    assert len(fake.attempts) == 1  # not a reason to reconnect


def test_junk_on_a_combined_socket_is_reported_and_skipped(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    malformed = malformed_events(streams)
    data = Collector()
    streams.multiplex(["btcusdt@aggTrade", "ethusdt@aggTrade"]).subscribe(data)
    fake.wait_for_connections(1)
    fake.publish("btcusdt@aggTrade", {"e": "junk"})
    fake.publish("ethusdt@aggTrade", {**AGG, "s": "ETHUSDT"})
    data.wait_count(1)
    malformed.wait_count(1)
    assert [m["stream"] for m in data.items] == ["ethusdt@aggTrade"]
    assert malformed.items[0].stream == "btcusdt@aggTrade/ethusdt@aggTrade"


def test_klines_with_history_skips_junk_instead_of_ending(fake: FakeBinance) -> None:
    fake.step(50)
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url) as streams:
        malformed = malformed_events(streams)
        candles = Collector()
        rxbinance.klines_with_history(streams, "BTCUSDT", "1s", history=3).subscribe(candles)
        candles.wait_count(1)
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        fake.publish("btcusdt@kline_1s", {"e": "junk"})
        malformed.wait_count(1)
        before = len(candles.items)
        fake.step(30)
        candles.wait_for(lambda c: len(c.items) > before)
        assert candles.errors == []
        assert not candles.completed


def test_spot_payloads_without_an_event_type_still_pass(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    # Spot bookTicker and partial depth carry no "e": nothing to judge them by.
    data = Collector()
    streams.book_ticker("BTCUSDT").subscribe(data)
    fake.wait_for_connections(1, stream="btcusdt@bookTicker")
    quote: dict[str, Any] = {"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}
    fake.publish("btcusdt@bookTicker", quote)
    data.wait_count(1)
    assert data.items == [quote]


@pytest.mark.parametrize("junk", ["[1, 2, 3]", "42", "null", '"a string"', "[]", "true"])
def test_json_that_is_no_payload_is_reported_and_skipped(
    fake: FakeBinance, streams: BinanceStreams, junk: str
) -> None:
    malformed = malformed_events(streams)
    data = Collector()
    streams.agg_trades("BTCUSDT").subscribe(data)
    fake.wait_for_connections(1, stream="btcusdt@aggTrade")
    fake.publish("btcusdt@aggTrade", junk)
    fake.publish("btcusdt@aggTrade", AGG)
    data.wait_count(1)
    malformed.wait_count(1)
    assert data.items == [AGG]
    assert "not a payload of this stream" in malformed.items[0].error


def test_all_market_lists_still_pass(fake: FakeBinance, streams: BinanceStreams) -> None:
    data = Collector()
    streams.mini_ticker().subscribe(data)
    fake.wait_for_connections(1, stream="!miniTicker@arr")
    tickers = [{"e": "24hrMiniTicker", "E": 1, "s": "BTCUSDT", "c": "1", "o": "1", "h": "1",
                "l": "1", "v": "1", "q": "1"}]  # fmt: skip
    fake.publish("!miniTicker@arr", tickers)
    data.wait_count(1)
    assert data.items == [tickers]
