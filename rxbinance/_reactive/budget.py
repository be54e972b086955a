"""A token bucket of REST request weight: how every REST call the library makes is paced.

Binance limits REST by request *weight* per IP (spot: 6,000 a minute; a 1,000-level depth
snapshot costs 50). A mass resync (a reconnect of a socket carrying many books) must not spend
it all at once, or the IP is answered 429 and then banned (418). So every REST call a pipeline
makes first takes its weight from the one :class:`WeightBudget` of its
:class:`~rxbinance.BinanceStreams` (``streams.context.budget``), and a 429/418 pauses that whole
budget for the server's ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rxbinance.errors import InvalidInputError

__all__ = ["WeightBudget", "default_budget"]


class WeightBudget:
    """A token bucket of REST request weight, shared by the pipelines of one BinanceStreams.

    ``weight_per_minute`` is the sustained rate; ``burst`` the most that can be spent at once
    after a quiet period. In any 60 s window at most ``burst + weight_per_minute`` is spent, so
    the defaults (3,000 and 1,000) stay well inside spot's 6,000 per minute and leave room for
    the application's own REST calls. A request heavier than ``burst`` waits for a full bucket
    and then drives it negative, so it is throttled rather than refused.

    :meth:`pause` (after a 429 or 418) stops every :meth:`acquire` until its ``Retry-After``
    has passed; :meth:`refund` gives back the weight of a request that never left (connection
    refused). Thread-safe.
    """

    def __init__(
        self,
        weight_per_minute: float = 3000,
        burst: float = 1000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not weight_per_minute > 0 or not burst > 0:
            raise InvalidInputError("weight_per_minute and burst must be > 0")
        self.weight_per_minute = float(weight_per_minute)
        self.burst = float(burst)
        self._rate = self.weight_per_minute / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()
        self._paused_until = 0.0
        self.spent = 0.0
        """Total weight acquired so far, less what was refunded."""
        self.waits = 0
        """How many acquisitions had to wait."""

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def acquire(
        self,
        weight: float,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Take ``weight`` from the bucket, waiting as long as needed, or at most ``timeout``
        seconds (real time).

        Returns True once taken, False if ``cancel`` was set while waiting or the timeout
        passed (nothing is taken then).
        """
        waited = False
        give_up_at = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                if now >= self._paused_until and self._tokens >= min(weight, self.burst):
                    self._tokens -= weight
                    self.spent += weight
                    if waited:
                        self.waits += 1
                    return True
                if now < self._paused_until:
                    delay = self._paused_until - now
                else:
                    delay = (min(weight, self.burst) - self._tokens) / self._rate
            waited = True
            if give_up_at is not None:
                left = give_up_at - time.monotonic()
                if left <= 0:
                    return False
                delay = min(delay, left)
            # Bounded waits: a pause() from another thread is noticed within a second.
            delay = min(max(delay, 0.001), 1.0)
            if cancel is not None:
                if cancel.wait(delay):
                    return False
            else:
                time.sleep(delay)

    def refund(self, weight: float, error: BaseException) -> bool:
        """Give ``weight`` back if the request that took it failed with ``error`` before
        reaching Binance (no connection was made: :attr:`~rxbinance.errors.RequestError.sent`
        is False), which counted no weight. Returns True if it was given back."""
        if getattr(error, "sent", True) is not False:
            return False
        with self._lock:
            self._tokens = min(self.burst, self._tokens + weight)
            self.spent -= weight
        return True

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (the ``Retry-After`` of a 429 or 418)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tokens = min(self._tokens, 0.0)

    def __repr__(self) -> str:
        return (
            f"WeightBudget(weight_per_minute={self.weight_per_minute:g}, burst={self.burst:g}, "
            f"spent={self.spent:g})"
        )


def default_budget(product: str) -> WeightBudget:
    """The default budget of a market: spot 3,000 a minute with a burst of 1,000; USD-M, whose
    IP limit is lower (2,400 a minute), 1,200 with a burst of 400."""
    return WeightBudget(1200, 400) if product == "usdm" else WeightBudget()
