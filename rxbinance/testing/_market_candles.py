"""OHLCV aggregation for the fake market: second and minute buckets, running klines.

Everything here is fixed-point integers: prices and base volumes in units of 1e-8, quote volumes
in units of 1e-16 (price x qty, exact, truncated to 8 decimals only when formatted).

* :class:`Agg` is one candle (or any time range's statistics); an empty one carries the previous
  close as o/h/l/c with zero volume and ``f == L == -1``, like Binance's empty klines.
* :class:`Series` is a contiguous, bounded list of fixed-width buckets (1 s and 1 m); its
  buckets are the ``1s`` and ``1m`` klines, and the minute buckets feed every window statistic.
* :class:`CandleRun` keeps the open candle of one longer interval (``3m`` .. ``1M``, UTC or
  ``+08:00``) by folding in completed minute buckets, so a ``1M`` candle costs one merge a minute
  no matter how old it is, and remembers closed UTC candles for REST klines.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from ._market_names import candle_close, candle_open

_NO_LOW: Final = 1 << 62


class Agg:
    """Statistics of the trades in ``[t, T]`` (one candle); mutable, merged in time order."""

    __slots__ = ("L", "Q", "T", "V", "c", "f", "h", "l", "n", "o", "p", "q", "t", "v")

    def __init__(self, t: int, T: int, prev_close: int) -> None:
        self.t = t  # open time (ms)
        self.T = T  # close time (ms, inclusive)
        self.p = prev_close  # last price before the range (a ticker's "x")
        self.o = self.h = self.l = self.c = prev_close
        self.v = 0  # base volume, 1e-8
        self.q = 0  # quote volume, 1e-16
        self.n = 0  # trade count
        self.V = 0  # taker-buy base volume, 1e-8
        self.Q = 0  # taker-buy quote volume, 1e-16
        self.f = -1  # first trade id (-1: none)
        self.L = -1  # last trade id (-1: none)

    def add(self, price: int, qty: int, trade_id: int, taker_buy: bool) -> None:
        """Account one trade (trades arrive in id order)."""
        quote = price * qty
        if self.n == 0:
            self.o = self.h = self.l = price
            self.f = trade_id
        elif price > self.h:
            self.h = price
        elif price < self.l:
            self.l = price
        self.c = price
        self.L = trade_id
        self.n += 1
        self.v += qty
        self.q += quote
        if taker_buy:
            self.V += qty
            self.Q += quote

    def merge(self, later: Agg) -> None:
        """Extend with the statistics of a later, adjacent range (keeps this open time)."""
        if later.n:
            if self.n == 0:
                self.o, self.h, self.l, self.f = later.o, later.h, later.l, later.f
            else:
                self.h = max(self.h, later.h)
                self.l = min(self.l, later.l)
            self.c = later.c
            self.L = later.L
            self.n += later.n
            self.v += later.v
            self.q += later.q
            self.V += later.V
            self.Q += later.Q

    def copy(self) -> Agg:
        other = Agg.__new__(Agg)
        for name in Agg.__slots__:
            setattr(other, name, getattr(self, name))
        return other


class Series:
    """Contiguous fixed-width buckets; the last one is the current (open) bucket.

    Bucket ``i`` covers ``[i*width, (i+1)*width - 1]``. At most ``keep`` buckets are retained
    (trimmed in batches so trimming is amortised O(1)).
    """

    __slots__ = ("buckets", "first", "keep", "width")

    def __init__(self, width: int, keep: int, t_ms: int, prev_close: int) -> None:
        self.width = width
        self.keep = max(2, keep)
        index = t_ms // width
        self.first = index  # bucket index of buckets[0]
        self.buckets = [Agg(index * width, index * width + width - 1, prev_close)]

    @property
    def current(self) -> Agg:
        return self.buckets[-1]

    def roll(self, t_ms: int) -> list[Agg]:
        """Make the bucket containing ``t_ms`` current; return the buckets that just completed.

        Buckets skipped over are created empty (carrying the previous close), so klines have
        no holes even when nothing traded.
        """
        target = t_ms // self.width
        last = self.first + len(self.buckets) - 1
        if target <= last:
            return []
        done_from = len(self.buckets) - 1
        width = self.width
        for index in range(last + 1, target + 1):
            self.buckets.append(Agg(index * width, index * width + width - 1, self.current.c))
        completed = self.buckets[done_from:-1]
        excess = len(self.buckets) - self.keep
        if excess > self.keep // 4:
            del self.buckets[:excess]
            self.first += excess
        return completed

    def since(self, index: int) -> list[Agg]:
        """Retained buckets with index >= ``index`` (oldest first)."""
        return self.buckets[max(0, index - self.first) :]

    def aggregate(self, lo: int, hi: int) -> Agg:
        """Merge of retained buckets with index in ``[lo, hi]`` (``lo`` clamped to retention).

        The result's ``t``/``T`` span the requested range and its ``p`` is the last price before
        the first retained bucket in range.
        """
        i0 = min(max(0, lo - self.first), len(self.buckets) - 1)
        width = self.width
        out = Agg(lo * width, hi * width + width - 1, self.buckets[i0].p)
        for bucket in self.buckets[i0 : hi - self.first + 1]:
            out.merge(bucket)
        return out


class CandleRun:
    """The open candle of one interval/time zone, built from completed minute buckets."""

    __slots__ = ("agg", "closed", "interval", "tz_ms")

    def __init__(self, interval: str, tz_ms: int, t_ms: int, prev_close: int, keep: int) -> None:
        self.interval = interval
        self.tz_ms = tz_ms
        opened = candle_open(interval, t_ms, tz_ms)
        self.agg = Agg(opened, candle_close(interval, opened, tz_ms), prev_close)
        # Closed candles, oldest first, for REST klines (only UTC runs are asked for them).
        self.closed: deque[Agg] = deque(maxlen=max(1, keep))

    def _close(self) -> Agg:
        done = self.agg
        self.closed.append(done)
        opened = done.T + 1
        self.agg = Agg(opened, candle_close(self.interval, opened, self.tz_ms), done.c)
        return done

    def feed(self, minute: Agg, out: list[Agg]) -> None:
        """Fold a completed minute bucket in; candles that ended before it go to ``out``."""
        while minute.t > self.agg.T:
            out.append(self._close())
        self.agg.merge(minute)

    def close_until(self, t_ms: int, out: list[Agg]) -> None:
        """Close every candle that ended before ``t_ms`` (its minutes are all folded in)."""
        while t_ms > self.agg.T:
            out.append(self._close())

    def current(self, minute: Agg) -> Agg:
        """The open candle including the current (partial) minute bucket."""
        snapshot = self.agg.copy()
        snapshot.merge(minute)
        return snapshot
