"""The python-binance seed API, over FakeBinance."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rxbinance.enums import KLINE_INTERVAL_1MONTH, KLINE_INTERVAL_30MINUTE
from rxbinance.testing import FakeBinance
from rxbinance.websockets import BinanceSocketManager
from tests.conftest import Collector

ROOT = Path(__file__).resolve().parent.parent


def trade(i: int) -> dict[str, Any]:
    return {"e": "trade", "E": 1, "s": "BNBBTC", "t": i, "p": "1.0", "q": "1", "T": 1, "m": True}


@pytest.fixture
def bm(fake: FakeBinance) -> Any:
    manager = BinanceSocketManager(None, ws_url=fake.ws_url, retry_delay=0.01)
    yield manager
    manager.close()


def test_trade_socket_delivers_dicts_after_start(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    got = Collector()
    conn_key = bm.start_trade_socket("BNBBTC", got.on_next)
    assert conn_key == "bnbbtc@trade"
    assert not fake.attempts  # nothing opens before start()
    bm.start()
    fake.wait_for_connections(1, stream="bnbbtc@trade")
    fake.publish("bnbbtc@trade", trade(1))
    got.wait_count(1)
    assert got.items == [trade(1)]


def test_starting_an_existing_key_again_returns_false(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    bm.start()
    assert bm.start_trade_socket("BNBBTC", print) == "bnbbtc@trade"
    assert bm.start_trade_socket("bnbbtc", print) is False
    fake.wait_for_connections(1)
    assert len(fake.attempts) == 1


@pytest.mark.parametrize(
    ("start", "conn_key"),
    [
        (lambda bm, cb: bm.start_aggtrade_socket("BNBBTC", cb), "bnbbtc@aggTrade"),
        (lambda bm, cb: bm.start_depth_socket("BNBBTC", cb), "bnbbtc@depth"),
        (
            lambda bm, cb: bm.start_depth_socket(
                "BNBBTC", cb, BinanceSocketManager.WEBSOCKET_DEPTH_5
            ),
            "bnbbtc@depth5",
        ),
        (
            lambda bm, cb: bm.start_depth_socket(
                "BNBBTC", cb, depth=BinanceSocketManager.WEBSOCKET_DEPTH_20
            ),
            "bnbbtc@depth20",
        ),
        (lambda bm, cb: bm.start_kline_socket("BNBBTC", cb), "bnbbtc@kline_1m"),
        (
            lambda bm, cb: bm.start_kline_socket("BNBBTC", cb, interval=KLINE_INTERVAL_30MINUTE),
            "bnbbtc@kline_30m",
        ),
        (
            lambda bm, cb: bm.start_kline_socket("BNBBTC", cb, KLINE_INTERVAL_1MONTH),
            "bnbbtc@kline_1M",
        ),
        (lambda bm, cb: bm.start_symbol_ticker_socket("BNBBTC", cb), "bnbbtc@ticker"),
        (lambda bm, cb: bm.start_ticker_socket(cb), "!ticker_1d@arr"),
        (lambda bm, cb: bm.start_miniticker_socket(cb), "!miniTicker@arr"),
        (
            lambda bm, cb: bm.start_miniticker_socket(cb, update_time=5000),
            "!miniTicker@arr@5000ms",
        ),
        (
            lambda bm, cb: bm.start_multiplex_socket(["bnbbtc@trade", "ethbtc@depth5"], cb),
            "streams=bnbbtc@trade/ethbtc@depth5",
        ),
    ],
)
def test_conn_keys_are_stream_paths(
    fake: FakeBinance, bm: BinanceSocketManager, start: Any, conn_key: str
) -> None:
    bm.start()
    assert start(bm, print) == conn_key
    fake.wait_for_connections(1)


def test_bad_input_raises_value_error(bm: BinanceSocketManager, fake: FakeBinance) -> None:
    with pytest.raises(ValueError, match="'7'"):
        bm.start_depth_socket("BNBBTC", print, depth="7")
    with pytest.raises(ValueError, match="'2m'"):
        bm.start_kline_socket("BNBBTC", print, interval="2m")
    with pytest.raises(ValueError, match="'BNB BTC'"):
        bm.start_trade_socket("BNB BTC", print)
    assert not fake.attempts


def test_stop_socket_and_close(fake: FakeBinance, bm: BinanceSocketManager) -> None:
    bm.start()
    trades = bm.start_trade_socket("BNBBTC", print)
    bm.start_aggtrade_socket("BNBBTC", print)
    fake.wait_for_connections(2)
    bm.stop_socket(trades)
    fake.wait_for(lambda f: len(f.open_connections) == 1)
    bm.close()
    fake.wait_for(lambda f: not f.open_connections)
    # After close(), sockets wait for start() again.
    got = Collector()
    assert bm.start_trade_socket("BNBBTC", got.on_next) == "bnbbtc@trade"
    assert len(fake.attempts) == 2
    bm.start()
    fake.wait_for_connections(1, stream="bnbbtc@trade")
    fake.publish("bnbbtc@trade", trade(9))
    got.wait_count(1)


def test_exhausted_retries_reach_the_callback(fake: FakeBinance) -> None:
    bm = BinanceSocketManager(None, ws_url=fake.ws_url, max_retries=1, retry_delay=0.01)
    fake.refuse_connections(None)
    got = Collector()
    bm.start_trade_socket("BNBBTC", got.on_next)
    bm.start()
    got.wait_count(1)
    assert got.items == [{"e": "error", "m": "Max reconnect retries reached"}]
    # The key is free again: starting it retries.
    fake.accept_connections()
    bm.start_trade_socket("BNBBTC", got.on_next)
    fake.wait_for_connections(1)
    bm.close()


def test_a_raising_callback_does_not_kill_the_socket(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    seen = Collector()

    def callback(msg: dict[str, Any]) -> None:
        seen.on_next(msg)
        raise KeyError("user bug")

    bm.start_trade_socket("BNBBTC", callback)
    bm.start()
    fake.wait_for_connections(1)
    for i in range(3):
        fake.publish("bnbbtc@trade", trade(i))
    seen.wait_count(3)
    assert len(fake.attempts) == 1


SCRIPT = """
import sys, time
from rxbinance.testing import FakeBinance
from rxbinance.websockets import BinanceSocketManager

