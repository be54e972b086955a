"""rxbinance.operators.observe_on_bounded: delivery on a scheduler through a bounded queue.

Virtual time first: the consumer's scheduler is a TestScheduler that runs only when the test
advances it, so "the consumer is busy" is exact and nothing is timed. Real threads (an
EventLoopScheduler, a thread pool) and a real socket to FakeBinance prove the threading claims.
"""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler, ThreadPoolScheduler
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

import rxbinance.operators as rbo
from rxbinance import BinanceStreams, InvalidInputError
from rxbinance._reactive.bounded import BoundedStatistics, DropCounters
from rxbinance.errors import QueueOverflow
from rxbinance.events import ConnectionEvent, Overflow
from rxbinance.testing import FakeBinance

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


class Consumer:
    """Records what a subscriber receives: items, then ("error", exc) or "done"."""

    def __init__(self) -> None:
        self.got: list[Any] = []
        self.threads: set[str] = set()
        self.ended = threading.Event()

    def on_next(self, value: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.got.append(value)

    def on_error(self, error: Exception) -> None:
        self.got.append(("error", error))
        self.ended.set()

    def on_completed(self) -> None:
        self.got.append("done")
        self.ended.set()


def stats(
    *, maxsize: int, overflow: str, queued=0, delivered=0, dropped=0, high_water=0, overflows=0
) -> BoundedStatistics:
    return BoundedStatistics(maxsize, overflow, queued, delivered, dropped, high_water, overflows)


# ------------------------------------------------------------------------------ the policies

# (overflow, maxsize, items the source emits while the consumer has not run yet, then it
#  completes; what the consumer gets once it runs; dropped)
POLICIES = [
    ("error", 3, [1, 2, 3], [1, 2, 3, "done"], 0),
    ("drop_oldest", 3, [1, 2, 3], [1, 2, 3, "done"], 0),
    ("latest", 3, [1, 2, 3], [1, 2, 3, "done"], 0),
    ("drop_oldest", 2, [1, 2, 3, 4, 5], [4, 5, "done"], 3),
    # latest: 3 finds [1, 2] full and waits alone; 4 joins it; 5 finds [3, 4] full
    ("latest", 2, [1, 2, 3, 4, 5], [5, "done"], 4),
    ("latest", 3, list(range(10)), [9, "done"], 9),
    ("drop_oldest", 3, list(range(10)), [7, 8, 9, "done"], 7),
    # maxsize=1: the two drop policies are the same
    ("drop_oldest", 1, [1, 2, 3], [3, "done"], 2),
    ("latest", 1, [1, 2, 3], [3, "done"], 2),
]


@pytest.mark.parametrize(("overflow", "maxsize", "items", "expected", "dropped"), POLICIES)
def test_policies(
    overflow: Any, maxsize: int, items: list[int], expected: list[Any], dropped: int
) -> None:
    consumer_thread = TestScheduler()  # busy until advanced
    source: Subject[int] = Subject()
    bounded = rbo.observe_on_bounded(consumer_thread, maxsize, overflow)
    consumer = Consumer()
    source.pipe(bounded).subscribe(consumer)
    for item in items:
        source.on_next(item)
    source.on_completed()  # never dropped, never counted against maxsize
    assert consumer.got == []
    consumer_thread.advance_by(1)
    assert consumer.got == expected
    delivered = len(expected) - 1
    assert bounded.statistics() == stats(
        maxsize=maxsize,
        overflow=overflow,
        delivered=delivered,
        dropped=dropped,
        high_water=min(maxsize, len(items)),
        overflows=1 if dropped else 0,
    )


@pytest.mark.parametrize(
    ("overflow", "expected", "dropped"),
    [
        ("error", [1, 2, 3, ("error", QueueOverflow)], 1),
        ("drop_oldest", [1, 5, 6, "done"], 3),
        ("latest", [1, 6, "done"], 4),
    ],
)
def test_the_marble_diagram_of_the_docstring(
    overflow: Any, expected: list[Any], dropped: int
) -> None:
    """source: -1-2-3-4-5-6-| with maxsize=2, the subscriber busy with 1 until 6 was emitted."""
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    got: list[Any] = []

    def slow(value: int) -> None:
        got.append(value)
        if value == 1:  # while it handles 1, the source goes on
            for item in range(2, 7):
                source.on_next(item)
            source.on_completed()

    bounded = rbo.observe_on_bounded(consumer_thread, 2, overflow)
    source.pipe(bounded).subscribe(
        slow, lambda e: got.append(("error", type(e))), lambda: got.append("done")
    )
    source.on_next(1)
    consumer_thread.advance_by(1)
    assert got == expected
    assert bounded.statistics().dropped == dropped
    assert not source.observers  # ended (or disposed by the overflow)


def test_error_disposes_the_source_at_the_overflow_and_delivers_the_queued_items_first() -> None:
    source_time = TestScheduler()
    xs = source_time.create_hot_observable(
        on_next(210, 1), on_next(220, 2), on_next(230, 3), on_next(240, 4), on_completed(250)
    )
    consumer_thread = TestScheduler()
    consumer = Consumer()
    bounded = rbo.observe_on_bounded(consumer_thread, 2, "error")
    source_time.schedule_absolute(200, lambda *_: xs.pipe(bounded).subscribe(consumer))
    source_time.start()
    assert xs.subscriptions == [subscribe(200, 230)], "disposed when 3 overflowed"
    assert consumer.got == []
    consumer_thread.advance_by(1)
    assert consumer.got[:2] == [1, 2]
    kind, error = consumer.got[2]
    assert kind == "error"
    assert isinstance(error, QueueOverflow)
    assert error.maxsize == 2
    assert "more than 2 items" in str(error)
    assert len(consumer.got) == 3
    assert bounded.statistics() == stats(
        maxsize=2, overflow="error", delivered=2, dropped=1, high_water=2, overflows=1
    )


@pytest.mark.parametrize("overflow", ["error", "drop_oldest", "latest"])
def test_an_error_of_the_source_waits_behind_a_full_queue_and_is_never_dropped(
    overflow: Any,
) -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    consumer = Consumer()
    source.pipe(rbo.observe_on_bounded(consumer_thread, 2, overflow)).subscribe(consumer)
    boom = RuntimeError("boom")
    source.on_next(1)
    source.on_next(2)
    source.on_error(boom)
    consumer_thread.advance_by(1)
    assert consumer.got == [1, 2, ("error", boom)]


def test_a_consumer_keeping_up_gets_everything_in_order_and_drops_nothing() -> None:
    source_time = TestScheduler()
    xs = source_time.create_hot_observable(
        *[on_next(210 + 10 * i, i) for i in range(50)], on_completed(800)
    )
    # One scheduler for both: the consumer runs between the source's emissions.
    bounded = rbo.observe_on_bounded(source_time, 1, "error")
    result = source_time.start(lambda: xs.pipe(bounded))
    assert [m.value.value for m in result.messages if m.value.kind == "N"] == list(range(50))
    assert result.messages[-1] == on_completed(800)
    assert bounded.statistics() == stats(maxsize=1, overflow="error", delivered=50, high_water=1)


# ------------------------------------------------------------------- statistics and events


def test_one_overflow_event_per_spell_of_falling_behind() -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    spells: list[Overflow] = []
    bounded = rbo.observe_on_bounded(
        consumer_thread, 2, "drop_oldest", stream="btcusdt@trade", on_overflow=spells.append
    )
    consumer = Consumer()
    source.pipe(bounded).subscribe(consumer)

    for item in range(6):  # 2 fit, 4 dropped: one spell
        source.on_next(item)
    assert [(e.stream, e.maxsize, e.policy, e.dropped) for e in spells] == [
        ("btcusdt@trade", 2, "drop_oldest", 1)
    ]
    assert isinstance(spells[0], ConnectionEvent)
    assert spells[0].time > 0
    assert bounded.statistics() == stats(
        maxsize=2, overflow="drop_oldest", queued=2, dropped=4, high_water=2, overflows=1
    )

    consumer_thread.advance_by(1)  # catches up: the spell ends
    assert consumer.got == [4, 5]
    for item in range(6, 9):  # 2 fit, 1 dropped: a new spell
        source.on_next(item)
    assert [e.dropped for e in spells] == [1, 5]
    consumer_thread.advance_by(1)
    assert consumer.got == [4, 5, 7, 8]
    assert bounded.statistics() == stats(
        maxsize=2, overflow="drop_oldest", delivered=4, dropped=5, high_water=2, overflows=2
    )


def test_a_consumer_that_never_catches_up_is_one_spell() -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    spells: list[Overflow] = []
    got: list[int] = []

    def slow(value: int) -> None:
        got.append(value)
        if value < 30:  # every call takes as long as three more items arriving
            for _ in range(3):
                source.on_next(next(counter))

    counter = iter(range(1, 1000))
    bounded = rbo.observe_on_bounded(consumer_thread, 1, "latest", on_overflow=spells.append)
    source.pipe(bounded).subscribe(slow)
    source.on_next(0)
    consumer_thread.advance_by(1)
    assert got == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30], "the latest each time"
    assert len(spells) == 1
    assert bounded.statistics().dropped == 20


