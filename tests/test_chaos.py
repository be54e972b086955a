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

import pytest

from rxbinance.testing import ChaosReport, run_chaos

SETTINGS = {
    "seed": 11,
    "duration": 3.0,
    "symbols": 3,
    "fault_interval": 0.08,  # about 35 faults in 3 s
    "tick_interval": 0.05,  # the market at twice real speed
    "stall_timeout": 0.5,
    "max_connection_age": 1.2,  # a rollover of every connection or two during the run
    "settle_timeout": 10.0,
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
    assert with_rest.rollovers >= 1, explain(with_rest)
    for tally in with_rest.tallies.values():
        assert (tally.streams, tally.received > 0) == (3, True), explain(with_rest)
    assert with_rest.books > 0, explain(with_rest)
    assert with_rest.ended == 0, explain(with_rest)  # no stream gave up or failed
    assert with_rest.unsettled == 0, explain(with_rest)  # every stream delivered at the end


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


def test_junk_never_reaches_a_subscriber(with_rest: ChaosReport) -> None:
    # Frames of the wrong kind are MalformedFrame events, never data (test_wrong_kind_frames).
    assert with_rest.foreign == 0, explain(with_rest)


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
