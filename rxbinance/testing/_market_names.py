"""Stream names, kline interval arithmetic and Binance number formatting for the fake market.

Pure helpers, no state: :func:`parse_stream` turns a Binance spot stream name into a
:class:`StreamSpec` (or says why it is retired or invalid), :func:`candle_open` /
:func:`candle_close` place a timestamp in its kline interval (UTC or ``+08:00``), and
:func:`fmt8` renders the market's fixed-point integers (units of 1e-8) exactly the way Binance
prints prices and quantities (``"60000.01000000"``).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Final, Literal

#: Every kline interval Binance spot streams and REST accept; case matters (1m minute, 1M month).
INTERVALS: Final = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)

_SECOND: Final = 1_000
_MINUTE: Final = 60 * _SECOND
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
_WEEK: Final = 7 * _DAY
# 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00, four days later.
_MONDAY_SHIFT: Final = 4 * _DAY

#: Fixed widths of the intervals that have one (``1M`` has none: months differ).
INTERVAL_MS: Final[dict[str, int]] = {
    "1s": _SECOND,
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": _HOUR,
    "2h": 2 * _HOUR,
    "4h": 4 * _HOUR,
    "6h": 6 * _HOUR,
    "8h": 8 * _HOUR,
    "12h": 12 * _HOUR,
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": _WEEK,
}

#: Offset of the ``@+08:00`` kline variant: boundaries at UTC+8, times still UTC epoch ms.
TZ_PLUS8_MS: Final = 8 * _HOUR

#: Rolling-window ticker windows (``@ticker_<w>``) in minutes.
WINDOW_MINUTES: Final[dict[str, int]] = {"1h": 60, "4h": 240, "1d": 1440}

E8: Final = 100_000_000

Kind = Literal[
    "trade",
    "aggTrade",
    "kline",
    "miniTicker",
    "ticker",
    "windowTicker",
    "bookTicker",
    "avgPrice",
    "partialDepth",
    "diffDepth",
    "allMiniTickers",
    "allWindowTickers",
    "silent",
]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A parsed, well-formed stream name.

    ``symbol`` is uppercase (``None`` for the ``!...@arr`` streams). ``interval``/``tz_ms`` are
    set for klines, ``window`` for rolling-window tickers, ``levels`` for partial depth and
    ``fast`` for the ``@100ms`` depth variants. ``silent`` kinds (``@blockTrade``,
    ``@referencePrice``) are accepted like Binance accepts them but the fake never emits them.
    """

    name: str
    kind: Kind
    symbol: str | None
    interval: str = ""
    tz_ms: int = 0
    window: str = ""
    levels: int = 0
    fast: bool = False


_RETIRED: Final = frozenset({"!ticker@arr", "!bookTicker"})
_SIMPLE: Final[dict[str, Kind]] = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "bookTicker": "bookTicker",
    "avgPrice": "avgPrice",
    "miniTicker": "miniTicker",
    "ticker": "ticker",
    # Real Binance streams the fake accepts but never feeds (block trades are rare; the
    # reference price is not simulated): subscribing succeeds, nothing arrives.
    "blockTrade": "silent",
    "referencePrice": "silent",
}
_KLINE_RE: Final = re.compile(r"kline_(\w+?)(@\+08:00)?")
_DEPTH_RE: Final = re.compile(r"depth(5|10|20)?(@100ms)?")
_TICKER_WINDOW_RE: Final = re.compile(r"ticker_(1h|4h|1d)")
_ARR_WINDOW_RE: Final = re.compile(r"!ticker_(1h|4h|1d)@arr")


def _valid_symbol(symbol: str) -> bool:
    # Binance stream symbols are lowercase; non-ASCII (UTF-8) symbols exist since 2025-12, so
    # "alphanumeric and already lowercase" rather than [a-z0-9].
    return bool(symbol) and symbol.isalnum() and symbol == symbol.lower()


