"""Sequenced streams: which message comes next, where a hole is, and REST rows as stream messages.

Three streams carry a sequence a client can check and REST can refill (binance-protocol.md 3, 7):

- ``<symbol>@aggTrade``: aggregate trade ids ``a``, consecutive per symbol (REST ``aggTrades``
  by ``fromId``);
- ``<symbol>@trade``: trade ids ``t``, consecutive per symbol (REST ``historicalTrades`` by
  ``fromId``);
- ``<symbol>@kline_<interval>``: candles, whose *closed* updates (``k.x``) follow one another
  by open time ``k.t`` (REST ``klines`` by ``startTime``/``endTime``).

:class:`IdSequence` and :class:`CandleSequence` are small state machines with one question,
:meth:`check`: is this live message the next one (deliver it), one already delivered (drop it:
a reconnect or a REST page repeats what was seen), or does a hole lie before it (its bounds in
``hole``)? No I/O, no threads: the reactive layer (``rxbinance._reactive.repair``) does the
fetching around them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from rxbinance.protocol.intervals import candle_open, next_open

__all__ = [
    "CandleSequence",
    "DepthSequence",
    "IdSequence",
    "Verdict",
    "agg_trade_message",
    "is_newer",
    "kline_message",
    "order_of",
    "trade_message",
]


class Verdict(IntEnum):
    DELIVER = 0  # the next message: pass it on
    DROP = 1  # already delivered (a repeat): skip it
    HOLE = 2  # messages are missing before it: ``hole`` says which
    OTHER = 3  # not a message of the sequence (the give-up dict, a control reply): pass it on


class IdSequence:
    """Consecutive integer ids in ``field`` (``"a"`` for aggTrade, ``"t"`` for trade).

    ``expected`` is the id of the next message to deliver (None before the first). After a
    ``HOLE`` verdict nothing advances: the caller fills ``hole`` (or gives up on it with
    :meth:`skip`) and checks the held message again.
    """

    __slots__ = ("expected", "field", "hole")

    def __init__(self, field: str) -> None:
        self.field = field
        self.expected: int | None = None
        self.hole: tuple[int, int] = (0, -1)

    def position(self, message: Any) -> int | None:
        if type(message) is not dict:
            return None
        value = message.get(self.field)
        return value if type(value) is int else None

    def check(self, message: Any) -> Verdict:
        position = self.position(message)
        if position is None:
            return Verdict.OTHER
        expected = self.expected
        if expected is None or position == expected:
            self.expected = position + 1
            return Verdict.DELIVER
        if position < expected:
            return Verdict.DROP
        self.hole = (expected, position - 1)
        return Verdict.HOLE

    def skip(self, last: int) -> None:
        """Give up on everything up to ``last``: the next message expected is ``last + 1``."""
        if self.expected is None or last >= self.expected:
            self.expected = last + 1


class CandleSequence:
    """Closed candles of one ``interval``, one after the other by open time.

    ``expected`` is the open time of the next candle whose *closed* update is awaited. Updates
    of the open candle (``k.t == expected``, not closed) pass; updates of a candle before it
    (its close already delivered, or a repeat) are dropped; an update of a later candle means
    the closes in between were missed: ``hole`` gives their open times, first and last.
    """

    __slots__ = ("expected", "hole", "interval")

    def __init__(self, interval: str) -> None:
        self.interval = interval
        self.expected: int | None = None
        self.hole: tuple[int, int] = (0, -1)

    @staticmethod
    def position(message: Any) -> tuple[int, bool] | None:
        if type(message) is not dict:
            return None
        candle = message.get("k")
        if type(candle) is not dict:
            return None
        open_time = candle.get("t")
        if type(open_time) is not int:
            return None
        return open_time, candle.get("x") is True

    def check(self, message: Any) -> Verdict:
        position = self.position(message)
        if position is None:
            return Verdict.OTHER
        open_time, closed = position
        expected = self.expected
        if expected is None or open_time == expected:
            self.expected = next_open(self.interval, open_time) if closed else open_time
            return Verdict.DELIVER
        if open_time < expected:
            return Verdict.DROP
        self.hole = (expected, candle_open(self.interval, open_time - 1))
        return Verdict.HOLE

    def skip(self, last: int) -> None:
        """Give up on the candles opening up to ``last``: the next awaited is the one after."""
        following = next_open(self.interval, last)
        if self.expected is None or following > self.expected:
            self.expected = following


class DepthSequence:
    """Diff depth events (``depthUpdate``), each continuing the last: on spot ``U`` is the
    previous ``u`` + 1 (an overlap, ``U <= u' + 1 <= u``, continues too); on USD-M futures,
    whose update ids are not consecutive, ``pu`` equals the previous ``u``.

    Depth has no history to refill: a hole is reported (the update ids missed: on spot
    ``prev u + 1`` to ``U - 1``, on USD-M ``prev u + 1`` to ``pu``) and the stream goes on; an
    order book resyncs from a snapshot by itself. An event ending at or before the last one
    (``u <=`` the previous ``u``) is a repeat.
    """

    __slots__ = ("expected", "futures", "hole")

    def __init__(self, *, futures: bool) -> None:
        self.futures = futures
        self.expected: int | None = None  # the last ``u`` delivered
        self.hole: tuple[int, int] = (0, -1)

    def check(self, message: Any) -> Verdict:
        if type(message) is not dict:
            return Verdict.OTHER
        first, last = message.get("U"), message.get("u")
        if type(first) is not int or type(last) is not int:
            return Verdict.OTHER
        previous = self.expected
        if previous is None:
            self.expected = last
            return Verdict.DELIVER
        if last <= previous:
            return Verdict.DROP
        if self.futures:
            before = message.get("pu")
            if type(before) is not int or before == previous:
                self.expected = last
                return Verdict.DELIVER
            self.hole = (previous + 1, before)
            return Verdict.HOLE
        if first <= previous + 1:
            self.expected = last
            return Verdict.DELIVER
        self.hole = (previous + 1, first - 1)
        return Verdict.HOLE

    def skip(self, last: int) -> None:
        """Go past the hole: the next event continues from ``last``."""
        if self.expected is None or last > self.expected:
            self.expected = last


# -- REST rows as the stream's own messages ------------------------------------------------------


def agg_trade_message(row: dict[str, Any], symbol: str) -> dict[str, Any]:
    """A REST ``aggTrades`` item as the ``aggTrade`` stream sends it. ``E`` (event time) is not
    in REST: the trade time ``T`` stands in for it."""
    message = {"e": "aggTrade", "E": row["T"], "s": symbol}
    message.update(row)
    return message


def trade_message(row: dict[str, Any], symbol: str) -> dict[str, Any]:
    """A REST ``historicalTrades`` item (``id``, ``price``, ``qty``, ``time``, ``isBuyerMaker``,
    ``isBestMatch``) as the ``trade`` stream sends it; ``E`` is the trade time."""
    return {
        "e": "trade",
        "E": row["time"],
        "s": symbol,
        "t": row["id"],
        "p": row["price"],
        "q": row["qty"],
        "T": row["time"],
        "m": row["isBuyerMaker"],
        "M": row.get("isBestMatch", True),
    }


def kline_message(row: list[Any], symbol: str, interval: str) -> dict[str, Any]:
    """A REST kline row of a *closed* candle as the kline stream's closing update (``x``
    true). REST has no trade ids: ``f`` and ``L`` are -1; ``E`` is the close time."""
    return {
        "e": "kline",
        "E": int(row[6]),
        "s": symbol,
        "k": {
            "t": int(row[0]),
            "T": int(row[6]),
            "s": symbol,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": row[1],
            "c": row[4],
            "h": row[2],
            "l": row[3],
            "v": row[5],
            "n": int(row[8]),
            "x": True,
            "q": row[7],
            "V": row[9],
            "Q": row[10],
            "B": "0",
        },
    }


# -- two connections' copies of one stream ------------------------------------------------------


def order_of(message: Any) -> tuple[int, ...] | None:
    """Where a message stands in its stream, to compare two connections' copies of it (a
    rollover's overlap, redundant connections): aggregate
    trade id, trade id, last update id (depth, bookTicker), else event time (tickers, klines:
    event time, then the candle's open time); for a list (``!...@arr``), its latest event time.
    None: nothing to compare by."""
    if type(message) is list:
        times: list[int] = [m["E"] for m in message if type(m) is dict and type(m.get("E")) is int]
        return (max(times),) if times else None
    if type(message) is not dict:
        return None
    data = message.get("data") if "stream" in message else message
    if type(data) is not dict:
        return None
    for field in ("a", "t", "u", "lastUpdateId"):
        value = data.get(field)
        if type(value) is int:
            return (value,)
    event_time = data.get("E")
    if type(event_time) is int:
        candle = data.get("k")
        if type(candle) is dict and type(candle.get("t")) is int:
            return (event_time, candle["t"])
        return (event_time,)
    return None


def is_newer(message: Any, last: Any) -> bool:
    """True when ``message`` comes after ``last`` (the old connection's last delivered)."""
    mine, theirs = order_of(message), order_of(last)
    if mine is None or theirs is None:
        return bool(message != last)
    return mine > theirs
