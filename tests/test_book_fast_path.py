"""The order book's hot path against the reference paths it replaces.

``read_diff`` plus ``PersistentBook.apply_json`` (a depthUpdate read and applied without a
model) against ``DepthUpdate.from_dict`` plus ``apply``; ``BookSync.admits``/``applied`` and
``on_update`` against ``on_event``; ``PersistentBook`` built up from and emptied down to
nothing against ``LocalBook``; the pipeline fed through the fast path and through the model
path at once, against a reference book.
"""

from __future__ import annotations

import random
import threading
from decimal import Decimal
from typing import Any

import pytest

from rxbinance import BinanceStreams, order_book
from rxbinance.models import DepthUpdate, ParseError
from rxbinance.pipelines import OrderBook
from rxbinance.pipelines._book import PRICE_CACHE_SIZE, PersistentBook
from rxbinance.protocol.book import BookSync, LocalBook, SyncAction, read_diff
from rxbinance.testing import ScriptedTransport

D = Decimal


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "e": "depthUpdate",
        "E": 1_700_000_000_000,
        "s": "BNBBTC",
        "U": 157,
        "u": 160,
        "b": [["0.0024", "10"], ["0.0023", "0.00000000"]],
        "a": [["0.0026", "100"]],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _ABSENT}


_ABSENT = object()

# Payloads the fast path takes: it must give exactly what the model gives.
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("spot", payload()),
    ("futures pu and T", payload(pu=149, T=1_700_000_000_001)),
    ("null pu and T", payload(pu=None, T=None)),
    ("empty sides", payload(b=[], a=[])),
    ("spellings of one price", payload(b=[["0.35130000", "1"], ["0.3513", "2"]])),
    ("extra keys", payload(x="ignored", stream="not a wrapper")),
    ("negative and exponent numbers", payload(b=[["1E+2", "-1"], ["0", "2.5e-3"]])),
    ("whitespace Decimal accepts", payload(a=[[" 5.0 ", "1_000"]])),
]

# Rarer forms the model parses: the fast path leaves them to it.
RARE: list[tuple[str, dict[str, Any]]] = [
    ("E as a digit string", payload(E="1700000000000")),
    ("T as a digit string", payload(T="1700000000000")),
    ("levels a tuple", payload(b=(("1", "2"),))),
]

# Faults: the fast path leaves them to the model, which names them.
DECLINED: list[tuple[str, dict[str, Any] | Any]] = [
    ("another event type", payload(e="depthUpdat")),
    ("give-up message", {"e": "error", "m": "gave up"}),
    ("no e", payload(e=_ABSENT)),
    ("U a string", payload(U="x")),
    ("U a bool", payload(U=True)),
    ("u missing", payload(u=_ABSENT)),
    ("s not a string", payload(s=5)),
    ("pu a string", payload(pu="149")),
    ("levels an object", payload(a={"1": "2"})),
    ("a level of three", payload(b=[["1", "2", "3"]])),
    ("a level of one", payload(b=[["1"]])),
    ("a level a string", payload(b=["123"])),
    # Two characters would unpack as a [price, quantity] pair: refused like any string.
    ("a level a string of two", payload(b=["12"])),
    ("a numeric price", payload(b=[[1.5, "2"]])),
    ("a numeric quantity", payload(b=[["1.5", 2]])),
    ("an unhashable price", payload(a=[[["1"], "2"]])),
    ("a NaN price", payload(b=[["NaN", "1"]])),
    ("an infinite quantity", payload(a=[["1", "Infinity"]])),
    ("not a number", payload(a=[["1", "abc"]])),
    ("b missing", payload(b=_ABSENT)),
]


def fields_of(event: DepthUpdate) -> tuple[Any, ...]:
    return (
        event.symbol,
        event.event_time,
        event.first_update_id,
        event.final_update_id,
        event.prev_final_update_id,
    )


def loaded() -> PersistentBook:
    book = PersistentBook()
    book.load([(D("0.0022"), D(1)), (D("0.0024"), D(3))], [(D("0.0027"), D(2))])
    return book


def everything(book: PersistentBook) -> tuple[list[Any], list[Any], int, int]:
    view = book.view("X", 0, None)
    return view.bids(), view.asks(), view.bid_levels, view.ask_levels


@pytest.mark.parametrize("warm", [False, True], ids=["cold cache", "warm cache"])
@pytest.mark.parametrize(("case", "message"), ACCEPTED, ids=[c for c, _ in ACCEPTED])
def test_read_and_apply_json_give_what_the_model_gives(
    case: str, message: dict[str, Any], warm: bool
) -> None:
    model = DepthUpdate.from_dict(message)
    fields = read_diff(message)
    assert fields is not None, case
    assert fields[:5] == fields_of(model)
    fast, reference = loaded(), loaded()
    if warm:  # the same prices seen before: Decimals from the cache
        fast.apply_json(fields[5], fields[6])
        reference.apply(model.bids, model.asks)
    fast.apply_json(fields[5], fields[6])
    reference.apply(model.bids, model.asks)
    assert everything(fast) == everything(reference)
    for level in fast.top_bids(100) + fast.top_asks(100):
        assert [type(x) for x in level] == [Decimal, Decimal]