def test_without_on_overflow_each_spell_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    source.pipe(rbo.observe_on_bounded(consumer_thread, 1, "latest", stream="x@trade")).subscribe()
    with caplog.at_level(logging.WARNING, logger="rxbinance.operators"):
        for item in range(5):
            source.on_next(item)
    warnings = [r for r in caplog.records if r.name == "rxbinance.operators"]
    assert len(warnings) == 1
    assert "x@trade" in warnings[0].getMessage()
    assert "overflow='latest'" in warnings[0].getMessage()


def test_a_raising_on_overflow_is_logged_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Overflow) -> None:
        raise RuntimeError("handler bug")

    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    consumer = Consumer()
    source.pipe(rbo.observe_on_bounded(consumer_thread, 1, "latest", on_overflow=broken)).subscribe(
        consumer
    )
    with caplog.at_level(logging.ERROR, logger="rxbinance.operators"):
        source.on_next(1)
        source.on_next(2)  # overflows: the handler raises on this (the producer's) thread
        source.on_completed()
    consumer_thread.advance_by(1)
    assert consumer.got == [2, "done"]
    assert any("on_overflow" in r.getMessage() for r in caplog.records)


def test_drop_counters_attribute_drops_to_stream_keys() -> None:
    drops = DropCounters()
    consumer_thread = TestScheduler()
    a: Subject[int] = Subject()
    b: Subject[int] = Subject()
    spells: list[Overflow] = []
    for source, key in ((a, "btcusdt@trade"), (b, "ethusdt@trade")):
        bounded = rbo.observe_on_bounded(
            consumer_thread, 2, "latest", stream=key, drops=drops, on_overflow=spells.append
        )
        source.pipe(bounded).subscribe()
    for item in range(5):  # [0, 1], then 2 drops both, 3 joins, 4 drops both
        a.on_next(item)
    b.on_next(0)
    b.on_next(1)
    b.on_next(2)  # drops 0 and 1
    assert drops.snapshot() == {"btcusdt@trade": 4, "ethusdt@trade": 2}
    assert drops.get("btcusdt@trade") == 4
    assert drops.get("bnbbtc@trade") == 0
    assert [e.stream for e in spells] == ["btcusdt@trade", "ethusdt@trade"]


