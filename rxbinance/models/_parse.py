"""Choosing the model for a payload: ``parse`` (dynamic) and ``parser_for`` (per stream, fast)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, cast

from ._base import ParseError, _Model, _show
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
from ._user import (
    AccountPosition,
    AccountUpdate,
    BalanceUpdate,
    EventStreamTerminated,
    ExecutionReport,
    ExternalLockUpdate,
    ListenKeyExpired,
    ListStatus,
    OrderTradeUpdate,
)

__all__ = ["Event", "Parser", "parse", "parser_for"]

Event: TypeAlias = (
    Trade
    | AggTrade
    | BlockTrade
    | ReferencePrice
    | Kline
    | ContinuousKline
    | MiniTicker
    | Ticker
    | RollingTicker
    | BookTicker
    | AvgPrice
    | DepthUpdate
    | PartialDepth
    | MarkPrice
    | ForceOrder
    | ServerShutdownNotice
    | ExecutionReport
    | AccountPosition
    | BalanceUpdate
    | ListStatus
    | ExternalLockUpdate
    | EventStreamTerminated
    | ListenKeyExpired
    | AccountUpdate
    | OrderTradeUpdate
)
"""Any event model ``parse`` can return."""

Parser: TypeAlias = Callable[[Any], "Event | list[Event]"]
"""What ``parser_for`` returns: decoded JSON payload in, model (or list of models) out."""

_EVENT_MODELS: tuple[type[_Model], ...] = (
    Trade,
    AggTrade,
    BlockTrade,
    ReferencePrice,
    Kline,
    ContinuousKline,
    MiniTicker,
    Ticker,
    RollingTicker,
    BookTicker,
    AvgPrice,
    DepthUpdate,
    MarkPrice,
    ForceOrder,
    ServerShutdownNotice,
    ExecutionReport,
    AccountPosition,
    BalanceUpdate,
    ListStatus,
    ExternalLockUpdate,
    EventStreamTerminated,
    ListenKeyExpired,
    AccountUpdate,
    OrderTradeUpdate,
)

# "e" -> model. PartialDepth has no "e"; spot bookTicker has none either (futures' has one).
_BY_EVENT: dict[str, type[_Model]] = {e: m for m in _EVENT_MODELS for e in m.EVENT_TYPES}


def parse(payload: Any, stream: str | None = None) -> Event | list[Event]:
    """Parse one decoded JSON message into its model.

    Accepts a bare event, a combined-stream wrapper ``{"stream": ..., "data": ...}`` (its stream
    name then replaces ``stream``), a WebSocket API user data envelope
    ``{"subscriptionId": ..., "event": {...}}`` or ``{"event": {...}}``, and a JSON array
    (``!miniTicker@arr`` and the like), which gives a list of models.

    The model is chosen by the event type ``e``; without one, a payload with ``lastUpdateId``
    is a spot PartialDepth (its ``symbol`` taken from ``stream``, e.g. ``"bnbbtc@depth5@100ms"``
    gives ``"BNBBTC"``, else ``None``) and one with ``u``, ``b`` and ``a`` a spot BookTicker.

    Raises ParseError for an unknown or missing event type, a payload that is not an object or
    array, or a bad field. For a known stream name, ``parser_for`` is faster.
    """
    if isinstance(payload, list):
        return [_event(item, stream) for item in payload]
    if isinstance(payload, Mapping):
        if "data" in payload and "stream" in payload:
            name = payload["stream"]
            if not isinstance(name, str):
                raise ParseError("stream", f"expected a stream name string, got {_show(name)}")
            return parse(payload["data"], name)
        inner = payload.get("event")
        if isinstance(inner, Mapping):
            return _event(inner, stream)
    return _event(payload, stream)


def _event(payload: Any, stream: str | None) -> Event:
    if not isinstance(payload, Mapping):
        raise ParseError("event", f"expected a JSON object, got {_show(payload)}")
    event_type = payload.get("e")
    if event_type is None:
        if "lastUpdateId" in payload:
            return PartialDepth.from_dict(payload, symbol=_symbol_of(stream))
        if "u" in payload and "b" in payload and "a" in payload:
            return BookTicker.from_dict(payload)
        keys = ", ".join(sorted(map(str, payload)))
        raise ParseError("event", f"no event type 'e' and not a known payload shape (keys: {keys})")
    model = _BY_EVENT.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise ParseError(str(event_type), "unknown event type")
    return cast("Event", model.from_dict(payload))


def _symbol_of(stream: str | None) -> str | None:
    """``"bnbbtc@depth5@100ms"`` -> ``"BNBBTC"``; None for no stream or a ``!`` stream."""
    if not stream or stream.startswith("!"):
        return None
    return stream.partition("@")[0].upper() or None


# --------------------------------------------------------------------------------------------
# parser_for

_BY_STREAM_KIND: dict[str, type[_Model]] = {
    "aggTrade": AggTrade,
    "trade": Trade,
    "blockTrade": BlockTrade,
    "referencePrice": ReferencePrice,
    "miniTicker": MiniTicker,
    "ticker": Ticker,
    "ticker_1h": RollingTicker,
    "ticker_4h": RollingTicker,
    "ticker_1d": RollingTicker,
    "bookTicker": BookTicker,
    "avgPrice": AvgPrice,
    "depth": DepthUpdate,
    "rpiDepth": DepthUpdate,
    "markPrice": MarkPrice,
    "forceOrder": ForceOrder,
    "serverShutdown": ServerShutdownNotice,
}
_PARTIAL_DEPTHS = frozenset({"depth5", "depth10", "depth20"})


def parser_for(stream: str) -> Parser:
    """Return a parser specialised for the payloads of ``stream`` (a stream name, e.g.
    ``"btcusdt@aggTrade"``, ``"bnbbtc@depth5@100ms"``, ``"!miniTicker@arr"``).

    Everything about the stream is worked out once, here; the returned callable only checks
    that the payload's event type is the expected one and runs that model's ``from_dict``.
    Anything else (a ``serverShutdown`` on a raw stream, a combined wrapper, a different event)
    goes through ``parse(payload, stream)``, so the result is always what ``parse`` would give.
    A stream it does not recognise (a listen key, ``!contractInfo``...) gets ``parse`` itself.

    Partial depth streams give a PartialDepth with the stream's symbol for spot payloads and a
    DepthUpdate for USD-M ones (futures partial depth is a depthUpdate).
    """
    name, _, rest = stream.partition("@")
    if name.startswith("!"):
        kind, suffixes = name[1:], rest.split("@") if rest else []
    else:
        kind, _, more = rest.partition("@")
        suffixes = more.split("@") if more else []
    if kind.startswith("kline_"):
        model: type[_Model] | None = Kline
    elif kind.startswith("continuousKline_"):
        model = ContinuousKline
    elif kind in _PARTIAL_DEPTHS:
        return _partial_depth_parser(stream)
    else:
        model = _BY_STREAM_KIND.get(kind)
    if model is None:
        return lambda payload: parse(payload, stream)
    # "!forceOrder@arr" pushes single events despite its name; every other "@arr" is an array.
    if "arr" in suffixes and model is not ForceOrder:
        return _list_parser(model, stream)
    return _single_parser(model, stream)


def _single_parser(model: type[_Model], stream: str) -> Parser:
    fast = model.from_dict
    events = model.EVENT_TYPES
    # Spot bookTicker has no "e" at all (futures' has "e": "bookTicker"): without one, its "u"
    # tells it from a combined wrapper or a user data envelope.
    shape_key = "u" if model is BookTicker else None

    def parse_single(payload: Any) -> Event | list[Event]:
        if payload.__class__ is dict:
            event_type = payload.get("e")
            if event_type in events or (event_type is None and shape_key in payload):
                return cast("Event", fast(payload))
        return parse(payload, stream)

    return parse_single


def _list_parser(model: type[_Model], stream: str) -> Parser:
    fast = model.from_dict

    def parse_list(payload: Any) -> Event | list[Event]:
        if payload.__class__ is list:
            return [cast("Event", fast(item)) for item in payload]
        return parse(payload, stream)

    return parse_list


def _partial_depth_parser(stream: str) -> Parser:
    symbol = _symbol_of(stream)
    spot = PartialDepth.from_dict
    futures = DepthUpdate.from_dict

    def parse_partial_depth(payload: Any) -> Event | list[Event]:
        if payload.__class__ is dict:
            if "lastUpdateId" in payload:
                return spot(payload, symbol=symbol)
            if payload.get("e") == "depthUpdate":
                return futures(payload)
        return parse(payload, stream)

    return parse_partial_depth
