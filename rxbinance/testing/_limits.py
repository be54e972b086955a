"""Request-weight accounting shared by FakeBinance's REST server and its WebSocket API.

Binance counts request weight per IP in wall-clock minute buckets (a bucket starts at :00), and
REST and WS API requests draw on the same budget. FakeBinance serves one "IP", so one
:class:`WeightMeter` is shared by every REST request thread and by the asyncio loop; it has its
own small lock so neither side needs the market lock to charge weight.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Charge", "WeightMeter", "too_much_weight_msg"]


def too_much_weight_msg(limit: int) -> str:
    """Binance's -1003 text for HTTP 429 (errors.md template, filled in the obvious way)."""
    return (
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )


@dataclass(frozen=True, slots=True)
class Charge:
    """The outcome of :meth:`WeightMeter.charge`.

    Attributes:
        allowed: False when the request would exceed the limit (nothing was charged then).
        used: Weight used in the current minute after this request (what
            ``X-MBX-USED-WEIGHT-1M`` reports).
        retry_after: Whole seconds until the minute bucket resets (at least 1); meaningful
            when not allowed.
    """

    allowed: bool
    used: int
    retry_after: int


class WeightMeter:
    """Counts request weight per wall-clock minute against ``limit``.

    ``clock`` returns epoch seconds (``time.time`` by default); tests of the meter itself can
    pass a fake clock.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._used = 0

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            self._used = 0

    def charge(self, weight: int) -> Charge:
        """Add ``weight`` to the current minute unless that would exceed the limit."""
        with self._lock:
            now = self._clock()
            self._roll(now)
            retry_after = max(1, math.ceil((self._minute + 1) * 60 - now))
            if self._used + weight > self.limit:
                return Charge(False, self._used, retry_after)
            self._used += weight
            return Charge(True, self._used, retry_after)

    def used(self) -> int:
        """Weight used so far in the current minute."""
        with self._lock:
            self._roll(self._clock())
            return self._used
