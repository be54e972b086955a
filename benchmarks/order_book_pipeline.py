"""How fast rxbinance.order_book takes diff levels: ``python benchmarks/order_book_pipeline.py``.

The same simulated 1,000-levels-a-side book and diff events as ``book_apply.py``, measured in
level updates per second on one core, against a floor measured in the same run:

- floor: a bare ``dict[price] = quantity`` loop over already parsed levels;
- from_dict + BookSync (LocalBook): parsing plus the sequencer on the mutable book;
- from_dict + BookSync (PersistentBook): the same on the copy-on-write book order_book uses;
- read_diff + apply_json (PersistentBook): what order_book itself runs per event, minus the
  delivery: the payload read without a model object, the levels parsed as they are applied;
- order_book pipeline: what the depth socket's reader thread runs per decoded message inside
  ``order_book``, from ``ScriptedSocket.deliver`` on (the stream's sequence check and hub, the
  lock, read_diff, ``BookSync.admits``, ``apply_json``, a new immutable OrderBook, delivery to
  a subscriber reading ``best_bid``);
- pipeline + top 10: the subscriber also reads ``bids(10)`` and ``asks(10)``.

Not included: JSON decoding and the socket, which ``throughput.py`` measures. The target is
1,000,000 level updates per second through the pipeline (issue 12). Options: ``--events N``
(default 20000), ``--repeat N`` (default 5, best run reported). Exit status 1 when the target
is missed.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from book_apply import LEVELS, decimals, measure, simulate

from rxbinance import BinanceStreams, order_book
from rxbinance.models import DepthUpdate
from rxbinance.pipelines import OrderBook
from rxbinance.pipelines._book import PersistentBook
from rxbinance.protocol.book import BookSync, read_diff
from rxbinance.testing import ScriptedTransport

TARGET = 1_000_000  # level updates per second through the pipeline (issue 12)


class _Subscriber:
    """An observer that does what a strategy minimally does: look at the top."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.books = 0
        self.synced = threading.Event()

    def on_next(self, book: OrderBook) -> None:
        if not self.books:  # once: an Event.set() per book would be timed as the pipeline's
            self.synced.set()
        self.books += 1
        book.best_bid  # noqa: B018
        if self.top:
            book.bids(self.top)
            book.asks(self.top)

    def on_error(self, error: Exception) -> None:
        raise error

    def on_completed(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    snap_bids, snap_asks, payloads = simulate(args.events)
    total = sum(len(p["b"]) + len(p["a"]) for p in payloads)
    state: dict[str, Any] = {}

    def fresh() -> None:
        # New Decimal objects each run, so hashing costs what it costs on live data.
        state["events"] = [DepthUpdate.from_dict(p) for p in payloads]
        state["bids"], state["asks"] = decimals(snap_bids), decimals(snap_asks)

    def floor() -> None:
        bids = dict(state["bids"])
        asks = dict(state["asks"])
        for event in state["events"]:
            for price, qty in event.bids:
                bids[price] = qty
            for price, qty in event.asks:
                asks[price] = qty

    def synced(persistent: bool) -> BookSync:
        sync = BookSync("BTCUSDT")
        if persistent:
            sync.book = PersistentBook()
        sync.on_snapshot(payloads[0]["U"] - 1, state["bids"], state["asks"])
        return sync

    def sequencer(persistent: bool) -> None:
        on_event = synced(persistent).on_event
        from_dict = DepthUpdate.from_dict
        for payload in payloads:
            on_event(from_dict(payload))

    def hot_path() -> None:
        sync = synced(True)
        book = sync.book
        assert isinstance(book, PersistentBook)
        admits, applied, apply_json, view = sync.admits, sync.applied, book.apply_json, book.view
        for payload in payloads:
            fields = read_diff(payload)
            assert fields is not None
            _, event_time, first, final, prev_final, bids, asks = fields
            if not admits(first, final, prev_final):
                raise AssertionError("the simulated stream should apply cleanly")
            apply_json(bids, asks)
            applied(final)
            view("BTCUSDT", final, event_time)

    class Snapshot:
        """The REST side of the book: the snapshot the simulated events continue."""

        def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
            return {
                "lastUpdateId": payloads[0]["U"] - 1,
                "bids": [[str(p), str(q)] for p, q in state["bids"]],
                "asks": [[str(p), str(q)] for p, q in state["asks"]],
            }

    def synced_pipeline(top: int) -> None:
        # The whole public pipeline: order_book() on a BinanceStreams whose depth socket is
        # scripted (ScriptedTransport), synced on the first event (untimed), then fed on this
        # thread as a socket's reader would feed it. Only the snapshot is prepared: the pipeline
        # parses the payloads itself, and 20,000 parsed events kept alive for nothing would
        # make every garbage collection during the run slower.
        state.pop("events", None)
        state["bids"], state["asks"] = decimals(snap_bids), decimals(snap_asks)
        if "streams" in state:
            state["streams"].close()
        transport = ScriptedTransport()
        streams = state["streams"] = BinanceStreams(transport=transport)
        subscriber = state["subscriber"] = _Subscriber(top)
        order_book(streams, "BTCUSDT", rest=Snapshot()).subscribe(subscriber)
        sock = state["socket"] = transport.sockets[0]
        sock.deliver(payloads[0])
        if not subscriber.synced.wait(10):
            raise AssertionError("the book did not sync")

    def pipeline() -> None:
        deliver = state["socket"].deliver
        for payload in payloads[1:]:
            deliver(payload)
        if state["subscriber"].books != len(payloads):
            raise AssertionError("every simulated event should produce a book")

    rows = [
        ("floor: bare dict assignment", floor, fresh),
        ("from_dict + BookSync (LocalBook)", lambda: sequencer(False), fresh),
        ("from_dict + BookSync (Persistent)", lambda: sequencer(True), fresh),
        ("read_diff + apply_json (Persistent)", hot_path, fresh),
        ("order_book pipeline", pipeline, lambda: synced_pipeline(0)),
        ("pipeline + top 10 per side", pipeline, lambda: synced_pipeline(10)),
    ]
    print(
        f"{LEVELS} levels a side, {len(payloads)} diff events, {total} level updates "
        f"({total / len(payloads):.1f} per event), best of {args.repeat}, Python "
        f"{sys.version.split()[0]}"
    )
    print(f"{'path':34} {'updates/s':>12} {'ns/update':>10} {'x floor':>8}")
    results: dict[str, float] = {}
    piped = total - len(payloads[0]["b"]) - len(payloads[0]["a"])  # the first event syncs
    for name, run, prepare in rows:
        count = piped if prepare is not fresh else total
        results[name] = count / measure(run, prepare, args.repeat)
    if "streams" in state:
        state["streams"].close()
    floor_rate = results["floor: bare dict assignment"]
    for name, rate in results.items():
        print(f"{name:34} {rate:12,.0f} {1e9 / rate:10.0f} {floor_rate / rate:8.1f}")
    rate = results["order_book pipeline"]
    verdict = "meets" if rate >= TARGET else "MISSES"
    print(f"order_book pipeline {verdict} the {TARGET:,} updates/s target ({rate / TARGET:.1f}x).")
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
