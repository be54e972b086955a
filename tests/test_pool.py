"""Pooled connections (BinanceStreams(pool=True)): many streams on few sockets with live
SUBSCRIBE/UNSUBSCRIBE, against FakeBinance over real sockets, and with scripted sockets where
the server's replies must be chosen (refusals, a server that disagrees)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex.operators as ops

from rxbinance import BinanceStreams, order_book
from rxbinance._reactive.attempts import ConnectionAttempts
from rxbinance._reactive.pool import CONTROL_SPACING
from rxbinance.errors import SubscriptionRefused
from rxbinance.events import Silent, SubscriptionsCorrected
from rxbinance.protocol.frames import GIVE_UP_MESSAGE
from rxbinance.testing import FakeBinance, ScriptedSocket, ScriptedTransport
from tests.conftest import Collector

FAST = {"retry_delay": 0.05, "max_retry_delay": 0.2}
KINDS = ("trade", "aggTrade", "bookTicker", "kline_1s", "kline_1m", "depth@100ms", "miniTicker")


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition on the client's side (scripted sockets notify nobody)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        pause.wait(0.005)


def server_view(fake: FakeBinance) -> dict[int, set[str]]:
    """The open connections' subscriptions, as the server sees them."""
    return {c.id: set(c.streams) for c in fake.connections if c.closed_at is None}


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None) as server:
        yield server


def test_streams_share_one_connection_and_leave_it_with_unsubscribe(fake: FakeBinance) -> None:
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams:
        got = {s: Collector() for s in ("BTCUSDT", "ETHUSDT", "BNBBTC")}
        subs = {s: streams.agg_trades(s).subscribe(c) for s, c in got.items()}
        books = Collector()
        book_sub = streams.book_ticker("BTCUSDT").subscribe(books)
        wanted = {"btcusdt@aggTrade", "ethusdt@aggTrade", "bnbbtc@aggTrade", "btcusdt@bookTicker"}
        fake.wait_for(lambda f: list(server_view(f).values()) == [wanted])
        fake.step(20)
        for symbol, collector in got.items():
            collector.wait_count(1)
            # Each stream gets its own payloads, bare, as on a socket of its own.
            assert {m["s"] for m in collector.items} == {symbol}
        books.wait_count(1)
        assert all("stream" not in m for m in books.items)
        # The last dispose of a stream unsubscribes it; the others carry on.
        subs["ETHUSDT"].dispose()
        fake.wait_for(lambda f: list(server_view(f).values()) == [wanted - {"ethusdt@aggTrade"}])
        stats = streams.statistics()
        assert set(stats) == wanted - {"ethusdt@aggTrade"}
        assert {s.connection for s in stats.values()} == {"pool-1"}
        assert stats["btcusdt@aggTrade"].messages == len(got["BTCUSDT"].items)
        # The connection left without streams closes after a short grace period.
        for sub in [subs["BTCUSDT"], subs["BNBBTC"], book_sub]:
            sub.dispose()
        fake.wait_for(lambda f: not server_view(f))
        (only,) = fake.connections
        methods = [m["method"] for m in only.control_messages]
        assert "UNSUBSCRIBE" in methods
        assert only.close_cause != "rate_limit"