def test_statistics_sum_every_subscription_made_through_the_operator() -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    bounded = rbo.observe_on_bounded(consumer_thread, 3, "drop_oldest")
    shared = source.pipe(bounded)
    first = shared.subscribe()
    shared.subscribe()
    for item in range(5):  # each subscription: 3 wait, 2 dropped
        source.on_next(item)
    assert bounded.statistics() == stats(
        maxsize=3, overflow="drop_oldest", queued=6, dropped=4, high_water=3, overflows=2
    )
    first.dispose()  # its waiting items are freed; what it delivered and dropped stays counted
    consumer_thread.advance_by(1)
    assert bounded.statistics() == stats(
        maxsize=3, overflow="drop_oldest", delivered=3, dropped=4, high_water=3, overflows=2
    )
    assert repr(bounded) == "<observe_on_bounded maxsize=3 overflow='drop_oldest'>"


def test_streams_sharing_a_scheduler_thread_take_turns() -> None:
    """A subscriber that never catches up must not keep a shared scheduler thread to itself:
    each scheduled action delivers at most maxsize items, then the next one waits its turn."""
    consumer_thread = CountingScheduler()  # one thread for both streams
    a: Subject[int] = Subject()
    b: Subject[str] = Subject()
    log: list[Any] = []

    def behind(value: int) -> None:
        log.append(value)
        if value < 9:
            a.on_next(value + 1)  # one more arrives during each call: never caught up

    a.pipe(rbo.observe_on_bounded(consumer_thread, 2, "drop_oldest")).subscribe(behind)
    b.pipe(rbo.observe_on_bounded(consumer_thread, 2, "drop_oldest")).subscribe(log.append)
    a.on_next(0)
    b.on_next("b")
    consumer_thread.advance_by(1)
    assert log == [0, 1, "b", *range(2, 10)]
    assert consumer_thread.scheduled == 2 + 5, "a: one drain, then one more per round of 2"


