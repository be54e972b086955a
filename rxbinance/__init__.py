"""rxbinance: Binance WebSocket streams as hot, shared, self-healing ReactiveX Observables.

.. code-block:: python

    from rxbinance import BinanceStreams

    with BinanceStreams() as streams:
        streams.trades("BTCUSDT").subscribe(print)
"""

from rxbinance import events
from rxbinance.aio import aiter
from rxbinance.errors import (
    BinanceAPIError,
    ConnectError,
    ConnectionDropped,
    ConnectionFailure,
    HandshakeError,
    InvalidInputError,
    ProtocolError,
    RateLimitError,
    RequestError,
    RequestTimeout,
    RxBinanceError,
    ServerShutdown,
    StallError,
)
from rxbinance.pipelines import (
    OrderBook,
    Quote,
    WeightBudget,
    best_bid_ask,
    klines_with_history,
    order_book,
    order_book_statistics,
    rest_budget,
    set_rest_budget,
)
from rxbinance.recording import replay
from rxbinance.streams import BinanceStreams, StreamStatistics

__version__ = "0.1.0"

__all__ = [
    "BinanceAPIError",
    "BinanceStreams",
    "ConnectError",
    "ConnectionDropped",
    "ConnectionFailure",
    "HandshakeError",
    "InvalidInputError",
    "OrderBook",
    "ProtocolError",
    "Quote",
    "RateLimitError",
    "RequestError",
    "RequestTimeout",
    "RxBinanceError",
    "ServerShutdown",
    "StallError",
    "StreamStatistics",
    "WeightBudget",
    "__version__",
    "aiter",
    "best_bid_ask",
    "events",
    "klines_with_history",
    "order_book",
    "order_book_statistics",
    "replay",
    "rest_budget",
    "set_rest_budget",
]
