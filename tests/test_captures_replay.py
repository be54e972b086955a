"""Real Binance traffic (tests/data, see its README.md) replayed through FakeBinance into
order_book and best_bid_ask: every book syncs on the first snapshot and matches every bookTicker
checkpoint."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from rxbinance import BinanceStreams
from rxbinance.events import BookResyncing, BookSnapshotFailed, BookSynced, ConnectionEvent
from rxbinance.pipelines import OrderBook, Quote, best_bid_ask, order_book
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

CAPTURES = Path(__file__).resolve().parent / "data"
SYMBOLS = ("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR")


def load_frames() -> list[dict[str, Any]]:
    """The combined-stream frames of the capture, in receive order."""
    lines = (CAPTURES / "binance-spot.ws.txt").read_text().splitlines()[1:]
    return [json.loads(line.partition(": ")[2]) for line in lines if line.strip()]


def load_snapshots() -> dict[str, dict[str, Any]]:
    """Symbol -> the REST depth body recorded for it."""
    snapshots = {}
    for line in (CAPTURES / "binance-spot.http.txt").read_text().splitlines():
        if line.strip():
            url, _, rest = line.partition(" -> ")
            symbol = url.partition("symbol=")[2].partition("&")[0]
            snapshots[symbol] = json.loads(rest.partition(": ")[2])
    return snapshots


class CapturedRest:
    """Serves the recorded snapshot as GET /api/v3/depth would have, counting requests."""

    def __init__(self, snapshots: dict[str, dict[str, Any]]) -> None:
        self.snapshots = snapshots
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        with self._lock:
            self.requests.append((symbol, limit))
        return self.snapshots[symbol]


def test_replayed_captures_sync_first_time_and_match_every_book_ticker(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    frames = load_frames()
    snapshots = load_snapshots()
    rest = CapturedRest(snapshots)
    events: list[ConnectionEvent] = []
    streams.events.subscribe(events.append)
    books = {s: Collector() for s in SYMBOLS}
    quotes = {s: Collector() for s in SYMBOLS}
    subscriptions = [
        order_book(streams, s, limit=1000, rest=rest).subscribe(books[s]) for s in SYMBOLS
    ] + [best_bid_ask(streams, s).subscribe(quotes[s]) for s in SYMBOLS]
    try:
        fake.wait_for_connections(2 * len(SYMBOLS))
        for frame in frames:
            stream, data = frame["stream"], frame["data"]
            if "@depth" in stream:
                fake.publish(stream, data)
                # One frame at a time: wait until the book has taken it (a frame already in
                # the snapshot leaves the book at the snapshot's id), so that every state is
                # emitted, not only the last one of a batch.
                target = max(data["u"], snapshots[data["s"]]["lastUpdateId"])
                books[data["s"]].wait_for(
                    lambda c, target=target: bool(c.items) and c.items[-1].update_id >= target
                )
            elif "@bookTicker" in stream:
                fake.publish(stream, data)
        for symbol in SYMBOLS:
            tickers = [
                f["data"]["u"]
                for f in frames
                if f["stream"].endswith("@bookTicker") and f["data"]["s"] == symbol
            ]
            if tickers:  # the capture has none for RUNEEUR
                last = max(tickers)
                quotes[symbol].wait_for(
                    lambda c, u=last: bool(c.items) and c.items[-1].update_id == u
                )
    finally:
        for subscription in subscriptions:
            subscription.dispose()

    # Synced on the first snapshot, never resynced.
    assert sorted(rest.requests) == sorted((s, 1000) for s in SYMBOLS)
    assert not [e for e in events if isinstance(e, BookSnapshotFailed)]
    assert [e.reason for e in events if isinstance(e, BookResyncing)] == ["start"] * 4
    synced = {e.symbol: e for e in events if isinstance(e, BookSynced)}
    assert {s: e.snapshots for s, e in synced.items()} == dict.fromkeys(SYMBOLS, 1)

    checkpoints = {}
    for symbol in SYMBOLS:
        by_id: dict[int, OrderBook] = {b.update_id: b for b in books[symbol].items}
        assert not books[symbol].errors
        matched = 0
        quote: Quote
        for quote in quotes[symbol].items:
            book = by_id.get(quote.update_id)
            if book is None:
                continue  # not the end of a diff event, or before the snapshot
            assert book.best_bid == quote.best_bid, (symbol, quote.update_id)
            assert book.best_ask == quote.best_ask, (symbol, quote.update_id)
            assert book.spread == quote.spread
            matched += 1
        checkpoints[symbol] = matched
        for book in books[symbol].items:
            assert book.spread is not None
            assert book.spread > 0
    # Worked out from the raw data (see test_book_sequencer): every checkpoint after the
    # snapshot was met.
    assert checkpoints == {"NKNUSDT": 19, "LRCBTC": 6, "BLZETH": 1, "RUNEEUR": 0}
