"""The short chaos run (issue 11, section 5): a few seconds of every FakeBinance fault against
aggTrades, trades, 1 s klines, diff depth and order books, counted against the market's true
history by :func:`rxbinance.testing.run_chaos` (``benchmarks/chaos.py`` is the long run).

The promise under test: a subscriber of a sequenced stream receives every message exactly once,
in order, or else one ``rxbinance.events.Gap`` whose ``[first, last]`` is exactly the hole.
With REST available, aggTrades and closed candles are refilled (so nothing is lost), and so are
trades when the fake serves a keyless trade history; depth diffs have no history, so their
holes are Gaps. With REST refused, every hole of every stream is a Gap.

The schedule of faults is seeded; which messages a fault hits depends on thread timing, so the
figures vary a little from run to run, but what is asserted does not: zeros, and exact Gaps.
Each run happens once per module (two runs, a few seconds each); every test asserts one figure
and shows the whole summary line when it fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from rxbinance.testing import ChaosReport, run_chaos
from rxbinance.testing._chaos import JUNK, _is_foreign, _tally, _Tape

SETTINGS = {
    "seed": 11,
    "duration": 3.0,
    "symbols": 3,
    "fault_interval": 0.08,  # about 35 faults in 3 s
    # Harsher than the default mix, which spreads mass disconnects for 20 symbols' REST budget:
    # here about one drop, shutdown or stall every 0.3 s.
    "mix": {
        "drop": 3,
        "shutdown": 1,
        "stall_long": 1,
        "stall_short": 2,
        "refuse": 3,
        "depth_gap": 4,
        "malformed": 3,
        "junk": 5,
        "rest429": 2,
        "rest418": 1,
    },
    "tick_interval": 0.05,  # the market at twice real speed
    "stall_timeout": 0.5,
    "max_connection_age": 0.5,  # rollovers between the mass disconnects
    # A repair may wait up to 30 s for REST weight (BinanceStreams' repair_timeout) after the
    # storm's 429/418s emptied the budget: settling must be allowed longer than that (it ends as
    # soon as every stream has delivered).
    "settle_timeout": 40.0,
}


@pytest.fixture(scope="module")
def with_rest() -> ChaosReport:
    return run_chaos(**SETTINGS)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rest_refused() -> ChaosReport:
    return run_chaos(**SETTINGS, rest=False)  # type: ignore[arg-type]


def explain(report: ChaosReport) -> str:
    return "\n".join([report.line(), *report.failures])


def test_the_run_is_a_real_one(with_rest: ChaosReport) -> None:
    # What the other tests assert means something only if faults hit live streams.
    assert with_rest.fault_count >= 20, explain(with_rest)
    for tally in with_rest.tallies.values():
        assert (tally.streams, tally.received > 0) == (3, True), explain(with_rest)
    assert with_rest.books > 0, explain(with_rest)
    assert with_rest.ended == 0, explain(with_rest)  # no stream gave up or failed
    assert with_rest.unsettled == 0, explain(with_rest)  # every stream delivered at the end
    assert with_rest.junk_kinds == len(JUNK), explain(with_rest)  # every kind of junk was sent


def test_agg_trades_lose_nothing_with_rest(with_rest: ChaosReport) -> None:
    agg = with_rest.tallies["aggTrade"]
    assert agg.repairable
    assert (agg.lost, agg.duplicated, agg.out_of_order, agg.wrong) == (0, 0, 0, 0), explain(
        with_rest
    )


def test_trades_lose_nothing_or_report_every_hole(with_rest: ChaosReport) -> None:
    trades = with_rest.tallies["trade"]
    assert (trades.duplicated, trades.out_of_order, trades.wrong) == (0, 0, 0), explain(with_rest)
    if trades.repairable:  # the fake serves a keyless trade history: refill it
        assert trades.lost == 0, explain(with_rest)
    else:
        assert trades.reported_holes == trades.holes, explain(with_rest)
        assert trades.exact_gaps == trades.gaps == trades.holes, explain(with_rest)


def test_no_closed_candle_missing(with_rest: ChaosReport) -> None:
    candles = with_rest.tallies["kline"]
    assert (candles.lost, candles.duplicated, candles.wrong) == (0, 0, 0), explain(with_rest)


def test_no_wrong_book(with_rest: ChaosReport) -> None:
    assert with_rest.books_wrong == 0, explain(with_rest)


def test_every_unrepairable_hole_is_exactly_one_exact_gap(with_rest: ChaosReport) -> None:
    # Depth diffs (and trades without REST history) cannot be refilled: each hole must be one
    # Gap naming exactly its ids; and no Gap, of any stream, may name ids that were delivered.
    for tally in with_rest.tallies.values():
        assert tally.exact_gaps == tally.gaps, explain(with_rest)
        if not tally.repairable:
            assert tally.reported_holes == tally.holes, explain(with_rest)
    assert with_rest.tallies["depth"].holes > 0, explain(with_rest)  # depth gaps were injected


def test_junk_never_reaches_a_subscriber(with_rest: ChaosReport, rest_refused: ChaosReport) -> None:
    # Frames of the wrong kind are MalformedFrame events, never data (test_wrong_kind_frames).
    assert with_rest.foreign == 0, explain(with_rest)
    assert rest_refused.foreign == 0, explain(rest_refused)


def test_the_runs_roll_connections_over(with_rest: ChaosReport, rest_refused: ChaosReport) -> None:
    # max_connection_age=0.5 s: connections that outlive the faults end with 1001 (rollovers).
    # How many do depends on how often a drop got there first, so both runs are counted.
    assert with_rest.rollovers + rest_refused.rollovers >= 1, explain(with_rest)


def test_close_leaves_no_thread(with_rest: ChaosReport, rest_refused: ChaosReport) -> None:
    assert with_rest.threads_left == (), explain(with_rest)
    assert rest_refused.threads_left == (), explain(rest_refused)


def test_with_rest_refused_every_hole_is_exactly_one_exact_gap(rest_refused: ChaosReport) -> None:
    assert rest_refused.fault_count >= 20, explain(rest_refused)
    assert rest_refused.ended == 0, explain(rest_refused)
    assert sum(t.holes for t in rest_refused.tallies.values()) > 0, explain(rest_refused)
    for tally in rest_refused.tallies.values():
        assert not tally.repairable
        assert tally.duplicated == tally.out_of_order == tally.wrong == 0, explain(rest_refused)
        assert tally.reported_holes == tally.holes, explain(rest_refused)
        assert tally.exact_gaps == tally.gaps == tally.holes, explain(rest_refused)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="symbols=0"):
        run_chaos(symbols=0)
    with pytest.raises(ValueError, match="fault_interval=0"):
        run_chaos(fault_interval=0)
    with pytest.raises(ValueError, match="'flood'"):
        run_chaos(mix={"flood": 1})


# ------------------------------------------------------------------------------------------
# The counting itself, table-driven: synthetic tapes against a synthetic truth. No Gap class
# exists in rxbinance yet, so a stand-in with the fields plays it.


@dataclass(frozen=True, slots=True)
class FakeGap:
    stream: str
    time: float
    first: int
    last: int
    reason: str


def agg(i: int, price: str = "1.0") -> dict[str, Any]:
    return {"e": "aggTrade", "a": i, "p": price, "q": "2.0", "f": i, "l": i, "T": i, "m": False}


def candle(t: int) -> dict[str, Any]:
    k = {"t": t, "x": True, "o": "1", "h": "2", "l": "0.5", "c": "1.5", "v": "3", "n": 4}
    return {"e": "kline", "k": k}


def diff(first: int, last: int) -> dict[str, Any]:
    return {"e": "depthUpdate", "U": first, "u": last}


def gap(first: int, last: int) -> FakeGap:
    return FakeGap("x", 0.0, first, last, "test")


def truth_of(kind: str, symbol: str, lo: int, hi: int) -> Mapping[int, Any]:
    if kind == "aggTrade":  # ids 1..10
        return {i: agg(i) for i in range(max(lo, 1), min(hi, 10) + 1)}
    if kind == "kline":  # a candle every second, as REST rows
        row = [0, "1", "2", "0.5", "1.5", "3", 0, "0", 4]
        return {t: [t, *row[1:]] for t in range(0, 10_000, 1000) if lo <= t <= hi}
    return dict.fromkeys(range(lo, hi + 1))  # depth: every update id


@pytest.mark.parametrize(
    ("kind", "items", "expected"),
    [
        # (lost, holes, duplicated, out_of_order, wrong, gaps, exact_gaps, reported_holes)
        ("aggTrade", [agg(i) for i in range(1, 11)], (0, 0, 0, 0, 0, 0, 0, 0)),
        ("aggTrade", [agg(1), agg(2), agg(5)], (2, 1, 0, 0, 0, 0, 0, 0)),  # silent hole 3-4
        (
            "aggTrade",
            [agg(1), agg(2), gap(3, 5), agg(6), agg(7), gap(8, 9), agg(10)],
            (5, 2, 0, 0, 0, 2, 2, 2),
        ),
        ("aggTrade", [agg(1), gap(2, 2), agg(4)], (2, 1, 0, 0, 0, 1, 0, 0)),  # too narrow
        ("aggTrade", [agg(1), gap(2, 4), agg(4)], (2, 1, 0, 0, 0, 1, 0, 0)),  # too wide
        ("aggTrade", [agg(1), gap(2, 2), gap(3, 3), agg(4)], (2, 1, 0, 0, 0, 2, 0, 0)),  # split
        ("aggTrade", [agg(1), gap(2, 3), gap(2, 3), agg(4)], (2, 1, 0, 0, 0, 2, 2, 0)),  # twice
        ("aggTrade", [agg(1), agg(2), gap(2, 2), agg(3)], (0, 0, 0, 0, 0, 1, 0, 0)),  # no hole
        ("aggTrade", [agg(1), agg(2), gap(3, 4)], (2, 1, 0, 0, 0, 1, 1, 1)),  # the last word
        ("aggTrade", [agg(1), agg(2), agg(2), agg(4), agg(3)], (0, 0, 1, 1, 0, 0, 0, 0)),
        ("aggTrade", [agg(1), agg(2, price="9.9"), agg(3)], (0, 0, 0, 0, 1, 0, 0, 0)),
        ("aggTrade", [agg(1), agg(11)], (9, 1, 0, 0, 1, 0, 0, 0)),  # 11 never traded
        ("kline", [candle(0), candle(1000), candle(4000)], (2, 1, 0, 0, 0, 0, 0, 0)),
        ("kline", [candle(0), gap(1000, 3000), candle(4000)], (3, 1, 0, 0, 0, 1, 1, 1)),
        (
            "kline",
            [candle(0), {"e": "kline", "k": {"t": 1000, "x": False}}],
            (0, 0, 0, 0, 0, 0, 0, 0),
        ),
        ("depth", [diff(1, 3), diff(4, 6), diff(9, 10)], (2, 1, 0, 0, 0, 0, 0, 0)),
        ("depth", [diff(1, 3), gap(4, 8), diff(9, 10)], (5, 1, 0, 0, 0, 1, 1, 1)),
        ("depth", [diff(1, 3), diff(2, 5), diff(4, 6)], (0, 0, 1, 0, 0, 0, 0, 0)),
    ],
)
def test_counting(kind: str, items: list[Any], expected: tuple[int, ...]) -> None:
    tape = _Tape(kind, "BTCUSDT")
    for item in items:
        tape.on_next(item)
    failures: list[str] = []
    tally = _tally(truth_of, kind, [tape], FakeGap, False, failures)
    assert (
        tally.lost,
        tally.holes,
        tally.duplicated,
        tally.out_of_order,
        tally.wrong,
        tally.gaps,
        tally.exact_gaps,
        tally.reported_holes,
    ) == expected, failures
    data = [i for i in items if isinstance(i, dict) and i.get("k", {"x": True})["x"]]
    assert tally.received == len(data)


@pytest.mark.parametrize(
    ("kind", "item", "foreign"),
    [
        ("aggTrade", agg(1), False),
        ("aggTrade", gap(1, 2), False),
        ("aggTrade", "a string", True),
        ("aggTrade", None, True),
        ("aggTrade", [1, 2, 3], True),
        ("aggTrade", {"e": "error", "m": "Max reconnect retries reached"}, True),
        ("trade", {"id": 1, "price": "1.0", "qty": "2.0"}, True),  # REST's shape, not the stream's
        ("kline", candle(0), False),
        ("kline", {"e": "kline", "k": {"t": 0, "x": False}}, False),  # an open candle
        ("depth", diff(1, 2), False),
        ("depth", {"e": "depthUpdate"}, True),
        ("book", agg(1), True),
    ],
)
def test_foreign_items(kind: str, item: Any, foreign: bool) -> None:
    assert _is_foreign(kind, item, FakeGap) is foreign
