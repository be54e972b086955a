"""Pipelines: typed, stateful Observables built on :class:`~rxbinance.BinanceStreams`.

- :func:`order_book`: a local order book kept in sync with Binance's (diff stream + REST
  snapshots), as immutable :class:`OrderBook` values;
- :func:`klines_with_history`: the last N candles from REST, then live, with no gap and no
  duplicate at the seam;
- :func:`best_bid_ask`: typed :class:`Quote` values from the bookTicker stream.

Every REST call they make draws its request weight from one :class:`WeightBudget` per
BinanceStreams (:func:`rest_budget`), so that many pipelines resyncing at once stay inside
Binance's limits.
"""

from rxbinance.pipelines._book import Level, OrderBook
from rxbinance.pipelines._rest import WeightBudget, rest_budget, set_rest_budget
from rxbinance.pipelines.klines import klines_with_history
from rxbinance.pipelines.order_book import order_book, order_book_statistics
from rxbinance.pipelines.tickers import Quote, best_bid_ask

__all__ = [
    "Level",
    "OrderBook",
    "Quote",
    "WeightBudget",
    "best_bid_ask",
    "klines_with_history",
    "order_book",
    "order_book_statistics",
    "rest_budget",
    "set_rest_budget",
]
