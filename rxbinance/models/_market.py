"""Market stream events, spot and USD-M futures (protocol reference sections 4.2 and 8.3).

Where spot and futures send the same event with different keys, one model covers both and the
keys only one of them sends are optional (futures aggTrade adds ``nq`` and drops ``M``; futures
24hrTicker drops ``x b B a A``; futures bookTicker adds ``e E T``; futures depthUpdate adds
``T pu``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ._base import Levels, _c_dec, _f, _Invalid, _Model, _model, _OptionalUtc, _show, _Utc

__all__ = [
    "AggTrade",
    "AvgPrice",
    "BlockTrade",
    "BookTicker",
    "ContinuousKline",
    "DepthUpdate",
    "ForceOrder",
    "Kline",
    "MarkPrice",
    "MiniTicker",
    "PartialDepth",
    "ReferencePrice",
    "RollingTicker",
    "ServerShutdownNotice",
    "Ticker",
    "Trade",
]


@_model
class Trade(_Model):
    """``<symbol>@trade``: one trade (spot)."""

    EVENT_LABEL: ClassVar[str] = "trade"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("trade",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    trade_id: int = _f("t")
    price: Decimal = _f("p")
    quantity: Decimal = _f("q")
    trade_time: int = _f("T")
    buyer_is_maker: bool = _f("m")

    event_dt = _Utc("event_time")
    trade_dt = _Utc("trade_time")


@_model
class AggTrade(_Model):
    """``<symbol>@aggTrade``: trades of one taker order at one price, spot or USD-M.

    ``quantity_excluding_rpi`` is futures' ``nq``: the quantity without Retail Price Improvement
    orders (``quantity`` includes them); ``None`` on spot.
    """

    EVENT_LABEL: ClassVar[str] = "aggTrade"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("aggTrade",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    agg_trade_id: int = _f("a")
    price: Decimal = _f("p")
    quantity: Decimal = _f("q")
    first_trade_id: int = _f("f")
    last_trade_id: int = _f("l")
    trade_time: int = _f("T")
    buyer_is_maker: bool = _f("m")
    quantity_excluding_rpi: Decimal | None = _f("nq", default=None)

    event_dt = _Utc("event_time")
    trade_dt = _Utc("trade_time")


@_model
class BlockTrade(_Model):
    """``<symbol>@blockTrade``: one block trade (spot)."""

    EVENT_LABEL: ClassVar[str] = "blockTrade"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("blockTrade",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    trade_id: int = _f("t")
    price: Decimal = _f("p")
    quantity: Decimal = _f("q")
    trade_time: int = _f("T")
    buyer_is_maker: bool = _f("m")

    event_dt = _Utc("event_time")
    trade_dt = _Utc("trade_time")


@_model
class ReferencePrice(_Model):
    """``<symbol>@referencePrice`` (spot). No event time; ``reference_price`` may be null.

    ``valid_time`` is the engine time at which the reference price was valid (``t``).
    """

    EVENT_LABEL: ClassVar[str] = "referencePrice"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("referencePrice",)

    symbol: str = _f("s")
    valid_time: int = _f("t")
    reference_price: Decimal | None = _f("r", default=None)

    valid_dt = _Utc("valid_time")


@_model
class Kline(_Model):
    """``<symbol>@kline_<interval>``: the current candle, flattened (spot or USD-M).

    ``closed`` is true on the last update of a candle. ``first_trade_id``/``last_trade_id`` are
    -1 for a candle without trades.
    """

    EVENT_LABEL: ClassVar[str] = "kline"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("kline",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    interval: str = _f("k.i")
    open_time: int = _f("k.t")
    close_time: int = _f("k.T")
    open: Decimal = _f("k.o")
    high: Decimal = _f("k.h")
    low: Decimal = _f("k.l")
    close: Decimal = _f("k.c")
    volume: Decimal = _f("k.v")
    quote_volume: Decimal = _f("k.q")
    taker_buy_base_volume: Decimal = _f("k.V")
    taker_buy_quote_volume: Decimal = _f("k.Q")
    trades: int = _f("k.n")
    first_trade_id: int = _f("k.f")
    last_trade_id: int = _f("k.L")
    closed: bool = _f("k.x")

    event_dt = _Utc("event_time")
    open_dt = _Utc("open_time")
    close_dt = _Utc("close_time")


@_model
class ContinuousKline(_Model):
    """``<pair>_<contracttype>@continuousKline_<interval>`` (USD-M): a candle of a contract type.

    Same candle fields as Kline; identified by ``pair`` and ``contract_type`` (``PERPETUAL``...)
    instead of a symbol.
    """

    EVENT_LABEL: ClassVar[str] = "continuous_kline"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("continuous_kline",)

    event_time: int = _f("E")
    pair: str = _f("ps")
    contract_type: str = _f("ct")
    interval: str = _f("k.i")
    open_time: int = _f("k.t")
    close_time: int = _f("k.T")
    open: Decimal = _f("k.o")
    high: Decimal = _f("k.h")
    low: Decimal = _f("k.l")
    close: Decimal = _f("k.c")
    volume: Decimal = _f("k.v")
    quote_volume: Decimal = _f("k.q")
    taker_buy_base_volume: Decimal = _f("k.V")
    taker_buy_quote_volume: Decimal = _f("k.Q")
    trades: int = _f("k.n")
    first_trade_id: int = _f("k.f")
    last_trade_id: int = _f("k.L")
    closed: bool = _f("k.x")

    event_dt = _Utc("event_time")
    open_dt = _Utc("open_time")
    close_dt = _Utc("close_time")


@_model
class MiniTicker(_Model):
    """``<symbol>@miniTicker`` / ``!miniTicker@arr``: 24 h rolling statistics, short form."""

    EVENT_LABEL: ClassVar[str] = "24hrMiniTicker"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("24hrMiniTicker",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    close: Decimal = _f("c")
    open: Decimal = _f("o")
    high: Decimal = _f("h")
    low: Decimal = _f("l")
    volume: Decimal = _f("v")
    quote_volume: Decimal = _f("q")

    event_dt = _Utc("event_time")


@_model
class Ticker(_Model):
    """``<symbol>@ticker``: 24 h rolling statistics, spot or USD-M.

    The previous close and best bid/ask are spot only (``None`` on futures).
    ``open_time``/``close_time`` bound the statistics window.
    """

    EVENT_LABEL: ClassVar[str] = "24hrTicker"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("24hrTicker",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    price_change: Decimal = _f("p")
    price_change_percent: Decimal = _f("P")
    weighted_average_price: Decimal = _f("w")
    last_price: Decimal = _f("c")
    last_quantity: Decimal = _f("Q")
    open: Decimal = _f("o")
    high: Decimal = _f("h")
    low: Decimal = _f("l")
    volume: Decimal = _f("v")
    quote_volume: Decimal = _f("q")
    open_time: int = _f("O")
    close_time: int = _f("C")
    first_trade_id: int = _f("F")
    last_trade_id: int = _f("L")
    trades: int = _f("n")
    prev_close_price: Decimal | None = _f("x", default=None)
    best_bid_price: Decimal | None = _f("b", default=None)
    best_bid_quantity: Decimal | None = _f("B", default=None)
    best_ask_price: Decimal | None = _f("a", default=None)
    best_ask_quantity: Decimal | None = _f("A", default=None)

    event_dt = _Utc("event_time")
    open_dt = _Utc("open_time")
    close_dt = _Utc("close_time")


def _window(event: Any) -> str:
    # "1hTicker" -> "1h"
    if event.__class__ is str and event.endswith("Ticker") and len(event) > 6:
        return str(event[:-6])
    raise _Invalid(f"expected '<window>Ticker', got {_show(event)}")


@_model
class RollingTicker(_Model):
    """``<symbol>@ticker_<window>`` / ``!ticker_<window>@arr`` (spot): rolling-window statistics.

    ``window`` is ``"1h"``, ``"4h"`` or ``"1d"``, taken from the event type (``1hTicker``...).
    """

    EVENT_LABEL: ClassVar[str] = "rollingTicker"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("1hTicker", "4hTicker", "1dTicker")

    window: str = _f("e", convert=_window)
    event_time: int = _f("E")
    symbol: str = _f("s")
    price_change: Decimal = _f("p")
    price_change_percent: Decimal = _f("P")
    open: Decimal = _f("o")
    high: Decimal = _f("h")
    low: Decimal = _f("l")
    last_price: Decimal = _f("c")
    weighted_average_price: Decimal = _f("w")
    volume: Decimal = _f("v")
    quote_volume: Decimal = _f("q")
    open_time: int = _f("O")
    close_time: int = _f("C")
    first_trade_id: int = _f("F")
    last_trade_id: int = _f("L")
    trades: int = _f("n")

    event_dt = _Utc("event_time")
    open_dt = _Utc("open_time")
    close_dt = _Utc("close_time")


@_model
class BookTicker(_Model):
    """``<symbol>@bookTicker``: best bid and ask. ``update_id`` is the order book update id.

    Spot sends no event type and no times; futures adds ``event_time`` and
    ``transaction_time`` (``None`` on spot).
    """

    EVENT_LABEL: ClassVar[str] = "bookTicker"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("bookTicker",)

    update_id: int = _f("u")
    symbol: str = _f("s")
    bid_price: Decimal = _f("b")
    bid_quantity: Decimal = _f("B")
    ask_price: Decimal = _f("a")
    ask_quantity: Decimal = _f("A")
    event_time: int | None = _f("E", default=None)
    transaction_time: int | None = _f("T", default=None)

    event_dt = _OptionalUtc("event_time")
    transaction_dt = _OptionalUtc("transaction_time")


@_model
class AvgPrice(_Model):
    """``<symbol>@avgPrice`` (spot): average price over ``interval`` (e.g. ``"5m"``)."""

    EVENT_LABEL: ClassVar[str] = "avgPrice"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("avgPrice",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    interval: str = _f("i")
    average_price: Decimal = _f("w")
    last_trade_time: int = _f("T")

    event_dt = _Utc("event_time")
    last_trade_dt = _Utc("last_trade_time")


@_model
class DepthUpdate(_Model):
    """``<symbol>@depth[@100ms]`` diff, spot or USD-M; also USD-M partial depth (same shape).

    Each level is ``(price, quantity)`` with the new absolute quantity; quantity 0 removes the
    level. The event covers update ids ``first_update_id`` (``U``) to ``final_update_id``
    (``u``). Futures only: ``prev_final_update_id`` (``pu``, the ``u`` of the previous event) and
    ``transaction_time`` (``T``), ``None`` on spot.
    """

    EVENT_LABEL: ClassVar[str] = "depthUpdate"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("depthUpdate",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    first_update_id: int = _f("U")
    final_update_id: int = _f("u")
    bids: Levels = _f("b")
    asks: Levels = _f("a")
    prev_final_update_id: int | None = _f("pu", default=None)
    transaction_time: int | None = _f("T", default=None)

    event_dt = _Utc("event_time")
    transaction_dt = _OptionalUtc("transaction_time")


@_model
class PartialDepth(_Model):
    """``<symbol>@depth<5|10|20>[@100ms]`` (spot): the top of the book.

    The payload carries no symbol; ``symbol`` is filled from the stream name by ``parse`` and
    ``parser_for`` (or passed to ``from_dict``), else ``None``. USD-M partial depth is a
    DepthUpdate.
    """

    EVENT_LABEL: ClassVar[str] = "partialDepth"

    last_update_id: int = _f("lastUpdateId")
    bids: Levels = _f("bids")
    asks: Levels = _f("asks")
    symbol: str | None = _f(None, default=None)

    if TYPE_CHECKING:  # the generated from_dict takes the context field as a keyword

        @classmethod
        def from_dict(cls, payload: Mapping[str, Any], *, symbol: str | None = None) -> Self: ...


def _funding_rate(value: Any) -> Decimal | None:
    # Delivery contracts send "r": "" (no funding); that is None, not an error.
    return None if value == "" else _c_dec(value)


@_model
class MarkPrice(_Model):
    """``<symbol>@markPrice[@1s]`` / ``!markPrice@arr`` (USD-M).

    ``funding_rate`` is ``None`` when Binance sends it empty (delivery contracts).
    """

    EVENT_LABEL: ClassVar[str] = "markPriceUpdate"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("markPriceUpdate",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    mark_price: Decimal = _f("p")
    index_price: Decimal = _f("i")
    estimated_settle_price: Decimal = _f("P")
    next_funding_time: int = _f("T")
    funding_rate: Decimal | None = _f("r", default=None, convert=_funding_rate)
    mark_price_moving_average: Decimal | None = _f("ap", default=None)

    event_dt = _Utc("event_time")
    next_funding_dt = _Utc("next_funding_time")


@_model
class ForceOrder(_Model):
    """``<symbol>@forceOrder`` / ``!forceOrder@arr`` (USD-M): a liquidation order, flattened."""

    EVENT_LABEL: ClassVar[str] = "forceOrder"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("forceOrder",)

    event_time: int = _f("E")
    symbol: str = _f("o.s")
    side: str = _f("o.S")
    order_type: str = _f("o.o")
    time_in_force: str = _f("o.f")
    quantity: Decimal = _f("o.q")
    price: Decimal = _f("o.p")
    average_price: Decimal = _f("o.ap")
    order_status: str = _f("o.X")
    last_filled_quantity: Decimal = _f("o.l")
    filled_quantity: Decimal = _f("o.z")
    trade_time: int = _f("o.T")

    event_dt = _Utc("event_time")
    trade_dt = _Utc("trade_time")


@_model
class ServerShutdownNotice(_Model):
    """``serverShutdown`` (spot streams and WS API): reconnect as soon as possible."""

    EVENT_LABEL: ClassVar[str] = "serverShutdown"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("serverShutdown",)

    event_time: int = _f("E")

    event_dt = _Utc("event_time")