def test_each_pooled_stream_is_metered_on_its_own(fake: FakeBinance) -> None:
    # Rates, lag and age per pooled stream, each metered as it is routed.
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams:
        busy, quiet = Collector(), Collector()
        streams.agg_trades("BTCUSDT").subscribe(busy)
        streams.book_ticker("BNBBTC").subscribe(quiet)
        wanted = {"btcusdt@aggTrade", "bnbbtc@bookTicker"}
        fake.wait_for(lambda f: list(server_view(f).values()) == [wanted])
        for i in range(1, 41):
            fake.publish("btcusdt@aggTrade", {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": i})
        busy.wait_count(40)
        stats = streams.statistics()
        btc, bnb = stats["btcusdt@aggTrade"], stats["bnbbtc@bookTicker"]
        assert btc.messages == 40
        assert btc.rate_60s * 60 >= 40  # every message counted in the minute's rate
        assert btc.last_message_age is not None
        assert btc.last_message_age < 60
        assert btc.lag_p50_ms is not None  # sampled from payloads with E
        assert (bnb.messages, bnb.rate_60s, bnb.last_message_age) == (0, 0.0, None)


def test_a_thousand_streams_use_two_connections_within_the_limits() -> None:
    symbols = [f"S{i:02d}USDT" for i in range(150)]
    names = [f"{s.lower()}@{kind}" for s in symbols for kind in KINDS][:1000]
    before = {t.ident for t in threading.enumerate()}
    with (
        FakeBinance(symbols=symbols, tick_interval=None) as fake,
        BinanceStreams(
            ws_url=fake.ws_url,
            rest_url=fake.rest_url,
            pool=True,
            streams_per_connection=500,
            **FAST,
        ) as streams,
    ):
        subs = [streams.stream(name).subscribe(lambda _: None) for name in names]
        fake.wait_for(
            lambda f: sorted(len(v) for v in server_view(f).values()) == [500, 500], timeout=60
        )
        assert set().union(*server_view(fake).values()) == set(names)
        readers = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("rxbinance:")
        ]
        assert sorted(t.name for t in readers) == ["rxbinance:pool-1", "rxbinance:pool-2"]
        for sub in subs:
            sub.dispose()
        fake.wait_for(lambda f: not server_view(f), timeout=30)
        assert len(fake.connections) == 2
        assert all(c.close_cause != "rate_limit" for c in fake.connections)


def test_subscribe_and_dispose_churn_ends_with_the_server_list_equal_to_what_is_subscribed(
    fake: FakeBinance,
) -> None:
    names = [f"{s}@{kind}" for s in ("btcusdt", "ethusdt", "bnbbtc") for kind in KINDS]
    held: dict[str, list[Any]] = {name: [] for name in names}
    lock = threading.Lock()

    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams:

        def churn(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(400):
                name = rng.choice(names)
                with lock:
                    subscriptions = held[name]
                    if subscriptions and rng.random() < 0.5:
                        subscription = subscriptions.pop()
                    else:
                        subscription = None
                if subscription is None:
                    subscription = streams.stream(name).subscribe(lambda _: None)
                    with lock:
                        held[name].append(subscription)
                else:
                    subscription.dispose()

        workers = [threading.Thread(target=churn, args=(seed,)) for seed in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        live = {name for name, subscriptions in held.items() if subscriptions}
        assert live  # the churn leaves some subscribed
        fake.wait_for(lambda f: set().union(set(), *server_view(f).values()) == live, timeout=20)
        assert len(server_view(fake)) == 1  # all on one connection
        assert all(c.close_cause != "rate_limit" for c in fake.connections)
        # Each server-side stream is subscribed once, on the pool's connection.
        assert set(streams.statistics()) == live
        for subscriptions in held.values():
            for subscription in subscriptions:
                subscription.dispose()
        fake.wait_for(lambda f: not server_view(f), timeout=20)


def test_a_dropped_pooled_connection_resubscribes_everything_and_loses_nothing(
    fake: FakeBinance,
) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "BNBBTC")
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams:
        got = {s: Collector() for s in symbols}
        for symbol, collector in got.items():
            streams.agg_trades(symbol).subscribe(collector)
        wanted = {f"{s.lower()}@aggTrade" for s in symbols}
        fake.wait_for(lambda f: set().union(set(), *server_view(f).values()) == wanted)
        fake.step(20)
        first = max(c.id for c in fake.connections)
        fake.refuse_connections()
        fake.drop_connections()
        fake.step(40)  # trades happen while the pooled connection is down
        fake.accept_connections()
        fake.wait_for(lambda f: any(c.id > first and c.closed_at is None for c in f.connections))
        fake.wait_for(lambda f: set().union(set(), *server_view(f).values()) == wanted)
        fake.step(20)
        for symbol, collector in got.items():
            history = fake.with_market(lambda m, s=symbol: m.agg_trade_history(s))
            final = int(history[-1]["a"])
            collector.wait_for(lambda c, f=final: bool(c.items) and c.items[-1]["a"] == f)
            ids = [m["a"] for m in collector.items]
            # Every id once, in order, with the ones missed while down refilled from REST.
            assert ids == list(range(ids[0], final + 1))
        stats = streams.statistics()["btcusdt@aggTrade"]
        assert stats.reconnects == 1
        new = [c for c in fake.connections if c.id > first]
        # The new connection named or subscribed the three streams again.
        assert set(new[-1].streams) == wanted


# -- scripted replies --------------------------------------------------------------------------


def _pooled(transport: ScriptedTransport) -> BinanceStreams:
    return BinanceStreams(ws_url="ws://127.0.0.1:9", transport=transport, pool=True, **FAST)


class Server:
    """Answers a scripted pooled socket's control messages: a batch holding a refused name is
    refused whole (code 2), as Binance does; LIST_SUBSCRIPTIONS answers ``listed``."""

    def __init__(self, sock: ScriptedSocket, refuse: set[str]) -> None:
        self.sock = sock
        self.refuse = refuse
        self.answered = 0
        # What the server carries: the URL's streams, then what SUBSCRIBE/UNSUBSCRIBE change.
        self.carried = set(sock.url.partition("streams=")[2].split("/")) - {""}
        self.listed: list[str] | None = None  # set to lie in LIST_SUBSCRIPTIONS

    def answer(self) -> None:
        while self.answered < len(self.sock.sent):
            request = self.sock.sent[self.answered]
            self.answered += 1
            params = request.get("params", [])
            if request["method"] == "LIST_SUBSCRIPTIONS":
                listed = sorted(self.carried) if self.listed is None else self.listed
                self.sock.reply({"result": listed, "id": request["id"]})
            elif set(params) & self.refuse:
                error = {"code": 2, "msg": "Invalid request: invalid stream"}
                self.sock.reply({"error": error, "id": request["id"]})
            else:
                if request["method"] == "SUBSCRIBE":
                    self.carried.update(params)
                else:
                    self.carried.difference_update(params)
                self.sock.reply({"result": None, "id": request["id"]})


def test_a_refused_name_among_many_errors_only_its_own_subscribers() -> None:
    transport = ScriptedTransport()
    with _pooled(transport) as streams:
        names = [f"{s}@trade" for s in ("btcusdt", "ethusdt", "bnbbtc", "xrpusdt", "adausdt")]
        got = {name: Collector() for name in names}
        for name, collector in got.items():
            streams.stream(name).subscribe(collector)
        until(lambda: bool(transport.sockets))
        sock = transport.sockets[0]
        sock.connected()  # the URL named the first stream; the others are subscribed live
        server = Server(sock, refuse={"xrpusdt@trade"})

        def settled() -> bool:
            server.answer()
            return bool(got["xrpusdt@trade"].errors) and any(
                m["method"] == "LIST_SUBSCRIPTIONS" for m in sock.sent
            )

        until(settled)
        (error,) = got["xrpusdt@trade"].errors
        assert isinstance(error, SubscriptionRefused)
        assert error.stream == "xrpusdt@trade"
        assert (error.code, error.msg) == (2, "Invalid request: invalid stream")
        assert "xrpusdt@trade" in str(error)
        # The batch was split until the refused name stood alone.
        batches = [tuple(m["params"]) for m in sock.sent if m["method"] == "SUBSCRIBE"]
        assert ("xrpusdt@trade",) in batches
        # The others carry on.
        for name in names:
            if name != "xrpusdt@trade":
                symbol = name.split("@")[0].upper()
                sock.deliver({"stream": name, "data": {"e": "trade", "s": symbol, "t": 1}})
                assert got[name].items == [{"e": "trade", "s": symbol, "t": 1}]
                assert not got[name].errors
        assert "xrpusdt@trade" not in streams.statistics()


def test_control_messages_are_paced_and_batched() -> None:
    transport = ScriptedTransport()
    with _pooled(transport) as streams:
        names = [f"s{i}usdt@trade" for i in range(450)]
        for name in names:
            streams.stream(name).subscribe(lambda _: None)
        until(lambda: bool(transport.sockets))
        sock = transport.sockets[0]
        server = Server(sock, refuse=set())
        started = time.monotonic()
        sock.connected()

        def sent_list() -> bool:
            server.answer()
            return any(m["method"] == "LIST_SUBSCRIPTIONS" for m in sock.sent)

        until(sent_list)
        elapsed = time.monotonic() - started
    subscribes = [m for m in sock.sent if m["method"] == "SUBSCRIBE"]
    # The first subscriber's stream in the URL, the other 449 in batches of at most 200.
    assert sock.url.count("@trade") == 1
    assert [len(m["params"]) for m in subscribes] == [200, 200, 49]
    assert server.carried == set(names)
    # Four control messages (with the LIST_SUBSCRIPTIONS check), CONTROL_SPACING apart at least.
    assert len(sock.sent) == 4
    assert elapsed >= 3 * CONTROL_SPACING


def test_a_server_that_disagrees_is_corrected_and_reported() -> None:
    transport = ScriptedTransport()
    with _pooled(transport) as streams:
        events = Collector()
        streams.events.pipe(ops.filter(lambda e: isinstance(e, SubscriptionsCorrected))).subscribe(
            events
        )
        for name in ("btcusdt@trade", "ethusdt@trade"):
            streams.stream(name).subscribe(lambda _: None)
        until(lambda: bool(transport.sockets))
        sock = transport.sockets[0]
        server = Server(sock, refuse=set())
        server.listed = ["btcusdt@trade", "bnbbtc@trade"]  # lost one, kept a stranger
        sock.connected()

        def corrected() -> bool:
            server.answer()
            return bool(events.items)

        until(corrected)
        (event,) = events.items
        assert event.missing == ("ethusdt@trade",)
        assert event.extra == ("bnbbtc@trade",)
        server.listed = ["btcusdt@trade", "ethusdt@trade"]

        def fixed() -> bool:
            server.answer()
            methods = [(m["method"], tuple(m.get("params", ()))) for m in sock.sent]
            return ("SUBSCRIBE", ("ethusdt@trade",)) in methods and (
                "UNSUBSCRIBE",
                ("bnbbtc@trade",),
            ) in methods

        until(fixed)


def test_giving_up_ends_every_stream_of_the_connection_like_a_socket_of_its_own() -> None:
    transport = ScriptedTransport()
    with BinanceStreams(
        ws_url="ws://127.0.0.1:9",
        transport=transport,
        pool=True,
        max_retries=1,
        retry_delay=0.01,
        max_retry_delay=0.02,
    ) as streams:
        got = [Collector(), Collector()]
        streams.stream("btcusdt@trade").subscribe(got[0])
        streams.stream("ethusdt@trade").subscribe(got[1])
        from rxbinance.errors import ConnectionDropped

        until(lambda: bool(transport.sockets))
        transport.sockets[0].fail(ConnectionDropped("gone", code=1006))
        until(lambda: len(transport.sockets) == 2)
        transport.sockets[1].fail(ConnectionDropped("gone", code=1006))
        for collector in got:
            collector.wait_for(lambda c: c.completed)
            assert collector.items == [GIVE_UP_MESSAGE]


def test_connection_attempts_wait_when_the_window_is_full() -> None:
    clock = [0.0]
    attempts = ConnectionAttempts(3, 10.0, clock=lambda: clock[0])
    assert [attempts.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    # The first frees up at t=10.1: the window plus 1% (the server counts a moment later).
    assert attempts.reserve() == pytest.approx(10.1)
    clock[0] = 4.0
    assert attempts.reserve() == pytest.approx(6.1)
    clock[0] = 10.1
    assert attempts.reserve() == 0.0
    assert (attempts.taken, attempts.delayed) == (4, 2)


def test_an_order_book_on_a_pooled_connection_equals_the_true_book_through_a_drop() -> None:
    with (
        FakeBinance(tick_interval=0.005) as fake,
        BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams,
    ):
        books = Collector()
        trades = Collector()
        sub = order_book(streams, "BTCUSDT", limit=5000).subscribe(books)
        trade_sub = streams.trades("ETHUSDT").subscribe(trades)  # sharing the connection
        books.wait_count(20)
        fake.drop_connections()
        books.wait_count(60)
        sub.dispose()
        trade_sub.dispose()
    assert not books.errors
    ids = [b.update_id for b in books.items]
    assert ids == sorted(set(ids))
    for book in books.items:
        truth = fake.true_book(book.symbol, book.update_id)
        assert book.bids() == list(truth.bids)
        assert book.asks() == list(truth.asks)
    assert trades.items  # the trades stream had its share of the same connection
    assert len({c.path.partition("?")[0] for c in fake.connections}) == 1


def test_usdm_routes_get_pools_of_their_own() -> None:
    with (
        FakeBinance(tick_interval=None) as fake,
        BinanceStreams(
            market="usdm", ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST
        ) as streams,
    ):
        subs = [
            streams.depth("BTCUSDT", speed=100).subscribe(lambda _: None),  # /public
            streams.book_ticker("BTCUSDT").subscribe(lambda _: None),  # /public
            streams.agg_trades("BTCUSDT").subscribe(lambda _: None),  # /market
            streams.klines("ETHUSDT", "1m").subscribe(lambda _: None),  # /market
        ]

        def routes(f: FakeBinance) -> dict[str, set[str]]:
            return {
                c.path.partition("/stream")[0]: set(c.streams)
                for c in f.connections
                if c.closed_at is None
            }

        fake.wait_for(
            lambda f: (
                routes(f)
                == {
                    "/public": {"btcusdt@depth@100ms", "btcusdt@bookTicker"},
                    "/market": {"btcusdt@aggTrade", "ethusdt@kline_1m"},
                }
            )
        )
        for sub in subs:
            sub.dispose()


def test_a_name_binance_refuses_among_many_ends_only_its_subscribers(fake: FakeBinance) -> None:
    fake.refuse_streams("ethusdt@aggTrade")  # well formed: only the server knows it is refused
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams:
        got = {s: Collector() for s in ("BTCUSDT", "ETHUSDT", "BNBBTC")}
        for symbol, collector in got.items():
            streams.agg_trades(symbol).subscribe(collector)
        got["ETHUSDT"].wait_for(lambda c: bool(c.errors))
        (error,) = got["ETHUSDT"].errors
        assert isinstance(error, SubscriptionRefused)
        assert error.stream == "ethusdt@aggTrade"
        assert error.code == 2
        assert "invalid stream" in error.msg
        fake.wait_for(
            lambda f: list(server_view(f).values()) == [{"btcusdt@aggTrade", "bnbbtc@aggTrade"}]
        )
        fake.step(20)
        for symbol in ("BTCUSDT", "BNBBTC"):
            got[symbol].wait_count(1)
            assert not got[symbol].errors
        (connection,) = fake.connections
        # Found by halving the refused batch; no connection closed, no limit broken.
        refused = [e for e in connection.control_log if e.params == ["ethusdt@aggTrade"]]
        assert refused
        assert connection.closed_at is None


def test_pooled_control_messages_stay_under_binance_rate_as_the_server_logs_them() -> None:
    symbols = [f"S{i:02d}USDT" for i in range(40)]
    names = [f"{s.lower()}@{kind}" for s in symbols for kind in KINDS]
    with (
        FakeBinance(symbols=symbols, tick_interval=None) as fake,
        BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams,
    ):
        rng = random.Random(7)
        subs: dict[str, Any] = {}
        for _ in range(6):  # rounds of churn, each a burst of small changes
            for _ in range(100):
                name = rng.choice(names)
                if name in subs:
                    subs.pop(name).dispose()
                else:
                    subs[name] = streams.stream(name).subscribe(lambda _: None)
            fake.wait_for(lambda f: set().union(set(), *server_view(f).values()) == set(subs))
        (connection,) = fake.connections
        times = [entry.time for entry in connection.control_log]
        assert len(times) >= 6
        # Never more than 4 control messages in any one second (pongs take the 5th).
        for i, start in enumerate(times):
            assert len([t for t in times[i:] if t < start + 1.0]) <= 4
        assert connection.close_cause != "rate_limit"


def test_sockets_wait_for_the_attempt_budget_instead_of_being_refused() -> None:
    # The server allows 4 handshakes a second per IP; the streams' budget is the same: eight
    # sockets (one per stream, not pooled) all connect, none is refused with 429.
    with (
        FakeBinance(tick_interval=None, max_connection_attempts=(4, 1.0)) as fake,
        BinanceStreams(
            ws_url=fake.ws_url, rest_url=fake.rest_url, connection_attempts=(4, 1.0), **FAST
        ) as streams,
    ):
        names = [f"{s}@{k}" for s in ("btcusdt", "ethusdt") for k in KINDS[:4]]
        subs = [streams.stream(name).subscribe(lambda _: None) for name in names]
        fake.wait_for(lambda f: len(f.open_connections) == 8, timeout=10)
        assert len(fake.attempts) == 8  # no refusal, no retry
        times = sorted(fake.connection_attempts)
        assert times[4] - times[0] >= 1.0  # the fifth waited for the first to age out
        for sub in subs:
            sub.dispose()


def test_a_stream_stopped_before_it_started_never_joins_a_connection() -> None:
    from reactivex.scheduler import ImmediateScheduler

    from rxbinance._reactive.pool import Pool, PooledStream

    def make(key: str, open_socket: Any) -> Any:
        raise AssertionError("no connection may be made")

    pool = Pool(
        name="pool",
        url_for=lambda names: "ws://127.0.0.1:9/stream?streams=" + "/".join(names),
        capacity=10,
        open_socket=ScriptedTransport(),
        make=make,
        timers=ImmediateScheduler(),
        emit_event=lambda _: None,
    )
    member = PooledStream(pool, "btcusdt@trade")
    member.stop()  # the hub may stop a source before starting it
    member.start(Collector())  # type: ignore[arg-type]
    assert not pool.connections


def test_a_quiet_pooled_stream_is_reported_silent_on_its_own(fake: FakeBinance) -> None:
    with BinanceStreams(
        ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, silence_timeout=0.3, **FAST
    ) as streams:
        silent = Collector()
        streams.events.pipe(ops.filter(lambda e: isinstance(e, Silent))).subscribe(silent)
        busy = Collector()
        streams.stream("xrpusdt@trade").subscribe(lambda _: None)  # not traded: never a message
        streams.stream("btcusdt@trade").subscribe(busy)
        fake.wait_for(
            lambda f: (
                set().union(set(), *server_view(f).values()) == {"xrpusdt@trade", "btcusdt@trade"}
            )
        )
        # Trades keep flowing on the same connection while the other stream stays quiet.
        stop = threading.Event()

        def trade_on() -> None:
            while not stop.wait(0.02):
                fake.step(1)

        stepper = threading.Thread(target=trade_on)
        stepper.start()
        try:
            silent.wait_count(1)
            busy.wait_for(lambda c: len(c.items) > 10)
        finally:
            stop.set()
            stepper.join()
    (event,) = silent.items
    assert event.stream == "xrpusdt@trade"
    assert 0.3 <= event.seconds < 2.0


def test_a_server_shutdown_replaces_a_pooled_connection_and_loses_nothing(
    fake: FakeBinance,
) -> None:
    with BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url, pool=True, **FAST) as streams:
        trades = {s: Collector() for s in ("BTCUSDT", "ETHUSDT")}
        for symbol, collector in trades.items():
            streams.agg_trades(symbol).subscribe(collector)
        quotes = Collector()
        streams.book_ticker("BTCUSDT").subscribe(quotes)
        wanted = {"btcusdt@aggTrade", "ethusdt@aggTrade", "btcusdt@bookTicker"}
        fake.wait_for(lambda f: list(server_view(f).values()) == [wanted])
        fake.step(20)
        fake.server_shutdown()
        fake.wait_for(
            lambda f: len(f.connections) == 2 and list(server_view(f).values()) == [wanted]
        )
        fake.step(20)
        for symbol, collector in trades.items():
            final = int(fake.with_market(lambda m, s=symbol: m.agg_trade_history(s))[-1]["a"])
            collector.wait_for(lambda c, f=final: bool(c.items) and c.items[-1]["a"] == f)
            ids = [m["a"] for m in collector.items]
            assert ids == list(range(ids[0], final + 1))  # every id once, the gap refilled
        updates = [m["u"] for m in quotes.items]
        assert updates == sorted(set(updates))  # never a repeat, never backwards
        assert streams.statistics()["btcusdt@aggTrade"].rollovers == 0


def test_the_attempt_budget_is_shared_by_every_binancestreams_of_the_process() -> None:
    # Two BinanceStreams, four sockets each, against a fake allowing 4 handshakes a second per
    # IP: the budget is the process's, so the second one's sockets wait instead of being refused.
    with FakeBinance(tick_interval=None, max_connection_attempts=(4, 1.0)) as fake:
        settings: dict[str, Any] = {"ws_url": fake.ws_url, "connection_attempts": (4, 1.0), **FAST}
        with BinanceStreams(**settings) as first, BinanceStreams(**settings) as second:
            subs = [
                streams.stream(f"{symbol}@{kind}").subscribe(lambda _: None)
                for streams, symbol in ((first, "btcusdt"), (second, "ethusdt"))
                for kind in KINDS[:4]
            ]
            fake.wait_for(lambda f: len(f.open_connections) == 8, timeout=10)
            assert len(fake.attempts) == 8  # none refused, none retried
            for sub in subs:
                sub.dispose()
