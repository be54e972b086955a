"""The synthetic, deterministic market that FakeBinance serves.

:class:`Market` is pure and in-memory: no sockets, threads, asyncio or clock reads (except the
default start time). The server drives it with :meth:`Market.step` (one tick of market time)
and asks it for Binance-shaped payloads and REST bodies; it never calls it concurrently.

How the market works, per symbol, per tick (``tick_ms``, default 100 ms of market time):

1. Candles whose interval ended are closed (before this tick's trades, which are stamped with
   the new market time).
2. A seeded random walk moves a fair price; 1-3 maker actions add, change or cancel levels near
   it; 0-3 taker orders (biased towards the fair price) sweep the best levels, each fill at one
   price making 1-3 trades and one aggTrade; the deep end is topped up or trimmed to keep about
   ``book_depth`` levels a side. The book is never crossed.
3. Each single level change (set or remove, including fills) is one update id, so the exact book
   is known at every id (:meth:`Market.true_book`).
4. Diff-depth events are cut from that one id sequence per speed (``@depth@100ms`` every 100 ms,
   ``@depth`` every 1000 ms): ``U`` is always the previous event's ``u + 1`` unless
   :meth:`Market.inject_gap` moved it.

Fixed-point integers are used internally (1e-8 units) and formatted like Binance
(``"60000.01000000"``). Randomness comes from one ``random.Random`` per symbol seeded from
``(seed, symbol)``: the same seed and the same calls give the same output, byte for byte.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from ._market_candles import Agg
from ._market_names import (
    E8,
    INTERVALS,
    WINDOW_MINUTES,
    StreamSpec,
    crossed,
    fmt8,
    fmt_percent,
    parse_stream,
)
from ._market_sim import SymbolConfig, SymbolSim, Tick, symbol_config

__all__ = ["BookState", "Market", "MarketError"]

_MAX_PLANS: Final = 64
# Emission order inside one step: closed klines first (they close before this tick's trades),
# then trades, so every depth event follows the trades whose fills it contains.
_RANK: Final[dict[str, int]] = {
    "klineClose": 0,
    "trade": 1,
    "aggTrade": 2,
    "kline": 3,
    "bookTicker": 4,
    "diffDepth": 5,
    "partialDepth": 6,
    "miniTicker": 7,
    "ticker": 7,
    "windowTicker": 7,
    "avgPrice": 7,
    "allMiniTickers": 8,
    "allWindowTickers": 8,
}
_STABLE_QUOTES: Final = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "TUSD", "EUR", "TRY"})


class MarketError(Exception):
    """A request Binance would reject with HTTP 400 and ``{"code": code, "msg": msg}``.

    ``code`` is Binance's error code (``-1121`` invalid symbol, ``-1120`` invalid interval,
    ``-1100`` illegal parameter value, ``-1102`` missing parameter, ``-1023`` start after end,
    ``-1128`` invalid combination of optional parameters); ``msg`` is Binance's text.
    """

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.msg} (code {self.code})"


@dataclass(frozen=True, slots=True)
class BookState:
    """The exact order book of ``symbol`` after update ``last_update_id``.

    ``bids`` are best (highest) first, ``asks`` best (lowest) first; each level is
    ``(price, qty)`` as :class:`~decimal.Decimal` with 8 decimal places.
    """

    symbol: str
    last_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


def _dec(value: int) -> Decimal:
    return Decimal(value).scaleb(-8)


def _illegal(param: str, legal: str) -> MarketError:
    return MarketError(
        -1100, f"Illegal characters found in parameter '{param}'; legal range is '{legal}'."
    )


def _kline_row(agg: Agg) -> list[Any]:
    return [
        agg.t,
        fmt8(agg.o),
        fmt8(agg.h),
        fmt8(agg.l),
        fmt8(agg.c),
        fmt8(agg.v),
        agg.T,
        fmt8(agg.q // E8),
        agg.n,
        fmt8(agg.V),
        fmt8(agg.Q // E8),
        "0",
    ]


def _to_ms(value: int | None) -> int | None:
    # Binance accepts start/end times in ms or µs (2024-12); epoch µs are >= 1e14 for any
    # date after 1973, epoch ms stay below it until the year 5138.
    if value is not None and value >= 10**14:
        return value // 1000
    return value


def _first_trade_at(sim: SymbolSim, time_ms: int) -> int:
    """Id of the first retained trade of ``sim`` stamped at or after ``time_ms`` (the next id
    to be made when there is none)."""
    return sim.tr_first + bisect_left(sim.tr_t, time_ms)


def _agg_first_trade(sim: SymbolSim, agg_id: int) -> int:
    """First trade id of aggregate trade ``agg_id`` (the next trade id for the next agg)."""
    i = max(0, agg_id - sim.ag_first)
    if i >= len(sim.ag_l):
        return sim.tr_first + len(sim.tr_p)  # every trade so far belongs to an agg
    return sim.ag_l[i - 1] + 1 if i else sim.ag_f0


def _first_agg_from(sim: SymbolSim, trade_id: int) -> int:
    """Id of the first aggregate trade all of whose trades are ``trade_id`` or later."""
    k = bisect_left(sim.ag_l, trade_id)  # the first agg that ends at or after trade_id
    if k < len(sim.ag_l) and _agg_first_trade(sim, sim.ag_first + k) < trade_id:
        k += 1  # it started before the cut: part of it is forgotten, so all of it is
    return sim.ag_first + k


def _trade_row(sim: SymbolSim, trade_id: int, best_match: bool) -> dict[str, Any]:
    """REST ``/api/v3/historicalTrades`` item of a trade (USD-M: without ``isBestMatch``)."""
    i = trade_id - sim.tr_first
    price, qty = sim.tr_p[i], sim.tr_q[i]
    row: dict[str, Any] = {
        "id": trade_id,
        "price": fmt8(price),
        "qty": fmt8(qty),
        "quoteQty": fmt8(price * qty // E8),  # price x qty, truncated to 8 decimals
        "time": sim.tr_t[i],
        "isBuyerMaker": bool(sim.tr_m[i]),
    }
    if best_match:
        row["isBestMatch"] = True
    return row


@dataclass(frozen=True, slots=True)
class _Emit:
    rank: int
    order: int  # symbol position (arr streams last)
    kind: str  # StreamSpec.kind, or "klineClose"
    spec: StreamSpec


class Market:
    """A deterministic synthetic spot market for ``symbols`` (see the module docstring).

    ``start_time_ms`` is the market time before the first step (default: the wall clock);
    every :meth:`step` advances it by ``tick_ms``. ``book_depth`` is the number of levels kept
    per side (about), ``history_ticks`` how many ticks of change log and trades are retained
    (at least; dropped in epochs of up to ``history_ticks // 8`` ticks). Memory grows with the
    retained history: about 70 MB per symbol once the default 200 000 ticks (5.5 h of market
    time at 100 ms) are full, so lower ``history_ticks`` for long-running demos.

    REST retention (what the exchange no longer serves, as opposed to what the market keeps):
    ``rest_history_ms`` (market time, None: no limit; the attribute may be changed under the
    lock) makes the REST trade endpoints (:meth:`rest_trades`, :meth:`rest_historical_trades`,
    :meth:`rest_agg_trades`) serve only trades of the last ``rest_history_ms`` ms, and
    :meth:`forget_history` cuts a symbol's REST history at a point. Asked for older ids, they
    answer as Binance does for data it no longer has: the items from the oldest retained id
    on, so a caller sees that the first id returned is above the one it asked for
    (:meth:`rest_oldest_ids` says where REST history starts). The streams, :meth:`true_book`,
    :meth:`trade_history` and :meth:`agg_trade_history` are not affected.
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "BNBBTC"),
        *,
        seed: int = 0,
        start_time_ms: int | None = None,
        tick_ms: int = 100,
        book_depth: int = 1000,
        history_ticks: int = 200_000,
        rest_history_ms: int | None = None,
    ) -> None:
        if isinstance(symbols, str):
            raise TypeError("symbols must be a sequence of symbol names, not one string")
        names = tuple(symbols)
        for name in names:
            if not name or not name.isalnum() or name != name.upper():
                raise ValueError(f"not an uppercase Binance symbol: {name!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate symbols in {names!r}")
        if tick_ms < 1 or book_depth < 1 or history_ticks < 1:
            raise ValueError("tick_ms, book_depth and history_ticks must be >= 1")
        self.symbols: tuple[str, ...] = names
        self._tick_ms = tick_ms
        self._time = int(time.time() * 1000) if start_time_ms is None else start_time_ms
        self._sims: dict[str, SymbolSim] = {
            name: SymbolSim(
                symbol_config(name), seed, self._time, book_depth, history_ticks, tick_ms
            )
            for name in names
        }
        self._order = {name: i for i, name in enumerate(names)}
        self._parsed: dict[str, StreamSpec | Literal["retired", "invalid"]] = {}
        self._plans: dict[frozenset[str], list[_Emit]] = {}
        # Per "!...@arr" stream: the last payload sent for each symbol (only changes are sent).
        self._arr_last: dict[str, dict[str, tuple[Any, ...]]] = {}
        self._rest_history_ms: int | None = None
        self.rest_history_ms = rest_history_ms
        # Per symbol: (first trade id, first agg id) REST still serves after forget_history().
        self._rest_floors: dict[str, tuple[int, int]] = {}

    @property
    def time_ms(self) -> int:
        """Current market time (epoch ms): ``start_time_ms + steps * tick_ms``."""
        return self._time

    @property
    def rest_history_ms(self) -> int | None:
        """REST serves only trades of the last this many ms of market time (None: all it
        keeps); settable (under the lock), ValueError below 1."""
        return self._rest_history_ms

    @rest_history_ms.setter
    def rest_history_ms(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"rest_history_ms must be an int >= 1 or None, not {value!r}")
        self._rest_history_ms = value

    @property
    def tick_ms(self) -> int:
        """Market time per :meth:`step`."""
        return self._tick_ms

    # ------------------------------------------------------------------ streams
    def _parse(self, name: str) -> StreamSpec | Literal["retired", "invalid"]:
        parsed = self._parsed.get(name)
        if parsed is None:
            if len(self._parsed) > 4096:
                self._parsed.clear()
            parsed = self._parsed[name] = parse_stream(name)
        return parsed

    def classify_stream(self, name: str) -> Literal["ok", "retired", "invalid"]:
        """``"ok"`` for a well-formed Binance spot stream name (even for a symbol this market
        does not simulate: Binance accepts it and simply never delivers), ``"retired"`` for
        ``!ticker@arr`` and ``!bookTicker`` (they connect and deliver nothing), ``"invalid"``
        otherwise (empty, uppercase symbol, unknown suffix, bad interval or speed)."""
        parsed = self._parse(name)
        return parsed if isinstance(parsed, str) else "ok"

    def _plan(self, active: Collection[str]) -> list[_Emit]:
        key = active if isinstance(active, frozenset) else frozenset(active)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        plan = []
        for name in key:
            spec = self._parse(name)
            if isinstance(spec, str) or spec.kind == "silent":
                continue
            if spec.symbol is not None and spec.symbol not in self._sims:
                continue  # well-formed, but not simulated: never emits
            order = len(self._order) if spec.symbol is None else self._order[spec.symbol]
            if spec.kind == "kline":
                plan.append(_Emit(_RANK["klineClose"], order, "klineClose", spec))
            plan.append(_Emit(_RANK[spec.kind], order, spec.kind, spec))
        # Sorted, so the output never depends on set iteration order (hash randomisation).
        plan.sort(key=lambda e: (e.rank, e.order, e.spec.name))
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def step(self, active: Collection[str]) -> list[tuple[str, Any]]:
        """Advance market time by one tick and return ``(stream_name, payload)`` for every name
        in ``active`` that emits at this tick, in a stable order (closed klines, trades,
        aggTrades, klines, bookTicker, diff depth, partial depth, tickers, ``!...@arr``).

        The whole market moves whether or not anyone listens; only payloads of ``active``
        names are built. Cadences (market time): trade/aggTrade on every fill; bookTicker when
        the best bid/ask price or qty changed this tick; ``@depth@100ms``/``@depthN@100ms``
        every 100 ms with changes; ``@depth``, ``@depthN``, tickers, avgPrice and ``!...@arr``
        every 1000 ms; klines every 2000 ms (1000 ms for ``1s``) plus once with ``"x": true``
        at the tick where the candle's interval ends. "Every P ms" means at each step that
        crosses a multiple of P of epoch time.
        """
        t0 = self._time
        t1 = t0 + self._tick_ms
        self._time = t1
        fast = crossed(t0, t1, 100)
        slow = crossed(t0, t1, 1_000)
        ticks = {name: sim.advance(t1, fast, slow) for name, sim in self._sims.items()}
        if not active:
            return []
        kline_due = crossed(t0, t1, 2_000)
        out: list[tuple[str, Any]] = []
        for emit in self._plan(active):
            spec = emit.spec
            if spec.symbol is None:
                if slow:
                    self._emit_arr(spec, t1, out)
                continue
            sim = self._sims[spec.symbol]
            tick = ticks[spec.symbol]
            kind = emit.kind
            if kind == "trade":
                out.extend(
                    (spec.name, sim.trade_event(i)) for i in range(tick.first_trade, tick.end_trade)
                )
            elif kind == "aggTrade":
                out.extend(
                    (spec.name, sim.agg_event(i)) for i in range(tick.first_agg, tick.end_agg)
                )
            elif kind == "klineClose":
                for agg in tick.closed.get((spec.interval, spec.tz_ms), ()):
                    out.append((spec.name, self._kline(sim, spec.interval, agg, True, t1)))
            elif kind == "kline":
                if slow if spec.interval == "1s" else kline_due:
                    agg = sim.candle(spec.interval, spec.tz_ms)
                    out.append((spec.name, self._kline(sim, spec.interval, agg, False, t1)))
            elif kind == "bookTicker":
                if tick.best_changed:
                    out.append((spec.name, self._book_ticker(sim)))
            elif kind == "diffDepth":
                span = tick.diffs.get(spec.fast)
                if span is not None:
                    out.append((spec.name, self._diff(sim, span, t1)))
            elif kind == "partialDepth":
                if tick.changed if spec.fast else slow:
                    out.append((spec.name, self._partial(sim, spec.levels)))
            elif slow:
                out.append((spec.name, self._stat(sim, tick, spec, t1)))
        return out

    # ------------------------------------------------------------------ payloads
    @staticmethod
    def _kline(sim: SymbolSim, interval: str, agg: Agg, closed: bool, now: int) -> dict[str, Any]:
        symbol = sim.symbol
        return {
            "e": "kline",
            "E": now,
            "s": symbol,
            "k": {
                "t": agg.t,
                "T": agg.T,
                "s": symbol,
                "i": interval,
                "f": agg.f,
                "L": agg.L,
                "o": fmt8(agg.o),
                "c": fmt8(agg.c),
                "h": fmt8(agg.h),
                "l": fmt8(agg.l),
                "v": fmt8(agg.v),
                "n": agg.n,
                "x": closed,
                "q": fmt8(agg.q // E8),
                "V": fmt8(agg.V),
                "Q": fmt8(agg.Q // E8),
                "B": "0",
            },
        }

    @staticmethod
    def _book_ticker(sim: SymbolSim) -> dict[str, Any]:
        bb, bq, ba, aq = sim.best()
        return {
            "u": sim.uid,
            "s": sim.symbol,
            "b": fmt8(bb),
            "B": fmt8(bq),
            "a": fmt8(ba),
            "A": fmt8(aq),
        }

    @staticmethod
    def _diff(sim: SymbolSim, span: tuple[int, int], now: int) -> dict[str, Any]:
        bids, asks = sim.diff_levels(*span)
        return {
            "e": "depthUpdate",
            "E": now,
            "s": sim.symbol,
            "U": span[0],
            "u": span[1],
            "b": bids,
            "a": asks,
        }

    @staticmethod
    def _partial(sim: SymbolSim, levels: int) -> dict[str, Any]:
        return {
            "lastUpdateId": sim.uid,
            "bids": sim.top(True, levels),
            "asks": sim.top(False, levels),
        }

    @staticmethod
    def _mini(sim: SymbolSim, now: int) -> dict[str, Any]:
        agg = sim.window(WINDOW_MINUTES["1d"], now)
        return {
            "e": "24hrMiniTicker",
            "E": now,
            "s": sim.symbol,
            "c": fmt8(agg.c),
            "o": fmt8(agg.o),
            "h": fmt8(agg.h),
            "l": fmt8(agg.l),
            "v": fmt8(agg.v),
            "q": fmt8(agg.q // E8),
        }

    @staticmethod
    def _window_ticker(sim: SymbolSim, window: str, now: int) -> dict[str, Any]:
        agg = sim.window(WINDOW_MINUTES[window], now)
        change = agg.c - agg.o
        return {
            "e": f"{window}Ticker",
            "E": now,
            "s": sim.symbol,
            "p": fmt8(change),
            "P": fmt_percent(change, agg.o),
            "o": fmt8(agg.o),
            "h": fmt8(agg.h),
            "l": fmt8(agg.l),
            "c": fmt8(agg.c),
            "w": fmt8(agg.q // agg.v if agg.v else 0),
            "v": fmt8(agg.v),
            "q": fmt8(agg.q // E8),
            "O": agg.t,
            "C": now,
            "F": agg.f,
            "L": agg.L,
            "n": agg.n,
        }

    def _stat(self, sim: SymbolSim, tick: Tick, spec: StreamSpec, now: int) -> dict[str, Any]:
        kind = spec.kind
        if kind == "miniTicker":
            return self._mini(sim, now)
        if kind == "windowTicker":
            return self._window_ticker(sim, spec.window, now)
        if kind == "avgPrice":
            return {
                "e": "avgPrice",
                "E": now,
                "s": sim.symbol,
                "i": "5m",
                "w": fmt8(sim.average(now)),
                "T": sim.last_trade_ms,
            }
        # 24hrTicker: the same minute-aligned rolling window as the 1d ticker (O is the whole
        # minute at or before E - 24 h), plus the last price/qty and the best bid/ask.
        agg = sim.window(WINDOW_MINUTES["1d"], now)
        bb, bq, ba, aq = sim.best()
        change = agg.c - agg.o
        return {
            "e": "24hrTicker",
            "E": now,
            "s": sim.symbol,
            "p": fmt8(change),
            "P": fmt_percent(change, agg.o),
            "w": fmt8(agg.q // agg.v if agg.v else 0),
            "x": fmt8(agg.p),
            "c": fmt8(agg.c),
            "Q": fmt8(sim.last_qty),
            "b": fmt8(bb),
            "B": fmt8(bq),
            "a": fmt8(ba),
            "A": fmt8(aq),
            "o": fmt8(agg.o),
            "h": fmt8(agg.h),
            "l": fmt8(agg.l),
            "v": fmt8(agg.v),
            "q": fmt8(agg.q // E8),
            "O": agg.t,
            "C": now,
            "F": agg.f,
            "L": agg.L,
            "n": agg.n,
        }

    def _emit_arr(self, spec: StreamSpec, now: int, out: list[tuple[str, Any]]) -> None:
        # Binance sends only the symbols whose statistics changed since the last array.
        last = self._arr_last.setdefault(spec.name, {})
        items = []
        for symbol, sim in self._sims.items():
            if spec.kind == "allMiniTickers":
                payload = self._mini(sim, now)
            else:
                payload = self._window_ticker(sim, spec.window, now)
            signature = tuple(v for k, v in payload.items() if k not in ("E", "C"))
            if last.get(symbol) != signature:
                last[symbol] = signature
                items.append(payload)
        if items:
            out.append((spec.name, items))

    # ------------------------------------------------------------------ book & history
    def _sim(self, symbol: str) -> SymbolSim:
        sim = self._sims.get(symbol)
        if sim is None:
            raise ValueError(
                f"{symbol!r} is not simulated by this market (symbols: {self.symbols})"
            )
        return sim

    def true_book(self, symbol: str, update_id: int | None = None) -> BookState:
        """The exact, complete book of ``symbol`` after ``update_id`` (default: the current id).

        Any id from the oldest retained checkpoint to the current id is answered exactly
        (checkpoint + replay of the change log); others raise :class:`ValueError`.
        """
        sim = self._sim(symbol)
        uid = sim.uid if update_id is None else update_id
        bids, asks = sim.book_at(uid)
        return BookState(
            symbol,
            uid,
            tuple((_dec(p), _dec(q)) for p, q in bids),
            tuple((_dec(p), _dec(q)) for p, q in asks),
        )

    def last_update_id(self, symbol: str) -> int:
        """The update id of the latest book change of ``symbol``."""
        return self._sim(symbol).uid

    def oldest_update_id(self, symbol: str) -> int:
        """The oldest update id :meth:`true_book` still answers for ``symbol``."""
        return self._sim(symbol).oldest_uid

    def trade_history(self, symbol: str) -> list[dict[str, Any]]:
        """Every retained trade of ``symbol``, oldest first, as ``trade`` stream payloads."""
        sim = self._sim(symbol)
        return [sim.trade_event(sim.tr_first + i) for i in range(len(sim.tr_p))]

    def agg_trade_history(self, symbol: str) -> list[dict[str, Any]]:
        """Every retained aggregate trade of ``symbol``, oldest first, as ``aggTrade`` payloads."""
        sim = self._sim(symbol)
        return [sim.agg_event(sim.ag_first + i) for i in range(len(sim.ag_l))]

    def forget_history(
        self,
        symbol: str,
        *,
        before_time_ms: int | None = None,
        before_trade_id: int | None = None,
        before_agg_id: int | None = None,
    ) -> tuple[int, int]:
        """Make REST stop serving the older trades and aggregate trades of ``symbol``, as when
        Binance no longer has them; the streams and the market's own history are untouched.

        Give at most one cut: ``before_time_ms`` (market time: trades and aggTrades stamped
        earlier are forgotten), ``before_trade_id`` (trades below it, and every aggTrade that
        contains one of them) or ``before_agg_id`` (aggTrades below it and their trades).
        None of them forgets everything up to now: REST then serves only trades made after
        this call. Cuts only move forward (an earlier cut than the current one changes
        nothing). An id above the next id to be made raises ValueError.

        Returns :meth:`rest_oldest_ids` afterwards: (oldest trade id, oldest agg id) REST
        serves, which is the next id to be made when nothing is left.
        """
        sim = self._sim(symbol)
        given = [v for v in (before_time_ms, before_trade_id, before_agg_id) if v is not None]
        if len(given) > 1:
            raise ValueError("pass at most one of before_time_ms, before_trade_id, before_agg_id")
        next_trade, next_agg = sim.tr_first + len(sim.tr_p), sim.ag_first + len(sim.ag_l)
        if before_trade_id is not None and before_trade_id > next_trade:
            raise ValueError(
                f"before_trade_id {before_trade_id} is above the next trade id {next_trade}"
            )
        if before_agg_id is not None and before_agg_id > next_agg:
            raise ValueError(f"before_agg_id {before_agg_id} is above the next agg id {next_agg}")
        if before_time_ms is not None:
            trade_id = _first_trade_at(sim, before_time_ms)
            agg_id = _first_agg_from(sim, trade_id)
        elif before_trade_id is not None:
            trade_id, agg_id = before_trade_id, _first_agg_from(sim, before_trade_id)
        elif before_agg_id is not None:
            trade_id, agg_id = _agg_first_trade(sim, before_agg_id), before_agg_id
        else:
            trade_id, agg_id = next_trade, next_agg
        old_trade, old_agg = self._rest_floors.get(symbol, (trade_id, agg_id))
        self._rest_floors[symbol] = (max(old_trade, trade_id), max(old_agg, agg_id))
        return self.rest_oldest_ids(symbol)

    def rest_oldest_ids(self, symbol: str, window_ms: int | None = None) -> tuple[int, int]:
        """(oldest trade id, oldest aggregate trade id) the REST endpoints serve for
        ``symbol`` now: the later of the market's retained history, :meth:`forget_history`
        and ``rest_history_ms`` (and ``window_ms``, a further limit in ms of market time, such
        as USD-M's 48 hours for aggTrades). Ids below them are answered from these on."""
        return self._rest_floor(self._sim(symbol), window_ms)

    def _rest_floor(self, sim: SymbolSim, window_ms: int | None = None) -> tuple[int, int]:
        trade_id, agg_id = sim.tr_first, sim.ag_first
        forgotten = self._rest_floors.get(sim.symbol)
        if forgotten is not None:
            trade_id, agg_id = max(trade_id, forgotten[0]), max(agg_id, forgotten[1])
        windows = [w for w in (self.rest_history_ms, window_ms) if w is not None]
        if windows:
            # "The last N ms" includes a trade stamped exactly N ms ago.
            cut = _first_trade_at(sim, self._time - min(windows))
            trade_id, agg_id = max(trade_id, cut), max(agg_id, _first_agg_from(sim, cut))
        return trade_id, agg_id

    def inject_gap(self, symbol: str, size: int = 1) -> dict[str, int]:
        """Make the next diff-depth event of each speed of ``symbol`` skip updates (a gap).

        ``size`` fresh changes are made to the book now, each a real change of a distinct
        level. The next ``@depth@100ms`` event then has ``U = previous u + 1 + size`` (it has
        nothing pending between steps, so it skips exactly the fresh changes). The next
        ``@depth`` (1000 ms) event skips the first ``size`` updates of its window, i.e. also
        ``U = previous u + 1 + size``, unless every level those updates touched was changed
        again later in the same window (a client ignoring the gap would then be right): then
        it skips the fewest further updates that leave a level wrong, at most up to the fresh
        changes. Levels touched by skipped updates stay unchanged until that speed's next
        event, so a client that ignores the gap has a wrong book there, while a client that
        resyncs from :meth:`rest_depth` gets the true one.

        Returns the number of skipped updates per stream suffix:
        ``{"@depth@100ms": size, "@depth": k}``.
        """
        if size < 1:
            raise ValueError(f"gap size must be >= 1, not {size}")
        skipped = self._sim(symbol).inject_gap(size)
        return {"@depth@100ms": skipped[True], "@depth": skipped[False]}

    def symbol_config(self, symbol: str) -> SymbolConfig:
        """The static parameters (tick size, step size, ...) the market uses for ``symbol``."""
        return self._sim(symbol).cfg

    # ------------------------------------------------------------------ REST
    def _rest_sim(self, symbol: str) -> SymbolSim:
        if not symbol:
            raise MarketError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        sim = self._sims.get(symbol)
        if sim is None:
            raise MarketError(-1121, "Invalid symbol.")
        return sim

    @staticmethod
    def _limit(limit: int, maximum: int) -> int:
        if limit < 1:
            raise _illegal("limit", f"1-{maximum}")
        return min(limit, maximum)  # Binance spot truncates larger limits silently

    def rest_depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        """``GET /api/v3/depth``: ``{"lastUpdateId", "bids", "asks"}`` with ``limit`` levels a
        side (1-5000, larger values truncated to 5000), taken at the current update id, so the
        diff events after ``lastUpdateId`` applied to it give the true book."""
        sim = self._rest_sim(symbol)
        n = self._limit(limit, 5000)
        return {"lastUpdateId": sim.uid, "bids": sim.top(True, n), "asks": sim.top(False, n)}

    def rest_agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
        *,
        window_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /api/v3/aggTrades`` over the REST-retained history, oldest first.

        ``fromId`` (inclusive) → the ``limit`` trades from that id; ``startTime``/``endTime``
        (inclusive, ms or µs) → from the oldest at/after start, or the most recent up to end
        when only ``endTime`` is given; nothing → the most recent ``limit``. ``limit`` 1-1000
        (larger truncated). ``fromId`` with a time → -1128; start after end → -1023.
        Older ids and times than REST retains (:meth:`rest_oldest_ids`, with ``window_ms``
        as a further limit) are answered from the oldest retained aggTrade on.
        """
        sim = self._rest_sim(symbol)
        n = self._limit(limit, 1000)
        start, end = _to_ms(start_time), _to_ms(end_time)
        if from_id is not None and (start is not None or end is not None):
            raise MarketError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None and start > end:
            raise MarketError(-1023, "Start time is greater than end time.")
        count = len(sim.ag_l)
        # Older ids than REST retains are answered from the oldest retained one on.
        oldest = self._rest_floor(sim, window_ms)[1] - sim.ag_first
        if from_id is not None:
            if from_id < 0:
                raise _illegal("fromId", "0-9223372036854775807")
            lo = max(oldest, from_id - sim.ag_first)
            rows = range(lo, min(count, lo + n))
        elif start is None and end is None:
            rows = range(max(oldest, count - n), count)
        else:
            lo, hi = sim.agg_span(start, end)
            lo = max(lo, oldest)
            rows = range(lo, min(hi, lo + n)) if start is not None else range(max(lo, hi - n), hi)
        return [sim.agg_row(sim.ag_first + i) for i in rows]

    def rest_historical_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        limit: int = 500,
        *,
        best_match: bool = True,
    ) -> list[dict[str, Any]]:
        """``GET /api/v3/historicalTrades``: the ``limit`` trades from ``from_id`` (inclusive)
        on, oldest first, or the most recent ``limit`` without it; ``limit`` 1-1000 (larger
        truncated). A ``from_id`` below REST's retention (:meth:`rest_oldest_ids`) starts at
        the oldest retained trade; one above the latest trade gives ``[]``. Items are
        ``{"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}``
        (``best_match=False`` leaves ``isBestMatch`` out, as USD-M does)."""
        sim = self._rest_sim(symbol)
        n = self._limit(limit, 1000)
        count = len(sim.tr_p)
        oldest = self._rest_floor(sim)[0] - sim.tr_first
        if from_id is None:
            rows = range(max(oldest, count - n), count)
        else:
            if from_id < 0:
                raise _illegal("fromId", "0-9223372036854775807")
            lo = max(oldest, from_id - sim.tr_first)
            rows = range(lo, min(count, lo + n))
        return [_trade_row(sim, sim.tr_first + i, best_match) for i in rows]

    def rest_trades(
        self, symbol: str, limit: int = 500, *, best_match: bool = True
    ) -> list[dict[str, Any]]:
        """``GET /api/v3/trades``: the most recent ``limit`` trades (1-1000, larger truncated),
        oldest first, in the shape of :meth:`rest_historical_trades`."""
        return self.rest_historical_trades(symbol, None, limit, best_match=best_match)

    def rest_klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[list[Any]]:
        """``GET /api/v3/klines`` (UTC) over the retained candles, oldest first, the open
        candle included: 12-element rows. Candles are selected by open time: ``startTime`` ≤
        open ≤ ``endTime`` (ms or µs); only ``endTime`` or nothing → the most recent ``limit``.
        A row equals the stream's ``k`` for the same candle at the same market time."""
        sim = self._rest_sim(symbol)
        if interval not in INTERVALS:
            raise MarketError(-1120, "Invalid interval.")
        n = self._limit(limit, 1000)
        start, end = _to_ms(start_time), _to_ms(end_time)
        if start is not None and end is not None and start > end:
            raise MarketError(-1023, "Start time is greater than end time.")
        candles = sim.candles(interval)
        lo = 0 if start is None else bisect_left(candles, start, key=lambda a: a.t)
        hi = len(candles) if end is None else bisect_right(candles, end, key=lambda a: a.t)
        chosen = (
            candles[lo : min(hi, lo + n)] if start is not None else candles[max(lo, hi - n) : hi]
        )
        return [_kline_row(agg) for agg in chosen]

    def rest_avg_price(self, symbol: str) -> dict[str, Any]:
        """``GET /api/v3/avgPrice``: the 5-minute volume-weighted price (the stream's ``w``)."""
        sim = self._rest_sim(symbol)
        return {"mins": 5, "price": fmt8(sim.average(self._time)), "closeTime": sim.last_trade_ms}

    def rest_exchange_info(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        """``GET /api/v3/exchangeInfo`` for ``symbols`` (default: every simulated symbol) with
        the reference's exact keys and filters matching the market's tick and step sizes."""
        if symbols is None:
            names: Sequence[str] = self.symbols
        else:
            if not symbols:
                raise MarketError(
                    -1102,
                    "Mandatory parameter 'symbols' was not sent, was empty/null, or malformed.",
                )
            names = symbols
        entries = [self._symbol_info(self._rest_sim(name).cfg) for name in names]
        return {
            "timezone": "UTC",
            "serverTime": self._time,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 300000,
                },
            ],
            "exchangeFilters": [],
            "symbols": entries,
        }

    @staticmethod
    def _symbol_info(cfg: SymbolConfig) -> dict[str, Any]:
        stable = cfg.quote_asset in _STABLE_QUOTES
        return {
            "symbol": cfg.symbol,
            "status": "TRADING",
            "baseAsset": cfg.base_asset,
            "baseAssetPrecision": 8,
            "quoteAsset": cfg.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "opoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(cfg.tick),
                    "maxPrice": fmt8(max(1_000_000 * E8, cfg.price * 100) // cfg.tick * cfg.tick),
                    "tickSize": fmt8(cfg.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt8(cfg.step),
                    "maxQty": fmt8(9_000_000 * E8 // cfg.step * cfg.step),
                    "stepSize": fmt8(cfg.step),
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": fmt8(100_000 * E8 // cfg.step * cfg.step),
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "5",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt8(5 * E8 if stable else 10_000),
                    "applyMinToMarket": True,
                    "maxNotional": fmt8(9_000_000 * E8),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }
