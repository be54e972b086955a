"""Candle boundaries of Binance kline intervals: pure arithmetic on UTC epoch milliseconds.

Binance's rules (and FakeBinance's): fixed intervals, ``3d`` included, open on multiples of their
width since the epoch; ``1w`` opens on Monday 00:00; ``1M`` on the first of the month. A kline
stream with a time zone (``@+08:00``) computes the same boundaries in local time ``t + offset``
while its times stay UTC epoch ms. A candle's close time ``T`` is the next open minus 1 ms.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from rxbinance.errors import InvalidInputError
from rxbinance.protocol.names import KLINE_INTERVALS

__all__ = [
    "candle_close",
    "candle_open",
    "check_interval",
    "interval_width",
    "next_open",
    "parse_utc_offset",
]

_SECOND: Final = 1_000
_MINUTE: Final = 60 * _SECOND
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
_WEEK: Final = 7 * _DAY
# 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00, four days later.
_MONDAY_SHIFT: Final = 4 * _DAY

_WIDTH: Final[dict[str, int]] = {
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

_OFFSET = re.compile(r"([+-])(\d{1,2}):(\d{2})")


def check_interval(interval: object) -> str:
    """Return ``interval`` if Binance knows it, else raise InvalidInputError naming the allowed."""
    if not isinstance(interval, str) or interval not in KLINE_INTERVALS:
        allowed = ", ".join(repr(i) for i in KLINE_INTERVALS)
        raise InvalidInputError(f"invalid kline interval {interval!r}: allowed are {allowed}")
    return interval


def parse_utc_offset(offset: str) -> int:
    """``"+08:00"`` -> milliseconds east of UTC (-12:00 to +14:00, Binance's range)."""
    match = _OFFSET.fullmatch(offset) if isinstance(offset, str) else None
    if match is None:
        raise InvalidInputError(f"invalid UTC offset {offset!r}: expected '+HH:MM' or '-HH:MM'")
    sign, hours, minutes = match.groups()
    value = (int(hours) * 60 + int(minutes)) * _MINUTE * (-1 if sign == "-" else 1)
    if not -12 * _HOUR <= value <= 14 * _HOUR or int(minutes) >= 60:
        raise InvalidInputError(f"invalid UTC offset {offset!r}: the range is -12:00 to +14:00")
    return value


def interval_width(interval: str) -> int | None:
    """Fixed width in ms, or None for ``1M`` (months differ)."""
    return _WIDTH.get(interval)


def _month_start(local_ms: int, months_ahead: int = 0) -> int:
    day = datetime.fromtimestamp(local_ms // 1000, tz=UTC)
    month0 = day.year * 12 + day.month - 1 + months_ahead
    return int(datetime(month0 // 12, month0 % 12 + 1, 1, tzinfo=UTC).timestamp()) * 1000


def candle_open(interval: str, t_ms: int, offset_ms: int = 0) -> int:
    """Open time (UTC epoch ms) of the ``interval`` candle that contains ``t_ms``."""
    local = t_ms + offset_ms
    if interval == "1M":
        return _month_start(local) - offset_ms
    if interval == "1w":
        return (local - _MONDAY_SHIFT) // _WEEK * _WEEK + _MONDAY_SHIFT - offset_ms
    width = _WIDTH[interval]
    return local // width * width - offset_ms


def next_open(interval: str, open_ms: int, offset_ms: int = 0) -> int:
    """Open time of the candle after the one opening at ``open_ms``."""
    if interval == "1M":
        return _month_start(open_ms + offset_ms, 1) - offset_ms
    return open_ms + _WIDTH[interval]


def candle_close(interval: str, open_ms: int, offset_ms: int = 0) -> int:
    """Close time ``T`` of the candle opening at ``open_ms``: the next open minus 1 ms."""
    return next_open(interval, open_ms, offset_ms) - 1
