"""Typed, immutable models of every Binance stream event, and the parsers that build them.

Every model is a frozen, slotted dataclass with readable attribute names (``price``,
``quantity``, ``trade_id``, ``event_time``, ``buyer_is_maker``...) and nothing but typed fields:

- prices and quantities are ``decimal.Decimal`` (Binance sends them as strings; the exact value
  is kept);
- times are ``int`` epoch milliseconds, each ``*_time`` field with a ``*_dt`` property giving an
  aware UTC ``datetime`` (streams opened with ``timeUnit=MICROSECOND`` send microseconds, which
  these properties do not convert);
- book levels are ``tuple[tuple[Decimal, Decimal], ...]`` (``Levels``);
- a field only some payloads carry is ``X | None`` and defaults to ``None``.

``Model.from_dict(payload)`` builds a model from the decoded JSON event, ignoring unknown keys;
a missing or malformed field raises ``ParseError`` naming the event and the field, e.g.
``trade: field 'p' (price): expected a decimal string, got None``. ``parse(payload, stream)``
picks the model itself (by ``e``, or by shape for the two spot payloads without ``e``) and
unwraps combined-stream and user-data envelopes; ``parser_for(stream)`` returns a parser
specialised for one stream name, for the per-message hot path.

Example::

    >>> from rxbinance.models import parse
    >>> trade = parse({"e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345,
    ...                "p": "0.001", "q": "100", "T": 1672515782136, "m": True, "M": True})
    >>> trade.price, trade.trade_dt.isoformat()
    (Decimal('0.001'), '2022-12-31T19:43:02.136000+00:00')
"""

from ._base import Levels, ParseError
from ._market import (
    AggTrade,
    AvgPrice,
    BlockTrade,
    BookTicker,
    ContinuousKline,
    DepthUpdate,
    ForceOrder,
    Kline,
    MarkPrice,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    ServerShutdownNotice,
    Ticker,
    Trade,
)
from ._parse import Event, Parser, parse, parser_for
from ._quote import Level, Quote
from ._user import (
    AccountPosition,
    AccountUpdate,
    Balance,
    BalanceUpdate,
    EventStreamTerminated,
    ExecutionReport,
    ExternalLockUpdate,
    FuturesBalance,
    FuturesPosition,
    ListenKeyExpired,
    ListOrder,
    ListStatus,
    OrderTradeUpdate,
)

__all__ = [
    "AccountPosition",
    "AccountUpdate",
    "AggTrade",
    "AvgPrice",
    "Balance",
    "BalanceUpdate",
    "BlockTrade",
    "BookTicker",
    "ContinuousKline",
    "DepthUpdate",
    "Event",
    "EventStreamTerminated",
    "ExecutionReport",
    "ExternalLockUpdate",
    "ForceOrder",
    "FuturesBalance",
    "FuturesPosition",
    "Kline",
    "Level",
    "Levels",
    "ListOrder",
    "ListStatus",
    "ListenKeyExpired",
    "MarkPrice",
    "MiniTicker",
    "OrderTradeUpdate",
    "ParseError",
    "Parser",
    "PartialDepth",
    "Quote",
    "ReferencePrice",
    "RollingTicker",
    "ServerShutdownNotice",
    "Ticker",
    "Trade",
    "parse",
    "parser_for",
]
