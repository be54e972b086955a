"""Binance stream names: the allowed values, the builders, and validation.

Pure functions, no I/O. Every builder validates its inputs and raises
:class:`~rxbinance.errors.InvalidInputError` (a ``ValueError``) naming the bad value and the
allowed ones, so nothing invalid ever reaches a socket. Symbols are accepted in any case and sent
lowercase, as Binance requires in stream names.

Spot and USD-M futures differ (binance-protocol.md 4.1, 8.3): the ``usdm_*`` builders and
:func:`usdm_route` cover USD-M, whose streams live on routed paths (``/public`` for book data,
``/market`` for the rest). A stream on the wrong route connects and delivers nothing, so the
route is derived from the name here, never chosen by hand.

Validation of a name someone typed is market-aware and lives in one place:
:func:`validate_stream_name` (``name``, ``product``) answers for both products and says
precisely what is wrong (the kline interval, the depth levels or speed and their allowed values
on that product, a stream of the other product, a retired stream). :func:`depth_speeds`,
:func:`kline_intervals` and :func:`depth_stream_for` give the per-product values to builders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from rxbinance.errors import InvalidInputError
from rxbinance.protocol.endpoints import Product

__all__ = [
    "CONTINUOUS_KLINE_INTERVALS",
    "CONTRACT_TYPES",
    "DEPTH_LEVELS",
    "DEPTH_SPEEDS",
    "KLINE_INTERVALS",
    "MARK_PRICE_SPEEDS",
    "RETIRED_STREAMS",
    "ROLLING_WINDOWS",
    "USDM_DEPTH_SPEEDS",
    "USDM_KLINE_INTERVALS",
    "USDM_USER_EVENTS",
    "UsdmRoute",
    "agg_trade_stream",
    "avg_price_stream",
    "book_ticker_stream",
    "combined_key",
    "continuous_kline_stream",
    "default_depth_speed",
    "depth_speeds",
    "depth_stream",
    "depth_stream_for",
    "force_order_stream",
    "kline_intervals",
    "kline_stream",
    "mark_price_stream",
    "mini_ticker_stream",
    "normalize_symbol",
    "normalize_usdm_symbol",
    "rolling_ticker_stream",
    "symbol_ticker_stream",
    "trade_stream",
    "usdm_depth_stream",
    "usdm_kline_stream",
    "usdm_route",
    "validate_stream_name",
    "validate_stream_names",
    "validate_usdm_stream_name",
]

# Case matters: "1M" is a month, "1m" a minute (binance-protocol.md 4.1).
KLINE_INTERVALS: tuple[str, ...] = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
    "1d", "3d", "1w", "1M",
)  # fmt: skip
DEPTH_LEVELS: tuple[int, ...] = (5, 10, 20)
DEPTH_SPEEDS: tuple[int, ...] = (1000, 100)
ROLLING_WINDOWS: tuple[str, ...] = ("1h", "4h", "1d")

#: Streams Binance switched off; connecting to them succeeds and delivers nothing, so we refuse
#: them up front and name the replacement.
RETIRED_STREAMS: dict[str, str] = {
    "!ticker@arr": "retired on 2026-03-26; use '!ticker_1d@arr' or '<symbol>@ticker'",
    "!bookTicker": "removed on 2022-12-07; use '<symbol>@bookTicker'",
}

MAX_SYMBOL_LENGTH = 32


def normalize_symbol(symbol: object) -> str:
    """Return ``symbol`` lowercased for a stream name, or raise ``InvalidInputError``.

    A symbol is 1 to 32 letters or digits. Binance lists UTF-8 symbols since 2025-12, so
    non-ASCII letters are letters too; whitespace, '@', '/' and punctuation are not.
    """
    if not isinstance(symbol, str) or not symbol:
        raise InvalidInputError(
            f"invalid symbol {symbol!r}: expected a non-empty string such as 'BTCUSDT'"
        )
    if not symbol.isalnum() or len(symbol) > MAX_SYMBOL_LENGTH:
        raise InvalidInputError(
            f"invalid symbol {symbol!r}: a symbol is 1 to {MAX_SYMBOL_LENGTH} letters or digits,"
            " such as 'BTCUSDT'"
        )
    return symbol.lower()


def _check_choice(what: str, value: object, allowed: Sequence[object]) -> None:
    # `value in allowed` alone would accept True for 1 and 5.0 for 5.
    if type(value) is not type(allowed[0]) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise InvalidInputError(f"invalid {what} {value!r}: allowed are {choices}")


def trade_stream(symbol: str) -> str:
    """``<symbol>@trade``: every trade, real time."""
    return f"{normalize_symbol(symbol)}@trade"


def agg_trade_stream(symbol: str) -> str:
    """``<symbol>@aggTrade``: trades aggregated per taker order and price, real time."""
    return f"{normalize_symbol(symbol)}@aggTrade"


def kline_stream(symbol: str, interval: str = "1m") -> str:
    """``<symbol>@kline_<interval>``; ``interval`` is one of :data:`KLINE_INTERVALS`."""
    _check_choice("kline interval", interval, KLINE_INTERVALS)
    return f"{normalize_symbol(symbol)}@kline_{interval}"


def depth_stream(symbol: str, levels: int | None = None, speed: int = 1000) -> str:
    """Diff depth (``levels=None``) or partial depth (``levels`` 5, 10 or 20).

    ``speed`` is the update period in milliseconds: 1000 or 100.
    """
    if levels is not None:
        _check_choice("depth levels", levels, DEPTH_LEVELS)
    _check_choice("depth speed (ms)", speed, DEPTH_SPEEDS)
    suffix = "@100ms" if speed == 100 else ""
    return f"{normalize_symbol(symbol)}@depth{levels or ''}{suffix}"


def symbol_ticker_stream(symbol: str) -> str:
    """``<symbol>@ticker``: the 24 h rolling ticker of one symbol, every second."""
    return f"{normalize_symbol(symbol)}@ticker"


def rolling_ticker_stream(symbol: str | None, window: str = "1h") -> str:
    """``<symbol>@ticker_<window>``, or ``!ticker_<window>@arr`` for all symbols (None)."""
    _check_choice("rolling window", window, ROLLING_WINDOWS)
    if symbol is None:
        return f"!ticker_{window}@arr"
    return f"{normalize_symbol(symbol)}@ticker_{window}"


def mini_ticker_stream(symbol: str | None = None) -> str:
    """``<symbol>@miniTicker``, or ``!miniTicker@arr`` for every symbol that changed (None)."""
    if symbol is None:
        return "!miniTicker@arr"
    return f"{normalize_symbol(symbol)}@miniTicker"


def book_ticker_stream(symbol: str) -> str:
    """``<symbol>@bookTicker``: best bid and ask, real time."""
    return f"{normalize_symbol(symbol)}@bookTicker"


def avg_price_stream(symbol: str) -> str:
    """``<symbol>@avgPrice``: the 5 minute average price, every second."""
    return f"{normalize_symbol(symbol)}@avgPrice"


# The grammar of every spot market stream name (binance-protocol.md 4.1). Symbols must already
# be lowercase here: Binance rejects uppercase in stream names.
_INTERVALS = "|".join(KLINE_INTERVALS)
_SYMBOL_STREAM = re.compile(
    r"(?P<symbol>[^\W_A-Z]{1,32})@(?:"
    r"trade|aggTrade|blockTrade|referencePrice|bookTicker|avgPrice|miniTicker|ticker"
    r"|ticker_(?:1h|4h|1d)"
    rf"|kline_(?:{_INTERVALS})(?:@\+08:00)?"
    r"|depth(?:5|10|20)?(?:@100ms)?"
    r")"
)
_ALL_MARKET_STREAM = re.compile(r"!miniTicker@arr|!ticker_(?:1h|4h|1d)@arr")


def _lowercase_hint(name: str) -> str:
    symbol, at, _ = name.partition("@")
    if at and symbol != symbol.lower():
        return f" (symbols in stream names are lowercase: {symbol.lower()!r})"
    return ""


def combined_key(names: Sequence[str]) -> str:
    """The registry key and URL part of a combined socket: sorted names joined by '/'."""
    return "/".join(names)


# --------------------------------------------------------------------------------------------
# USD-M futures (binance-protocol.md 8.3)

#: USD-M candles have no 1 s interval; continuous-contract candles do.
USDM_KLINE_INTERVALS: tuple[str, ...] = tuple(i for i in KLINE_INTERVALS if i != "1s")
CONTINUOUS_KLINE_INTERVALS: tuple[str, ...] = KLINE_INTERVALS
#: Contract types of ``<pair>_<contractType>@continuousKline_<interval>``, as in stream names.
CONTRACT_TYPES: tuple[str, ...] = (
    "perpetual",
    "current_quarter",
    "next_quarter",
    "tradifi_perpetual",
)
#: USD-M depth update periods in ms: 250 is the default (no suffix), then ``@500ms``, ``@100ms``.
USDM_DEPTH_SPEEDS: tuple[int, ...] = (250, 500, 100)
#: Mark price update periods in ms: 3000 is the default (no suffix), 1000 is ``@1s``.
MARK_PRICE_SPEEDS: tuple[int, ...] = (3000, 1000)
#: The USD-M user data event types (``e``) a ``/private`` connection asks for by default
#: (binance-protocol.md 8.5). ``listenKeyExpired`` is not a filterable type: it always comes.
USDM_USER_EVENTS: tuple[str, ...] = (
    "ACCOUNT_UPDATE",
    "ORDER_TRADE_UPDATE",
    "TRADE_LITE",
    "MARGIN_CALL",
    "ACCOUNT_CONFIG_UPDATE",
    "ALGO_UPDATE",
    "STRATEGY_UPDATE",
    "GRID_UPDATE",
    "CONDITIONAL_ORDER_TRIGGER_REJECT",
)

#: The routed path a USD-M market stream lives on.
UsdmRoute = Literal["public", "market"]

# Futures symbols may carry a delivery date: BTCUSDT_250328 (quarterly contracts).
_USDM_SYMBOL = re.compile(r"[^\W_]{1,32}(?:_\d{6})?")


def normalize_usdm_symbol(symbol: object) -> str:
    """Return a USD-M ``symbol`` lowercased for a stream name, or raise ``InvalidInputError``.

    Like :func:`normalize_symbol`, plus the delivery-date suffix of quarterly contracts
    (``BTCUSDT_250328``).
    """
    if not isinstance(symbol, str) or not _USDM_SYMBOL.fullmatch(symbol):
        raise InvalidInputError(
            f"invalid symbol {symbol!r}: expected 1 to {MAX_SYMBOL_LENGTH} letters or digits "
            "such as 'BTCUSDT', optionally with a delivery date such as 'BTCUSDT_250328'"
        )
    return symbol.lower()


def usdm_kline_stream(symbol: str, interval: str = "1m") -> str:
    """``<symbol>@kline_<interval>`` on USD-M; ``interval`` is one of
    :data:`USDM_KLINE_INTERVALS` (no ``1s``: use :func:`continuous_kline_stream` for that)."""
    _check_choice("USD-M kline interval", interval, USDM_KLINE_INTERVALS)
    return f"{normalize_usdm_symbol(symbol)}@kline_{interval}"


def usdm_depth_stream(symbol: str, levels: int | None = None, speed: int = 250) -> str:
    """USD-M diff depth (``levels=None``) or partial depth (``levels`` 5, 10 or 20); both are
    ``depthUpdate`` events with ``pu``. ``speed`` in ms: 250 (default), 500 or 100."""
    if levels is not None:
        _check_choice("depth levels", levels, DEPTH_LEVELS)
    _check_choice("USD-M depth speed (ms)", speed, USDM_DEPTH_SPEEDS)
    suffix = "" if speed == 250 else f"@{speed}ms"
    return f"{normalize_usdm_symbol(symbol)}@depth{levels or ''}{suffix}"


def mark_price_stream(symbol: str | None = None, speed: int = 3000) -> str:
    """``<symbol>@markPrice[@1s]``, or ``!markPrice@arr[@1s]`` for every symbol (None).

    ``speed`` in ms: 3000 (Binance's default) or 1000 (``@1s``).
    """
    _check_choice("mark price speed (ms)", speed, MARK_PRICE_SPEEDS)
    suffix = "@1s" if speed == 1000 else ""
    if symbol is None:
        return f"!markPrice@arr{suffix}"
    return f"{normalize_usdm_symbol(symbol)}@markPrice{suffix}"


def force_order_stream(symbol: str | None = None) -> str:
    """``<symbol>@forceOrder`` (liquidations), or ``!forceOrder@arr`` for every symbol."""
    if symbol is None:
        return "!forceOrder@arr"
    return f"{normalize_usdm_symbol(symbol)}@forceOrder"


def continuous_kline_stream(pair: str, contract_type: str, interval: str) -> str:
    """``<pair>_<contractType>@continuousKline_<interval>``.

    ``pair`` is a plain pair (``BTCUSDT``); ``contract_type`` one of :data:`CONTRACT_TYPES`
    in any case (``"PERPETUAL"`` as in payloads works too); ``interval`` one of
    :data:`CONTINUOUS_KLINE_INTERVALS` (``1s`` included).
    """
    lowered = contract_type.lower() if isinstance(contract_type, str) else contract_type
    _check_choice("contract type", lowered, CONTRACT_TYPES)
    _check_choice("continuous kline interval", interval, CONTINUOUS_KLINE_INTERVALS)
    return f"{normalize_symbol(pair)}_{lowered}@continuousKline_{interval}"


_USDM_INTERVALS = "|".join(USDM_KLINE_INTERVALS)
_USDM_PUBLIC = re.compile(
    r"[^\W_A-Z]{1,32}(?:_\d{6})?@(?:"
    r"bookTicker|depth(?:5|10|20)?(?:@500ms|@100ms)?|rpiDepth@500ms"
    r")|!bookTicker"
)
_USDM_MARKET = re.compile(
    r"[^\W_A-Z]{1,32}(?:_\d{6})?@(?:"
    r"aggTrade|markPrice(?:@1s)?|miniTicker|ticker|forceOrder|compositeIndex|assetIndex"
    rf"|kline_(?:{_USDM_INTERVALS})"
    r")"
    rf"|[^\W_A-Z]{{1,32}}_(?:{'|'.join(CONTRACT_TYPES)})@continuousKline_(?:{_INTERVALS})"
    r"|!markPrice@arr(?:@1s)?|!miniTicker@arr|!ticker@arr|!forceOrder@arr|!contractInfo"
    r"|!assetIndex@arr|tradingSession"
)


def usdm_route(name: str) -> UsdmRoute:
    """The routed path of a valid USD-M stream name: ``"public"`` for book data (bookTicker,
    depth), ``"market"`` for everything else (binance-protocol.md 8.1). Raises
    InvalidInputError for a name that is not a USD-M market stream."""
    validate_usdm_stream_name(name)
    return "public" if _USDM_PUBLIC.fullmatch(name) else "market"


# --------------------------------------------------------------------------------------------
# Market-aware validation: one function answers for both products, with the precise reason


#: How each product spells its depth update speeds: ms -> the name's suffix ("" for the
#: default, which Binance spells with no suffix at all).
_DEPTH_SUFFIXES: dict[Product, dict[int, str]] = {
    "spot": {1000: "", 100: "@100ms"},
    "usdm": {250: "", 500: "@500ms", 100: "@100ms"},
}
_KLINE_INTERVALS: dict[Product, tuple[str, ...]] = {
    "spot": KLINE_INTERVALS,
    "usdm": USDM_KLINE_INTERVALS,
}
_LABELS: dict[Product, str] = {"spot": "spot", "usdm": "USD-M futures"}

# The kinds without parameters, to tell a misspelt case ("aggtrade") from an unknown kind.
_PLAIN_KINDS: dict[Product, tuple[str, ...]] = {
    "spot": (
        "trade", "aggTrade", "blockTrade", "referencePrice", "bookTicker", "avgPrice",
        "miniTicker", "ticker",
    ),
    "usdm": (
        "aggTrade", "markPrice", "miniTicker", "ticker", "forceOrder", "compositeIndex",
        "assetIndex", "bookTicker",
    ),
}  # fmt: skip

# Loose shapes of the kinds that take a parameter, to name the parameter that is wrong. The
# symbol part is checked separately (_SYMBOLISH); these only split the name.
_KLINE = re.compile(r"[^@]+@kline_(?P<interval>[^@]*)(?P<suffix>@.*)?")
_DEPTH = re.compile(r"[^@]+@depth(?P<levels>[^@]*)(?P<suffix>@.*)?")
_TICKER_WINDOW = re.compile(r"[^@]+@ticker_(?P<window>[^@]*)|!ticker_(?P<all>[^@]*)@arr")
_MARK_PRICE = re.compile(r"(?:[^@]+@markPrice|!markPrice@arr)(?P<suffix>@.*)")
_CONTINUOUS = re.compile(
    r"[^@_]+_(?P<contract>[^@]*)@continuousKline_(?P<interval>[^@]*)(?P<suffix>@.*)?"
)
_SYMBOLISH = re.compile(r"[^\W_]{1,32}(?:_\d{6})?")


def _check_product(product: object) -> Product:
    if product == "spot" or product == "usdm":
        return product
    raise InvalidInputError(f"invalid product {product!r}: allowed are 'spot', 'usdm'")


def depth_speeds(product: Product) -> tuple[int, ...]:
    """The depth stream update periods of ``product`` in ms, ascending: ``(100, 1000)`` on
    spot, ``(100, 250, 500)`` on USD-M futures. Raises InvalidInputError for another
    product."""
    return tuple(sorted(_DEPTH_SUFFIXES[_check_product(product)]))


def default_depth_speed(product: Product) -> int:
    """The period Binance uses when a depth stream name has no speed suffix: 1000 ms on spot,
    250 ms on USD-M futures."""
    suffixes = _DEPTH_SUFFIXES[_check_product(product)]
    return next(speed for speed, suffix in suffixes.items() if not suffix)


def kline_intervals(product: Product) -> tuple[str, ...]:
    """The ``<symbol>@kline_<interval>`` intervals of ``product``: :data:`KLINE_INTERVALS` on
    spot, :data:`USDM_KLINE_INTERVALS` (no ``1s``) on USD-M futures."""
    return _KLINE_INTERVALS[_check_product(product)]


def _speeds_text(product: Product) -> str:
    """``100, 250, 500`` as the allowed values of a ``speed`` argument."""
    return ", ".join(str(speed) for speed in depth_speeds(product))


def depth_stream_for(
    product: Product, symbol: str, levels: int | None = None, speed: int | None = None
) -> str:
    """The depth stream name of ``symbol`` on ``product``: diff depth (``levels=None``) or
    partial depth (``levels`` 5, 10 or 20), every ``speed`` ms (:func:`depth_speeds`;
    None: :func:`default_depth_speed`).

    Raises InvalidInputError naming the product and its allowed values, e.g. for 1000 ms on
    USD-M futures (allowed are 100, 250, 500).
    """
    product = _check_product(product)
    if speed is None:
        speed = default_depth_speed(product)
    if type(speed) is not int or speed not in _DEPTH_SUFFIXES[product]:
        raise InvalidInputError(
            f"invalid depth speed {speed!r} ms on {_LABELS[product]}: allowed are "
            f"{_speeds_text(product)}"
        )
    if product == "usdm":
        return usdm_depth_stream(symbol, levels, speed)
    return depth_stream(symbol, levels, speed)


def _matches(name: str, product: Product) -> bool:
    if product == "usdm":
        return bool(_USDM_PUBLIC.fullmatch(name) or _USDM_MARKET.fullmatch(name))
    return bool(_SYMBOL_STREAM.fullmatch(name) or _ALL_MARKET_STREAM.fullmatch(name))


def _choices(values: Iterable[object]) -> str:
    return ", ".join(repr(v) for v in values)


def _speed_choices(product: Product) -> str:
    """``'@100ms' (100 ms) or no suffix (1000 ms)``: the depth suffixes of ``product``."""
    parts = [
        f"{suffix!r} ({speed} ms)" if suffix else f"no suffix ({speed} ms)"
        for speed, suffix in sorted(_DEPTH_SUFFIXES[product].items())
    ]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _reason(name: str, product: Product) -> str | None:
    """The one thing wrong with a name whose shape is right for ``product`` (a kline interval,
    depth levels or speed, a ticker window...), or None when its shape is not recognised."""
    # Before the symbol check: the pair carries the contract type after an underscore.
    if product == "usdm" and (found := _CONTINUOUS.fullmatch(name)):
        contract, interval = found["contract"], found["interval"]
        if contract not in CONTRACT_TYPES:
            return (
                f"the contract type of <pair>_<contractType> is {contract!r}; allowed are "
                f"{_choices(CONTRACT_TYPES)}"
            )
        if interval not in CONTINUOUS_KLINE_INTERVALS:
            return (
                f"the interval of continuousKline_<interval> is {interval!r}; allowed are "
                f"{_choices(CONTINUOUS_KLINE_INTERVALS)}"
            )
        return None
    symbol = name.partition("@")[0]
    if not name.startswith("!") and not _SYMBOLISH.fullmatch(symbol):
        return None
    if found := _KLINE.fullmatch(name):
        interval, suffix = found["interval"], found["suffix"]
        allowed = _KLINE_INTERVALS[product]
        if interval not in allowed:
            extra = ""
            if product == "usdm" and interval in KLINE_INTERVALS:
                extra = (
                    f" (USD-M futures has no {interval} candles of a symbol; "
                    f"'<pair>_<contractType>@continuousKline_{interval}' has them)"
                )
            return (
                f"the interval of kline_<interval> is {interval!r}; allowed are "
                f"{_choices(allowed)}{extra}"
            )
        if suffix and (product == "usdm" or suffix != "@+08:00"):
            allowed_suffix = "no suffix" if product == "usdm" else "'@+08:00' or none"
            return f"kline_{interval} takes {allowed_suffix} on {_LABELS[product]}, not {suffix!r}"
        return None
    if found := _DEPTH.fullmatch(name):
        levels, suffix = found["levels"], found["suffix"] or ""
        if levels and levels not in {str(level) for level in DEPTH_LEVELS}:
            return (
                f"the levels of depth<levels> are {levels!r}; allowed are "
                f"{', '.join(map(str, DEPTH_LEVELS))} (partial depth), or none (diff depth)"
            )
        if suffix not in _DEPTH_SUFFIXES[product].values():
            return (
                f"the speed suffix of depth is {suffix!r}; allowed on {_LABELS[product]} are "
                f"{_speed_choices(product)}"
            )
        return None
    if product == "spot" and (found := _TICKER_WINDOW.fullmatch(name)):
        window = found["window"] if found["window"] is not None else found["all"]
        if window not in ROLLING_WINDOWS:
            return (
                f"the window of ticker_<window> is {window!r}; allowed are "
                f"{_choices(ROLLING_WINDOWS)}"
            )
        return None
    if product == "usdm" and (found := _MARK_PRICE.fullmatch(name)):
        return (
            f"the speed suffix of markPrice is {found['suffix']!r}; allowed are '@1s' (1000 ms) "
            "or no suffix (3000 ms)"
        )
    kind = name.partition("@")[2]
    for proper in _PLAIN_KINDS[product]:
        if kind != proper and kind.lower() == proper.lower():
            return f"kinds are case-sensitive: {kind!r} is spelt {proper!r}"
    return None


def _shapes(product: Product) -> str:
    """Every shape of a valid name of ``product``, for an unrecognised name."""
    if product == "usdm":
        return (
            "expected '<symbol>@<kind>' with kind one of aggTrade, markPrice[@1s], "
            "kline_<interval> (no 1s), miniTicker, ticker, forceOrder, compositeIndex, "
            "bookTicker, depth[5|10|20][@500ms|@100ms], rpiDepth@500ms; or "
            "'<pair>_<contractType>@continuousKline_<interval>'; or one of "
            "'!markPrice@arr[@1s]', '!miniTicker@arr', '!ticker@arr', '!forceOrder@arr', "
            "'!bookTicker', '!contractInfo', '!assetIndex@arr'"
        )
    return (
        "expected '<symbol>@<kind>' with kind one of trade, aggTrade, blockTrade, "
        "referencePrice, bookTicker, avgPrice, miniTicker, ticker, ticker_<1h|4h|1d>, "
        "kline_<interval>[@+08:00], depth[5|10|20][@100ms]; or '!miniTicker@arr', "
        "'!ticker_<1h|4h|1d>@arr'"
    )


def validate_stream_name(
    name: object, product: Product = "spot", *, market: str | None = None
) -> str:
    """Return ``name`` if it is a market stream name of ``product`` (``"spot"`` or
    ``"usdm"``), else raise InvalidInputError saying precisely what is wrong.

    Names are Binance's own, exactly: lowercase symbol, documented suffix
    (``btcusdt@trade``, ``btcusdt@kline_1M``, ``btcusdt@depth20@100ms``, ``!miniTicker@arr``;
    on USD-M ``btcusdt@depth@500ms``, ``btcusdt@markPrice@1s``,
    ``btcusdt_perpetual@continuousKline_1s``). Nothing is normalised: a name that is not
    exactly right is refused, with the reason:

    - a parameter out of range names it and the allowed values of ``product``: the kline
      interval (``btcusdt@kline_2m``), the depth levels (``btcusdt@depth15``), the depth speed
      (``btcusdt@depth@1000ms`` on USD-M: 100, 250 or 500 ms), the ticker window, the mark
      price speed, the contract type;
    - a name of the other product says so (``stream 'btcusdt@trade' is a spot stream: not
      available on USD-M futures``);
    - spot streams Binance retired name their replacement (``!ticker@arr``, ``!bookTicker``);
    - an uppercase symbol gets the lowercase spelling; a kind in the wrong case its right one.

    ``market`` (e.g. ``"usdm-testnet"``), when given, is named in the messages instead of the
    product. Pure: no I/O.
    """
    product = _check_product(product)
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"invalid stream name {name!r}: expected a non-empty string")
    where = f"market {market!r}" if market is not None else _LABELS[product]
    suffix = f" (market {market!r})" if market is not None else ""
    if product == "spot" and name in RETIRED_STREAMS:
        raise InvalidInputError(f"stream {name!r} was {RETIRED_STREAMS[name]}{suffix}")
    if _matches(name, product):
        return name
    hint = _lowercase_hint(name)
    reason = _reason(name, product)
    if reason is None:
        other: Product = "spot" if product == "usdm" else "usdm"
        if _matches(name, other):
            raise InvalidInputError(
                f"stream {name!r} is a {_LABELS[other]} stream: not available on {where}"
            )
        reason = _shapes(product)
    label = "USD-M futures stream name" if product == "usdm" else "stream name"
    raise InvalidInputError(f"invalid {label} {name!r}{hint}: {reason}{suffix}")


def validate_usdm_stream_name(name: object) -> str:
    """``validate_stream_name(name, "usdm")``: return ``name`` if it is a valid USD-M futures
    market stream name, else raise InvalidInputError naming it and what is allowed.

    Spot-only streams (``@trade``, ``@avgPrice``, ``@ticker_<window>``, ``kline_1s``...) are
    refused here: Binance's USD-M docs do not have them.
    """
    return validate_stream_name(name, "usdm")


def validate_stream_names(
    names: Iterable[str],
    validate: Callable[[str], str] | None = None,
    *,
    product: Product = "spot",
    market: str | None = None,
) -> list[str]:
    """Validate every name, drop duplicates, and return them sorted (the combined-socket key).

    Each name is checked by ``validate`` if given, else by
    ``validate_stream_name(name, product, market=market)``.
    """
    if isinstance(names, str):
        raise InvalidInputError(f"expected a list of stream names, got the string {names!r}")
    product = _check_product(product)

    def by_product(name: str) -> str:
        return validate_stream_name(name, product, market=market)

    check = by_product if validate is None else validate
    checked = sorted({check(n) for n in names})
    if not checked:
        raise InvalidInputError("expected at least one stream name")
    return checked