fake = FakeBinance(tick_interval=0.01)
fake.start()
got = []
bm = BinanceSocketManager(None, ws_url=fake.ws_url)
bm.start_trade_socket("BTCUSDT", got.append)
bm.start_depth_socket("BTCUSDT", got.append, depth=BinanceSocketManager.WEBSOCKET_DEPTH_5)
bm.start()
fake.wait_for(lambda f: len(got) >= 3, timeout=20)
{ending}
print("reached the end", flush=True)
"""


@pytest.mark.parametrize(
    "ending", ["", "bm.close()", "bm.close(); fake.stop()"], ids=["falls-off", "close", "stop"]
)
def test_a_script_exits_promptly(ending: str) -> None:
    script = textwrap.dedent(SCRIPT).format(ending=ending)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "reached the end" in result.stdout
    assert "Traceback" not in result.stderr


def test_multiplex_names_are_validated_for_the_managers_market(fake: FakeBinance) -> None:
    with BinanceSocketManager(None, market="usdm", ws_url=fake.ws_url) as bm:
        key = bm.start_multiplex_socket(["btcusdt@markPrice", "btcusdt@aggTrade"], print)
        assert key == "streams=btcusdt@aggTrade/btcusdt@markPrice"
        with pytest.raises(ValueError, match="spot stream"):
            bm.start_multiplex_socket(["btcusdt@trade"], print)


def test_a_callback_raising_on_every_message_logs_one_traceback_then_counts(
    fake: FakeBinance, bm: BinanceSocketManager, caplog: pytest.LogCaptureFixture
) -> None:
    # The seed's process_message reads msg["e"]; partial depth has no "e".
    seen: list[Any] = []

    def process_message(msg: dict[str, Any]) -> None:
        seen.append(msg)
        print(msg["e"], msg.get("p"))

    bm.start_depth_socket("BNBBTC", process_message, depth=bm.WEBSOCKET_DEPTH_5)
    bm.start()
    fake.wait_for_connections(1, stream="bnbbtc@depth5")
    with caplog.at_level(logging.ERROR, logger="rxbinance"):
        for i in range(12):
            fake.publish("bnbbtc@depth5", {"lastUpdateId": i, "bids": [], "asks": []})
        fake.wait_for(lambda _: len(seen) >= 12)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "bnbbtc@depth5" in tracebacks[0].getMessage()
    counts = [r.getMessage() for r in caplog.records if not r.exc_info]
    assert len(counts) == 1
    assert "10 times" in counts[0]
    assert "KeyError" in counts[0]


def test_pool_puts_the_managers_sockets_on_one_connection(fake: FakeBinance) -> None:
    manager = BinanceSocketManager(None, ws_url=fake.ws_url, retry_delay=0.01, pool=True)
    try:
        trades, aggs = Collector(), Collector()
        manager.start()
        trade_key = manager.start_trade_socket("BNBBTC", trades.on_next)
        manager.start_aggtrade_socket("BNBBTC", aggs.on_next)
        fake.wait_for(
            lambda f: (
                [set(c.streams) for c in f.open_connections]
                == [{"bnbbtc@trade", "bnbbtc@aggTrade"}]
            )
        )
        fake.publish("bnbbtc@trade", trade(1))
        trades.wait_count(1)
        assert trades.items == [trade(1)]  # bare, as from a socket of its own
        manager.stop_socket(trade_key)  # UNSUBSCRIBE, the connection stays for the other
        fake.wait_for(
            lambda f: [set(c.streams) for c in f.open_connections] == [{"bnbbtc@aggTrade"}]
        )
        assert len(fake.attempts) == 1
    finally:
        manager.close()