# ------------------------------------------------------------------------- dispose


class Item:
    """A value a weak reference can watch."""


def test_dispose_frees_the_queue_and_delivers_nothing_more() -> None:
    consumer_thread = TestScheduler()  # its pending drain keeps the delivery alive
    source: Subject[Item] = Subject()
    consumer = Consumer()
    bounded = rbo.observe_on_bounded(consumer_thread, 10, "error")
    subscription = source.pipe(bounded).subscribe(consumer)
    items = [Item() for _ in range(5)]
    watched = [weakref.ref(item) for item in items]
    for item in items:
        source.on_next(item)
    del items, item
    assert bounded.statistics().queued == 5
    subscription.dispose()
    assert not source.observers
    gc.collect()
    assert [ref() for ref in watched] == [None] * 5, "the waiting items were released"
    assert bounded.statistics().queued == 0
    consumer_thread.advance_by(1)
    assert consumer.got == []


class CountingScheduler(TestScheduler):
    """A TestScheduler that counts the actions scheduled on it."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def schedule(self, action: Any, state: Any = None) -> Any:
        self.scheduled += 1
        return super().schedule(action, state)


def test_one_drain_at_a_time_scheduled_only_when_the_consumer_is_idle() -> None:
    consumer_thread = CountingScheduler()
    source: Subject[int] = Subject()
    consumer = Consumer()
    source.pipe(rbo.observe_on_bounded(consumer_thread, 100)).subscribe(consumer)
    for item in range(10):
        source.on_next(item)
    assert consumer_thread.scheduled == 1, "one drain for everything queued meanwhile"
    consumer_thread.advance_by(1)
    assert consumer.got == list(range(10))
    source.on_next(10)  # the consumer went idle: the next item schedules the next drain
    source.on_completed()
    assert consumer_thread.scheduled == 2
    consumer_thread.advance_by(1)
    assert consumer.got == [*range(11), "done"]


def test_a_subscriber_disposing_from_inside_its_callback_stops_the_drain() -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    got: list[int] = []
    subscription: Any = None

    def on_item(value: int) -> None:
        got.append(value)
        if value == 2:
            subscription.dispose()

    subscription = source.pipe(rbo.observe_on_bounded(consumer_thread, 10)).subscribe(on_item)
    for item in range(5):
        source.on_next(item)
    consumer_thread.advance_by(1)
    assert got == [0, 1, 2]
    assert not source.observers


# --------------------------------------------------------------------- raising subscribers


def test_a_raising_subscriber_is_contained_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer_thread = TestScheduler()
    source: Subject[int] = Subject()
    got: list[Any] = []

    def fragile(value: int) -> None:
        got.append(value)
        raise ValueError(f"cannot handle {value}")

    bounded = rbo.observe_on_bounded(consumer_thread, 100, stream="btcusdt@trade")
    source.pipe(bounded).subscribe(fragile, on_completed=lambda: got.append("done"))
    with caplog.at_level(logging.ERROR, logger="rxbinance.streams"):
        for item in range(12):
            source.on_next(item)
        source.on_completed()
        consumer_thread.advance_by(1)
    assert got == [*range(12), "done"], "every item still delivered"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "observe_on_bounded('btcusdt@trade')" in tracebacks[0].getMessage()
    counts = [r for r in caplog.records if "has raised 10 times" in r.getMessage()]
    assert len(counts) == 1


def test_a_raising_subscriber_does_not_kill_the_event_loop_thread() -> None:
    loop = EventLoopScheduler()
    try:
        source: Subject[int] = Subject()
        other: Subject[int] = Subject()
        fragile_done = threading.Event()
        fine = Consumer()

        def fragile(value: int) -> None:
            raise RuntimeError("always")

        source.pipe(rbo.observe_on_bounded(loop, 100)).subscribe(
            fragile, on_completed=fragile_done.set
        )
        other.pipe(rbo.observe_on_bounded(loop, 100)).subscribe(fine)
        for item in range(20):
            source.on_next(item)
        source.on_completed()
        assert fragile_done.wait(10)
        for item in range(3):  # the same scheduler thread still delivers
            other.on_next(item)
        other.on_completed()
        assert fine.ended.wait(10)
        assert fine.got == [0, 1, 2, "done"]
    finally:
        loop.dispose()


# ----------------------------------------------------------------------- real threads


def test_calls_never_overlap_and_keep_order_on_a_thread_pool() -> None:
    pool = ThreadPoolScheduler(4)
    try:
        busy = threading.Lock()
        overlaps: list[int] = []
        got: list[int] = []
        done = threading.Event()

        def on_item(value: int) -> None:
            if not busy.acquire(blocking=False):
                overlaps.append(value)
                return
            try:
                got.append(value)
            finally:
                busy.release()

        source: Subject[int] = Subject()
        bounded = rbo.observe_on_bounded(pool, 20_000, "error")
        source.pipe(bounded).subscribe(on_item, on_completed=done.set)

        def produce() -> None:
            for item in range(20_000):
                source.on_next(item)
            source.on_completed()

        producer = threading.Thread(target=produce, name="producer", daemon=True)
        producer.start()
        assert done.wait(30)
        producer.join(10)
        assert overlaps == []
        assert got == list(range(20_000))
        assert bounded.statistics().delivered == 20_000
    finally:
        pool.executor.shutdown(wait=True)


def test_statistics_are_readable_while_the_subscriber_is_busy() -> None:
    loop = EventLoopScheduler()
    try:
        release = threading.Event()
        entered = threading.Event()
        got: list[int] = []
        done = threading.Event()

        def slow(value: int) -> None:
            if value == 0:
                entered.set()
                assert release.wait(10)
            got.append(value)

        source: Subject[int] = Subject()
        bounded = rbo.observe_on_bounded(loop, 5, "drop_oldest")
        source.pipe(bounded).subscribe(slow, on_completed=done.set)
        source.on_next(0)
        assert entered.wait(10)  # the subscriber holds 0; the producer is not held up
        for item in range(1, 21):
            source.on_next(item)
        source.on_completed()
        assert bounded.statistics() == stats(
            maxsize=5, overflow="drop_oldest", queued=5, delivered=1, dropped=15,
            high_water=5, overflows=1,
        )  # fmt: skip
        release.set()
        assert done.wait(10)
        assert got == [0, 16, 17, 18, 19, 20]
    finally:
        loop.dispose()


# -------------------------------------------------------------------------- validation


@pytest.mark.parametrize("maxsize", [0, -1, True, 1.5, "3", None])
def test_maxsize_is_validated(maxsize: Any) -> None:
    with pytest.raises(InvalidInputError, match=rf"invalid maxsize {maxsize!r}: an int >= 1"):
        rbo.observe_on_bounded(TestScheduler(), maxsize)


@pytest.mark.parametrize("overflow", ["drop_newest", "block", None, ""])
def test_overflow_is_validated(overflow: Any) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"invalid overflow {overflow!r}: allowed are 'error', 'drop_oldest', 'latest'",
    ):
        rbo.observe_on_bounded(TestScheduler(), 10, overflow)


def test_scheduler_is_validated() -> None:
    with pytest.raises(InvalidInputError, match="invalid scheduler None: a reactivex scheduler"):
        rbo.observe_on_bounded(None, 10)  # type: ignore[arg-type]


def test_stream_is_validated() -> None:
    with pytest.raises(InvalidInputError, match="invalid stream 3"):
        rbo.observe_on_bounded(TestScheduler(), 10, stream=3)  # type: ignore[arg-type]


def test_it_keeps_the_element_type_in_pipe() -> None:
    def double(x: int) -> int:
        return 2 * x

    doubled: Observable[int] = reactivex.of(1, 2).pipe(
        rbo.observe_on_bounded(reactivex.scheduler.ImmediateScheduler(), 2), ops.map(double)
    )
    got: list[int] = []
    doubled.subscribe(got.append)
    assert got == [2, 4]


# ------------------------------------------------------------------ a real socket, live


def trade(trade_id: int) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": 1_700_000_000_000 + trade_id,
        "s": "ETHUSDT",
        "t": trade_id,
        "p": "2000.00",
        "q": "0.1",
        "T": 1_700_000_000_000 + trade_id,
        "m": False,
        "M": True,
    }


def test_a_blocked_subscriber_does_not_hold_up_the_socket(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    """The reader keeps reading while the subscriber is stuck; the drops are counted, reported
    on the streams' events, attributed to the stream key, and the latest trades delivered."""
    loop = EventLoopScheduler()
    events: list[ConnectionEvent] = []
    streams.events.subscribe(events.append)
    received: list[int] = []  # on the reader thread, before the bounded queue
    delivered: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def slow(payload: dict[str, Any]) -> None:
        if not entered.is_set():
            entered.set()
            assert release.wait(10)
        delivered.append(payload["t"])

    # streams=: the drops count in streams.statistics(), the event goes to streams.events.
    bounded = rbo.observe_on_bounded(
        loop, 4, "drop_oldest", stream="ethusdt@trade", streams=streams
    )
    subscription = (
        streams.trades("ETHUSDT")
        .pipe(ops.do_action(lambda t: received.append(t["t"])), bounded)
        .subscribe(slow)
    )
    try:
        fake.wait_for(lambda f: len(f.open_connections) == 1)
        assert fake.publish("ethusdt@trade", trade(1)) == 1
        assert entered.wait(10)  # the subscriber is stuck in trade 1
        for trade_id in range(2, 41):
            fake.publish("ethusdt@trade", trade(trade_id))
        # The reader handed every one over (1 taken + 4 waiting + 35 dropped) ...
        fake.wait_for(lambda f: bounded.statistics().dropped == 35)
        assert received == list(range(1, 41))
        assert delivered == []  # ... while the subscriber is still stuck in the first
        assert bounded.statistics() == stats(
            maxsize=4, overflow="drop_oldest", queued=4, delivered=1, dropped=35,
            high_water=4, overflows=1,
        )  # fmt: skip
        assert streams.statistics()["ethusdt@trade"].dropped == 35
        assert "35 dropped" in streams.statistics()["ethusdt@trade"].summary()
        overflows = [e for e in events if isinstance(e, Overflow)]
        assert [(e.stream, e.maxsize, e.policy, e.dropped) for e in overflows] == [
            ("ethusdt@trade", 4, "drop_oldest", 1)
        ]
        release.set()
        fake.wait_for(lambda f: len(delivered) == 5)
        assert delivered == [1, 37, 38, 39, 40]
    finally:
        release.set()
        subscription.dispose()
        loop.dispose()
    fake.wait_for(lambda f: not f.open_connections)


def test_error_on_a_live_stream_closes_its_socket(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    consumer_thread = TestScheduler()  # the consumer does not run until the test says so
    consumer = Consumer()
    bounded = rbo.observe_on_bounded(consumer_thread, 3)
    streams.trades("ETHUSDT").pipe(bounded).subscribe(consumer)
    fake.wait_for(lambda f: len(f.open_connections) == 1)
    for trade_id in range(1, 5):
        fake.publish("ethusdt@trade", trade(trade_id))
    fake.wait_for(lambda f: not f.open_connections)  # trade 4 overflowed: socket closed
    assert streams.statistics() == {}
    consumer_thread.advance_by(1)
    assert [t["t"] for t in consumer.got[:3]] == [1, 2, 3]
    kind, error = consumer.got[3]
    assert kind == "error"
    assert isinstance(error, QueueOverflow)
    assert len(consumer.got) == 4
