"""Best bid and ask as typed quotes, from the bookTicker stream."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import Observable, abc

from rxbinance.models import BookTicker, ParseError
from rxbinance.pipelines._book import Level
from rxbinance.pipelines._common import give_up_error, is_give_up
from rxbinance.protocol import names

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = ["Quote", "best_bid_ask"]


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


def best_bid_ask(streams: BinanceStreams, symbol: str) -> Observable[Quote]:
    """Typed best bid/ask quotes of ``symbol``, in real time, from ``<symbol>@bookTicker``.

    .. code-block:: python

        rxbinance.best_bid_ask(streams, "BTCUSDT").pipe(rbo.mid()).subscribe(print)

    Shares the bookTicker socket like every stream (hot, ref-counted). A quote whose
    ``update_id`` is not newer than the last one delivered to this subscriber is dropped (a
    replay after a reconnect), so quotes never go back in time. A payload that does not parse
    ends the subscription with ``on_error(ParseError)``; when the stream gives up reconnecting,
    with ``on_error(ConnectionFailure)``. Runs on the socket's reader thread (or the streams'
    scheduler). Unlike :func:`rxbinance.order_book` it needs no REST and no resync: each
    bookTicker is a complete quote, but it says nothing about deeper levels.
    """
    stream_name = names.book_ticker_stream(symbol)
    source = streams.book_ticker(symbol)

    def subscribe(
        observer: abc.ObserverBase[Quote], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        last = -1

        def on_next(message: Any) -> None:
            nonlocal last
            if is_give_up(message):
                observer.on_error(give_up_error(message, stream_name))
                return
            try:
                ticker = BookTicker.from_dict(message)
            except ParseError as exc:
                observer.on_error(exc)
                return
            if ticker.update_id <= last:
                return
            last = ticker.update_id
            observer.on_next(Quote.from_book_ticker(ticker))

        return source.subscribe(
            on_next, observer.on_error, observer.on_completed, scheduler=scheduler
        )

    return reactivex.create(subscribe)
