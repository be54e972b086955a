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
from rxbinance.protocol.limits import check_depth_limit, depth_weight

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = [
    "DepthClient",
    "KlinesClient",
    "WeightBudget",
    "check_depth_limit",
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
