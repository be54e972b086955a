"""What the pipelines need from REST: a client, a shared request-weight budget, error triage.

Binance limits REST by request *weight* per IP (spot: 6,000 a minute; a 1,000-level depth
snapshot costs 50). A mass resync (a reconnect of a socket carrying many books) must not spend
it all at once, or the IP is answered 429 and then banned (418). So every REST call a pipeline
makes first takes its weight from one :class:`WeightBudget` per :class:`BinanceStreams` (a token
bucket), and a 429/418 pauses that whole budget for the server's ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from rxbinance._reactive.budget import WeightBudget
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


def rest_budget(streams: BinanceStreams) -> WeightBudget:
    """The REST weight budget every pipeline of ``streams`` shares: ``streams.context.budget``.

    Spot: 3,000 a minute with a burst of 1,000. USD-M's IP limit is lower (2,400 a minute), so
    its default budget is 1,200 a minute with a burst of 400. Replace it with
    :func:`set_rest_budget` before starting pipelines.
    """
    return streams.context.budget


def set_rest_budget(streams: BinanceStreams, budget: WeightBudget) -> None:
    """Make ``budget`` the one every later pipeline of ``streams`` draws from."""
    streams.context.budget = budget
