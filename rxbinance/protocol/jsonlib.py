"""The JSON decoder of every received frame: orjson when installed, else the standard library.

:data:`loads` is chosen once, when this module is first imported:

- orjson (``pip install 'rxbinance[speed]'``) parses the UTF-8 bytes (or a view of them)
  directly, about twice as fast as the standard library on Binance's messages;
- otherwise the standard library's C scanner (what ``json.JSONDecoder().decode`` runs) over the
  payload decoded to ``str``: cheaper than ``json.loads(bytes)``, which sniffs the encoding on
  every call, and than ``decode()``, whose whitespace handling around the value costs as much
  again on a short message (see ``_stdlib_loads``).

Setting the environment variable ``RXBINANCE_JSON`` before the import forces a choice:
``stdlib`` (the standard library even if orjson is installed), ``orjson`` (an ImportError naming
the extra if it is missing) or ``auto`` (the default). :data:`BACKEND` says which one is in use.

Both give the same Python values for anything Binance sends (tests/test_json_paths.py decodes
real captures both ways): dicts, lists, ``str`` (Binance sends prices and quantities as strings),
``int`` for integers, ``float`` for numbers with a fraction or an exponent, ``True``/``False``/
``None``; a duplicate key keeps its last value. Both raise ValueError for what is not JSON: a
``json.JSONDecodeError`` (orjson's error is a subclass), or a ``UnicodeDecodeError`` for invalid
UTF-8 on the standard path. The standard library alone would accept ``NaN``, ``Infinity`` and
``-Infinity``, which are not JSON and which orjson rejects: here it rejects them too. One
difference stays: an integer beyond 64 bits becomes a ``float`` with orjson and stays an ``int``
with the standard library (no Binance field comes near: ids and times are below 2**63).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from rxbinance.errors import InvalidInputError

__all__ = ["BACKEND", "BACKENDS", "ENCODERS", "ENV_VAR", "Buffer", "dumps", "loads", "select"]

#: What :data:`loads` takes: a frame's payload as bytes, a bytearray or a memoryview of one
#: (:mod:`rxbinance.protocol.wsframes` hands out views), or already decoded text.
Buffer = bytes | bytearray | memoryview | str

#: The environment variable that forces the choice: ``auto``, ``stdlib`` or ``orjson``.
ENV_VAR = "RXBINANCE_JSON"


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_decode = _decoder.decode
# The C scanner under decode(): decode() adds two whitespace regex matches and a method call
# around it, which cost as much again as scanning a Binance message (benchmarks/throughput.py).
# (set by JSONDecoder.__init__ and documented there, missing from typeshed's stub)
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


def _stdlib_loads(data: Buffer) -> Any:
    """The standard library's decoder over UTF-8 text: exactly ``decode()``, taking its
    scanner's short way when the text has no whitespace around the value (Binance's never
    does)."""
    text = data if isinstance(data, str) else str(data, "utf-8")  # UnicodeDecodeError: ValueError
    try:
        value, end = _scan(text, 0)
    except StopIteration:  # no value at 0: leading whitespace, or not JSON (decode says which)
        return _decode(text)
    if end != len(text):  # trailing whitespace, or extra data (decode raises for that)
        return _decode(text)
    return value


def _orjson_loads() -> Callable[[Buffer], Any] | None:
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]  # the optional extra
    except ImportError:
        return None
    loads: Callable[[Buffer], Any] = orjson.loads
    return loads


#: The decoders by name, each ``Callable[[Buffer], Any]``; "orjson" only when it is installed.
BACKENDS: dict[str, Callable[[Buffer], Any]] = {"stdlib": _stdlib_loads}
_fast = _orjson_loads()
if _fast is not None:
    BACKENDS["orjson"] = _fast


def select(choice: str | None) -> tuple[str, Callable[[Buffer], Any]]:
    """The backend for a value of ``RXBINANCE_JSON`` (None or empty: ``auto``): its name and
    its ``loads``. Raises InvalidInputError (a ValueError) for another value, ImportError for
    ``orjson`` when it is not installed."""
    choice = (choice or "auto").strip().lower()
    if choice == "auto":
        choice = "orjson" if "orjson" in BACKENDS else "stdlib"
    elif choice not in ("stdlib", "orjson"):
        raise InvalidInputError(f"{ENV_VAR} must be 'auto', 'stdlib' or 'orjson', not {choice!r}")
    if choice not in BACKENDS:
        raise ImportError(
            f"{ENV_VAR}=orjson but orjson is not installed: pip install 'rxbinance[speed]'"
        )
    return choice, BACKENDS[choice]


#: The name of the decoder in use: "orjson" or "stdlib".
BACKEND: str
#: Decode one JSON document from UTF-8 bytes (or a view of them) or ``str``; ValueError if it is
#: not one. Read it as ``jsonlib.loads`` when needed rather than binding it at import, so a test
#: can swap it for one of :data:`BACKENDS`.
loads: Callable[[Buffer], Any]
BACKEND, loads = select(os.environ.get(ENV_VAR))

_stdlib_encode = json.JSONEncoder(separators=(",", ":")).encode


def _stdlib_dumps(value: Any) -> bytes:
    return _stdlib_encode(value).encode()


def _dumps_of(backend: str) -> Callable[[Any], bytes]:
    """Compact JSON as UTF-8 bytes: orjson's when that is the backend (what it cannot encode,
    a non-str key or an integer beyond 64 bits, goes to the standard library instead), else
    the standard library's. Both write the same text for Binance payloads."""
    if backend != "orjson":
        return _stdlib_dumps
    import orjson  # type: ignore[import-not-found, unused-ignore]  # present: it is the backend

    fast: Callable[[Any], bytes] = orjson.dumps

    def dumps(value: Any) -> bytes:
        try:
            return fast(value)
        except TypeError:  # orjson.JSONEncodeError
            return _stdlib_dumps(value)

    return dumps


#: The encoders by backend name, like :data:`BACKENDS`.
ENCODERS: dict[str, Callable[[Any], bytes]] = {name: _dumps_of(name) for name in BACKENDS}
#: Encode one value as compact JSON (UTF-8 bytes) with the backend in use (the bridge's writer).
dumps: Callable[[Any], bytes] = ENCODERS[BACKEND]