def parse_stream(name: str) -> StreamSpec | Literal["retired", "invalid"]:
    """Parse a spot stream name exactly as Binance spells it.

    Returns a :class:`StreamSpec` for a well-formed name (whether or not the market simulates
    its symbol), ``"retired"`` for ``!ticker@arr`` and ``!bookTicker`` and ``"invalid"`` for
    anything else: empty, uppercase symbol, unknown suffix, bad interval, bad depth speed.
    """
    if name in _RETIRED:
        return "retired"
    if name == "!miniTicker@arr":
        return StreamSpec(name, "allMiniTickers", None)
    m = _ARR_WINDOW_RE.fullmatch(name)
    if m:
        return StreamSpec(name, "allWindowTickers", None, window=m.group(1))
    symbol, at, suffix = name.partition("@")
    if not at or not _valid_symbol(symbol):
        return "invalid"
    upper = symbol.upper()
    kind = _SIMPLE.get(suffix)
    if kind is not None:
        return StreamSpec(name, kind, upper)
    m = _TICKER_WINDOW_RE.fullmatch(suffix)
    if m:
        return StreamSpec(name, "windowTicker", upper, window=m.group(1))
    m = _KLINE_RE.fullmatch(suffix)
    if m:
        if m.group(1) not in INTERVALS:
            return "invalid"
        tz = TZ_PLUS8_MS if m.group(2) else 0
        return StreamSpec(name, "kline", upper, interval=m.group(1), tz_ms=tz)
    m = _DEPTH_RE.fullmatch(suffix)
    if m:
        fast = m.group(2) is not None
        if m.group(1):
            return StreamSpec(name, "partialDepth", upper, levels=int(m.group(1)), fast=fast)
        return StreamSpec(name, "diffDepth", upper, fast=fast)
    return "invalid"


def _month_start(t_ms: int, months_ahead: int = 0) -> int:
    day = _dt.datetime.fromtimestamp(t_ms // 1000, tz=_dt.UTC)
    month0 = day.year * 12 + day.month - 1 + months_ahead
    start = _dt.datetime(month0 // 12, month0 % 12 + 1, 1, tzinfo=_dt.UTC)
    return int(start.timestamp()) * 1000


def candle_open(interval: str, t_ms: int, tz_ms: int = 0) -> int:
    """Open time (UTC epoch ms) of the ``interval`` candle containing ``t_ms``.

    Boundaries are computed in local time ``t + tz_ms`` (``tz_ms`` = 8 h for ``@+08:00``):
    fixed intervals (including ``3d``) are multiples of their width since the epoch, ``1w``
    opens on Monday 00:00, ``1M`` on the 1st of the month.
    """
    local = t_ms + tz_ms
    if interval == "1M":
        return _month_start(local) - tz_ms
    if interval == "1w":
        return (local - _MONDAY_SHIFT) // _WEEK * _WEEK + _MONDAY_SHIFT - tz_ms
    width = INTERVAL_MS[interval]
    return local // width * width - tz_ms


def candle_close(interval: str, open_ms: int, tz_ms: int = 0) -> int:
    """Close time of the candle opening at ``open_ms``: the next open minus 1 ms (Binance's T)."""
    if interval == "1M":
        return _month_start(open_ms + tz_ms, 1) - tz_ms - 1
    return open_ms + INTERVAL_MS[interval] - 1


def crossed(t0: int, t1: int, period: int) -> bool:
    """True when the step from ``t0`` to ``t1`` passes a multiple of ``period`` (t0 < k*p <= t1)."""
    return t1 // period != t0 // period


def fmt8(value: int) -> str:
    """Format a fixed-point integer in units of 1e-8 the way Binance does: ``"0.00100000"``."""
    # The hottest function of a step (every price and qty of every payload): keep it flat.
    if value >= 0:
        return f"{value // E8}.{value % E8:08d}"
    return "-" + fmt8(-value)


def parse8(text: str) -> int:
    """Inverse of :func:`fmt8` for non-negative decimals with at most 8 places."""
    whole, _, frac = text.partition(".")
    if len(frac) > 8 or not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a Binance 8-decimal number: {text!r}")
    return int(whole) * E8 + int(frac.ljust(8, "0") or "0")


def fmt_percent(change: int, base: int) -> str:
    """``change / base * 100`` rounded half away from zero to 3 decimals (``"-0.125"``).

    Binance's REST ``priceChangePercent`` has 3 decimals; its stream doc example shows 2, the
    live stream shows 3, so the fake uses 3 everywhere. ``base == 0`` gives ``"0.000"``.
    """
    if base <= 0:
        return "0.000"
    q, r = divmod(abs(change) * 100_000, base)
    if 2 * r >= base:
        q += 1
    sign = "-" if change < 0 and q else ""
    return f"{sign}{q // 1000}.{q % 1000:03d}"
