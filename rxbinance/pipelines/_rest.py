"""What the pipelines need from REST: the client protocols they accept, and the shared
request-weight budget of a BinanceStreams (:class:`~rxbinance._reactive.budget.WeightBudget`,
``streams.context.budget``; error triage lives in :mod:`rxbinance._reactive.reconnect`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rxbinance._reactive.budget import WeightBudget

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = ["DepthClient", "KlinesClient", "WeightBudget", "rest_budget", "set_rest_budget"]


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
