"""How fast the local order book takes diff depth levels: ``python benchmarks/book_apply.py``.

Builds a 1,000-levels-a-side book and a stream of realistic diff events for it (mostly quantity
changes within 20 ticks of the top, some removals and new levels, rarely deep levels), then
measures level updates applied per second on one core for:

- floor: a bare ``dict[price] = quantity`` loop over the same levels, the least any Python book
  could do;
- LocalBook.apply: the sorted book itself;
- BookSync.on_event: the full sequencer path (update id checks, apply, crossed-book check);
- on_event + top 10: the same, reading the top 10 levels of each side after every event;
- from_dict + on_event: parsing each decoded JSON event into a DepthUpdate first.

Prices and quantities are fresh Decimal objects on every run, as they are when parsed from the
wire (a Decimal computes its hash on first use). The target is 200,000 level updates per second
through BookSync.on_event. Options: ``--events N`` (default 20000), ``--repeat N`` (default 5,
best run reported).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxbinance.models import DepthUpdate
from rxbinance.protocol.book import BookSync, LocalBook, SyncAction

LEVELS = 1000
TICK = Decimal("0.01")
MID = Decimal("100.00")
TARGET = 200_000

Raw = list[list[str]]


def simulate(events: int, seed: int = 7) -> tuple[Raw, Raw, list[dict[str, Any]]]:
    """A snapshot (bids, asks as strings) and ``events`` depthUpdate payloads continuing it."""
    rng = random.Random(seed)
    # Side -> {tick distance from the mid: quantity string}; bids below the mid, asks above it,
    # so the book never crosses.
    sides: dict[str, dict[int, str]] = {
        side: {k: f"{rng.uniform(0.1, 50):.8f}" for k in range(1, LEVELS + 1)}
        for side in ("b", "a")
    }

    def price(side: str, k: int) -> str:
        return str(MID - k * TICK if side == "b" else MID + k * TICK)

    snapshot = {
        side: [[price(side, k), q] for k, q in sorted(levels.items())]
        for side, levels in sides.items()
    }
    payloads = []
    update_id = 1_000_000
    for _ in range(events):
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        for _ in range(rng.randint(2, 12)):
            side = rng.choice("ba")
            levels = sides[side]
            # Most activity is at the top of the book; one change in twenty goes deep.
            k = rng.randint(1, 20) if rng.random() < 0.95 else rng.randint(21, LEVELS)
            roll = rng.random()
            if k in levels and roll < 0.15:
                del levels[k]
                changes[side].append([price(side, k), "0.00000000"])
            else:
                levels[k] = f"{rng.uniform(0.1, 50):.8f}"
                changes[side].append([price(side, k), levels[k]])
        first = update_id + 1
        update_id += rng.randint(1, 5)
        payloads.append(
            {
                "e": "depthUpdate",
                "E": 1_700_000_000_000,
                "s": "BTCUSDT",
                "U": first,
                "u": update_id,
                "b": changes["b"],
                "a": changes["a"],
            }
        )
    return snapshot["b"], snapshot["a"], payloads


def decimals(raw: Raw) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in raw]


def measure(run: Callable[[], None], prepare: Callable[[], None], repeat: int) -> float:
    """Best wall time of ``run`` over ``repeat`` runs, each after an untimed ``prepare``."""
    best = float("inf")
    for _ in range(repeat):
        prepare()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    snap_bids, snap_asks, payloads = simulate(args.events)
    total = sum(len(p["b"]) + len(p["a"]) for p in payloads)
    state: dict[str, Any] = {}

    def fresh_events() -> None:
        # New Decimal objects each run, so hashing costs what it costs on live data.
        state["events"] = [DepthUpdate.from_dict(p) for p in payloads]
        state["bids"], state["asks"] = decimals(snap_bids), decimals(snap_asks)

    def floor() -> None:
        bids: dict[Decimal, Decimal] = dict(state["bids"])
        asks: dict[Decimal, Decimal] = dict(state["asks"])
        for event in state["events"]:
            for price, qty in event.bids:
                bids[price] = qty
            for price, qty in event.asks:
                asks[price] = qty

    def book_apply() -> None:
        book = LocalBook()
        book.load(state["bids"], state["asks"])
        for event in state["events"]:
            book.apply(event.bids, event.asks)

    def synced() -> BookSync:
        sync = BookSync("BTCUSDT")
        sync.on_snapshot(payloads[0]["U"] - 1, state["bids"], state["asks"])
        return sync

    def sequencer() -> None:
        on_event = synced().on_event
        for event in state["events"]:
            if on_event(event) is not SyncAction.UPDATED:
                raise AssertionError("the simulated stream should apply cleanly")

    def sequencer_top() -> None:
        sync = synced()
        book = sync.book
        for event in state["events"]:
            sync.on_event(event)
            book.top_bids(10)
            book.top_asks(10)

    def parse_and_sequence() -> None:
        on_event = synced().on_event
        from_dict = DepthUpdate.from_dict
        for payload in payloads:
            on_event(from_dict(payload))

    rows = [
        ("floor: bare dict assignment", floor),
        ("LocalBook.apply", book_apply),
        ("BookSync.on_event", sequencer),
        ("on_event + top 10 per side", sequencer_top),
        ("from_dict + on_event", parse_and_sequence),
    ]
    print(
        f"{LEVELS} levels a side, {len(payloads)} diff events, {total} level updates "
        f"({total / len(payloads):.1f} per event), best of {args.repeat}, Python "
        f"{sys.version.split()[0]}"
    )
    print(f"{'path':32} {'updates/s':>12} {'ns/update':>10} {'x floor':>8}")
    results: dict[str, float] = {}
    for name, run in rows:
        seconds = measure(run, fresh_events, args.repeat)
        results[name] = total / seconds
    floor_rate = results["floor: bare dict assignment"]
    for name, rate in results.items():
        print(f"{name:32} {rate:12,.0f} {1e9 / rate:10.0f} {floor_rate / rate:8.1f}")
    rate = results["BookSync.on_event"]
    verdict = "meets" if rate >= TARGET else "MISSES"
    print(f"BookSync.on_event {verdict} the {TARGET:,} updates/s target ({rate / TARGET:.1f}x).")
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
