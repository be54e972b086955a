"""One symbol of the fake market: order book, change log, trades and candles.

Fixed-point integers throughout (prices and quantities in units of 1e-8). The book is two dicts
(price -> qty) plus sorted price lists; every single level change (set or remove) is one update
id and one entry of the change log, so the book is known at every id: ``book_at`` restores the
nearest checkpoint and replays the log. History (log, trades) is dropped in whole epochs so that
at least ``history_ticks`` ticks stay retained.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Final

from ._market_candles import Agg, CandleRun, Series
from ._market_names import E8, INTERVAL_MS, INTERVALS, TZ_PLUS8_MS, fmt8

#: Book checkpoints are taken every ``8 * book_depth`` changes, clamped to these bounds: a
#: checkpoint costs O(depth), so this keeps its amortised cost O(1) per change while the replay
#: behind ``book_at`` stays comparable to building the answer.
CHECKPOINT_MIN: Final = 256
CHECKPOINT_MAX: Final = 8192
_TZS: Final = (0, TZ_PLUS8_MS)
_QUOTES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    """Static parameters of a simulated symbol (prices/quantities in units of 1e-8)."""

    symbol: str
    base_asset: str
    quote_asset: str
    price: int  # starting mid price
    tick: int  # PRICE_FILTER tickSize
    step: int  # LOT_SIZE stepSize
    gap: int  # mean distance between adjacent book levels, in ticks
    sigma: float  # standard deviation of the fair-price walk per market tick, in ticks
    level_qty: int  # median resting quantity of a level, in steps
    taker_qty: int  # median taker order quantity, in steps


_KNOWN: Final[dict[str, SymbolConfig]] = {
    # Real Binance filters: BTCUSDT tick 0.01 / step 0.00001, ETHUSDT 0.01 / 0.0001,
    # BNBBTC 0.000001 / 0.001.
    "BTCUSDT": SymbolConfig(
        "BTCUSDT", "BTC", "USDT", 60_000 * E8, 10**6, 1_000, 4, 20.0, 8_000, 2_000
    ),
    "ETHUSDT": SymbolConfig(
        "ETHUSDT", "ETH", "USDT", 3_000 * E8, 10**6, 10**4, 3, 6.0, 20_000, 5_000
    ),
    "BNBBTC": SymbolConfig("BNBBTC", "BNB", "BTC", 850_000, 100, 10**5, 1, 0.3, 10_000, 2_000),
}


def symbol_config(symbol: str) -> SymbolConfig:
    """The configuration of ``symbol``: a realistic one for the three defaults, else a
    plausible one derived deterministically from the name alone (not from the seed)."""
    known = _KNOWN.get(symbol)
    if known is not None:
        return known
    quote = next((q for q in _QUOTES if symbol.endswith(q) and len(symbol) > len(q)), None)
    if quote is None:
        quote = symbol[-3:] if len(symbol) > 3 else "USDT"
    base = symbol[: len(symbol) - len(quote)] if symbol.endswith(quote) else symbol
    rng = random.Random(f"rxbinance.market.config:{symbol}")
    exponent = rng.randint(-2, 3)  # price between 10**exponent and 10**(exponent+1)
    tick = 10 ** (exponent + 4)  # about 1e-4 relative: 10**(exponent-4) in units of 1e-8
    step = 10 ** (6 - exponent)  # a step is worth about 0.01-0.1 of the quote asset
    price = rng.randint(10_000, 99_999) * tick
    return SymbolConfig(symbol, base or symbol, quote, price, tick, step, 3, 3.0, 5_000, 1_000)


@dataclass(slots=True)
class Tick:
    """What one step did to one symbol (input to the payload builders)."""

    closed: dict[tuple[str, int], list[Agg]] = field(default_factory=dict)
    first_trade: int = 0  # trade ids first_trade .. end_trade-1 happened this tick
    end_trade: int = 0
    first_agg: int = 0
    end_agg: int = 0
    changed: bool = False  # the book changed this tick
    best_changed: bool = False  # best bid/ask price or qty differs from the previous tick
    diffs: dict[bool, tuple[int, int]] = field(default_factory=dict)  # fast? -> (U, u) cut now


class SymbolSim:
    """The deterministic simulation of one symbol; driven by ``Market``, never concurrently."""

    def __init__(
        self,
        cfg: SymbolConfig,
        seed: int,
        start_ms: int,
        book_depth: int,
        history_ticks: int,
        tick_ms: int,
    ) -> None:
        self.cfg = cfg
        self.symbol = cfg.symbol
        # Seeded from (seed, symbol) with a str seed: hashed with SHA-512 by random, so runs are
        # reproducible across processes (no PYTHONHASHSEED dependence) and symbols independent.
        self.rng = random.Random(f"rxbinance.market:{seed}:{cfg.symbol}")
        rng = self.rng
        self.depth = max(1, book_depth)
        self.history_ticks = max(1, history_ticks)
        self.epoch_len = max(1, min(1000, self.history_ticks // 8))
        self.cp_every = min(CHECKPOINT_MAX, max(CHECKPOINT_MIN, 8 * self.depth))
        self.tick_index = 0
        self.base_fair = cfg.price / cfg.tick
        self.fair = self.base_fair
        self.min_fair = float(max(10, 20 * cfg.gap))

        # Book: price -> qty, and the prices sorted ascending (best bid last, best ask first).
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid_prices: list[int] = []
        self.ask_prices: list[int] = []
        self._build_initial_book()
        self.uid = rng.randint(10**8, 9 * 10**8)
        self.log_first = self.uid + 1  # update id of log entry 0
        self.log_p = array("q")  # +price for a bid level, -price for an ask level
        self.log_q = array("q")  # new absolute qty, 0 = removed
        self.cp_uids: list[int] = []
        self.cp_books: list[tuple[array[int], array[int], array[int], array[int]]] = []
        self._checkpoint()

        # Trades and aggregate trades, columnar; ids are first_id + index.
        self.tr_first = rng.randint(10**7, 9 * 10**7)
        self.tr_p, self.tr_q, self.tr_t = array("q"), array("q"), array("q")
        self.tr_m = array("b")  # buyer is maker
        # An aggTrade is a run of consecutive trades (one taker order, one price, one time), so
        # only its last trade id is stored: f is the previous agg's l + 1 (ag_f0 for the first
        # retained one) and p/q/T/m come from its trades. This halves history memory.
        self.ag_first = rng.randint(10**6, 9 * 10**6)
        self.ag_f0 = self.tr_first
        self.ag_l = array("q")
        self.last_price = self.bid_prices[-1]
        self.last_qty = 0
        self.last_trade_ms = start_ms

        # Epoch markers (tick index, checkpoint uid, first trade id, first agg id): history is
        # dropped a whole epoch at a time, always keeping >= history_ticks ticks.
        self.epochs: list[tuple[int, int, int, int]] = [(0, self.uid, self.tr_first, self.ag_first)]

        history_ms = self.history_ticks * tick_ms
        self.seconds = Series(1_000, max(600, history_ms // 1_000 + 2), start_ms, self.last_price)
        self.minutes = Series(
            60_000, max(1_500, history_ms // 60_000 + 2), start_ms, self.last_price
        )
        self.runs: dict[tuple[str, int], CandleRun] = {}
        for interval in INTERVALS[2:]:
            width = INTERVAL_MS.get(interval, 28 * 86_400_000)
            for tz in _TZS:
                keep = max(1_000, history_ms // width + 2) if tz == 0 else 1
                self.runs[interval, tz] = CandleRun(interval, tz, start_ms, self.last_price, keep)
        self._window_cache: dict[int, Agg] = {}
        self._window_minute = -1

        # Diff-depth cursors: U of the next event per speed (fast = @100ms); gaps bump them.
        self.next_u = {True: self.uid + 1, False: self.uid + 1}
        # Levels that must not change until the given speeds cut their next event (inject_gap).
        self.frozen: dict[tuple[bool, int], set[bool]] = {}
        self.last_best = self.best()

    # ----------------------------------------------------------------- book primitives
    def _build_initial_book(self) -> None:
        cfg, rng = self.cfg, self.rng
        spread = rng.randint(1, max(1, cfg.gap))
        bid = int(self.fair) * cfg.tick
        ask = bid + spread * cfg.tick
        span = max(1, 2 * cfg.gap - 1)
        for _ in range(self.depth):
            if bid >= cfg.tick:
                self.bids[bid] = self._level_qty()
                bid -= rng.randint(1, span) * cfg.tick
            self.asks[ask] = self._level_qty()
            ask += rng.randint(1, span) * cfg.tick
        self.bid_prices = sorted(self.bids)
        self.ask_prices = sorted(self.asks)

    def _level_qty(self) -> int:
        steps = int(self.rng.lognormvariate(math.log(self.cfg.level_qty), 0.8))
        return max(1, steps) * self.cfg.step

    def _set(self, is_bid: bool, price: int, qty: int) -> None:
        side = self.bids if is_bid else self.asks
        if price not in side:
            insort(self.bid_prices if is_bid else self.ask_prices, price)
        side[price] = qty
        self.uid += 1
        self.log_p.append(price if is_bid else -price)
        self.log_q.append(qty)

    def _remove(self, is_bid: bool, price: int) -> None:
        side, prices = (self.bids, self.bid_prices) if is_bid else (self.asks, self.ask_prices)
        del side[price]
        del prices[bisect_left(prices, price)]
        self.uid += 1
        self.log_p.append(price if is_bid else -price)
        self.log_q.append(0)

    def _nth(self, is_bid: bool, k: int) -> int:
        """Price of the k-th level from the top (0 = best)."""
        return self.bid_prices[-1 - k] if is_bid else self.ask_prices[k]

    def _is_frozen(self, is_bid: bool, price: int) -> bool:
        return bool(self.frozen) and (is_bid, price) in self.frozen

    def best(self) -> tuple[int, int, int, int]:
        bb, ba = self.bid_prices[-1], self.ask_prices[0]
        return bb, self.bids[bb], ba, self.asks[ba]

    def top(self, is_bid: bool, n: int) -> list[list[str]]:
        """The best ``n`` levels of a side as Binance ``[[price, qty], ...]`` (best first)."""
        if is_bid:
            prices = (
                self.bid_prices[: -n - 1 : -1]
                if n < len(self.bid_prices)
                else self.bid_prices[::-1]
            )
            return [[fmt8(p), fmt8(self.bids[p])] for p in prices]
        return [[fmt8(p), fmt8(self.asks[p])] for p in self.ask_prices[:n]]

    # ----------------------------------------------------------------- one tick
    def advance(self, t1: int, cut_fast: bool, cut_slow: bool) -> Tick:
        """Simulate one tick ending at market time ``t1`` (trades are stamped ``t1``)."""
        tick = Tick()
        self._roll_candles(t1, tick.closed)
        tick.first_trade = tick.end_trade = self.tr_first + len(self.tr_p)
        tick.first_agg = tick.end_agg = self.ag_first + len(self.ag_l)
        uid_before = self.uid
        self._walk()
        self._makers()
        self._takers(t1)
        self._requote()
        self._maintain()
        tick.end_trade = self.tr_first + len(self.tr_p)
        tick.end_agg = self.ag_first + len(self.ag_l)
        tick.changed = self.uid != uid_before
        best = self.best()
        tick.best_changed = best != self.last_best
        self.last_best = best
        for fast, cut in ((True, cut_fast), (False, cut_slow)):
            if cut:
                span = self._cut(fast)
                if span is not None:
                    tick.diffs[fast] = span
        self._end_tick()
        return tick

    def _roll_candles(self, t1: int, closed: dict[tuple[str, int], list[Agg]]) -> None:
        seconds = self.seconds.roll(t1)
        if seconds:
            closed["1s", 0] = closed["1s", TZ_PLUS8_MS] = seconds
        minutes = self.minutes.roll(t1)
        if not minutes:
            return  # longer candles close on minute boundaries only
        closed["1m", 0] = closed["1m", TZ_PLUS8_MS] = minutes
        for key, run in self.runs.items():
            done: list[Agg] = []
            for minute in minutes:
                run.feed(minute, done)
            run.close_until(t1, done)
            if done:
                closed[key] = done

    def _walk(self) -> None:
        # Random walk with a weak pull back to the starting price (half-life ~ 350 000 ticks,
        # ~10 h), so long runs stay in a realistic range; floored so bids keep positive prices.
        rng = self.rng
        fair = self.fair + rng.gauss(0.0, self.cfg.sigma) + (self.base_fair - self.fair) * 2e-6
        self.fair = max(fair, self.min_fair)

    def _makers(self) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            is_bid = rng.random() < 0.5
            if r < 0.45:
                self._place(is_bid)
            elif r < 0.8:
                self._modify(is_bid)
            else:
                self._cancel(is_bid)

    def _requote(self) -> None:
        # Market makers close a spread that sweeps left wide: one new level each side near
        # the fair price (real books rarely stay wider than a few levels).
        cfg = self.cfg
        if self.ask_prices[0] - self.bid_prices[-1] > 2 * cfg.gap * cfg.tick:
            self._place(True, cfg.gap)
            self._place(False, cfg.gap)

    def _place(self, is_bid: bool, mean_distance: int = 0) -> None:
        """A new order near the fair price: adds a level or changes one; never crosses."""
        cfg, rng = self.cfg, self.rng
        distance = int(rng.expovariate(1.0 / (mean_distance or 2 * cfg.gap)))
        if is_bid:
            ticks = min(math.floor(self.fair), self.ask_prices[0] // cfg.tick - 1) - distance
            if ticks < 1:
                return
        else:
            ticks = max(math.ceil(self.fair), self.bid_prices[-1] // cfg.tick + 1) + distance
        price = ticks * cfg.tick
        if self._is_frozen(is_bid, price):
            return
        qty = self._level_qty()
        if qty == (self.bids if is_bid else self.asks).get(price):
            qty += cfg.step  # every update must really change the level
        self._set(is_bid, price, qty)

    def _modify(self, is_bid: bool) -> None:
        prices = self.bid_prices if is_bid else self.ask_prices
        k = min(int(self.rng.expovariate(1 / 8)), len(prices) - 1)
        price = self._nth(is_bid, k)
        if self._is_frozen(is_bid, price):
            return
        step = self.cfg.step
        old = (self.bids if is_bid else self.asks)[price] // step
        new = max(1, int(old * self.rng.uniform(0.4, 1.6)))
        if new == old:
            new += 1
        self._set(is_bid, price, new * step)

    def _cancel(self, is_bid: bool) -> None:
        prices = self.bid_prices if is_bid else self.ask_prices
        if len(prices) <= 1:
            return  # keep both sides non-empty
        k = min(int(self.rng.expovariate(1 / 12)), len(prices) - 1)
        price = self._nth(is_bid, k)
        if not self._is_frozen(is_bid, price):
            self._remove(is_bid, price)

    def _takers(self, t1: int) -> None:
        rng = self.rng
        r = rng.random()
        orders = 0 if r < 0.35 else 1 if r < 0.7 else 2 if r < 0.9 else 3
        if not orders:
            return
        cfg = self.cfg
        mid = (self.bid_prices[-1] + self.ask_prices[0]) / (2 * cfg.tick)
        # Takers lean towards the fair price, which is what drags the book after the walk.
        lean = max(-30.0, min(30.0, (self.fair - mid) / (2 * cfg.gap)))
        p_buy = min(0.9, max(0.1, 1.0 / (1.0 + math.exp(-lean))))
        for _ in range(orders):
            self._take(rng.random() < p_buy, t1)

    def _take(self, buy: bool, t1: int) -> None:
        """One taker order sweeping the opposite side from its best level (at most 10 levels).

        It takes its own (log-normal) quantity and, beyond that, every level priced through
        the fair value (asks below it for a buy, bids above it for a sell): that arbitrage is
        what makes the book follow the random walk.
        """
        cfg, rng = self.cfg, self.rng
        step = cfg.step
        side, prices = (self.asks, self.ask_prices) if buy else (self.bids, self.bid_prices)
        remaining = max(1, int(rng.lognormvariate(math.log(cfg.taker_qty), 1.0))) * step
        fair = self.fair * cfg.tick
        for _ in range(10):
            price = prices[0] if buy else prices[-1]
            through = price < fair if buy else price > fair
            if remaining <= 0 and not through:
                return
            if self._is_frozen(not buy, price):
                return  # a level hidden by inject_gap must stay as it is
            level = side[price]
            take = level if through else min(remaining, level)
            if take == level and len(prices) == 1:
                take = level - step  # never empty a side
                if take <= 0:
                    return
            for piece in self._split(take // step):
                self._record_trade(price, piece * step, t1, not buy)
            self.ag_l.append(self.tr_first + len(self.tr_p) - 1)
            if take == level:
                self._remove(not buy, price)
            else:
                self._set(not buy, price, level - take)
            remaining -= take

    def _split(self, steps: int) -> list[int]:
        # One price level holds several maker orders, so one taker order's fill at one price is
        # 1-3 trades (one aggTrade with f < l when more than one).
        rng = self.rng
        count = min(steps, 1 + (rng.random() < 0.35) + (rng.random() < 0.15))
        if count == 1:
            return [steps]
        cuts = sorted(rng.sample(range(1, steps), count - 1))
        bounds = [0, *cuts, steps]
        return [b - a for a, b in pairwise(bounds)]

    def _record_trade(self, price: int, qty: int, t1: int, buyer_maker: bool) -> None:
        trade_id = self.tr_first + len(self.tr_p)
        self.tr_p.append(price)
        self.tr_q.append(qty)
        self.tr_t.append(t1)
        self.tr_m.append(buyer_maker)
        self.seconds.current.add(price, qty, trade_id, not buyer_maker)
        self.minutes.current.add(price, qty, trade_id, not buyer_maker)
        self.last_price, self.last_qty, self.last_trade_ms = price, qty, t1

    def _maintain(self) -> None:
        """Keep about ``depth`` levels a side: top up after sweeps, trim the deep end.

        A new level goes to a uniformly random price within ``depth * gap`` ticks of the best
        (refilling holes keeps the density near one level per ``gap`` ticks wherever the price
        wanders), or beyond the deep end when that price is taken. Up to 3 adds per side and
        tick, more after a deep sweep (half the deficit); up to 3 removes from the deep end.
        """
        cfg, rng = self.cfg, self.rng
        extent = self.depth * cfg.gap
        span = max(1, 2 * cfg.gap - 1)
        for is_bid in (True, False):
            side, prices = (self.bids, self.bid_prices) if is_bid else (self.asks, self.ask_prices)
            missing = self.depth - len(prices)
            for _ in range(max(3, missing // 2) if missing > 0 else 0):
                offset = rng.randint(1, extent) * cfg.tick
                price = prices[-1] - offset if is_bid else prices[0] + offset
                if price < cfg.tick or price in side:
                    # Taken (a dense book) or not a positive price: extend the deep end.
                    offset = rng.randint(1, span) * cfg.tick
                    price = prices[0] - offset if is_bid else prices[-1] + offset
                if price >= cfg.tick and not self._is_frozen(is_bid, price):
                    self._set(is_bid, price, self._level_qty())
            for _ in range(min(3, len(prices) - self.depth)):
                price = prices[0] if is_bid else prices[-1]
                if self._is_frozen(is_bid, price):
                    break
                self._remove(is_bid, price)

    # ----------------------------------------------------------------- diff depth
    def _cut(self, fast: bool) -> tuple[int, int] | None:
        """End the current diff event of a speed: it covers [U, u] (None if nothing new)."""
        first, last = self.next_u[fast], self.uid
        if last < first:
            return None
        self.next_u[fast] = last + 1
        if self.frozen:
            for key in list(self.frozen):
                speeds = self.frozen[key]
                speeds.discard(fast)
                if not speeds:
                    del self.frozen[key]
        return first, last

    def diff_levels(self, first: int, last: int) -> tuple[list[list[str]], list[list[str]]]:
        """Final qty of every level changed by updates first..last (bids desc, asks asc)."""
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        i0, i1 = first - self.log_first, last - self.log_first + 1
        for p, q in zip(self.log_p[i0:i1], self.log_q[i0:i1], strict=True):
            if p > 0:
                bids[p] = q
            else:
                asks[-p] = q
        return (
            [[fmt8(p), fmt8(bids[p])] for p in sorted(bids, reverse=True)],
            [[fmt8(p), fmt8(asks[p])] for p in sorted(asks)],
        )

    def inject_gap(self, size: int) -> dict[bool, int]:
        """Make the next diff event of each speed skip updates; return how many, per speed.

        First ``size`` fresh changes are made, each to a distinct level that no pending event
        window has touched (so each is a real, net change for every speed). Then each speed
        skips the first ``k`` updates of its pending window: ``k = size`` whenever that leaves
        a client that ignores the gap with a wrong level, else the smallest larger ``k`` that
        does (when every level the first ``size`` skipped updates touched was overwritten later
        in the same window, a client would be right again; ``k`` never exceeds the window, as
        the fresh changes at its end always qualify). The levels touched by skipped updates are
        frozen (no maker, taker or maintenance change) until that speed cuts its next event.
        A speed with nothing pending (the 100 ms one between steps) always gets ``k = size``.
        """
        avoid = self._touched(min(self.next_u.values()), self.uid)
        for i in range(size):
            is_bid, price = self._quiet_level(i % 2 == 0, avoid)
            avoid.add((is_bid, price))
            qty = self._level_qty()
            if qty == (self.bids if is_bid else self.asks).get(price):
                qty += self.cfg.step
            self._set(is_bid, price, qty)
        skipped = {}
        for fast in (True, False):
            first = self.next_u[fast]
            k = self._skip_count(first, size)
            for index in range(first - self.log_first, first - self.log_first + k):
                p = self.log_p[index]
                self.frozen.setdefault((p > 0, abs(p)), set()).add(fast)
            self.next_u[fast] = first + k
            skipped[fast] = k
        return skipped

    def _touched(self, first: int, last: int) -> set[tuple[bool, int]]:
        """(is_bid, price) of every level changed by updates first..last."""
        i0, i1 = first - self.log_first, last - self.log_first + 1
        return {(p > 0, abs(p)) for p in self.log_p[i0:i1]}

    def _skip_count(self, first: int, size: int) -> int:
        # Levels changed in the window [first, now]: value before the window, value now, and
        # the window position of their last change. Skipping k updates leaves a naive client
        # wrong iff some level with now != before has its last change among the first k.
        entries = list(
            zip(
                self.log_p[first - self.log_first :],
                self.log_q[first - self.log_first :],
                strict=True,
            )
        )
        if len(entries) == size:
            return size  # only the fresh changes: each is a net change of a distinct level
        before = self._values_at({p for p, _ in entries}, first - 1)
        last: dict[int, int] = {}
        final: dict[int, int] = {}
        for position, (p, q) in enumerate(entries):
            last[p] = position
            final[p] = q
        earliest = min((last[p] + 1 for p in last if final[p] != before[p]), default=len(entries))
        return max(size, earliest)

    def _values_at(self, levels: set[int], uid: int) -> dict[int, int]:
        """Quantity (0 = absent) of signed-price ``levels`` (+bid/-ask) after update ``uid``."""
        i = bisect_right(self.cp_uids, uid) - 1
        bp, bq, ap, aq = self.cp_books[i]
        values = {}
        for p in levels:
            prices, qtys, key = (bp, bq, p) if p > 0 else (ap, aq, -p)
            j = bisect_left(prices, key)
            values[p] = qtys[j] if j < len(prices) and prices[j] == key else 0
        i0, i1 = self.cp_uids[i] - self.log_first + 1, uid - self.log_first + 1
        for p, q in zip(self.log_p[i0:i1], self.log_q[i0:i1], strict=True):
            if p in values:
                values[p] = q
        return values

    def _quiet_level(self, is_bid: bool, avoid: set[tuple[bool, int]]) -> tuple[bool, int]:
        """A level away from the top (takers and makers rarely reach it within a second), not
        in ``avoid`` and not frozen; a brand-new level past the deep end if none is found."""
        prices = self.bid_prices if is_bid else self.ask_prices
        n = len(prices)
        lo = min(50, n // 4)
        hi = min(max(lo, n // 2), n - 1)
        for _ in range(20):
            price = self._nth(is_bid, self.rng.randint(lo, hi))
            if (is_bid, price) not in avoid and not self._is_frozen(is_bid, price):
                return is_bid, price
        tick = self.cfg.tick
        side = self.bids if is_bid else self.asks
        price = prices[0] - tick if is_bid else prices[-1] + tick
        while price in side or (is_bid, price) in avoid or self._is_frozen(is_bid, price):
            price = price - tick if is_bid else price + tick
        if price < tick:
            return self._quiet_level(False, avoid)  # bids packed down to the minimum price
        return is_bid, price

    # ----------------------------------------------------------------- history
    def _checkpoint(self) -> None:
        bp, ap = self.bid_prices, self.ask_prices
        self.cp_uids.append(self.uid)
        self.cp_books.append(
            (
                array("q", bp),
                array("q", [self.bids[p] for p in bp]),
                array("q", ap),
                array("q", [self.asks[p] for p in ap]),
            )
        )

    def _end_tick(self) -> None:
        self.tick_index += 1
        if self.tick_index % self.epoch_len == 0:
            self._checkpoint()
            self.epochs.append(
                (
                    self.tick_index,
                    self.uid,
                    self.tr_first + len(self.tr_p),
                    self.ag_first + len(self.ag_l),
                )
            )
            self._trim()
        elif self.uid - self.cp_uids[-1] >= self.cp_every:
            self._checkpoint()

    def _trim(self) -> None:
        # Drop the oldest epoch while the next one alone still covers history_ticks, and never
        # past what a pending diff event still has to read.
        pending = min(self.next_u.values())
        dropped = False
        while (
            len(self.epochs) >= 2
            and self.tick_index - self.epochs[1][0] >= self.history_ticks
            and self.epochs[1][1] < pending
        ):
            del self.epochs[0]
            dropped = True
        if not dropped:
            return
        _, cut_uid, trade_id, agg_id = self.epochs[0]
        n = cut_uid - self.log_first + 1
        del self.log_p[:n]
        del self.log_q[:n]
        self.log_first = cut_uid + 1
        keep = bisect_left(self.cp_uids, cut_uid)
        del self.cp_uids[:keep]
        del self.cp_books[:keep]
        n = trade_id - self.tr_first
        for column in (self.tr_p, self.tr_q, self.tr_t, self.tr_m):
            del column[:n]
        self.tr_first = trade_id
        del self.ag_l[: agg_id - self.ag_first]
        self.ag_first = agg_id
        self.ag_f0 = trade_id  # an epoch starts between ticks, so no agg spans the cut

    @property
    def oldest_uid(self) -> int:
        return self.cp_uids[0]

    def book_at(self, uid: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids best first, asks best first) after update ``uid`` (must be retained)."""
        if uid == self.uid:
            return (
                [(p, self.bids[p]) for p in reversed(self.bid_prices)],
                [(p, self.asks[p]) for p in self.ask_prices],
            )
        if not self.cp_uids[0] <= uid <= self.uid:
            raise ValueError(
                f"update id {uid} of {self.symbol} is outside the retained history "
                f"[{self.cp_uids[0]}, {self.uid}]"
            )
        i = bisect_right(self.cp_uids, uid) - 1
        bp, bq, ap, aq = self.cp_books[i]
        bids = dict(zip(bp, bq, strict=True))
        asks = dict(zip(ap, aq, strict=True))
        i0, i1 = self.cp_uids[i] - self.log_first + 1, uid - self.log_first + 1
        for p, q in zip(self.log_p[i0:i1], self.log_q[i0:i1], strict=True):
            side = bids if p > 0 else asks
            if q:
                side[abs(p)] = q
            else:
                del side[abs(p)]
        return sorted(bids.items(), reverse=True), sorted(asks.items())

    # ----------------------------------------------------------------- trades
    def trade_event(self, trade_id: int) -> dict[str, Any]:
        i = trade_id - self.tr_first
        t = self.tr_t[i]
        return {
            "e": "trade",
            "E": t,
            "s": self.symbol,
            "t": trade_id,
            "p": fmt8(self.tr_p[i]),
            "q": fmt8(self.tr_q[i]),
            "T": t,
            "m": bool(self.tr_m[i]),
            "M": True,
        }

    def agg_row(self, agg_id: int) -> dict[str, Any]:
        """REST ``/api/v3/aggTrades`` row of an aggregate trade."""
        i = agg_id - self.ag_first
        last = self.ag_l[i]
        first = self.ag_l[i - 1] + 1 if i else self.ag_f0
        j0, j1 = first - self.tr_first, last - self.tr_first + 1
        return {
            "a": agg_id,
            "p": fmt8(self.tr_p[j0]),
            "q": fmt8(sum(self.tr_q[j0:j1])),
            "f": first,
            "l": last,
            "T": self.tr_t[j0],
            "m": bool(self.tr_m[j0]),
            "M": True,
        }

    def agg_span(self, start: int | None, end: int | None) -> tuple[int, int]:
        """Indices ``[lo, hi)`` of the retained aggTrades with ``start <= T <= end``."""
        # All trades of an agg share its T, so the first trade at/after start opens an agg and
        # the last trade at/before end closes one.
        lo = 0
        if start is not None:
            lo = bisect_left(self.ag_l, self.tr_first + bisect_left(self.tr_t, start))
        hi = len(self.ag_l)
        if end is not None:
            hi = bisect_left(self.ag_l, self.tr_first + bisect_right(self.tr_t, end))
        return lo, hi

    def agg_event(self, agg_id: int) -> dict[str, Any]:
        row = self.agg_row(agg_id)
        return {"e": "aggTrade", "E": row["T"], "s": self.symbol, **row}

    # ----------------------------------------------------------------- statistics
    def window(self, minutes: int, now: int) -> Agg:
        """Trades in the window of ``minutes`` whole minutes before the current one plus the
        current partial minute: ``t`` is the window's open (a whole minute at or before
        ``now - minutes``), ``p`` the last price before it."""
        current = now // 60_000
        if current != self._window_minute:
            self._window_cache.clear()
            self._window_minute = current
        done = self._window_cache.get(minutes)
        if done is None:
            done = self.minutes.aggregate(current - minutes, current - 1)
            self._window_cache[minutes] = done
        out = done.copy()
        out.merge(self.minutes.current)
        out.T = now
        return out

    def average(self, now: int) -> int:
        """Volume-weighted price of the trades in the last 300 seconds (1 s granularity);
        the last price when nothing traded."""
        current = now // 1_000
        agg = self.seconds.aggregate(current - 299, current)
        return agg.q // agg.v if agg.v else self.last_price

    def candle(self, interval: str, tz_ms: int) -> Agg:
        """The open candle of ``interval`` (``tz_ms`` = 0 or +8 h) at the current time."""
        if interval == "1s":
            return self.seconds.current
        if interval == "1m":
            return self.minutes.current
        return self.runs[interval, tz_ms].current(self.minutes.current)

    def candles(self, interval: str) -> list[Agg]:
        """Every retained UTC candle of ``interval``, oldest first, the open one last."""
        if interval == "1s":
            return self.seconds.buckets
        if interval == "1m":
            return self.minutes.buckets
        run = self.runs[interval, 0]
        return [*run.closed, run.current(self.minutes.current)]
