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
from rxbinance._reactive.reconnect import DEFAULT_RATE_LIMIT_PAUSE, is_fatal, retry_after
from rxbinance.protocol.limits import check_depth_limit, depth_weight

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = [
    "DEFAULT_RATE_LIMIT_PAUSE",
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
