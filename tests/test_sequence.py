"""The sequenced-stream state machines, table-driven: deliver, drop a repeat, or name the hole."""

from __future__ import annotations

from typing import Any

import pytest

from rxbinance.protocol.sequence import (
    CandleSequence,
    IdSequence,
    Verdict,
    agg_trade_message,
    kline_message,
    trade_message,
)

D, R, H, OTHER = Verdict.DELIVER, Verdict.DROP, Verdict.HOLE, Verdict.OTHER


def agg(i: int) -> dict[str, Any]:
    return {"e": "aggTrade", "a": i}


@pytest.mark.parametrize(
    ("ids", "verdicts", "holes"),
    [
        ([5, 6, 7], [D, D, D], []),
        ([5, 5, 6], [D, R, D], []),
        ([5, 6, 4], [D, D, R], []),
        ([5, 9], [D, H], [(6, 8)]),
        ([5, 7], [D, H], [(6, 6)]),
        ([100], [D], []),  # the first message starts the sequence wherever it is
    ],
)
def test_id_sequence(ids: list[int], verdicts: list[Verdict], holes: list[tuple[int, int]]) -> None:
    seq = IdSequence("a")
    found = []
    got = []
    for i in ids:
        verdict = seq.check(agg(i))
        got.append(verdict)
        if verdict is H:
            found.append(seq.hole)
    assert got == verdicts
    assert found == holes


def test_a_hole_does_not_advance_until_skipped_or_filled() -> None:
    seq = IdSequence("a")
    assert seq.check(agg(1)) is D
    assert seq.check(agg(5)) is H
    assert seq.hole == (2, 4)
    assert seq.check(agg(2)) is D  # the repair delivers 2..4 through check()
    assert seq.check(agg(3)) is D
    seq.skip(4)  # 4 could not be had: a Gap
    assert seq.check(agg(5)) is D  # the held message now follows


@pytest.mark.parametrize("message", [{"e": "error", "m": "Max reconnect retries reached"}, [], "x"])
def test_messages_outside_the_sequence_pass(message: Any) -> None:
    seq = IdSequence("a")
    assert seq.check(message) is OTHER
    assert seq.expected is None


def candle(t: int, closed: bool) -> dict[str, Any]:
    return {"e": "kline", "k": {"t": t, "x": closed}}


M = 60_000


@pytest.mark.parametrize(
    ("updates", "verdicts", "holes"),
    [
        # open updates, then the close, then the next candle
        ([(0, False), (0, False), (0, True), (M, False)], [D, D, D, D], []),
        # an update of a closed candle (a repeat after a reconnect) is dropped
        ([(0, True), (0, False), (0, True)], [D, R, R], []),
        # the close of 0 was missed: the next candle shows the hole (candle 0 only)
        ([(0, False), (M, False)], [D, H], [(0, 0)]),
        # three closes missed
        ([(0, True), (4 * M, False)], [D, H], [(M, 3 * M)]),
        # the first message is a close: the next candle is awaited
        ([(2 * M, True), (3 * M, False)], [D, D], []),
    ],
)
def test_candle_sequence(
    updates: list[tuple[int, bool]], verdicts: list[Verdict], holes: list[tuple[int, int]]
) -> None:
    seq = CandleSequence("1m")
    got = []
    found = []
    for t, closed in updates:
        verdict = seq.check(candle(t, closed))
        got.append(verdict)
        if verdict is H:
            found.append(seq.hole)
    assert got == verdicts
    assert found == holes


def test_candle_skip_awaits_the_candle_after() -> None:
    seq = CandleSequence("1m")
    seq.check(candle(0, True))
    assert seq.check(candle(3 * M, False)) is H
    seq.skip(2 * M)
    assert seq.expected == 3 * M
    assert seq.check(candle(3 * M, False)) is D


def test_month_candles_follow_the_calendar() -> None:
    seq = CandleSequence("1M")
    jan, feb, mar = 1735689600000, 1738368000000, 1740787200000  # 2025-01/02/03-01 UTC
    assert seq.check(candle(jan, True)) is D
    assert seq.expected == feb
    assert seq.check(candle(mar, False)) is H
    assert seq.hole == (feb, feb)


def test_rest_rows_become_stream_messages() -> None:
    row = {"a": 26129, "p": "0.01633102", "q": "4.7", "f": 27781, "l": 27781, "T": 1498793709153,
           "m": True, "M": True}  # fmt: skip
    assert agg_trade_message(row, "BNBBTC") == {
        "e": "aggTrade", "E": 1498793709153, "s": "BNBBTC", **row
    }  # fmt: skip
    trade = {"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
             "time": 1499865549590, "isBuyerMaker": True, "isBestMatch": True}  # fmt: skip
    assert trade_message(trade, "BNBBTC") == {
        "e": "trade", "E": 1499865549590, "s": "BNBBTC", "t": 28457, "p": "4.00000100",
        "q": "12.00000000", "T": 1499865549590, "m": True, "M": True,
    }  # fmt: skip
    kline = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
             "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397",
             "28.46694368", "0"]  # fmt: skip
    message = kline_message(kline, "BNBBTC", "1m")
    assert message["e"] == "kline"
    assert message["E"] == 1499644799999
    k = message["k"]
    assert (k["t"], k["T"], k["i"], k["x"], k["n"]) == (
        1499040000000,
        1499644799999,
        "1m",
        True,
        308,
    )
    assert (k["o"], k["h"], k["l"], k["c"], k["v"]) == (
        "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815"
    )  # fmt: skip
    assert (k["q"], k["V"], k["Q"], k["f"], k["L"]) == (
        "2434.19055334", "1756.87402397", "28.46694368", -1, -1
    )  # fmt: skip
