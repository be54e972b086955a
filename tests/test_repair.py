"""Lossless sequenced streams against FakeBinance over real sockets: what a drop or a stall
missed is refilled from REST, in order, once; what REST cannot give is one exact Gap."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex.operators as ops

from rxbinance import BinanceStreams
from rxbinance.events import Gap, GaveUp, Reconnecting, RolledOver, Silent
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

FAST = {"retry_delay": 0.05, "max_retry_delay": 0.2}


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None) as server:
        yield server


def data(collector: Collector) -> list[dict[str, Any]]:
    return [m for m in collector.items if not isinstance(m, Gap)]


def gaps(collector: Collector) -> list[Gap]:
    return [m for m in collector.items if isinstance(m, Gap)]


def last_agg_id(fake: FakeBinance, symbol: str) -> int:
    return int(fake.with_market(lambda m: m.agg_trade_history(symbol))[-1]["a"])


def miss_some(fake: FakeBinance, stream: str, ticks: int = 60) -> None:
    """The connection drops and stays down while the market moves on, then comes back."""
    before = max(c.id for c in fake.connections)
    fake.refuse_connections()
    fake.drop_connections()
    fake.step(ticks)
    fake.accept_connections()
    fake.wait_for(
        lambda f: any(c.id > before and c.closed_at is None for c in f.connections), timeout=10
    )
    fake.wait_for_connections(1, stream=stream)


@pytest.mark.parametrize(
    ("kind", "field", "path", "weight"),
    [
        ("agg_trades", "a", "/api/v3/aggTrades", 4),
        ("trades", "t", "/api/v3/historicalTrades", 25),
    ],
)
def test_trades_missed_while_down_are_refilled_in_order_once(
    fake: FakeBinance, kind: str, field: str, path: str, weight: int
) -> None:
    stream = "btcusdt@aggTrade" if kind == "agg_trades" else "btcusdt@trade"

    def history() -> list[dict[str, Any]]:
        if kind == "agg_trades":
            return fake.with_market(lambda m: m.agg_trade_history("BTCUSDT"))
        return fake.trades("BTCUSDT")

    with fake.streams(**FAST) as streams:
        got = Collector()
        getattr(streams, kind)("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream=stream)
        fake.step(30)
        got.wait_for(lambda c: bool(data(c)))
        miss_some(fake, stream)
        fake.step(30)
        final = history()[-1][field]
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1][field] == final)
        stats = streams.statistics()[stream].repair
    ids = [m[field] for m in data(got)]
    assert ids == list(range(ids[0], final + 1))  # nothing lost, nothing twice, in order
    assert gaps(got) == []
    # The refilled ones are Binance's own trades (the fake's true history).
    truth = {t[field]: t for t in history()}
    for message in data(got):
        expected = truth[message[field]]
        assert (message["p"], message["q"], message["T"], message["m"]) == (
            expected["p"], expected["q"], expected["T"], expected["m"]
        )  # fmt: skip
    assert stats is not None
    assert stats.holes >= 1
    assert stats.repaired > 0
    assert stats.rest_weight == weight * stats.rest_calls
    calls = [r for r in fake.rest_requests if r.path == path]
    assert calls
    assert all("fromId=" in r.query for r in calls)


def test_a_short_stall_loses_nothing(fake: FakeBinance) -> None:
    # Shorter than stall_timeout: the socket stays up, the ids jump, and the hole is refilled.
    with fake.streams(**FAST) as streams:
        got = Collector()
        streams.agg_trades("ETHUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="ethusdt@aggTrade")
        fake.step(20)
        got.wait_for(lambda c: bool(data(c)))
        fake.stall()
        fake.step(40)  # dropped by the stalled server
        fake.unstall()
        fake.step(20)
        final = last_agg_id(fake, "ETHUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == final)
        assert len(fake.attempts) == 1  # no reconnect
    ids = [m["a"] for m in data(got)]
    assert ids == list(range(ids[0], final + 1))


def test_without_rest_every_hole_is_one_exact_gap_in_place(fake: FakeBinance) -> None:
    # No rest_url next to an own ws_url: REST cannot be used, so the hole is reported.
    with BinanceStreams(ws_url=fake.ws_url, **FAST) as streams:
        events = Collector()
        streams.events.pipe(ops.filter(lambda e: isinstance(e, Gap))).subscribe(events)
        got = Collector()
        streams.agg_trades("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@aggTrade")
        fake.step(30)
        before = last_agg_id(fake, "BTCUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == before)  # all heard
        miss_some(fake, "btcusdt@aggTrade")
        fake.step(30)
        final = last_agg_id(fake, "BTCUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == final)
        events.wait_count(1)
    (gap,) = gaps(got)
    index = got.items.index(gap)
    after = got.items[index + 1]["a"]
    assert got.items[index - 1]["a"] == before
    assert (gap.first, gap.last) == (before + 1, after - 1)  # exactly the ids never received
    assert gap.stream == "btcusdt@aggTrade"
    assert gap.reason.startswith("REST refused")
    assert "rest_url" in gap.reason
    assert events.items == [gap]
    ids = [m["a"] for m in data(got)]
    assert ids == sorted(set(ids))


def test_a_refused_rest_connection_costs_no_weight(fake: FakeBinance) -> None:
    # A port bound but not listening: every REST connection is refused, nothing reaches Binance,
    # so the repair's retries spend none of the shared budget (other repairs keep it).
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    rest_url = f"http://127.0.0.1:{refused.getsockname()[1]}"
    try:
        with BinanceStreams(ws_url=fake.ws_url, rest_url=rest_url, **FAST) as streams:
            got = Collector()
            streams.agg_trades("BTCUSDT").subscribe(got)
            fake.wait_for_connections(1, stream="btcusdt@aggTrade")
            fake.step(30)
            before = last_agg_id(fake, "BTCUSDT")
            got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == before)
            miss_some(fake, "btcusdt@aggTrade")
            fake.step(30)
            got.wait_for(lambda c: bool(gaps(c)))
            stats = streams.statistics()["btcusdt@aggTrade"].repair
            spent = streams.context.budget.spent
    finally:
        refused.close()
    (gap,) = gaps(got)
    assert gap.reason.startswith("REST failed 5 times")
    assert "refused" in gap.reason.lower()
    assert stats is not None
    assert stats.rest_calls == 5
    assert stats.rest_weight == 0
    assert spent == 0


def test_backfill_off_reports_holes_and_uses_a_socket_of_its_own(fake: FakeBinance) -> None:
    with fake.streams(**FAST) as streams:
        plain, repaired = Collector(), Collector()
        streams.agg_trades("BTCUSDT", backfill=False).subscribe(plain)
        streams.agg_trades("BTCUSDT").subscribe(repaired)
        fake.wait_for_connections(2, stream="btcusdt@aggTrade")
        fake.step(30)
        plain.wait_for(lambda c: bool(data(c)))
        repaired.wait_for(lambda c: bool(data(c)))
        miss_some_all(fake)
        fake.step(30)
        final = last_agg_id(fake, "BTCUSDT")
        for c in (plain, repaired):
            c.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == final)
    (gap,) = gaps(plain)
    assert gap.reason == "backfill off"
    ids = [m["a"] for m in data(plain)]
    assert set(range(gap.first, gap.last + 1)).isdisjoint(ids)
    assert sorted(ids + list(range(gap.first, gap.last + 1))) == list(range(ids[0], final + 1))
    assert gaps(repaired) == []
    assert [m["a"] for m in data(repaired)] == list(range(data(repaired)[0]["a"], final + 1))


def miss_some_all(fake: FakeBinance) -> None:
    open_before = {c.id for c in fake.connections if c.closed_at is None}
    fake.refuse_connections()
    fake.drop_connections()
    fake.step(60)
    fake.accept_connections()
    fake.wait_for(
        lambda f: (
            len([c for c in f.connections if c.closed_at is None and c.id not in open_before])
            >= len(open_before)
        ),
        timeout=10,
    )


def test_closed_candles_missed_while_down_are_refilled(fake: FakeBinance) -> None:
    with fake.streams(**FAST) as streams:
        got = Collector()
        streams.klines("BTCUSDT", "1s").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        fake.step(30)
        got.wait_for(lambda c: any(m["k"]["x"] for m in data(c)))
        miss_some(fake, "btcusdt@kline_1s", ticks=80)  # several candles close unheard
        fake.step(30)
        got.wait_for(lambda c: sum(m["k"]["x"] for m in data(c)) >= 8)
        stats = streams.statistics()["btcusdt@kline_1s"].repair
    closed = [m["k"]["t"] for m in data(got) if m["k"]["x"]]
    assert closed == list(range(closed[0], closed[-1] + 1000, 1000))  # every second, once
    assert gaps(got) == []
    assert stats is not None
    assert stats.repaired > 0
    # No update of a candle after its close.
    seen_closed: set[int] = set()
    for m in data(got):
        assert m["k"]["t"] not in seen_closed
        if m["k"]["x"]:
            seen_closed.add(m["k"]["t"])


def test_usdm_agg_trades_are_refilled_from_fapi(fake: FakeBinance) -> None:
    with fake.streams(market="usdm", **FAST) as streams:
        got = Collector()
        streams.agg_trades("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@aggTrade")
        fake.step(30)
        got.wait_for(lambda c: bool(data(c)))
        miss_some(fake, "btcusdt@aggTrade")
        fake.step(30)
        final = last_agg_id(fake, "BTCUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == final)
        stats = streams.statistics()["btcusdt@aggTrade"].repair
    ids = [m["a"] for m in data(got)]
    assert ids == list(range(ids[0], final + 1))
    assert any(r.path == "/fapi/v1/aggTrades" for r in fake.rest_requests)
    assert stats is not None
    assert stats.rest_weight == 20 * stats.rest_calls


def test_repeats_are_dropped(fake: FakeBinance) -> None:
    with fake.streams(**FAST) as streams:
        got = Collector()
        streams.agg_trades("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@aggTrade")
        base = {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "p": "1", "q": "1", "f": 1, "l": 1,
                "T": 1, "m": True, "M": True}  # fmt: skip
        for i in (10, 11, 11, 10, 12):
            fake.publish("btcusdt@aggTrade", {**base, "a": i})
        got.wait_for(lambda c: len(c.items) >= 3 and c.items[-1]["a"] == 12)
        assert [m["a"] for m in got.items] == [10, 11, 12]
        assert streams.statistics()["btcusdt@aggTrade"].repair.dropped == 2  # type: ignore[union-attr]


def test_a_diff_depth_hole_is_a_gap_and_the_stream_goes_on(fake: FakeBinance) -> None:
    with fake.streams(**FAST) as streams:
        got = Collector()
        streams.depth("BTCUSDT", speed=100).subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
        fake.step(10)
        got.wait_for(lambda c: bool(data(c)))
        fake.inject_gap("BTCUSDT", size=3)  # the next event skips 3 update ids
        fake.step(10)
        got.wait_for(lambda c: bool(gaps(c)) and got.items[-1] is not gaps(c)[0])
    (gap,) = gaps(got)
    index = got.items.index(gap)
    before, after = got.items[index - 1], got.items[index + 1]
    assert (gap.first, gap.last) == (before["u"] + 1, after["U"] - 1)
    assert gap.last - gap.first + 1 == 3
    assert gap.reason == "depth has no history"


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # spot: U continues the previous u; overlaps continue too; a repeat is dropped
        ([(1, 5, None), (6, 9, None), (8, 12, None), (10, 11, None)], [(1, 5), (6, 9), (8, 12)]),
        # USD-M: pu is the previous u (ids are not consecutive)
        ([(1, 5, 0), (9, 20, 5), (30, 31, 20)], [(1, 5), (9, 20), (30, 31)]),
    ],
)
def test_depth_chains_pass_whole(
    fake: FakeBinance, events: list[tuple[int, int, int | None]], expected: list[tuple[int, int]]
) -> None:
    usdm = events[0][2] is not None
    with fake.streams(market="usdm" if usdm else "spot", **FAST) as streams:
        got = Collector()
        streams.stream("btcusdt@depth@100ms").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
        for first, last, before in events:
            event = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last,
                     "b": [], "a": []}  # fmt: skip
            if before is not None:
                event["pu"] = before
            fake.publish("btcusdt@depth@100ms", event)
        got.wait_for(
            lambda c: len(c.items) >= len(expected) and c.items[-1]["U"] == expected[-1][0]
        )
    assert [(m["U"], m["u"]) for m in got.items] == expected


def test_a_broken_usdm_pu_chain_is_a_gap_naming_the_missed_ids(fake: FakeBinance) -> None:
    with fake.streams(market="usdm", **FAST) as streams:
        got = Collector()
        streams.stream("btcusdt@depth@100ms").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
        base = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "b": [], "a": []}
        fake.publish("btcusdt@depth@100ms", {**base, "U": 1, "u": 5, "pu": 0})
        fake.publish("btcusdt@depth@100ms", {**base, "U": 12, "u": 20, "pu": 11})  # 6..11 missed
        got.wait_count(3)
    first, gap, second = got.items
    assert isinstance(gap, Gap)
    assert (gap.first, gap.last) == (6, 11)
    assert (first["u"], second["U"]) == (5, 12)


def test_history_beyond_rest_retention_is_one_exact_gap(fake: FakeBinance) -> None:
    with fake.streams(**FAST) as streams:
        got = Collector()
        streams.agg_trades("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@aggTrade")
        fake.step(30)
        before = last_agg_id(fake, "BTCUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == before)
        first = max(c.id for c in fake.connections)
        fake.refuse_connections()
        fake.drop_connections()
        fake.step(60)
        # REST has forgotten the first trades of the outage: only the rest can be refilled.
        oldest = before + 6
        fake.with_market(lambda m: m.forget_history("BTCUSDT", before_agg_id=oldest))
        fake.accept_connections()
        fake.wait_for(lambda f: any(c.id > first and c.closed_at is None for c in f.connections))
        fake.step(30)
        final = last_agg_id(fake, "BTCUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == final)
    (gap,) = gaps(got)
    assert (gap.first, gap.last) == (before + 1, oldest - 1)
    assert gap.reason == "beyond REST retention"
    ids = [m["a"] for m in data(got)]
    assert ids == [i for i in range(ids[0], final + 1) if not gap.first <= i <= gap.last]
    index = got.items.index(gap)
    assert got.items[index - 1]["a"] == before
    assert got.items[index + 1]["a"] == oldest


def test_a_quiet_stream_is_reported_silent_once(fake: FakeBinance) -> None:
    with fake.streams(silence_timeout=0.2, **FAST) as streams:
        silent = Collector()
        streams.events.pipe(ops.filter(lambda e: isinstance(e, Silent))).subscribe(silent)
        got = Collector()
        streams.stream("btcusdt@avgPrice").subscribe(got)  # the paused market sends nothing
        fake.wait_for_connections(1, stream="btcusdt@avgPrice")
        silent.wait_count(1)
        (event,) = silent.items
        assert event.stream == "btcusdt@avgPrice"
        assert 0.2 <= event.seconds < 1.0
        fake.publish("btcusdt@avgPrice", {"e": "avgPrice", "E": 1, "s": "BTCUSDT", "i": "5m",
                                          "w": "1", "T": 1})  # fmt: skip
        got.wait_count(1)
        silent.wait_count(2)  # quiet again after the message: a new spell, reported again
        assert silent.items[1].stream == "btcusdt@avgPrice"


def test_silence_timeout_is_checked() -> None:
    with pytest.raises(ValueError, match="silence_timeout"):
        BinanceStreams(silence_timeout=0)


def test_close_during_a_repair_leaves_no_thread(fake: FakeBinance) -> None:
    import threading

    streams = fake.streams(**FAST)
    got = Collector()
    streams.agg_trades("BTCUSDT").subscribe(got)
    fake.wait_for_connections(1, stream="btcusdt@aggTrade")
    fake.step(20)
    got.wait_for(lambda c: bool(data(c)))
    fake.rest_fault(429, retry_after=30, times=None)  # the repair will wait for its weight
    miss_some(fake, "btcusdt@aggTrade")
    fake.step(20)
    fake.wait_for(lambda f: any(r.path == "/api/v3/aggTrades" for r in f.rest_requests))
    assert [t for t in threading.enumerate() if t.name.startswith("rxbinance-repair:")]
    streams.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("rxbinance-repair:")]
    assert got.completed


def test_many_rollovers_lose_and_repeat_nothing() -> None:
    # Binance ends connections at 24 h; the fake does at 1.5 s here. Rolling over at 0.5 s,
    # make-before-break, keeps every trade without REST and without a counted retry.
    with (
        FakeBinance(tick_interval=0.01, max_connection_age=1.5) as fake,
        fake.streams(rollover_after=0.5, max_retries=0, **FAST) as streams,
    ):
        events = Collector()
        streams.events.subscribe(events)
        trades, quotes = Collector(), Collector()
        streams.agg_trades("BTCUSDT").subscribe(trades)
        streams.book_ticker("BTCUSDT").subscribe(quotes)
        events.wait_for(
            lambda c: len([e for e in c.items if isinstance(e, RolledOver)]) >= 8, timeout=30
        )
        statistics = streams.statistics()["btcusdt@aggTrade"]
        stats = statistics.repair
        assert not trades.completed
    rolled = [e for e in events.items if isinstance(e, RolledOver)]
    assert statistics.rollovers >= len([e for e in rolled if e.stream == "btcusdt@aggTrade"]) > 0
    ids = [m["a"] for m in data(trades)]
    assert ids == list(range(ids[0], ids[-1] + 1))  # every trade once, in order
    assert gaps(trades) == []
    assert stats is not None
    assert stats.holes == 0  # the overlap covered every switch: nothing to repair
    updates = [m["u"] for m in quotes.items]
    assert updates == sorted(set(updates))  # quotes never repeat or go back
    assert not [e for e in events.items if isinstance(e, (Reconnecting, GaveUp))]
    assert {e.reason for e in events.items if isinstance(e, RolledOver)} == {"age"}


def test_redundant_connections_lose_nothing_when_one_drops_and_need_no_rest(
    fake: FakeBinance,
) -> None:
    with fake.streams(redundancy=2, **FAST) as streams:
        got, quotes = Collector(), Collector()
        streams.agg_trades("BTCUSDT").subscribe(got)
        streams.book_ticker("BTCUSDT").subscribe(quotes)
        fake.wait_for_connections(2, stream="btcusdt@aggTrade")
        fake.wait_for_connections(2, stream="btcusdt@bookTicker")
        fake.step(20)
        for _ in range(5):  # one copy at a time goes down; the other carries the stream
            fake.wait_for_connections(2, stream="btcusdt@aggTrade")
            copy = min(
                (c for c in fake.connections if c.closed_at is None and "aggTrade" in c.path),
                key=lambda c: c.id,
            )
            assert fake.drop_connections(only=copy.id) == 1
            fake.wait_for(lambda f, i=copy.id: f.connection(i).closed_at is not None)
            fake.step(20)
        final = last_agg_id(fake, "BTCUSDT")
        got.wait_for(lambda c: bool(data(c)) and data(c)[-1]["a"] == final)
        stats = streams.statistics()["btcusdt@aggTrade"]
    ids = [m["a"] for m in data(got)]
    assert ids == list(range(ids[0], final + 1))
    assert gaps(got) == []
    assert stats.redundancy is not None
    assert sum(stats.redundancy.first) == len(ids)
    first, repeats = stats.redundancy.first, stats.redundancy.repeats
    assert all(f + r > 0 for f, r in zip(first, repeats, strict=True))  # both copies delivered
    assert sum(repeats) > 0  # and what one had first, the other brought again: dropped
    assert stats.repair is not None
    updates = [m["u"] for m in quotes.items]
    assert updates == sorted(set(updates))
    assert not [r for r in fake.rest_requests if r.path == "/api/v3/aggTrades"]
