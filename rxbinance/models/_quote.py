"""Best bid and ask as one value: the :class:`Quote` of a bookTicker event or an order book."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rxbinance.models._base import _utc
from rxbinance.models._market import BookTicker

__all__ = ["Level", "Quote"]

Level = tuple[Decimal, Decimal]
"""A book level: ``(price, quantity)``."""


@dataclass(frozen=True, slots=True)
class Quote:
    """The best bid and ask of ``symbol`` at order book update ``update_id``.

    ``event_time`` is the exchange's event time (epoch ms) where the source has one (USD-M
    bookTicker, an order book), None for spot bookTicker, which carries no time.
    """

    symbol: str
    update_id: int
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal
    event_time: int | None = None

    @classmethod
    def from_book_ticker(cls, ticker: BookTicker) -> Quote:
        """The quote a bookTicker event carries."""
        return cls(
            ticker.symbol,
            ticker.update_id,
            ticker.bid_price,
            ticker.bid_quantity,
            ticker.ask_price,
            ticker.ask_quantity,
            ticker.event_time,
        )

    @property
    def event_dt(self) -> datetime | None:
        """``event_time`` as an aware UTC datetime, or None."""
        return _utc(self.event_time) if self.event_time is not None else None

    @property
    def best_bid(self) -> Level:
        """``(bid_price, bid_quantity)``, the shape of :attr:`OrderBook.best_bid`."""
        return self.bid_price, self.bid_quantity

    @property
    def best_ask(self) -> Level:
        """``(ask_price, ask_quantity)``, the shape of :attr:`OrderBook.best_ask`."""
        return self.ask_price, self.ask_quantity

    @property
    def spread(self) -> Decimal:
        """``ask_price - bid_price``."""
        return self.ask_price - self.bid_price

    @property
    def mid(self) -> Decimal:
        """``(bid_price + ask_price) / 2``."""
        return (self.bid_price + self.ask_price) / 2