@pytest.mark.parametrize(("case", "message"), RARE, ids=[c for c, _ in RARE])
def test_read_diff_leaves_rarer_forms_to_the_model(case: str, message: dict[str, Any]) -> None:
    assert read_diff(message) is None, case
    DepthUpdate.from_dict(message)  # the pipeline's slow path takes it


@pytest.mark.parametrize(("case", "message"), DECLINED, ids=[c for c, _ in DECLINED])
def test_faults_are_refused_whole_and_left_to_the_model(case: str, message: Any) -> None:
    fields = read_diff(message)
    if fields is not None:  # the fault is in a level: apply_json refuses the whole event
        book = loaded()
        before = everything(book)
        with pytest.raises((ValueError, TypeError, ArithmeticError)):
            book.apply_json(fields[5], fields[6])
        assert everything(book) == before, case  # not even the good levels before the bad one
        assert all(type(k) is str and v.is_finite() for k, v in book._prices.items())
    if type(message) is dict and message.get("e") == "depthUpdate":
        with pytest.raises(ParseError):
            DepthUpdate.from_dict(message)


def test_a_bad_ask_undoes_the_good_bids_before_it() -> None:
    book = loaded()
    before = everything(book)
    with pytest.raises(ArithmeticError):
        book.apply_json([["0.0024", "0"], ["0.0023", "5"]], [["0.0027", "1"], ["0.0028", "x"]])
    assert everything(book) == before


def test_the_price_cache_starts_afresh_when_full() -> None:
    book = PersistentBook()
    book._prices.update({f"{i}.5": D(i) for i in range(PRICE_CACHE_SIZE + 1)})
    book.apply_json([["1.5", "1"]], [])
    assert book.top_bids(5) == [(D("1.5"), D(1))]  # not the stale D(1) stored for "1.5"
    assert book._prices == {"1.5": D("1.5")}


# -- on_update against on_event --------------------------------------------------------------


def random_stream(rng: random.Random, futures: bool) -> list[Any]:
    """Snapshots and diff events with overlaps, duplicates, gaps and crossed books."""
    items: list[Any] = []
    last = 1000
    for _ in range(400):
        roll = rng.random()
        if roll < 0.05:
            bids = [(D(p), D(rng.randint(1, 5))) for p in rng.sample(range(90, 100), 5)]
            asks = [(D(p), D(rng.randint(1, 5))) for p in rng.sample(range(101, 111), 5)]
            items.append((last + rng.randint(-3, 3), bids, asks))
            continue
        first = last + 1 + (rng.randint(1, 3) if roll < 0.1 else rng.randint(-2, 0))
        final = max(first, first + rng.randint(0, 3))
        pu = last if rng.random() > 0.05 else last - 1
        bids = [(D(rng.randint(85, 100)), D(rng.choice("0123"))) for _ in range(rng.randint(0, 4))]
        asks = [(D(rng.randint(100, 115)), D(rng.choice("0123"))) for _ in range(rng.randint(0, 4))]
        items.append(
            DepthUpdate(
                event_time=0,
                symbol="BNBBTC",
                first_update_id=first,
                final_update_id=final,
                bids=tuple(bids),
                asks=tuple(asks),
                prev_final_update_id=pu if futures else None,
            )
        )
        last = max(last, final)
    return items


@pytest.mark.parametrize("futures", [False, True], ids=["spot", "usdm"])
@pytest.mark.parametrize("seed", range(5))
def test_on_update_and_admits_follow_the_same_rules_as_on_event(futures: bool, seed: int) -> None:
    by_event = BookSync("BNBBTC", futures=futures)
    by_fields = BookSync("bnbbtc", futures=futures)
    by_fields.book = PersistentBook()
    # As the pipeline does: levels applied by the caller when admitted, on_update otherwise.
    by_admits = BookSync("BNBBTC", futures=futures)
    by_admits.book = PersistentBook()
    seen = set()
    admitted = 0
    for item in random_stream(random.Random(seed), futures):
        if isinstance(item, DepthUpdate):
            expected = by_event.on_event(item)
            fields = (item.first_update_id, item.final_update_id, item.prev_final_update_id)
            got = by_fields.on_update(*fields, item.bids, item.asks)
            if by_admits.admits(*fields):
                admitted += 1
                by_admits.book.apply(item.bids, item.asks)
                also = by_admits.applied(item.final_update_id)
            else:
                also = by_admits.on_update(*fields, item.bids, item.asks)
        else:
            expected = by_event.on_snapshot(*item)
            got = by_fields.on_snapshot(*item)
            also = by_admits.on_snapshot(*item)
        assert got is expected
        assert also is expected
        seen.add(got)
        for sync in (by_fields, by_admits):
            assert sync.statistics() == by_event.statistics()
            assert sync.reason == by_event.reason
            assert sync.book.top_bids(100) == by_event.book.top_bids(100)
            assert sync.book.top_asks(100) == by_event.book.top_asks(100)
    assert seen == set(SyncAction)  # every branch was taken
    assert 0 < admitted <= by_event.statistics().applied  # (the rest applied from the buffer)


