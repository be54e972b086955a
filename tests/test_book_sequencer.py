"""rxbinance.protocol.book: every branch of the spot and USD-M sync algorithms (binance-protocol.md
5.1, 5.2), the LocalBook, and a replay of the real captures in tests/data."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rxbinance.models import BookTicker, DepthUpdate, PartialDepth, parser_for
from rxbinance.protocol.book import BookSync, LocalBook, SyncAction

CAPTURES = Path(__file__).resolve().parent / "data"  # real Binance captures, see its README.md
D = Decimal

NOTHING = SyncAction.NOTHING
FETCH = SyncAction.FETCH_SNAPSHOT
UPDATED = SyncAction.UPDATED
RESYNC = SyncAction.RESYNC


def lv(*pairs: tuple[str, str]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((D(p), D(q)) for p, q in pairs)


def ev(
    first: int,
    final: int,
    bids: tuple[tuple[str, str], ...] = (),
    asks: tuple[tuple[str, str], ...] = (),
    pu: int | None = None,
    symbol: str = "BNBBTC",
) -> DepthUpdate:
    return DepthUpdate(
        event_time=0,
        symbol=symbol,
        first_update_id=first,
        final_update_id=final,
        bids=lv(*bids),
        asks=lv(*asks),
        prev_final_update_id=pu,
    )


@dataclass(frozen=True)
class Snap:
    last_update_id: int
    bids: tuple[tuple[str, str], ...] = (("10", "1"), ("9", "2"))
    asks: tuple[tuple[str, str], ...] = (("11", "1"), ("12", "2"))


Step = tuple[DepthUpdate | Snap, SyncAction]


def run(sync: BookSync, steps: list[Step]) -> None:
    for i, (item, expected) in enumerate(steps):
        if isinstance(item, Snap):
            action = sync.on_snapshot(item.last_update_id, lv(*item.bids), lv(*item.asks))
        else:
            action = sync.on_event(item)
        assert action is expected, f"step {i} ({item}): {action} != {expected}; {sync.reason}"


def book_of(sync: BookSync) -> tuple[dict[str, str], dict[str, str]]:
    return (
        {str(p): str(q) for p, q in sync.book.bids.items()},
        {str(p): str(q) for p, q in sync.book.asks.items()},
    )


# ---------------------------------------------------------------------------------------------
# Spot, table-driven: (id, steps, final state, final update id, counters to check)

SPOT_CASES: list[tuple[str, list[Step], str, int | None, dict[str, int]]] = [
    (
        "first event asks for a snapshot, later ones are buffered",
        [(ev(157, 160), FETCH), (ev(161, 165), NOTHING), (ev(166, 166), NOTHING)],
        "waiting_for_snapshot",
        None,
        {"buffered": 3, "events": 3},
    ),
    (
        "snapshot straddled by a buffered event",
        [(ev(157, 160), FETCH), (ev(161, 165), NOTHING), (Snap(158), UPDATED)],
        "synced",
        165,
        {"applied": 2, "ignored": 0, "buffered": 0},
    ),
    (
        "snapshot too old: refetch, buffer kept",
        [(ev(157, 160), FETCH), (Snap(100), FETCH), (ev(161, 162), NOTHING), (Snap(159), UPDATED)],
        "synced",
        162,
        {"snapshots": 2, "snapshots_rejected": 1, "applied": 2},
    ),
    (
        "snapshot two ids before the first event is too old",
        [(ev(157, 160), FETCH), (Snap(155), FETCH)],
        "waiting_for_snapshot",
        None,
        {"snapshots_rejected": 1, "buffered": 1},
    ),
    (
        "snapshot ending right before the first event lines up (L = U - 1)",
        [(ev(157, 160), FETCH), (Snap(156), UPDATED)],
        "synced",
        160,
        {"applied": 1, "snapshots_rejected": 0},
    ),
    (
        "buffered events with u <= lastUpdateId are dropped",
        [
            (ev(150, 155), FETCH),
            (ev(156, 160), NOTHING),
            (ev(161, 170), NOTHING),
            (Snap(160), UPDATED),
        ],
        "synced",
        170,
        {"ignored": 2, "applied": 1},
    ),
    (
        "snapshot newer than every buffered event: the book is the snapshot",
        [(ev(150, 155), FETCH), (Snap(200), UPDATED)],
        "synced",
        200,
        {"ignored": 1, "applied": 0},
    ),
    (
        "overlapping first event (U < L + 1 < u) is accepted",
        [(ev(100, 200), FETCH), (Snap(150), UPDATED)],
        "synced",
        200,
        {"applied": 1},
    ),
    (
        "first event ending exactly at L + 1 is applied",
        [(ev(100, 151), FETCH), (Snap(150), UPDATED)],
        "synced",
        151,
        {"applied": 1},
    ),
    (
        "gap inside the buffer: first remaining event does not reach L + 1",
        [
            (ev(157, 160), FETCH),
            (ev(165, 170), NOTHING),
            (ev(171, 172), NOTHING),
            (Snap(160), RESYNC),
        ],
        "waiting_for_snapshot",
        None,
        {"resyncs": 1, "buffered": 2, "ignored": 1},
    ),
    (
        "live: old and equal events are ignored, overlapping and contiguous ones applied",
        [
            (ev(157, 160), FETCH),
            (Snap(160), UPDATED),
            (ev(150, 159), NOTHING),
            (ev(158, 160), NOTHING),
            (ev(155, 163), UPDATED),
            (ev(164, 164), UPDATED),
        ],
        "synced",
        164,
        {"ignored": 3, "applied": 2},
    ),
    (
        "live gap: U > update id + 1 discards the book and keeps the event",
        [(ev(157, 160), FETCH), (Snap(160), UPDATED), (ev(162, 165), RESYNC)],
        "waiting_for_snapshot",
        None,
        {"resyncs": 1, "buffered": 1},
    ),
    (
        "after a gap, the gap event is the first buffered one",
        [
            (ev(157, 160), FETCH),
            (Snap(160), UPDATED),
            (ev(162, 165), RESYNC),
            (ev(166, 170), NOTHING),
            (Snap(160), FETCH),  # older than the first buffered U = 162
            (Snap(163), UPDATED),
        ],
        "synced",
        170,
        {"resyncs": 1, "snapshots_rejected": 1, "applied": 2, "ignored": 1},
    ),
    (
        "snapshot before any event: events are checked against it",
        [(Snap(160), UPDATED), (ev(150, 160), NOTHING), (ev(161, 161), UPDATED)],
        "synced",
        161,
        {"ignored": 1, "applied": 1},
    ),
    (
        "snapshot before any event, then a gap",
        [(Snap(160), UPDATED), (ev(170, 171), RESYNC)],
        "waiting_for_snapshot",
        None,
        {"resyncs": 1},
    ),
    (
        "snapshot while synced is ignored",
        [(ev(157, 160), FETCH), (Snap(160), UPDATED), (Snap(900, bids=(("1", "1"),)), NOTHING)],
        "synced",
        160,
        {"snapshots_rejected": 1},
    ),
]


@pytest.mark.parametrize(
    ("name", "steps", "state", "update_id", "counters"), SPOT_CASES, ids=[c[0] for c in SPOT_CASES]
)
def test_spot_sync(
    name: str, steps: list[Step], state: str, update_id: int | None, counters: dict[str, int]
) -> None:
    sync = BookSync("bnbbtc")
    run(sync, steps)
    assert sync.state == state
    assert sync.update_id == update_id
    stats = sync.statistics()
    assert stats.state == state
    for counter, value in counters.items():
        assert getattr(stats, counter) == value, counter
    if state != "synced":
        assert not sync.book.bids
        assert not sync.book.asks


def test_spot_levels_are_applied_in_order_and_quantity_zero_removes() -> None:
    sync = BookSync("BNBBTC")
    run(
        sync,
        [
            (ev(100, 105, bids=(("10", "5"), ("8", "1")), asks=(("12", "0"),)), FETCH),
            (ev(106, 107, bids=(("8", "0.00000000"), ("7", "0")), asks=(("13", "4"),)), NOTHING),
            (Snap(102), UPDATED),
        ],
    )
    # 10 updated, 8 added then removed, 7 removal of an absent level, 12 removed, 13 added.
    assert book_of(sync) == ({"10": "5", "9": "2"}, {"11": "1", "13": "4"})
    assert sync.book.best_bid() == (D("10"), D("5"))
    assert sync.book.best_ask() == (D("11"), D("1"))


def test_removing_an_absent_level_is_normal() -> None:
    sync = BookSync("BNBBTC")
    run(sync, [(Snap(10), UPDATED), (ev(11, 11, bids=(("5", "0"),), asks=(("50", "0"),)), UPDATED)])
    assert book_of(sync) == ({"10": "1", "9": "2"}, {"11": "1", "12": "2"})


def test_crossed_book_after_an_event_resyncs() -> None:
    sync = BookSync("BNBBTC")
    run(sync, [(Snap(10), UPDATED), (ev(11, 11, bids=(("11", "3"),)), RESYNC)])
    assert sync.state == "waiting_for_snapshot"
    assert "crossed" in (sync.reason or "")
    assert sync.book.best_bid() is None
    # Recovery: the next event is buffered and a snapshot lines up with it.
    run(sync, [(ev(12, 12, asks=(("11", "0"),)), NOTHING), (Snap(11), UPDATED)])
    assert sync.book.best_ask() == (D("12"), D("2"))


def test_locked_book_counts_as_crossed() -> None:
    sync = BookSync("BNBBTC")
    run(sync, [(Snap(10), UPDATED), (ev(11, 11, asks=(("10", "1"),)), RESYNC)])


def test_crossed_snapshot_resyncs_and_keeps_the_buffer() -> None:
    sync = BookSync("BNBBTC")
    run(
        sync,
        [(ev(9, 11), FETCH), (Snap(10, bids=(("12", "1"),), asks=(("11", "1"),)), RESYNC)],
    )
    assert sync.statistics().buffered == 1
    run(sync, [(Snap(10), UPDATED)])
    assert sync.update_id == 11


def test_reason_explains_gaps_and_refetches() -> None:
    sync = BookSync("BNBBTC")
    run(sync, [(ev(157, 160), FETCH), (Snap(100), FETCH)])
    assert sync.reason == "snapshot too old: lastUpdateId 100, first buffered U 157"
    run(sync, [(Snap(160), UPDATED), (ev(170, 171), RESYNC)])
    assert sync.reason == "gap: event U=170 after update id 160"


def test_reset_forgets_book_and_buffer() -> None:
    sync = BookSync("BNBBTC")
    run(sync, [(ev(157, 160), FETCH), (Snap(158), UPDATED)])
    sync.reset()
    assert (sync.state, sync.update_id, sync.book.best_bid()) == ("waiting_for_event", None, None)
    run(sync, [(ev(500, 501), FETCH), (Snap(499), UPDATED)])
    assert sync.update_id == 501
    assert sync.statistics().events == 2  # counters survive reset


def test_events_of_another_symbol_are_refused() -> None:
    sync = BookSync("bnbbtc")
    assert sync.symbol == "BNBBTC"
    with pytest.raises(ValueError, match="ETHBTC"):
        sync.on_event(ev(1, 2, symbol="ETHBTC"))
    assert sync.statistics().events == 0


# ---------------------------------------------------------------------------------------------
# USD-M futures, table-driven

FUTURES_CASES: list[tuple[str, list[Step], str, int | None, dict[str, int]]] = [
    (
        "first event straddles the snapshot, then the pu chain",
        [
            (ev(100, 110, pu=90), FETCH),
            (ev(111, 120, pu=110), NOTHING),
            (Snap(105), UPDATED),
            (ev(121, 130, pu=120), UPDATED),
        ],
        "synced",
        130,
        {"applied": 3},
    ),
    (
        "events with u < lastUpdateId are dropped",
        [(ev(90, 99, pu=80), FETCH), (ev(100, 110, pu=99), NOTHING), (Snap(100), UPDATED)],
        "synced",
        110,
        {"ignored": 1, "applied": 1},
    ),
    (
        "first event ending at lastUpdateId (u == L) is accepted",
        [(ev(95, 100, pu=90), FETCH), (ev(101, 104, pu=100), NOTHING), (Snap(100), UPDATED)],
        "synced",
        104,
        {"applied": 2},
    ),
    (
        "first event starting at lastUpdateId (U == L) is accepted",
        [(ev(100, 104, pu=90), FETCH), (Snap(100), UPDATED)],
        "synced",
        104,
        {"applied": 1},
    ),
    (
        "snapshot older than the first event: refetch",
        [(ev(100, 110, pu=90), FETCH), (Snap(99), FETCH)],
        "waiting_for_snapshot",
        None,
        {"snapshots_rejected": 1, "buffered": 1},
    ),
    (
        "update ids are not contiguous on futures: only pu counts",
        [
            (ev(100, 110, pu=90), FETCH),
            (Snap(105), UPDATED),
            (ev(117, 130, pu=110), UPDATED),  # U = prev u + 7: fine
            (ev(200, 201, pu=130), UPDATED),
        ],
        "synced",
        201,
        {"applied": 3, "resyncs": 0},
    ),
    (
        "pu chain broken: gap",
        [(ev(100, 110, pu=90), FETCH), (Snap(105), UPDATED), (ev(111, 120, pu=109), RESYNC)],
        "waiting_for_snapshot",
        None,
        {"resyncs": 1, "buffered": 1},
    ),
    (
        "pu chain broken inside the buffer",
        [
            (ev(100, 110, pu=90), FETCH),
            (ev(115, 120, pu=112), NOTHING),
            (ev(121, 125, pu=120), NOTHING),
            (Snap(105), RESYNC),
        ],
        "waiting_for_snapshot",
        None,
        {"resyncs": 1, "buffered": 2, "applied": 1},
    ),
    (
        "snapshot falls between two events: no straddle",
        [(ev(90, 99, pu=80), FETCH), (ev(105, 110, pu=99), NOTHING), (Snap(102), RESYNC)],
        "waiting_for_snapshot",
        None,
        {"ignored": 1, "resyncs": 1, "buffered": 1},
    ),
    (
        "stale event after sync is ignored",
        [(ev(100, 110, pu=90), FETCH), (Snap(105), UPDATED), (ev(95, 110, pu=80), NOTHING)],
        "synced",
        110,
        {"ignored": 1},
    ),
    (
        "snapshot newer than the buffer: the next event must straddle it",
        [
            (ev(90, 99, pu=80), FETCH),
            (Snap(150), UPDATED),
            (ev(100, 140, pu=99), NOTHING),
            (ev(141, 155, pu=140), UPDATED),
            (ev(156, 160, pu=155), UPDATED),
        ],
        "synced",
        160,
        {"ignored": 2, "applied": 2},
    ),
    (
        "snapshot newer than the buffer and the next event jumps past it",
        [(ev(90, 99, pu=80), FETCH), (Snap(150), UPDATED), (ev(151, 160, pu=140), RESYNC)],
        "waiting_for_snapshot",
        None,
        {"resyncs": 1},
    ),
]


@pytest.mark.parametrize(
    ("name", "steps", "state", "update_id", "counters"),
    FUTURES_CASES,
    ids=[c[0] for c in FUTURES_CASES],
)
def test_futures_sync(
    name: str, steps: list[Step], state: str, update_id: int | None, counters: dict[str, int]
) -> None:
    sync = BookSync("BNBBTC", futures=True)
    run(sync, steps)
    assert sync.state == state
    assert sync.update_id == update_id
    stats = sync.statistics()
    for counter, value in counters.items():
        assert getattr(stats, counter) == value, counter


def test_the_spot_rule_would_reject_what_futures_accepts() -> None:
    steps: list[Step] = [(ev(100, 110, pu=90), FETCH), (Snap(105), UPDATED)]
    spot = BookSync("BNBBTC")
    run(spot, steps)
    run(spot, [(ev(117, 130, pu=110), RESYNC)])


def test_futures_events_need_pu() -> None:
    sync = BookSync("BNBBTC", futures=True)
    with pytest.raises(ValueError, match="pu"):
        sync.on_event(ev(1, 2))


def test_futures_buffered_updates_supersede_earlier_ones() -> None:
    sync = BookSync("BNBBTC", futures=True)
    run(
        sync,
        [
            (ev(100, 110, bids=(("10", "7"),), pu=90), FETCH),
            (ev(111, 120, bids=(("10", "8"), ("9", "0")), pu=110), NOTHING),
            (Snap(105), UPDATED),
        ],
    )
    assert book_of(sync) == ({"10": "8"}, {"11": "1", "12": "2"})


# ---------------------------------------------------------------------------------------------
# LocalBook


def test_local_book_queries() -> None:
    book = LocalBook()
    assert (book.best_bid(), book.best_ask(), book.top_bids(5), book.crossed) == (
        None,
        None,
        [],
        False,
    )
    book.load(lv(("9", "1"), ("10", "2"), ("8", "0"), ("7", "3")), lv(("12", "1"), ("11", "5")))
    assert book.best_bid() == (D("10"), D("2"))
    assert book.best_ask() == (D("11"), D("5"))
    assert book.top_bids(2) == list(lv(("10", "2"), ("9", "1")))
    assert book.top_bids(10) == list(lv(("10", "2"), ("9", "1"), ("7", "3")))  # 8 had qty 0
    assert book.top_asks(1) == list(lv(("11", "5")))
    assert book.top_asks(0) == book.top_bids(-1) == []
    with pytest.raises(TypeError):
        book.bids[D("1")] = D("1")  # type: ignore[index]


def test_prices_equal_in_value_are_one_level() -> None:
    book = LocalBook()
    book.load(lv(("0.35130000", "1")), ())
    book.apply(lv(("0.3513", "2")), ())
    assert len(book.bids) == 1
    assert book.top_bids(5) == [(D("0.3513"), D("2"))]
    book.apply(lv(("0.351300", "0")), ())
    assert book.best_bid() is None


def test_local_book_matches_a_naive_model_under_random_updates() -> None:
    rng = random.Random(1234)
    book = LocalBook()
    naive: dict[str, dict[Decimal, Decimal]] = {"b": {}, "a": {}}
    book.load((), ())
    for _ in range(3000):
        side = rng.choice("ba")
        base = 100 if side == "b" else 200
        levels = []
        for _ in range(rng.randint(1, 6)):
            price = D(base + rng.randint(-60, 60)) / 10
            qty = D(0) if rng.random() < 0.3 else D(rng.randint(1, 999)) / 100
            levels.append((price, qty))
            if qty:
                naive[side][price] = qty
            else:
                naive[side].pop(price, None)
        book.apply(levels if side == "b" else (), levels if side == "a" else ())
        bids = sorted(naive["b"].items(), reverse=True)
        asks = sorted(naive["a"].items())
        assert book.top_bids(10) == bids[:10]
        assert book.top_asks(10) == asks[:10]
        assert book.best_bid() == (bids[0] if bids else None)
    assert dict(book.bids) == naive["b"]
    assert dict(book.asks) == naive["a"]
    assert book.top_bids(10_000) == sorted(naive["b"].items(), reverse=True)


# ---------------------------------------------------------------------------------------------
# Replay of the real captures


def _replay_inputs() -> list[tuple[float, str, Any]]:
    """Frames and REST snapshots of the capture, merged in receive-time order."""
    items: list[tuple[float, str, Any]] = []
    for line in (CAPTURES / "binance-spot.ws.txt").read_text().splitlines()[1:]:
        if line:
            when, _, frame = line.partition(": ")
            items.append((float(when), "frame", json.loads(frame)))
    for line in (CAPTURES / "binance-spot.http.txt").read_text().splitlines():
        if line:
            url, _, rest = line.partition(" -> ")
            when, _, body = rest.partition(": ")
            symbol = url.partition("symbol=")[2].partition("&")[0]
            items.append((float(when), "snapshot", (symbol, json.loads(body))))
    items.sort(key=lambda item: item[0])
    return items


def test_replay_of_the_captures_syncs_first_time_and_matches_every_book_ticker() -> None:
    items = _replay_inputs()
    parsers: dict[str, Any] = {}
    diffs: dict[str, list[DepthUpdate]] = {}
    tickers: dict[str, dict[int, BookTicker]] = {}
    snapshots: dict[str, PartialDepth] = {}
    for _, kind, obj in items:
        if kind == "snapshot":
            symbol, body = obj
            snapshots[symbol] = PartialDepth.from_dict(body, symbol=symbol)
            continue
        stream = obj["stream"]
        parse = parsers.setdefault(stream, parser_for(stream))
        model = parse(obj["data"])
        if isinstance(model, DepthUpdate):
            diffs.setdefault(model.symbol, []).append(model)
        elif isinstance(model, BookTicker):
            tickers.setdefault(model.symbol, {})[model.update_id] = model
    assert set(snapshots) == set(diffs) == {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"}

    # The checkpoints, worked out from the raw data alone: bookTickers whose u is the final u
    # of a diff that comes after the snapshot.
    expected_checkpoints = {
        symbol: sum(
            1
            for d in diffs[symbol]
            if d.final_update_id > snapshots[symbol].last_update_id
            and d.final_update_id in tickers.get(symbol, {})
        )
        for symbol in diffs
    }
    assert expected_checkpoints == {"NKNUSDT": 19, "LRCBTC": 6, "BLZETH": 1, "RUNEEUR": 0}

    syncs: dict[str, BookSync] = {}
    matched = dict.fromkeys(diffs, 0)
    for _, kind, obj in items:
        if kind == "snapshot":
            symbol = obj[0]
            snapshot = snapshots[symbol]
            action = syncs[symbol].on_snapshot(
                snapshot.last_update_id, snapshot.bids, snapshot.asks
            )
            assert action is UPDATED, (symbol, syncs[symbol].reason)
            continue
        model = parsers[obj["stream"]](obj["data"])
        if not isinstance(model, DepthUpdate):
            continue
        sync = syncs.setdefault(model.symbol, BookSync(model.symbol))
        action = sync.on_event(model)
        assert action is not RESYNC, (model.symbol, sync.reason)
        if action is UPDATED:
            ticker = tickers.get(model.symbol, {}).get(model.final_update_id)
            if ticker is not None:
                assert sync.book.best_bid() == (ticker.bid_price, ticker.bid_quantity)
                assert sync.book.best_ask() == (ticker.ask_price, ticker.ask_quantity)
                matched[model.symbol] += 1

    assert matched == expected_checkpoints
    for symbol, sync in syncs.items():
        stats = sync.statistics()
        # Synced on the first snapshot, never lost it.
        assert (stats.state, stats.snapshots, stats.snapshots_rejected, stats.resyncs) == (
            "synced",
            1,
            0,
            0,
        ), symbol
        assert stats.update_id == diffs[symbol][-1].final_update_id
        assert stats.applied + stats.ignored == stats.events == len(diffs[symbol])
        assert not sync.book.crossed
