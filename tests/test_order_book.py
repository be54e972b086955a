"""rxbinance.order_book against FakeBinance's truth, and its parts: the persistent book, the
immutable OrderBook view, the REST weight budget, resyncs, sharing, threads."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from reactivex.scheduler import EventLoopScheduler

from rxbinance import BinanceStreams
from rxbinance._reactive.reconnect import DEFAULT_RATE_LIMIT_PAUSE, is_fatal, retry_after
from rxbinance.errors import BinanceAPIError, ConnectionFailure, RateLimitError, RequestError
from rxbinance.events import BookResyncing, BookSnapshotFailed, BookSynced, ConnectionEvent
from rxbinance.pipelines import OrderBook, WeightBudget, order_book, order_book_statistics
from rxbinance.pipelines._book import PersistentBook
from rxbinance.protocol.book import LocalBook
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

D = Decimal


class MarketRest:
    """Depth snapshots taken straight from the fake's market, as GET /api/v3/depth answers.

    ``script`` entries run before the real answer, one per call: an exception to raise, a
    callable returning the body to answer instead, or None for the real answer.
    """

    def __init__(self, fake: FakeBinance, script: list[Any] | None = None) -> None:
        self.fake = fake
        self.script = list(script or [])
        self.calls: list[tuple[str, int, float, str]] = []  # symbol, limit, time, thread
        self.lock = threading.Lock()

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        with self.lock:
            self.calls.append((symbol, limit, time.monotonic(), threading.current_thread().name))
            step = self.script.pop(0) if self.script else None
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(symbol, limit)  # type: ignore[no-any-return]
        return self.fake.with_market(lambda m: m.rest_depth(symbol, limit))

    def count(self, symbol: str) -> int:
        with self.lock:
            return sum(1 for call in self.calls if call[0] == symbol)


class Events:
    """Book events of a BinanceStreams, collected."""

    def __init__(self, streams: BinanceStreams) -> None:
        self.items: list[ConnectionEvent] = []
        self._cond = threading.Condition()
        streams.events.subscribe(self._on)

    def _on(self, event: ConnectionEvent) -> None:
        with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    def of(self, kind: type[ConnectionEvent], symbol: str | None = None) -> list[Any]:
        with self._cond:
            return [
                e
                for e in self.items
                if isinstance(e, kind) and (symbol is None or getattr(e, "symbol", None) == symbol)
            ]

    def wait(self, predicate: Callable[[Events], bool], timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self), timeout), self.items[-8:]


def assert_true_book(fake: FakeBinance, book: OrderBook, top: int = 20, full: bool = False) -> None:
    truth = fake.true_book(book.symbol, book.update_id)
    assert book.bids(top) == list(truth.bids[:top]), book.update_id
    assert book.asks(top) == list(truth.asks[:top]), book.update_id
    if full:
        assert book.bids() == list(truth.bids)
        assert book.asks() == list(truth.asks)
        assert (book.bid_levels, book.ask_levels) == (len(truth.bids), len(truth.asks))


@pytest.fixture
def running() -> Iterator[tuple[FakeBinance, BinanceStreams]]:
    """A FakeBinance whose market runs at 20x real speed, and streams on it."""
    with (
        FakeBinance(tick_interval=0.005) as server,
        BinanceStreams(
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            retry_delay=0.05,
            max_retry_delay=0.2,
            stall_timeout=5.0,
        ) as client,
    ):
        yield server, client


def book_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rxbinance-book:")]


# -- the persistent book and its views ------------------------------------------------------


def test_persistent_book_agrees_with_local_book_and_its_views_never_change() -> None:
    rng = random.Random(5)
    for _ in range(10):
        persistent, reference = PersistentBook(), LocalBook()
        bids = [(D(p), D(rng.randint(1, 9))) for p in rng.sample(range(1, 500), 300)]
        asks = [(D(p), D(rng.randint(1, 9))) for p in rng.sample(range(500, 1000), 300)]
        persistent.load(bids, asks)
        reference.load(bids, asks)
        kept: list[tuple[OrderBook, list[Any], list[Any]]] = []
        for step in range(200):
            # Mostly near the top, removals (quantity 0) included, as on Binance.
            b = [(D(rng.randint(400, 499)), D(rng.choice("00123"))) for _ in range(8)]
            a = [(D(rng.randint(500, 599)), D(rng.choice("00123"))) for _ in range(8)]
            b.append((D(rng.randint(1, 499)), D(rng.choice("0123"))))
            persistent.apply(b, a)
            reference.apply(b, a)
            assert persistent.best_bid() == reference.best_bid()
            assert persistent.top_asks(5) == reference.top_asks(5)
            assert persistent.crossed == reference.crossed
            everything = 10**6
            kept.append(
                (
                    persistent.view("X", step, None),
                    reference.top_bids(everything),
                    reference.top_asks(everything),
                )
            )
        assert dict(persistent.bids) == dict(reference.bids)
        for view, all_bids, all_asks in kept:  # every view still shows its own moment
            assert view.bids() == all_bids
            assert view.asks() == all_asks
            for n in (0, 1, 7, 64, 129):
                assert view.bids(n) == all_bids[:n]
                assert view.asks(n) == all_asks[:n]


def test_order_book_view_api() -> None:
    book = PersistentBook()
    book.load([(D("99.5"), D(2)), (D(99), D(1))], [(D(101), D(3)), (D(102), D(4))])
    view = book.view("BTCUSDT", 42, 1700000000000)
    assert (view.symbol, view.update_id, view.event_time) == ("BTCUSDT", 42, 1700000000000)
    assert view.best_bid == (D("99.5"), D(2))
    assert view.best_ask == (D(101), D(3))
    assert view.spread == D("1.5")
    assert view.mid == D("100.25")
    assert view.bids(1) == [(D("99.5"), D(2))]
    assert view.asks() == [(D(101), D(3)), (D(102), D(4))]
    assert "update_id=42" in repr(view)
    book.apply([(D("99.5"), D(0)), (D(99), D(0))], [])
    empty = book.view("BTCUSDT", 43, None)
    assert empty.best_bid is None
    assert empty.spread is None
    assert empty.mid is None
    assert empty.bids() == []
    assert view.best_bid == (D("99.5"), D(2))  # the earlier view is untouched


# -- the weight budget ----------------------------------------------------------------------


def test_weight_budget_spreads_requests_out_and_pauses_on_rate_limits() -> None:
    budget = WeightBudget(weight_per_minute=600, burst=10)  # 10 a second
    start = time.monotonic()
    assert budget.acquire(10)  # the burst: at once
    assert budget.acquire(5)  # 5 more: about 0.5 s later
    assert time.monotonic() - start >= 0.4
    budget.pause(0.3)
    paused = time.monotonic()
    assert budget.acquire(1)
    assert time.monotonic() - paused >= 0.25
    assert budget.spent == 16
    cancel = threading.Event()
    cancel.set()
    assert not budget.acquire(1000, cancel)  # cancelled while waiting: nothing taken
    assert budget.spent == 16
    with pytest.raises(ValueError, match="> 0"):
        WeightBudget(0)


def test_rest_errors_are_triaged_into_wait_retry_or_give_up() -> None:
    limited = RateLimitError(429, -1003, "Too much request weight used", retry_after=2)
    banned = RateLimitError(418, -1003, "IP banned", retry_after=None, banned=True)
    assert (retry_after(limited), retry_after(banned)) == (2.0, DEFAULT_RATE_LIMIT_PAUSE)
    assert retry_after(RequestError("reset")) is None
    assert not is_fatal(limited)
    assert not is_fatal(banned)
    assert not is_fatal(RequestError("reset"))
    assert not is_fatal(BinanceAPIError(503, None, "unknown outcome"))
    assert is_fatal(BinanceAPIError(400, -1121, "Invalid symbol."))
    assert not is_fatal(RuntimeError("anything else is worth another try"))


# -- against FakeBinance --------------------------------------------------------------------


def test_every_book_equals_the_true_book_through_gaps_drops_and_shutdowns(
    running: tuple[FakeBinance, BinanceStreams],
) -> None:
    fake, streams = running
    events = Events(streams)
    rest = MarketRest(fake)
    books = Collector()
    subscription = order_book(streams, "BTCUSDT", limit=5000, rest=rest).subscribe(books)
    try:
        books.wait_count(25)
        fake.inject_gap("BTCUSDT", 3)
        books.wait_count(60)
        fake.drop_connections()
        books.wait_count(95)
        fake.server_shutdown()
        books.wait_count(130)
        fake.inject_gap("BTCUSDT")
        books.wait_count(165)
    finally:
        subscription.dispose()
    assert not books.errors
    items: list[OrderBook] = list(books.items)
    ids = [b.update_id for b in items]
    assert ids == sorted(set(ids)), "books go forward only"
    for book in items:
        assert_true_book(fake, book, full=True)  # limit 5000 covers the whole simulated book
        assert book.spread is not None
        assert book.spread > 0
    reasons = [e.reason for e in events.of(BookResyncing, "BTCUSDT")]
    assert reasons[0] == "start"
    assert sum(r.startswith("gap") for r in reasons) >= 2
    assert "disconnected" in reasons
    assert len(events.of(BookSynced, "BTCUSDT")) == len(reasons)
    assert len(rest.calls) >= 5  # the first sync and one per resync
    assert all(call[3] == "rxbinance-book:BTCUSDT" for call in rest.calls), "never the reader"


def test_book_events_order_and_nothing_is_emitted_while_resyncing(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    timeline = Collector()  # books and book events, in the order they happened

    def record(item: Any) -> None:
        if isinstance(item, (OrderBook, BookResyncing, BookSynced)):
            timeline.on_next(item)

    def synced(n: int) -> Callable[[Collector], bool]:
        return lambda c: sum(isinstance(i, BookSynced) for i in c.items) >= n

    streams.events.subscribe(record)
    subscription = order_book(streams, "ETHUSDT", rest=MarketRest(fake)).subscribe(record)
    try:
        fake.wait_for_connections(1, stream="ethusdt@depth@100ms")
        fake.step()
        timeline.wait_for(synced(1))
        fake.step(2)
        fake.inject_gap("ETHUSDT")
        fake.step()  # delivers the event with the gap
        timeline.wait_for(synced(2))
        fake.step(3)
        timeline.wait_for(lambda c: isinstance(c.items[-1], OrderBook) and len(c.items) > 8)
    finally:
        subscription.dispose()
    items = list(timeline.items)
    marks = [i for i in items if not isinstance(i, OrderBook)]
    kinds = [type(i).__name__ for i in marks]
    assert kinds == ["BookResyncing", "BookSynced", "BookResyncing", "BookSynced"], marks
    start, first_sync, gap, resynced = marks
    assert start.reason == "start"
    assert gap.reason.startswith("gap: event U=")
    assert (gap.stream, gap.symbol) == ("ethusdt@depth@100ms", "ETHUSDT")
    books_before = [b for b in items[: items.index(gap)] if isinstance(b, OrderBook)]
    books_after = [b for b in items[items.index(gap) :] if isinstance(b, OrderBook)]
    assert books_before
    assert books_after
    # Nothing stale after the gap: the first book after it is the new sync's.
    assert books_before[0].update_id == first_sync.update_id
    assert books_after[0].update_id == resynced.update_id
    for book in books_before + books_after:
        assert_true_book(fake, book)


def test_one_book_per_symbol_shared_and_ref_counted(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    rest = MarketRest(fake)
    first, second, late = Collector(), Collector(), Collector()
    a = order_book(streams, "BTCUSDT", rest=rest).subscribe(first)
    b = order_book(streams, "BTCUSDT", rest=rest).subscribe(second)
    fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
    while not first.items:
        fake.step()
    # Let every diff already sent arrive, so the book stops changing before the late subscriber.
    last_id = fake.with_market(lambda m: m.last_update_id("BTCUSDT"))
    first.wait_for(lambda c: c.items[-1].update_id == last_id)
    second.wait_count(len(first.items))
    # A late subscriber receives the current book at once, without waiting for a change.
    c = order_book(streams, "BTCUSDT", rest=rest).subscribe(late)
    late.wait_count(1)
    assert late.items[0] is first.items[-1]
    assert len(rest.calls) == 1  # one book, one snapshot
    (stats,) = order_book_statistics(streams).values()
    assert stats.state == "synced"
    assert stats.snapshots == 1
    assert stats.update_id == late.items[0].update_id
    assert [c.path for c in fake.open_connections] == ["/ws/btcusdt@depth@100ms"]
    a.dispose()
    b.dispose()
    assert fake.open_connections, "still one subscriber"
    c.dispose()
    fake.wait_for(lambda f: not f.open_connections)
    assert order_book_statistics(streams) == {}
    # A new subscriber after that starts afresh: new socket, new snapshot.
    again = Collector()
    d = order_book(streams, "BTCUSDT", rest=rest).subscribe(again)
    try:
        fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
        while not again.items:
            fake.step()
        assert len(rest.calls) == 2
        assert_true_book(fake, again.items[-1])
    finally:
        d.dispose()


def test_a_gap_resyncs_that_symbol_only(fake: FakeBinance, streams: BinanceStreams) -> None:
    events = Events(streams)
    rest = MarketRest(fake)
    btc, eth = Collector(), Collector()
    subs = [
        order_book(streams, "BTCUSDT", rest=rest).subscribe(btc),
        order_book(streams, "ETHUSDT", rest=rest).subscribe(eth),
    ]
    try:
        fake.wait_for_connections(2)
        while not (btc.items and eth.items):
            fake.step()
        fake.inject_gap("BTCUSDT")
        fake.step()
        events.wait(lambda e: len(e.of(BookSynced, "BTCUSDT")) == 2)
        fake.step(5)
        eth.wait_count(3)
    finally:
        for sub in subs:
            sub.dispose()
    assert (rest.count("BTCUSDT"), rest.count("ETHUSDT")) == (2, 1)
    assert [e.reason for e in events.of(BookResyncing, "ETHUSDT")] == ["start"]
    for book in btc.items + eth.items:
        assert_true_book(fake, book)


def test_mass_resync_is_throttled_by_the_shared_budget(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    # limit=100 costs 5; 600 a minute is one snapshot every 0.5 s after a burst of one.
    budget = WeightBudget(weight_per_minute=600, burst=5)
    rest = MarketRest(fake)
    collectors = {s: Collector() for s in ("BTCUSDT", "ETHUSDT", "BNBBTC")}
    subs = [
        order_book(streams, s, limit=100, rest=rest, budget=budget).subscribe(c)
        for s, c in collectors.items()
    ]
    try:
        fake.wait_for_connections(3)
        fake.step()  # every book gets its first event at once and wants a snapshot
        deadline = time.monotonic() + 10
        while not all(c.items for c in collectors.values()) and time.monotonic() < deadline:
            fake.step()
            time.sleep(0.02)  # pace the paused market while the fetches are spread out
    finally:
        for sub in subs:
            sub.dispose()
    times = sorted(call[2] for call in rest.calls)
    assert len(times) >= 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 0.4 for gap in gaps[:2]), gaps
    assert budget.spent == 5 * len(times)
    for symbol, collector in collectors.items():
        assert collector.items, symbol
        for book in collector.items:
            assert_true_book(fake, book)


def test_rate_limited_snapshots_wait_retry_after_then_sync(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    events = Events(streams)
    budget = WeightBudget()
    limited = RateLimitError(429, -1003, "Too much request weight used", retry_after=0.3)
    rest = MarketRest(fake, script=[limited])
    books = Collector()
    sub = order_book(streams, "BTCUSDT", rest=rest, budget=budget).subscribe(books)
    try:
        fake.wait_for_connections(1)
        fake.step()
        events.wait(lambda e: bool(e.of(BookSnapshotFailed)))
        deadline = time.monotonic() + 10
        while not books.items and time.monotonic() < deadline:
            fake.step()
            time.sleep(0.02)
    finally:
        sub.dispose()
    (failed,) = events.of(BookSnapshotFailed)
    assert failed.error.startswith("RateLimitError: HTTP 429, code -1003")
    assert failed.retry_in >= 0.3
    first, second = rest.calls[0][2], rest.calls[1][2]
    assert second - first >= 0.25
    assert books.items
    assert_true_book(fake, books.items[-1])


def test_a_snapshot_older_than_the_buffered_events_is_fetched_again(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    old = fake.with_market(lambda m: m.rest_depth("BTCUSDT", 1000))  # before any event
    fake.step(3)  # the market moves on: the saved snapshot is now too old
    events = Events(streams)
    rest = MarketRest(fake, script=[lambda symbol, limit: old])
    books = Collector()
    sub = order_book(streams, "BTCUSDT", rest=rest).subscribe(books)
    try:
        fake.wait_for_connections(1)
        while not books.items:
            fake.step()
            time.sleep(0.01)
    finally:
        sub.dispose()
    (failed,) = events.of(BookSnapshotFailed)
    assert failed.error.startswith("snapshot too old")
    assert len(rest.calls) == 2
    assert_true_book(fake, books.items[0])


def test_the_reader_thread_never_waits_for_rest(fake: FakeBinance, streams: BinanceStreams) -> None:
    release = threading.Event()

    def slow(symbol: str, limit: int) -> dict[str, Any]:
        assert release.wait(10)
        return fake.with_market(lambda m: m.rest_depth(symbol, limit))

    rest = MarketRest(fake, script=[slow])
    books, raw = Collector(), Collector()
    subs = [
        order_book(streams, "BTCUSDT", rest=rest).subscribe(books),
        streams.depth("BTCUSDT", speed=100).subscribe(raw),  # the same socket
    ]
    try:
        fake.wait_for_connections(1)
        fake.step(10)
        raw.wait_count(5)  # diff events keep flowing while the snapshot hangs
        assert not books.items
        release.set()
        fake.step()
        books.wait_count(1)
    finally:
        for sub in subs:
            sub.dispose()
    assert_true_book(fake, books.items[-1])


def test_a_malformed_diff_event_resyncs(fake: FakeBinance, streams: BinanceStreams) -> None:
    events = Events(streams)
    rest = MarketRest(fake)
    books = Collector()
    sub = order_book(streams, "BTCUSDT", rest=rest).subscribe(books)
    try:
        fake.wait_for_connections(1)
        while not books.items:
            fake.step()
        fake.publish("btcusdt@depth@100ms", {"e": "depthUpdate", "s": "BTCUSDT", "U": "x"})
        events.wait(lambda e: len(e.of(BookResyncing)) == 2)
        while len(events.of(BookSynced)) < 2:
            fake.step()
            time.sleep(0.01)
    finally:
        sub.dispose()
    assert events.of(BookResyncing)[1].reason.startswith("malformed diff event")
    for book in books.items:
        assert_true_book(fake, book)


def test_giving_up_ends_books_with_an_error_and_close_completes_them(fake: FakeBinance) -> None:
    with BinanceStreams(
        ws_url=fake.ws_url, max_retries=1, retry_delay=0.01, max_retry_delay=0.02
    ) as streams:
        rest = MarketRest(fake)
        doomed = Collector()
        order_book(streams, "BTCUSDT", rest=rest).subscribe(doomed)
        fake.wait_for_connections(1)
        fake.refuse_connections()
        fake.drop_connections()
        doomed.wait_for(lambda c: bool(c.errors))
        assert isinstance(doomed.errors[0], ConnectionFailure)
        assert "Max reconnect retries reached" in str(doomed.errors[0])
        fake.accept_connections()
        # The book was forgotten: the next subscriber starts afresh, and close() completes it.
        fresh = Collector()
        order_book(streams, "BTCUSDT", rest=rest).subscribe(fresh)
        fake.wait_for_connections(1)
        while not fresh.items:
            fake.step()
        streams.close()
        fresh.wait_completed()
    assert not book_threads() or all(not t.is_alive() for t in book_threads())


def test_delivery_on_the_streams_scheduler(fake: FakeBinance) -> None:
    scheduler = EventLoopScheduler(
        thread_factory=lambda target: threading.Thread(
            target=target, name="books-here", daemon=True
        )
    )
    try:
        with BinanceStreams(ws_url=fake.ws_url, scheduler=scheduler) as streams:
            books = Collector()
            sub = order_book(streams, "BTCUSDT", rest=MarketRest(fake)).subscribe(books)
            fake.wait_for_connections(1)
            while len(books.items) < 3:
                fake.step()
                time.sleep(0.01)
            sub.dispose()
        assert set(books.threads) == {"books-here"}
    finally:
        scheduler.dispose()


def test_bad_arguments_raise_at_once(streams: BinanceStreams) -> None:
    with pytest.raises(ValueError, match="symbol"):
        order_book(streams, "BTC USDT")
    with pytest.raises(ValueError, match="limit"):
        order_book(streams, "BTCUSDT", limit=0)
    with pytest.raises(ValueError, match="limit"):
        order_book(streams, "BTCUSDT", limit=5001)
    with pytest.raises(ValueError, match="speed"):
        order_book(streams, "BTCUSDT", speed=250)


# -- through the real REST client (HTTP to FakeBinance) --------------------------------------


def test_snapshots_over_http_cost_their_weight_and_429_waits_retry_after(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    rest = streams.rest  # rxbinance.rest.Client over HTTP to FakeBinance
    events = Events(streams)
    budget = WeightBudget()
    fake.rest_fault(429, retry_after=1, times=1)
    books = Collector()
    sub = order_book(streams, "BTCUSDT", rest=rest, budget=budget).subscribe(books)
    try:
        fake.wait_for_connections(1)
        fake.step()
        events.wait(lambda e: bool(e.of(BookSnapshotFailed)))
        while not books.items:
            fake.step()
            time.sleep(0.02)
    finally:
        sub.dispose()
    (failed,) = events.of(BookSnapshotFailed)
    assert failed.retry_in >= 1
    depth = [r for r in fake.rest_requests if r.path == "/api/v3/depth"]
    assert [r.status for r in depth] == [429, 200]
    assert "limit=1000" in depth[1].query
    assert depth[1].weight == 50
    assert depth[1].time - depth[0].time >= 0.9
    assert budget.spent == 100  # both attempts took their weight
    assert_true_book(fake, books.items[-1], full=True)


def test_the_default_rest_client_is_the_streams_one(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    books = Collector()
    sub = order_book(streams, "ETHUSDT", limit=500).subscribe(books)
    try:
        fake.wait_for_connections(1)
        while not books.items:
            fake.step()
            time.sleep(0.01)
    finally:
        sub.dispose()
    (depth,) = [r for r in fake.rest_requests if r.path == "/api/v3/depth"]
    assert "symbol=ETHUSDT" in depth.query
    assert depth.weight == 25
    assert_true_book(fake, books.items[-1], top=500)
