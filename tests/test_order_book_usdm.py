"""rxbinance.order_book on USD-M futures: the pu chain, over a real /public socket.

USD-M diff events carry ``pu`` (the previous event's ``u``) and their ids are not contiguous:
continuity is ``pu == previous u``, never ``U == previous u + 1`` (binance-protocol.md 5.2).
The events are scripted through FakeBinance's /public route; snapshots come from a scripted REST
stand-in, as the captures replay does.
"""

from __future__ import annotations

import itertools
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
import websocket

from rxbinance import BinanceStreams
from rxbinance.events import BookResyncing
from rxbinance.models import parse
from rxbinance.pipelines import order_book
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

D = Decimal
STREAM = "btcusdt@depth@100ms"


class ScriptedRest:
    """Answers /fapi/v1/depth with the next scripted snapshot."""

    def __init__(self, *snapshots: dict[str, Any]) -> None:
        self.snapshots = list(snapshots)
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        with self.lock:
            self.calls.append((symbol, limit))
            return self.snapshots.pop(0)


def snapshot(last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"lastUpdateId": last_update_id, "E": 1, "T": 1, "bids": bids, "asks": asks}


def diff(first: int, final: int, prev: int, bids: Any = (), asks: Any = ()) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": 1,
        "T": 1,
        "s": "BTCUSDT",
        "U": first,
        "u": final,
        "pu": prev,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }


def test_usdm_book_follows_the_pu_chain_and_resyncs_on_a_break() -> None:
    rest = ScriptedRest(
        snapshot(100, [["10.0", "1"], ["9.9", "2"]], [["10.1", "1"], ["10.2", "3"]]),
        snapshot(120, [["10.0", "5"]], [["10.3", "7"]]),
    )
    with (
        FakeBinance(tick_interval=None) as fake,
        BinanceStreams(market="usdm", ws_url=fake.ws_url, rest_url=fake.rest_url) as streams,
    ):
        events = Collector()
        streams.events.subscribe(events)
        books = Collector()
        sub = order_book(streams, "BTCUSDT", limit=1000, speed=100, rest=rest).subscribe(books)
        (conn,) = fake.wait_for_connections(1, stream=STREAM)
        assert conn.path == f"/public/ws/{STREAM}"  # book data lives on /public

        fake.publish(STREAM, diff(90, 95, 89, bids=[("9.8", "4")]))  # older than the snapshot
        books.wait_count(1)  # synced: the snapshot itself is the book at lastUpdateId
        # Straddles lastUpdateId (U <= 100 <= u): the first event applied.
        fake.publish(STREAM, diff(96, 102, 95, bids=[("10.0", "0"), ("9.95", "1.5")]))
        # Ids jump from 102 to 107, but pu == 102: contiguous on USD-M.
        fake.publish(STREAM, diff(107, 108, 102, asks=[("10.1", "0.5")]))
        books.wait_count(3)
        synced, first, second = books.items[:3]
        assert synced.update_id == 100
        assert synced.bids() == [(D("10.0"), D("1")), (D("9.9"), D("2"))]  # 9.8 was stale
        assert first.update_id == 102
        assert first.bids() == [(D("9.95"), D("1.5")), (D("9.9"), D("2"))]
        assert second.update_id == 108
        assert second.asks() == [(D("10.1"), D("0.5")), (D("10.2"), D("3"))]

        # pu 109 != 108: the chain broke. Nothing is emitted until a new snapshot syncs.
        fake.publish(STREAM, diff(110, 111, 109, bids=[("9.0", "9")]))
        events.wait_for(lambda c: any(isinstance(e, BookResyncing) for e in c.items))
        fake.publish(STREAM, diff(118, 121, 117, asks=[("10.3", "6")]))
        books.wait_for(lambda c: c.items[-1].update_id == 121)
        after = books.items[3:]
        # The new snapshot (120) may be emitted before the event straddling it, or not, depending
        # on whether the event arrived before the fetch: either way nothing from the broken chain.
        assert [b.update_id for b in after] in ([120, 121], [121])
        assert after[-1].bids() == [(D("10.0"), D("5"))]
        assert after[-1].asks() == [(D("10.3"), D("6"))]
        assert rest.calls == [("BTCUSDT", 1000), ("BTCUSDT", 1000)]
        for book in books.items:
            assert book.best_bid is None or book.best_ask is None or book.best_bid < book.best_ask
        sub.dispose()


def test_usdm_book_equals_the_true_book_through_a_gap() -> None:
    """The simulator's USD-M diff stream (pu = U - 1) and /fapi/v1/depth, end to end."""
    with (
        FakeBinance(tick_interval=None) as fake,
        BinanceStreams(market="usdm", ws_url=fake.ws_url, rest_url=fake.rest_url) as streams,
    ):
        events = Collector()
        streams.events.subscribe(events)
        books = Collector()
        sub = order_book(streams, "ETHUSDT", limit=1000, speed=100).subscribe(books)
        fake.wait_for_connections(1, stream="ethusdt@depth@100ms")
        for _ in range(300):  # the snapshot is fetched off the reader thread: step until synced
            if books.items:
                break
            fake.step()
        books.wait_count(1)
        fake.step(5)
        fake.inject_gap("ETHUSDT")  # a lost event: pu no longer matches the last u received
        for _ in range(300):
            if any(isinstance(e, BookResyncing) for e in events.items) and books.items[
                -1
            ].update_id == fake.with_market(lambda m: m.last_update_id("ETHUSDT")):
                break
            fake.step()
        events.wait_for(lambda c: any(isinstance(e, BookResyncing) for e in c.items))
        last_id = fake.with_market(lambda m: m.last_update_id("ETHUSDT"))
        books.wait_for(lambda c: c.items[-1].update_id == last_id)
        ids = [b.update_id for b in books.items]
        assert ids == sorted(ids)
        for book in books.items:
            truth = fake.true_book("ETHUSDT", book.update_id)
            assert book.bids(20) == list(truth.bids[:20])
            assert book.asks(20) == list(truth.asks[:20])
        sub.dispose()


def test_fake_usdm_diff_depth_has_the_futures_shape() -> None:
    with FakeBinance(tick_interval=None) as fake:
        ws = websocket.create_connection(fake.ws_url + "/public/ws/btcusdt@depth@100ms", timeout=5)
        try:
            fake.wait_for_connections(1, stream="btcusdt@depth@100ms")
            fake.step(3)
            events = [json.loads(ws.recv()) for _ in range(3)]
        finally:
            ws.close()
    for previous, event in itertools.pairwise(events):
        assert event["pu"] == previous["u"]
    for event in events:
        assert list(event) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
        assert event["pu"] == event["U"] - 1


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("/market/ws/btcusdt@aggTrade", ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "nq"]),
        ("/public/ws/btcusdt@bookTicker", ["e", "u", "E", "T", "s", "b", "B", "a", "A"]),
        ("/public/ws/btcusdt@depth5@100ms", ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]),
    ],
)
def test_fake_usdm_routes_speak_futures_shapes(path: str, keys: list[str]) -> None:
    stream = path.rsplit("/", 1)[1]
    with FakeBinance(tick_interval=None) as fake:
        ws = websocket.create_connection(fake.ws_url + path, timeout=5)
        try:
            fake.wait_for_connections(1, stream=stream)
            for _ in range(50):
                fake.step()
                if fake.connections[0].frames_sent:
                    break
            payload = json.loads(ws.recv())
        finally:
            ws.close()
    assert list(payload) == keys
    model = parse(payload, stream)  # the futures variants parse into the same models
    assert getattr(model, "symbol", "BTCUSDT") == "BTCUSDT"
