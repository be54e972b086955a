"""Best bid and ask as typed quotes, from the bookTicker stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactivex import Observable

from rxbinance.models import Quote

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = ["Quote", "best_bid_ask"]


def best_bid_ask(streams: BinanceStreams, symbol: str) -> Observable[Quote]:
    """Typed best bid/ask quotes of ``symbol``, in real time, from ``<symbol>@bookTicker``:
    :meth:`BinanceStreams.best_bid_ask` (see there), as a function like the other pipelines.

    .. code-block:: python

        rxbinance.best_bid_ask(streams, "BTCUSDT").pipe(rbo.mid()).subscribe(print)
    """
    return streams.best_bid_ask(symbol)
