"""How one message is written as the fields of one Redis stream entry, and read back.

An entry is a flat map of short byte keys (Redis stores the field names in every entry that
does not repeat its predecessor's, so short names save memory on busy keys)::

    d  the message as JSON: a Binance payload exactly as received (raw streams), or the fields
       of a typed model by attribute name (typed streams; see ``m``)
    m  typed messages only: the model's class name (``Trade``, ``DepthUpdate``, ``Quote``...)
    s  the Binance stream name (``btcusdt@aggTrade``), or "" when the publisher could not name it
    t  the local receive time on the publisher, epoch seconds (a float, as text)
    n  the publisher's message number: 1 for the first message it received, +1 for each next
    g  Gap entries only (instead of d/m): JSON ``{"first", "last", "reason"}``

Typed models are written by attribute, not converted back to a Binance payload: models keep
no source dict and some fields are derived (a rolling ticker's window), so an inverse mapping
would be a second parser to keep in step with the first. Reading them back is driven by the
dataclass annotations alone (Decimal from its exact string, book levels, nested models), so a
model read back compares equal to the one published.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from rxbinance import models
from rxbinance.errors import ProtocolError
from rxbinance.events import Gap
from rxbinance.protocol.jsonlib import dumps, loads

__all__ = ["Decoded", "as_json", "decode", "encode_gap", "encode_message", "model_types"]

#: Every dataclass exported by rxbinance.models, by class name: what ``m`` may name.
_MODELS: dict[str, type[Any]] = {
    name: getattr(models, name)
    for name in models.__all__
    if isinstance(getattr(models, name), type) and dataclasses.is_dataclass(getattr(models, name))
}


def model_types() -> dict[str, type[Any]]:
    """The model classes a consumer can rebuild, by name."""
    return dict(_MODELS)


# -- writing --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A model field value as JSON-ready data (Decimal as its exact string)."""
    if value is None or value.__class__ in (int, str, bool, float):
        return value
    if value.__class__ is Decimal:
        return str(value)
    if value.__class__ is tuple or value.__class__ is list:
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot publish a {type(value).__name__} field value")


def as_json(message: Any) -> Any:
    """``message`` as JSON-ready data: a payload as it is, a typed model as its fields by
    attribute (Decimals as exact strings), anything else unchanged."""
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return _plain(message)
    return message


def encode_message(message: Any) -> tuple[bytes, bytes | None]:
    """``(d, m)`` for ``message``: its JSON, and its model name for a typed message."""
    if message.__class__ is dict:
        return dumps(message), None
    name = message.__class__.__name__
    if name in _MODELS and message.__class__ is _MODELS[name]:
        return dumps(_plain(message)), name.encode()
    return dumps(message), None


def encode_gap(first: int, last: int, reason: str) -> bytes:
    return json.dumps({"first": first, "last": last, "reason": reason}).encode()


# -- reading --------------------------------------------------------------------------------

_Converter = Callable[[Any], Any]
_CONVERTERS: dict[type[Any], dict[str, _Converter]] = {}


def _converter(hint: Any) -> _Converter:
    """How to turn JSON data back into a value of the annotation ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = _converter(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if hint is Decimal:
        return Decimal
    if origin is tuple:
        if len(args) == 2 and args[1] is ...:
            item = _converter(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [_converter(a) for a in args]
        return lambda v: tuple(c(x) for c, x in zip(items, v, strict=True))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda v: _rebuild(hint, v)
    return lambda v: v  # int, str, bool: JSON gives them back as they were


def _rebuild(cls: type[Any], data: dict[str, Any]) -> Any:
    converters = _CONVERTERS.get(cls)
    if converters is None:
        hints = typing.get_type_hints(cls)
        converters = {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}
        _CONVERTERS[cls] = converters
    return cls(**{name: convert(data[name]) for name, convert in converters.items()})


class Decoded(typing.NamedTuple):
    stream: str
    time: float
    number: int
    message: Any  # the payload, the model, or a Gap


def decode(fields: dict[bytes, bytes]) -> Decoded:
    """One entry's fields back as a message. Raises ProtocolError for an entry this module did
    not write (a foreign writer on the key)."""
    try:
        stream = fields.get(b"s", b"").decode()
        time = float(fields[b"t"])
        number = int(fields.get(b"n", b"0"))
        gap = fields.get(b"g")
        if gap is not None:
            bounds = json.loads(gap)
            message: Any = Gap(stream, time, bounds["first"], bounds["last"], bounds["reason"])
            return Decoded(stream, time, number, message)
        data = loads(fields[b"d"])  # orjson with the speed extra: what the sockets use too
        model = fields.get(b"m")
        if model is not None:
            data = _rebuild(_MODELS[model.decode()], data)
        return Decoded(stream, time, number, data)
    except (KeyError, ValueError, TypeError) as exc:
        raise ProtocolError(
            f"not an rxbinance entry (fields {sorted(k.decode('latin-1') for k in fields)})"
        ) from exc
