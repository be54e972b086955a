"""rxbinance.bridge (issue 14): Redis killed (SIGKILL) and restarted under a running publisher
and consumer. The restarted server comes back empty (no persistence): the hard case."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex.subject import Subject

from rxbinance.bridge import consume, publish
from rxbinance.events import Gap
from tests.conftest import Collector
from tests.redis_server import RedisServer, running_redis

KEY = "rxbinance:btcusdt@trade"


def trade(i: int) -> dict[str, Any]:
    return {"e": "trade", "E": i, "s": "BTCUSDT", "t": i, "p": "1.0", "q": "2", "T": i, "m": True}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with running_redis() as redis_server:
        yield redis_server


@pytest.fixture
def no_threads_left() -> Iterator[None]:
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("rxbinance-bridge:"):
            thread.join(5)
    assert [t.name for t in threading.enumerate() if t.name.startswith("rxbinance-bridge")] == []


FAST = {"retry_delay": 0.02, "max_retry_delay": 0.2}


def test_a_restart_with_a_big_enough_buffer_loses_and_repeats_nothing(
    server: RedisServer, no_threads_left: None
) -> None:
    source: Subject[Any] = Subject()
    consumed = Collector()
    subscription = consume(server.url, KEY, **FAST).subscribe(consumed)
    publisher = publish(source, server.url, buffer=10_000, **FAST)
    gaps = Collector()
    publisher.events.subscribe(gaps)
    for i in range(1, 101):
        source.on_next(trade(i))
    consumed.wait_count(100)

    server.kill()
    for i in range(101, 201):  # while Redis is away: held in the buffer
        source.on_next(trade(i))
    server.restart()
    for i in range(201, 301):
        source.on_next(trade(i))

    consumed.wait_count(300, timeout=20)
    assert publisher.flush(10)
    publisher.dispose()
    assert [m["t"] for m in consumed.items] == list(range(1, 301))  # none lost, none repeated
    stats = publisher.statistics()
    assert stats.reconnects >= 1
    assert stats.dropped == 0
    assert gaps.items == []
    subscription.dispose()


def test_what_the_buffer_cannot_hold_is_a_gap_with_its_bounds(
    server: RedisServer, no_threads_left: None
) -> None:
    source: Subject[Any] = Subject()
    consumed = Collector()
    subscription = consume(server.url, KEY, **FAST).subscribe(consumed)
    publisher = publish(source, server.url, buffer=10, **FAST)
    gaps = Collector()
    publisher.events.subscribe(gaps)
    for start in (1, 11):  # never more than the buffer at once while Redis is up
        for i in range(start, start + 10):
            source.on_next(trade(i))
        assert publisher.flush(10)
    consumed.wait_count(20)

    server.kill()
    for i in range(21, 61):  # 21..30 fit the buffer; 31..60 are dropped
        source.on_next(trade(i))
    server.restart()
    assert publisher.flush(20)  # 21..30 written: the buffer has room again
    source.on_next(trade(61))  # the hole closes here
    consumed.wait_count(20 + 10 + 1 + 1, timeout=20)
    publisher.dispose()

    ids = [m["t"] if isinstance(m, dict) else m for m in consumed.items]
    assert ids[:30] == list(range(1, 31))
    gap = ids[30]
    assert isinstance(gap, Gap)
    assert (gap.stream, gap.first, gap.last) == ("btcusdt@trade", 31, 60)
    assert "30 messages dropped" in gap.reason
    assert ids[31:] == [61]
    assert [(g.first, g.last) for g in gaps.items] == [(31, 60)]
    assert publisher.statistics().dropped == 30
    subscription.dispose()


def test_a_group_consumer_resumes_after_a_restart(
    server: RedisServer, no_threads_left: None
) -> None:
    source: Subject[Any] = Subject()
    consumed = Collector()
    subscription = consume(server.url, KEY, group="g", consumer="c1", **FAST).subscribe(consumed)
    with publish(source, server.url, **FAST) as publisher:
        for i in range(1, 11):
            source.on_next(trade(i))
        consumed.wait_count(10)
        server.restart()  # the group is gone with the data: it is made again
        for i in range(11, 21):
            source.on_next(trade(i))
        consumed.wait_count(20, timeout=20)
        assert publisher.flush(10)
    assert [m["t"] for m in consumed.items] == list(range(1, 21))
    subscription.dispose()


def test_closing_with_redis_away_reports_what_is_left_as_a_gap(
    server: RedisServer, no_threads_left: None
) -> None:
    source: Subject[Any] = Subject()
    publisher = publish(source, server.url, flush_timeout=0.2, **FAST)
    gaps = Collector()
    publisher.events.subscribe(gaps)
    source.on_next(trade(1))
    assert publisher.flush(10)
    server.kill()
    for i in range(2, 7):
        source.on_next(trade(i))
    publisher.dispose()  # waits flush_timeout for Redis, then gives up on 2..6
    assert [(g.stream, g.first, g.last) for g in gaps.items] == [("btcusdt@trade", 2, 6)]
    assert "publisher closed with Redis unreachable" in gaps.items[0].reason
    assert gaps.completed
    assert publisher.statistics().dropped == 5
    assert publisher.is_disposed


def test_maxlen_trims_approximately(server: RedisServer, no_threads_left: None) -> None:
    source: Subject[Any] = Subject()
    with publish(source, server.url, key="trimmed", maxlen=100) as publisher:
        for i in range(1, 3001):
            source.on_next(trade(i))
        assert publisher.flush(10)
    length = server.client().xlen("trimmed")
    # MAXLEN ~ trims whole macro nodes (100 entries each by default): at least 100 kept,
    # never the 3,000 written.
    assert 100 <= length <= 300
    newest = server.client().xrevrange("trimmed", count=1)[0][1]
    assert b'"t":3000' in newest[b"d"]
