"""What the pipelines need from REST: a client, a shared request-weight budget, error triage.

Binance limits REST by request *weight* per IP (spot: 6,000 a minute; a 1,000-level depth
snapshot costs 50). A mass resync (a reconnect of a socket carrying many books) must not spend
it all at once, or the IP is answered 429 and then banned (418). So every REST call a pipeline
makes first takes its weight from one :class:`WeightBudget` per :class:`BinanceStreams` (a token
bucket), and a 429/418 pauses that whole budget for the server's ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from rxbinance.errors import InvalidInputError, RateLimitError, RequestError

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = [
    "DepthClient",
    "KlinesClient",
    "WeightBudget",
    "depth_weight",
    "is_fatal",
    "rest_budget",
    "retry_after",
]

log = logging.getLogger("rxbinance.pipelines")


class DepthClient(Protocol):
    """The part of :class:`rxbinance.rest.Client` the order book uses."""

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]: ...


class KlinesClient(Protocol):
    """The part of :class:`rxbinance.rest.Client` :func:`klines_with_history` uses."""

    def klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[list[Any]]: ...


# Spot GET /api/v3/depth and USD-M GET /fapi/v1/depth weights (binance-protocol.md 7, 8.4).
_SPOT_DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_FUTURES_DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))
SPOT_DEPTH_LIMITS = range(1, 5001)
FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def depth_weight(limit: int, *, futures: bool) -> int:
    """Request weight of a depth snapshot of ``limit`` levels."""
    for upto, weight in _FUTURES_DEPTH_WEIGHTS if futures else _SPOT_DEPTH_WEIGHTS:
        if limit <= upto:
            return weight
    raise InvalidInputError(f"depth limit {limit} is above the maximum")


def check_depth_limit(limit: object, *, futures: bool) -> int:
    allowed = FUTURES_DEPTH_LIMITS if futures else SPOT_DEPTH_LIMITS
    if isinstance(limit, bool) or not isinstance(limit, int) or limit not in allowed:
        what = ", ".join(map(str, FUTURES_DEPTH_LIMITS)) if futures else "1 to 5000"
        raise InvalidInputError(f"invalid depth snapshot limit {limit!r}: allowed are {what}")
    return limit


#: Pause after a 429/418 that carried no ``Retry-After``: weight is counted per minute.
DEFAULT_RATE_LIMIT_PAUSE = 60.0


def retry_after(error: BaseException) -> float | None:
    """Seconds a rate-limit error (429/418) asks to wait, else None.

    :class:`~rxbinance.errors.RateLimitError` carries ``retry_after`` (None when Binance sent
    no ``Retry-After``: then :data:`DEFAULT_RATE_LIMIT_PAUSE`). Any other exception with a
    numeric ``retry_after`` attribute (another client's) is honoured the same way.
    """
    value = getattr(error, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, float(value))
    if isinstance(error, RateLimitError):
        return DEFAULT_RATE_LIMIT_PAUSE
    return None


def is_fatal(error: BaseException) -> bool:
    """True for a REST error that retrying cannot fix: Binance refused the request itself
    (HTTP 4xx other than 429/418, e.g. -1121 invalid symbol) or the arguments were invalid.

    Rate limits, 5xx (outcome unknown), timeouts and network errors
    (:class:`~rxbinance.errors.RequestError`) are worth retrying.
    """
    if isinstance(error, InvalidInputError):
        return True
    if isinstance(error, (RateLimitError, RequestError)) or retry_after(error) is not None:
        return False
    status = getattr(error, "status", None)
    if status is None:
        status = getattr(error, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (418, 429)


class WeightBudget:
    """A token bucket of REST request weight, shared by the pipelines of one BinanceStreams.

    ``weight_per_minute`` is the sustained rate; ``burst`` the most that can be spent at once
    after a quiet period. In any 60 s window at most ``burst + weight_per_minute`` is spent, so
    the defaults (3,000 and 1,000) stay well inside spot's 6,000 per minute and leave room for
    the application's own REST calls. A request heavier than ``burst`` waits for a full bucket
    and then drives it negative, so it is throttled rather than refused.

    :meth:`pause` (after a 429 or 418) stops every :meth:`acquire` until its ``Retry-After``
    has passed. Thread-safe.
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
        """Total weight acquired so far."""
        self.waits = 0
        """How many acquisitions had to wait."""

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def acquire(self, weight: float, cancel: threading.Event | None = None) -> bool:
        """Take ``weight`` from the bucket, waiting as long as needed.

        Returns True once taken, False if ``cancel`` was set while waiting (nothing is taken).
        """
        waited = False
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
            # Bounded waits: a pause() from another thread is noticed within a second.
            delay = min(max(delay, 0.001), 1.0)
            if cancel is not None:
                if cancel.wait(delay):
                    return False
            else:
                time.sleep(delay)

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


_budgets: weakref.WeakKeyDictionary[Any, WeightBudget] = weakref.WeakKeyDictionary()
_budgets_lock = threading.Lock()


def rest_budget(streams: BinanceStreams) -> WeightBudget:
    """The REST weight budget every pipeline of ``streams`` shares (created on first use).

    USD-M's IP limit is lower (2,400 a minute), so its default budget is 1,200 a minute with a
    burst of 400. Replace it with :func:`set_rest_budget` before starting pipelines.
    """
    with _budgets_lock:
        budget = _budgets.get(streams)
        if budget is None:
            if str(getattr(streams, "market", "spot")).startswith("usdm"):
                budget = WeightBudget(1200, 400)
            else:
                budget = WeightBudget()
            _budgets[streams] = budget
        return budget


def set_rest_budget(streams: BinanceStreams, budget: WeightBudget) -> None:
    """Make ``budget`` the one every later pipeline of ``streams`` draws from."""
    with _budgets_lock:
        _budgets[streams] = budget
