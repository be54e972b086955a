"""rxbinance: Binance WebSocket streams as hot, shared, self-healing ReactiveX Observables.

.. code-block:: python

    from rxbinance import BinanceStreams

    with BinanceStreams() as streams:
        streams.trades("BTCUSDT").subscribe(print)
"""

from rxbinance import events
from rxbinance.errors import (
    ConnectError,
    ConnectionDropped,
    ConnectionFailure,
    HandshakeError,
    InvalidInputError,
    ProtocolError,
    RxBinanceError,
    ServerShutdown,
    StallError,
)
from rxbinance.streams import BinanceStreams, StreamStatistics

__version__ = "0.1.0"

__all__ = [
    "BinanceStreams",
    "ConnectError",
    "ConnectionDropped",
    "ConnectionFailure",
    "HandshakeError",
    "InvalidInputError",
    "ProtocolError",
    "RxBinanceError",
    "ServerShutdown",
    "StallError",
    "StreamStatistics",
    "__version__",
    "events",
]