def test_on_update_refuses_a_futures_event_without_pu() -> None:
    sync = BookSync("BNBBTC", futures=True)
    with pytest.raises(ValueError, match="pu"):
        sync.on_update(1, 2, None, (), ())
    assert sync.statistics().events == 0


# -- PersistentBook from and to nothing --------------------------------------------------------


def test_persistent_book_grows_from_empty_and_shrinks_to_empty() -> None:
    rng = random.Random(9)
    persistent, reference = PersistentBook(), LocalBook()
    kept: list[tuple[OrderBook, list[Any], list[Any]]] = []
    prices = list(range(1, 700))
    for phase in ("ascending", "descending", "random", "remove all"):
        order = {
            "ascending": prices,
            "descending": prices[::-1],
            "random": rng.sample(prices, len(prices)),
            "remove all": rng.sample(prices, len(prices)),
        }[phase]
        for start in range(0, len(order), 7):  # events of 7 levels: splits, merges, emptied chunks
            qty = "0" if phase == "remove all" else None
            bids = [(D(p), D(qty or rng.choice("0123"))) for p in order[start : start + 7]]
            asks = [(D(p + 1000), q) for p, q in bids]
            persistent.apply(bids, asks)
            reference.apply(bids, asks)
            assert persistent.best_bid() == reference.best_bid(), phase
            assert persistent.best_ask() == reference.best_ask(), phase
            view = persistent.view("X", start, None)
            kept.append((view, reference.top_bids(10**6), reference.top_asks(10**6)))
            assert view.bid_levels == len(reference.bids)
    assert persistent.best_bid() is None
    assert persistent.best_ask() is None
    for view, all_bids, all_asks in kept:  # every view still shows its own moment
        assert view.bids() == all_bids
        assert view.asks() == all_asks


# -- the pipeline: both paths in one stream ------------------------------------------------------


class _Snapshot:
    def __init__(self, last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.body = {"lastUpdateId": last_update_id, "bids": bids, "asks": asks}

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        return self.body


def test_pipeline_books_are_the_same_whichever_path_read_each_event() -> None:
    """Plain events take the fast path, events with E as a digit string the model's path;
    every book emitted equals a reference BookSync fed the models, and the cache does not leak
    one spelling's Decimal into another's level."""
    rng = random.Random(3)
    bids = [[f"{p}.00", str(rng.randint(1, 9))] for p in range(80, 100)]
    asks = [[f"{p}.00", str(rng.randint(1, 9))] for p in range(101, 121)]
    payloads = []
    last = 499  # the snapshot's lastUpdateId: the first event starts right after it
    for n in range(600):
        levels = {
            side: [
                [rng.choice(("{}", "{}.0", "{}.00000000")).format(rng.randint(lo, hi)), q]
                for _ in range(rng.randint(0, 6))
                for q in [rng.choice(("0", "0.00000000", "1", "2.5", "3"))]
            ]
            for side, lo, hi in (("b", 70, 100), ("a", 101, 130))
        }
        message = payload(U=last + 1, u=last + rng.randint(1, 3), b=levels["b"], a=levels["a"])
        message["s"] = "BTCUSDT"
        if n % 3 == 0:
            message["E"] = str(message["E"])  # the model's path
        last = message["u"]
        payloads.append(message)

    reference = BookSync("BTCUSDT")
    reference.on_snapshot(
        499,
        [(D(p), D(q)) for p, q in bids],
        [(D(p), D(q)) for p, q in asks],
    )
    expected = []
    for message in payloads:
        if reference.on_event(DepthUpdate.from_dict(message)) is SyncAction.UPDATED:
            expected.append((reference.book.top_bids(10**6), reference.book.top_asks(10**6)))
        else:
            expected.append(None)  # a crossed book: the pipeline resyncs and emits nothing
    assert expected.count(None) == 0  # bids stay below 101, asks above 100: never crossed

    transport = ScriptedTransport()
    books: list[OrderBook] = []
    synced = threading.Event()

    def on_book(book: OrderBook) -> None:
        books.append(book)
        synced.set()

    with BinanceStreams(transport=transport) as streams:
        sub = order_book(streams, "BTCUSDT", rest=_Snapshot(499, bids, asks)).subscribe(on_book)
        sock = transport.sockets[0]
        sock.deliver(payloads[0])  # the first event asks for the snapshot: synced on a worker
        assert synced.wait(10)
        for message in payloads[1:]:
            sock.deliver(message)
        sub.dispose()
    assert [b.update_id for b in books] == [m["u"] for m in payloads]
    for book, (want_bids, want_asks) in zip(books, expected, strict=True):
        assert book.bids() == want_bids
        assert book.asks() == want_asks
