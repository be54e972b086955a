"""The shapes of Binance's stream payloads, as TypedDicts: what the raw Observables carry.

They are plain dicts at run time (exactly what ``json`` decoded); to a type checker they say
which keys exist, so ``streams.trades(s)`` is an ``Observable[TradePayload]`` and
``rxbinance.operators.parse()`` turns it into an ``Observable[Trade]``. Keys Binance sends on only
one market, or only sometimes, are ``NotRequired``. Prices and quantities are strings, as on the
wire (binance-protocol.md 4.2, 8.3).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "AggTradePayload",
    "AvgPricePayload",
    "BookTickerPayload",
    "KlineData",
    "KlinePayload",
    "MiniTickerPayload",
    "RollingTickerPayload",
    "TickerPayload",
    "TradePayload",
]


class TradePayload(TypedDict):
    e: Literal["trade"]
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    M: NotRequired[bool]


class AggTradePayload(TypedDict):
    e: Literal["aggTrade"]
    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 (Binance's key)
    T: int
    m: bool
    M: NotRequired[bool]  # spot only
    nq: NotRequired[str]  # USD-M only: quantity without RPI orders


class KlineData(TypedDict):
    t: int
    T: int
    s: str
    i: str
    f: int
    L: int
    o: str
    c: str
    h: str
    l: str  # noqa: E741 (Binance's key)
    v: str
    n: int
    x: bool
    q: str
    V: str
    Q: str
    B: str


class KlinePayload(TypedDict):
    e: Literal["kline"]
    E: int
    s: str
    k: KlineData


class MiniTickerPayload(TypedDict):
    e: Literal["24hrMiniTicker"]
    E: int
    s: str
    c: str
    o: str
    h: str
    l: str  # noqa: E741 (Binance's key)
    v: str
    q: str


class TickerPayload(TypedDict):
    e: Literal["24hrTicker"]
    E: int
    s: str
    p: str
    P: str
    w: str
    c: str
    Q: str
    o: str
    h: str
    l: str  # noqa: E741 (Binance's key)
    v: str
    q: str
    O: int  # noqa: E741 (Binance's key)
    C: int
    F: int
    L: int
    n: int
    x: NotRequired[str]  # spot only: the last price before the window
    b: NotRequired[str]  # spot only: best bid and ask
    B: NotRequired[str]
    a: NotRequired[str]
    A: NotRequired[str]


class RollingTickerPayload(TypedDict):
    e: Literal["1hTicker", "4hTicker", "1dTicker"]
    E: int
    s: str
    p: str
    P: str
    o: str
    h: str
    l: str  # noqa: E741 (Binance's key)
    c: str
    w: str
    v: str
    q: str
    O: int  # noqa: E741 (Binance's key)
    C: int
    F: int
    L: int
    n: int


class BookTickerPayload(TypedDict):
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    e: NotRequired[Literal["bookTicker"]]  # USD-M only, like E and T
    E: NotRequired[int]
    T: NotRequired[int]


class AvgPricePayload(TypedDict):
    e: Literal["avgPrice"]
    E: int
    s: str
    i: str
    w: str
    T: int
