"""BinanceSocketManager across a socket's end: restart from the callback, identity-keyed
bookkeeping, sockets waiting for start(), callbacks that never overlap (issue 9, section 5).

Everything runs over FakeBinance. Sequences are forced with events and with a plain subscriber
joined after the manager's on the same shared socket: a socket delivers to its subscribers in the
order they joined, so when that probe has a message (or a completion), the manager has had it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rxbinance.testing import FakeBinance
from rxbinance.websockets import BinanceSocketManager
from tests.conftest import Collector

GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}
KEY = "bnbbtc@trade"
COMBINED_KEY = "streams=bnbbtc@trade/ethbtc@trade"


def trade(i: int, symbol: str = "BNBBTC") -> dict[str, Any]:
    return {"e": "trade", "E": 1, "s": symbol, "t": i, "p": "1.0", "q": "1", "T": 1, "m": True}


@pytest.fixture
def bm(fake: FakeBinance) -> Iterator[BinanceSocketManager]:
    # max_retries=1: a refused reconnect after a drop costs two attempts, then the give-up.
    manager = BinanceSocketManager(None, ws_url=fake.ws_url, max_retries=1, retry_delay=0.01)
    yield manager
    manager.close()


class Recorder:
    """A python-binance callback that records what it got and checks that calls never overlap.

    ``on_give_up`` runs inside the callback when the error dict arrives (once); ``handled``
    is set when it has returned.
    """

    def __init__(self, on_give_up: Callable[[], None] = lambda: None) -> None:
        self.got = Collector()
        self.on_give_up = on_give_up
        self.handled = threading.Event()
        self._lock = threading.Lock()
        self.active = 0
        self.overlaps = 0

    def __call__(self, message: Any) -> None:
        with self._lock:
            self.active += 1
            self.overlaps += self.active > 1
        try:
            self.got.on_next(message)
            if message == GIVE_UP and self.got.items.count(GIVE_UP) == 1:
                self.on_give_up()
                self.handled.set()
        finally:
            with self._lock:
                self.active -= 1


def force_give_up(fake: FakeBinance) -> None:
    """Refuse every reconnect, then drop the open sockets: each one gives up."""
    fake.refuse_connections(None)
    fake.drop_connections()


@pytest.mark.parametrize("stop_first", [False, True], ids=["start-again", "stop-then-start"])
@pytest.mark.parametrize("multiplex", [False, True], ids=["trade", "multiplex"])
def test_a_socket_restarted_from_its_give_up_callback_works(
    fake: FakeBinance, bm: BinanceSocketManager, stop_first: bool, multiplex: bool
) -> None:
    def start(callback: Recorder) -> str | bool:
        if multiplex:
            return bm.start_multiplex_socket(["ethbtc@trade", "bnbbtc@trade"], callback)
        return bm.start_trade_socket("BNBBTC", callback)

    key = COMBINED_KEY if multiplex else KEY
    restarted: list[str | bool] = []

    def restart() -> None:
        fake.accept_connections()
        if stop_first:
            bm.stop_socket(key)
        restarted.append(start(callback))

    callback = Recorder(on_give_up=restart)
    assert start(callback) == key
    bm.start()
    fake.wait_for_connections(1, stream="bnbbtc@trade")
    force_give_up(fake)
    assert callback.handled.wait(10)
    assert restarted == [key]  # not False: the key was free when the callback ran

    # The new socket delivers to the same callback.
    fake.wait_for_connections(1, stream="bnbbtc@trade")
    fake.publish("bnbbtc@trade", trade(1))
    callback.got.wait_count(2)
    expected = {"stream": "bnbbtc@trade", "data": trade(1)} if multiplex else trade(1)
    assert callback.got.items == [GIVE_UP, expected]
    assert callback.overlaps == 0

    # ... and it is the one the manager knows under the key.
    assert start(callback) is False
    bm.stop_socket(key)
    fake.wait_for(lambda f: not f.open_connections)
    assert start(callback) == key


def test_a_late_end_of_the_old_socket_never_orphans_the_new_one(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    in_give_up, release = threading.Event(), threading.Event()

    def hold() -> None:
        in_give_up.set()
        assert release.wait(10)

    old = Recorder(on_give_up=hold)
    bm.start()
    assert bm.start_trade_socket("BNBBTC", old) == KEY
    # Joined after the manager: it gets the old socket's completion after the manager did.
    probe = Collector()
    bm.streams.trades("BNBBTC").subscribe(probe)
    fake.wait_for_connections(1, stream=KEY)
    force_give_up(fake)
    assert in_give_up.wait(10)

    # While the old socket is still delivering its end, another thread starts the key anew.
    fake.accept_connections()
    new = Recorder()
    assert bm.start_trade_socket("BNBBTC", new) == KEY
    fake.wait_for_connections(1, stream=KEY)
    release.set()
    probe.wait_completed()  # the old socket's end has been through the manager too
    assert probe.items == [GIVE_UP]

    # The new socket is still registered under the key and still delivering.
    assert bm.start_trade_socket("BNBBTC", new) is False
    fake.publish(KEY, trade(7))
    new.got.wait_count(1)
    assert new.got.items == [trade(7)]
    assert old.got.items == [GIVE_UP]
    bm.stop_socket(KEY)
    fake.wait_for(lambda f: not f.open_connections)


def test_callback_calls_never_overlap_across_a_restart(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    probe = Collector()

    def restart_and_wait_for_data() -> None:
        # Still inside the callback: the new socket's first message reaches the manager now,
        # on the new socket's reader thread.
        fake.accept_connections()
        assert bm.start_trade_socket("BNBBTC", callback) == KEY
        bm.streams.trades("BNBBTC").subscribe(probe)  # joins the new socket after the manager
        fake.wait_for_connections(1, stream=KEY)
        fake.publish(KEY, trade(1))
        probe.wait_count(1)
        assert callback.got.items == [GIVE_UP]  # queued, not delivered over this call

    callback = Recorder(on_give_up=restart_and_wait_for_data)
    bm.start_trade_socket("BNBBTC", callback)
    bm.start()
    fake.wait_for_connections(1, stream=KEY)
    force_give_up(fake)
    callback.got.wait_count(2)  # delivered right after the give-up callback returned
    assert callback.got.items == [GIVE_UP, trade(1)]
    assert callback.overlaps == 0


@pytest.mark.parametrize("multiplex_first", [True, False], ids=["multiplex-first", "trade-first"])
def test_sockets_started_before_start_wait_for_it(
    fake: FakeBinance, bm: BinanceSocketManager, multiplex_first: bool
) -> None:
    # python-binance's ThreadedWebsocketManager order: create, start sockets, then start().
    trades, combined = Collector(), Collector()

    def start_multiplex() -> None:
        key = bm.start_multiplex_socket(["ethbtc@trade", "bnbbtc@aggTrade"], combined.on_next)
        assert key == "streams=bnbbtc@aggTrade/ethbtc@trade"

    if multiplex_first:
        start_multiplex()
    assert bm.start_trade_socket("BNBBTC", trades.on_next) == KEY
    if not multiplex_first:
        start_multiplex()
    assert bm.start_aggtrade_socket("ETHBTC", trades.on_next) == "ethbtc@aggTrade"

    # Nothing subscribed (the registry would list it at once), nothing attempted.
    assert not bm.is_started
    assert bm.streams.statistics() == {}
    assert not fake.attempts

    bm.start()
    assert bm.is_started
    fake.wait_for_connections(3)
    assert sorted(bm.streams.statistics()) == [
        "bnbbtc@aggTrade/ethbtc@trade",
        KEY,
        "ethbtc@aggTrade",
    ]
    fake.publish(KEY, trade(1))
    fake.publish("ethbtc@trade", trade(2, "ETHBTC"))
    trades.wait_count(1)
    combined.wait_count(1)
    assert trades.items == [trade(1)]
    assert combined.items == [{"stream": "ethbtc@trade", "data": trade(2, "ETHBTC")}]


def test_after_close_sockets_wait_for_start_again_also_multiplex(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    bm.start()
    bm.start_trade_socket("BNBBTC", print)
    fake.wait_for_connections(1)
    bm.close()
    fake.wait_for(lambda f: not f.open_connections)
    got = Collector()
    bm.start_multiplex_socket(["bnbbtc@trade"], got.on_next)
    assert not bm.is_started
    assert bm.streams.statistics() == {}
    bm.start()
    fake.wait_for_connections(1, stream=KEY)
    fake.publish(KEY, trade(3))
    got.wait_count(1)


def test_stop_and_start_from_a_data_callback(fake: FakeBinance, bm: BinanceSocketManager) -> None:
    keys: list[str | bool] = []
    got = Collector()

    def callback(message: Any) -> None:
        if message["t"] == 1:
            bm.stop_socket(KEY)
            keys.append(bm.start_trade_socket("BNBBTC", callback))
        got.on_next(message)

    bm.start_trade_socket("BNBBTC", callback)
    bm.start()
    fake.wait_for_connections(1, stream=KEY)
    fake.publish(KEY, trade(1))
    got.wait_count(1)
    assert keys == [KEY]
    # The old socket is closed and a new one serves the key (one socket per key).
    fake.wait_for(lambda f: len(f.connections) == 2 and len(f.open_connections) == 1)
    fake.wait_for_connections(1, stream=KEY)
    fake.publish(KEY, trade(2))
    got.wait_count(2)
    assert [m["t"] for m in got.items] == [1, 2]


def test_close_from_a_callback_returns_and_closes_everything(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    closed = threading.Event()
    got = Collector()

    def callback(message: Any) -> None:
        got.on_next(message)
        bm.close()
        closed.set()

    bm.start_trade_socket("BNBBTC", callback)
    bm.start_aggtrade_socket("BNBBTC", print)
    bm.start()
    fake.wait_for_connections(2)
    fake.publish(KEY, trade(1))
    assert closed.wait(10)
    fake.wait_for(lambda f: not f.open_connections)
    assert not bm.is_started
    assert bm.join(0)
    assert got.items == [trade(1)]


def test_a_callback_raising_on_the_give_up_still_frees_the_key(
    fake: FakeBinance, bm: BinanceSocketManager
) -> None:
    got = Collector()

    def callback(message: Any) -> None:
        got.on_next(message)
        raise RuntimeError("user bug")

    bm.start_trade_socket("BNBBTC", callback)
    bm.start()
    fake.wait_for_connections(1, stream=KEY)
    force_give_up(fake)
    got.wait_count(1)
    assert got.items == [GIVE_UP]
    fake.accept_connections()
    assert bm.start_trade_socket("BNBBTC", got.on_next) == KEY
    fake.wait_for_connections(1, stream=KEY)
    fake.publish(KEY, trade(4))
    got.wait_count(2)


def test_no_new_call_after_stop_socket_returns(fake: FakeBinance, bm: BinanceSocketManager) -> None:
    # A message queued behind a running call of the same key is dropped once its socket is
    # stopped: the callback never hears from a socket stop_socket() already returned for.
    inside, release = threading.Event(), threading.Event()
    got = Collector()
    probe = Collector()

    def callback(message: Any) -> None:
        got.on_next(message)
        if message["t"] == 1:
            inside.set()
            assert release.wait(10)

    bm.start_trade_socket("BNBBTC", callback)
    bm.start()
    bm.streams.trades("BNBBTC").subscribe(probe)
    fake.wait_for_connections(1, stream=KEY)
    fake.publish(KEY, trade(1))
    assert inside.wait(10)
    # The reader thread is inside the callback: trade 2 waits in the socket until it returns.
    fake.publish(KEY, trade(2))
    bm.stop_socket(KEY)
    release.set()
    probe.wait_count(2)  # the reader thread has passed trade 2 on (after the manager's turn)
    assert [m["t"] for m in got.items] == [1]


def test_a_user_socket_restarted_from_its_refusal_callback_works() -> None:
    api_key, secret = "user-key", "user-secret"
    execution = {"e": "executionReport", "E": 1, "s": "ETHBTC", "i": 1, "X": "NEW"}
    client = type("PythonBinanceClient", (), {"API_KEY": api_key, "API_SECRET": secret})()
    restarted: list[str | bool] = []
    got = Collector()
    with (
        FakeBinance(tick_interval=None, api_keys={api_key: secret}) as fake,
        BinanceSocketManager(client, ws_url=fake.ws_url, ws_api_url=fake.ws_api_url) as bm,
    ):

        def callback(message: dict[str, Any]) -> None:
            if message["e"] == "error":
                fake.add_api_key(api_key, secret)  # the user fixed the key
                restarted.append(bm.start_user_socket(callback))
            got.on_next(message)

        assert bm.start_user_socket(callback) == "userData"
        bm.start()
        fake.wait_for_user_streams(1, api_key)
        fake.revoke_api_key(api_key)  # Binance ends the subscription with -2015
        got.wait_count(1)
        (refusal,) = got.items
        assert (refusal["e"], refusal["code"]) == ("error", -2015)
        assert restarted == ["userData"]
        fake.wait_for_user_streams(1, api_key)
        fake.publish_user_event(api_key, execution)
        got.wait_count(2)
        assert got.items[1] == execution
        assert bm.start_user_socket(callback) is False
