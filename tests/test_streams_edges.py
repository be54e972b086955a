"""Edges a newcomer meets first: URLs checked at construction, REST that would silently go to the
real Binance, and a subscriber that raises on every message."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import rxbinance
from rxbinance import BinanceStreams
from rxbinance.errors import InvalidInputError
from rxbinance.testing import ScriptedTransport
from tests.conftest import Collector


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ws_url": "http://127.0.0.1:9000"}, "ws_url 'http://127.0.0.1:9000'"),
        ({"ws_url": "https://stream.binance.com"}, "ws:// or wss://"),
        ({"ws_url": "127.0.0.1:9000"}, "ws_url '127.0.0.1:9000'"),
        ({"ws_url": "ws://"}, "ws_url 'ws://'"),
        ({"ws_api_url": "http://127.0.0.1/ws-api/v3"}, "ws_api_url"),
        ({"rest_url": "ws://127.0.0.1:9000"}, "http:// or https://"),
    ],
)
def test_a_url_of_the_wrong_scheme_is_refused_at_construction(
    kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError, match="must start with") as caught:
        BinanceStreams(**kwargs)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9000", "WSS://example.test/", "wss://x:1/a"])
def test_websocket_urls_are_accepted(url: str) -> None:
    BinanceStreams(ws_url=url, rest_url="http://127.0.0.1:1").close()


def test_rest_without_rest_url_next_to_a_custom_ws_url_names_both_urls() -> None:
    streams = BinanceStreams(ws_url="ws://127.0.0.1:9000")
    with pytest.raises(InvalidInputError) as caught:
        streams.rest  # noqa: B018
    message = str(caught.value)
    assert "ws://127.0.0.1:9000" in message
    assert "https://api.binance.com" in message
    assert "rest_url" in message
    streams.close()


def test_klines_with_history_without_rest_url_fails_its_subscriber_clearly() -> None:
    transport = ScriptedTransport()
    with BinanceStreams(ws_url="ws://127.0.0.1:9000", transport=transport) as streams:
        candles = Collector()
        rxbinance.klines_with_history(streams, "BTCUSDT", "1m", history=5).subscribe(candles)
        assert [type(e) for e in candles.errors] == [InvalidInputError]
        assert "rest_url" in str(candles.errors[0])
        assert streams.context.hub.entries() == []


def test_the_markets_own_endpoints_need_no_rest_url() -> None:
    with BinanceStreams() as streams:
        assert streams.rest.base_url == "https://api.binance.com"
    with BinanceStreams(ws_url="wss://stream.binance.com:9443") as streams:
        assert streams.rest.base_url == "https://api.binance.com"  # the market's own pair


def test_a_subscriber_raising_on_every_message_logs_one_traceback_then_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = ScriptedTransport()
    with BinanceStreams(transport=transport) as streams:
        seen: list[Any] = []

        def process_message(msg: dict[str, Any]) -> None:
            seen.append(msg)
            print(msg["e"])  # partial depth has no "e": raises KeyError every time

        streams.depth("BTCUSDT", levels=5).subscribe(process_message)
        sock = transport.sockets[0]
        with caplog.at_level(logging.ERROR, logger="rxbinance"):
            for i in range(250):
                sock.deliver({"lastUpdateId": i, "bids": [], "asks": []})
        assert len(seen) == 250  # it stayed subscribed
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert len(tracebacks) == 1
        assert "btcusdt@depth5" in tracebacks[0].getMessage()
        counts = [r.getMessage() for r in caplog.records if not r.exc_info]
        assert len(counts) == 2  # at 10 and 100
        assert "10 times" in counts[0]
        assert "100 times" in counts[1]
        assert "KeyError" in counts[1]


@pytest.mark.parametrize("speed", [100, 250, 500])
def test_a_usdm_order_book_accepts_its_speeds(speed: int) -> None:
    with BinanceStreams(market="usdm", transport=ScriptedTransport()) as streams:
        rxbinance.order_book(streams, "BTCUSDT", limit=100, speed=speed)


def test_a_usdm_order_book_refuses_1000_ms_naming_the_allowed_speeds() -> None:
    with BinanceStreams(market="usdm", transport=ScriptedTransport()) as streams:
        with pytest.raises(ValueError, match="1000") as caught:
            rxbinance.order_book(streams, "BTCUSDT", limit=100, speed=1000)
        assert "100, 250, 500" in str(caught.value)
        assert "'usdm'" in str(caught.value)


@pytest.mark.parametrize("speed", [100, 1000])
def test_a_spot_order_book_keeps_100_and_1000_ms(speed: int) -> None:
    with BinanceStreams(transport=ScriptedTransport()) as streams:
        rxbinance.order_book(streams, "BTCUSDT", speed=speed)
        with pytest.raises(ValueError, match="100, 1000"):
            rxbinance.order_book(streams, "BTCUSDT", speed=250)
