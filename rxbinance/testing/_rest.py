"""FakeBinance's REST server: the spot and USD-M endpoints a streams library needs.

:class:`RestApp` turns (method, request target, headers, body) into (status, headers, body)
and knows nothing about sockets; :class:`RestServer` is a ``ThreadingHTTPServer`` that feeds
it, one daemon thread per client connection (named ``FakeBinance-rest-conn``), and can close
every client connection on shutdown so that no thread outlives :meth:`FakeBinance.stop`.

Endpoints and weights (binance-protocol.md sections 7 and 8.4), charged per wall-clock minute
and reported in ``X-MBX-USED-WEIGHT-1M`` on every response. Spot and USD-M are served from the
same market and share one weight budget (the fake is one "IP"):

=================================  ======  ===================================================
``GET /api/v3/ping``               1       ``{}``
``GET /api/v3/time``               1       ``{"serverTime": <market time ms>}``
``GET /api/v3/exchangeInfo``       20      ``symbol=`` or ``symbols=["A","B"]`` (not both:
                                           -1128); ``symbolStatus=`` filters (not with
                                           symbol/symbols)
``GET /api/v3/depth``              5/25/   by ``limit``: 1-100: 5, 101-500: 25, 501-1000: 50,
                                   50/250  over 1000: 250 (``limit`` > 5000 is served as 5000)
``GET /api/v3/aggTrades``          4       ``symbol``, ``fromId``, ``startTime``, ``endTime``,
                                           ``limit``
``GET /api/v3/historicalTrades``   25      ``symbol``, ``fromId`` (inclusive; default: the
                                           most recent), ``limit`` (default 500, max 1000);
                                           no API key (Binance dropped it for this one)
``GET /api/v3/trades``             25      ``symbol``, ``limit``: the most recent trades
``GET /api/v3/klines``             2       ``symbol``, ``interval``, ``startTime``,
                                           ``endTime``, ``limit``, ``timeZone`` (only ``0``)
``GET /api/v3/uiKlines``           2       same as klines
``GET /api/v3/avgPrice``           2       ``symbol``
``GET /api/v3/account``            20      SIGNED (below); ``omitZeroBalances``: Binance's
                                           account JSON with a zero balance for every asset
                                           of the market
``* /api/v3/userDataStream``       0       HTTP 410 with an nginx HTML page (retired
``* /api/v1/userDataStream``               2026-02-20; ``/api/v1`` retired 2026-03-25)
``GET /fapi/v1/ping``, ``time``    1       as on spot
``GET /fapi/v1/exchangeInfo``      1       no parameters; USD-M shape (``futuresType``,
                                           ``contractType`` PERPETUAL, ``marginAsset``...)
``GET /fapi/v1/depth``             2/5/    ``limit`` one of 5, 10, 20, 50 (2), 100 (5),
                                   10/20   500 (10, the default), 1000 (20), else -1100;
                                           the body adds ``E`` and ``T`` (market time)
``GET /fapi/v1/aggTrades``         20      as on spot without ``M``; ``startTime`` and
                                           ``endTime`` at most 1 hour apart (else -1127);
                                           only the last 48 hours of market time are served
``GET /fapi/v1/trades``            5       as on spot without ``isBestMatch``
``GET /fapi/v1/historicalTrades``  20      MARKET_DATA (``X-MBX-APIKEY``, no signature);
                                           ``limit`` default 100, max 500; rows as
                                           ``/fapi/v1/trades``
``GET /fapi/v1/klines``            1/2/    by ``limit`` (default 500, max 1500): under 100: 1,
                                   5/10    under 500: 2, up to 1000: 5, above: 10; no ``1s``
``POST /fapi/v1/listenKey``        1       USER_STREAM: ``{"listenKey": ...}``; the API key's
                                           active key again (extended) if it has one
``PUT /fapi/v1/listenKey``         1       USER_STREAM: extends 60 min, ``{}``; optional
                                           ``listenKey=``; none active / unknown / not this
                                           API key's: -1125 "This listenKey does not exist."
``DELETE /fapi/v1/listenKey``      1       USER_STREAM: closes it, ``{}``; -1125 as for PUT
=================================  ======  ===================================================

API keys (:class:`ApiKeys`, configured with ``FakeBinance(api_keys={key: secret})`` or
``fake.add_api_key``). MARKET_DATA, USER_STREAM and SIGNED endpoints need the ``X-MBX-APIKEY``
header: none or empty: HTTP 401 -2014 "API-key format invalid."; a key the fake does not know:
401 -2015 "Invalid API-key, IP, or permissions for action.". SIGNED endpoints then check,
exactly per binance-protocol.md 7.2: ``timestamp`` and ``signature`` present (-1102);
``recvWindow`` (default 5000, at most 60000 with up to 3 decimals, else -1131); the signature
(-1022 "Signature for this request is not valid.") over the **percent-encoded payload as sent**:
the raw query string and then the raw form body, each without its ``signature`` parameter,
HMAC-SHA256 hex (any case) for secret keys, base64 Ed25519 or RSA (PKCS#1 v1.5, SHA-256) for
public keys (``cryptography`` needed); and the timestamp (-1021) against the **wall clock**:
ahead by 1000 ms or more, or older than ``recvWindow``. Binance checks against its own clock;
the fake's market clock may run faster or be paused, so it uses the wall clock the clients sign
with. Timestamps of 16 digits and more are microseconds.

REST history retention: the trade endpoints (aggTrades, historicalTrades, trades) serve only
what :meth:`Market.rest_oldest_ids` says REST still has (``Market.rest_history_ms``,
:meth:`Market.forget_history`); a ``fromId`` or ``startTime`` older than that is answered from
the oldest retained item on, as Binance answers for data it no longer has.

Errors are ``{"code":..,"msg":..}`` with HTTP 400: -1102 a mandatory parameter missing or
empty, -1100 a malformed parameter (non-integer number, lowercase symbol, bad ``symbols``
JSON), -1104 unknown parameters sent, -1128 symbol together with symbols, and whatever the
market raises (-1121 invalid symbol, -1120 invalid interval...). Parameters come from the query
string and, for form bodies (``application/x-www-form-urlencoded``), the body; the query wins
on duplicates. Unknown paths: 404 ``{"code":-1000,"msg":"Unknown path: ..."}``; a wrong HTTP
method on a known path: 405 ``{"code":-1000,...}``. Weight goes over the limit: 429 ``-1003``
with ``Retry-After`` = seconds to the next minute, and nothing is charged. ``rest_fault``
answers the next requests with 429 (Binance's -1003 text) or 418 (the ban text, "IP banned
until <epoch ms>") and ``Retry-After``, before any weight is charged. Not modelled: the
``X-MBX-TIME-UNIT`` header, timeZone offsets, orders.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit

from rxbinance.protocol.signing import CRYPTOGRAPHY_MISSING, hmac_sha256_hex

from ._control import dumps
from ._limits import WeightMeter, too_much_weight_msg
from ._records import RestRequest

if TYPE_CHECKING:
    from ._market import Market

__all__ = [
    "FUTURES_AGG_TRADES_WINDOW_MS",
    "ApiKey",
    "ApiKeys",
    "ListenKeyEvent",
    "ListenKeyRecord",
    "ListenKeys",
    "RestApp",
    "RestFaults",
    "RestResponse",
    "RestServer",
    "depth_weight",
    "futures_depth_weight",
    "futures_klines_weight",
]

T = TypeVar("T")

#: ``fn -> fn(market)`` under the FakeBinance lock.
MarketCall = Callable[[Callable[["Market"], Any]], Any]

_SYMBOL = re.compile(r"[A-Z0-9_.-]{1,20}")
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_RECV_WINDOW = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,3})?")

_GONE_HTML = (
    "<html>\r\n<head><title>410 Gone</title></head>\r\n<body>\r\n"
    "<center><h1>410 Gone</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_FUTURES_INTERVALS = frozenset(
    ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
)


def depth_weight(limit: int) -> int:
    """Weight of ``GET /api/v3/depth`` for a ``limit`` (since 2023-10-19)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def futures_depth_weight(limit: int) -> int:
    """Weight of ``GET /fapi/v1/depth`` for a ``limit`` (binance-protocol.md 8.4)."""
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def futures_klines_weight(limit: int) -> int:
    """Weight of ``GET /fapi/v1/klines`` for a ``limit`` (Binance's USD-M table)."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


@dataclass(frozen=True, slots=True)
class RestResponse:
    """What the HTTP layer sends: status, extra headers, body bytes, content type."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json;charset=UTF-8"


class _ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.status = status


class RestFaults:
    """Scripted HTTP errors for the next requests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = 0
        self._retry_after = 0
        self._remaining: int | None = 0

    def set(self, status: int, retry_after: int, times: int | None) -> None:
        """Answer the next ``times`` requests (None: all until cleared) with ``status``."""
        if status not in (429, 418):
            raise ValueError(f"rest_fault status must be 429 or 418, not {status}")
        with self._lock:
            self._status, self._retry_after, self._remaining = status, retry_after, times

    def clear(self) -> None:
        """Stop injecting errors."""
        with self._lock:
            self._remaining = 0

    def take(self) -> tuple[int, int] | None:
        """(status, retry_after) if this request must fail, consuming one use."""
        with self._lock:
            if self._remaining is not None:
                if self._remaining <= 0:
                    return None
                self._remaining -= 1
            return self._status, self._retry_after


def _json(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> RestResponse:
    return RestResponse(status, dumps(value).encode(), headers)


# --------------------------------------------------------------------------- API keys


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key the fake accepts; the secret and the public key never show in its repr.

    Attributes:
        api_key: The key sent in ``X-MBX-APIKEY`` (or a WS API request's ``apiKey``).
        key_type: ``"hmac"`` (a shared secret), ``"ed25519"`` or ``"rsa"`` (a public key).
    """

    api_key: str
    key_type: Literal["hmac", "ed25519", "rsa"]
    secret: bytes | None = field(default=None, repr=False)
    public_key: Any = field(default=None, repr=False)

    def verify(self, payload: str, signature: str) -> bool:
        """True when ``signature`` signs ``payload`` (UTF-8) with this key: lowercase or
        uppercase hex HMAC-SHA256 for ``"hmac"``, base64 for Ed25519 and RSA."""
        if self.secret is not None:
            expected = hmac_sha256_hex(self.secret, payload)
            return hmac.compare_digest(expected, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        from cryptography.exceptions import InvalidSignature

        try:
            if self.key_type == "rsa":
                from cryptography.hazmat.primitives import hashes
                from cryptography.hazmat.primitives.asymmetric import padding

                self.public_key.verify(raw, payload.encode(), padding.PKCS1v15(), hashes.SHA256())
            else:
                self.public_key.verify(raw, payload.encode())
        except InvalidSignature:
            return False
        return True


class ApiKeys:
    """The API keys FakeBinance accepts, for REST and the WS API (thread-safe).

    ``keys`` maps API keys to HMAC secrets; :meth:`add` also takes Ed25519 and RSA public keys.
    """

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        for api_key, secret in (keys or {}).items():
            self.add(api_key, secret)

    def add(
        self,
        api_key: str,
        secret: str | bytes | None = None,
        *,
        public_key: str | bytes | None = None,
    ) -> ApiKey:
        """Accept ``api_key`` from now on, replacing any earlier entry for it.

        Pass exactly one of ``secret`` (HMAC) or ``public_key`` (a PEM public key, Ed25519 or
        RSA, as you would register it on Binance; needs ``cryptography``).
        """
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if (secret is None) == (public_key is None):
            raise ValueError("pass exactly one of secret (HMAC) or public_key (Ed25519/RSA PEM)")
        if secret is not None:
            raw = secret.encode() if isinstance(secret, str) else bytes(secret)
            entry = ApiKey(api_key, "hmac", secret=raw)
        else:
            assert public_key is not None
            entry = _public_key_entry(api_key, public_key)
        with self._lock:
            self._keys[api_key] = entry
        return entry

    def remove(self, api_key: str) -> None:
        """Stop accepting ``api_key`` (a revoked key: later requests get -2015)."""
        with self._lock:
            self._keys.pop(api_key, None)

    def get(self, api_key: str) -> ApiKey | None:
        """The entry of ``api_key``, or None if the fake does not know it."""
        with self._lock:
            return self._keys.get(api_key)

    def __contains__(self, api_key: object) -> bool:
        with self._lock:
            return api_key in self._keys

    def verify(self, api_key: str, payload: str, signature: str) -> bool:
        """True when ``api_key`` is known and ``signature`` signs ``payload`` with it.

        The WS API verifies ``rxbinance.protocol.signing.ws_signature_payload(params)`` with
        this; REST verifies the percent-encoded payload as sent.
        """
        entry = self.get(api_key)
        return entry is not None and entry.verify(payload, signature)

    def __repr__(self) -> str:
        with self._lock:
            return f"<ApiKeys {sorted(self._keys)}>"


def _public_key_entry(api_key: str, public_key: str | bytes) -> ApiKey:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError as exc:
        raise ImportError(CRYPTOGRAPHY_MISSING) from exc
    pem = public_key.encode() if isinstance(public_key, str) else bytes(public_key)
    key = load_pem_public_key(pem)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ApiKey(api_key, "ed25519", public_key=key)
    if isinstance(key, rsa.RSAPublicKey):
        return ApiKey(api_key, "rsa", public_key=key)
    raise ValueError(f"unsupported public key type {type(key).__name__}: use Ed25519 or RSA")


# ------------------------------------------------------------------------ listen keys

#: What happened to a listen key, as told to :meth:`ListenKeys.add_listener` callbacks.
ListenKeyEvent = Literal["created", "extended", "expired", "closed"]

_LISTEN_KEY_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class ListenKeyRecord:
    """A snapshot of one USD-M listen key.

    Attributes:
        listen_key: The 64-character key.
        api_key: The API key that created it.
        state: ``"active"``, ``"expired"`` (its validity ran out, or
            :meth:`FakeBinance.expire_listen_key`) or ``"closed"`` (DELETE).
        created_at: Wall-clock time (``time.time()``) of the POST that created it.
        expires_at: Wall-clock time its validity ends (or ended): 60 minutes after the last
            POST or PUT.
        keepalives: How many POSTs (on an active key) and PUTs extended it.
        ended_at: Wall-clock time it expired or was closed; None while active.
    """

    listen_key: str
    api_key: str
    state: Literal["active", "expired", "closed"]
    created_at: float
    expires_at: float
    keepalives: int = 0
    ended_at: float | None = None


class ListenKeys:
    """USD-M listen keys: one active key per API key, valid ``validity`` seconds after the
    last POST/PUT (Binance: 60 minutes).

    State is guarded by ``cond``'s lock (FakeBinance passes its own Condition, so
    :meth:`FakeBinance.wait_for` sees every change) and ``cond`` is notified on each change.
    Expiry by time is noticed lazily, the next time the key is looked at (so a stream side that
    must announce ``listenKeyExpired`` should use :meth:`expire`, which tests call through
    :meth:`FakeBinance.expire_listen_key`). Listeners run under that lock, after the change,
    on the calling thread (a REST thread or the test's): they must not block.
    """

    def __init__(
        self,
        cond: threading.Condition | None = None,
        *,
        validity: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cond = cond if cond is not None else threading.Condition(threading.RLock())
        self.validity = validity
        self._clock = clock
        self._keys: dict[str, ListenKeyRecord] = {}  # every key ever made, in creation order
        self._active: dict[str, str] = {}  # api key -> its active listen key
        self._listeners: list[Callable[[ListenKeyEvent, ListenKeyRecord], None]] = []

    def add_listener(self, listener: Callable[[ListenKeyEvent, ListenKeyRecord], None]) -> None:
        """Call ``listener(event, record)`` after every change (see the class docstring)."""
        with self._cond:
            self._listeners.append(listener)

    def _set(self, record: ListenKeyRecord, event: ListenKeyEvent) -> ListenKeyRecord:
        # Caller holds the lock.
        self._keys[record.listen_key] = record
        if record.state == "active":
            self._active[record.api_key] = record.listen_key
        elif self._active.get(record.api_key) == record.listen_key:
            del self._active[record.api_key]
        self._cond.notify_all()
        for listener in list(self._listeners):
            listener(event, record)
        return record

    def _current(self, listen_key: str) -> ListenKeyRecord | None:
        # Caller holds the lock. Applies expiry by time.
        record = self._keys.get(listen_key)
        if record is not None and record.state == "active":
            now = self._clock()
            if now >= record.expires_at:
                record = self._set(
                    replace(record, state="expired", ended_at=record.expires_at), "expired"
                )
        return record

    def create(self, api_key: str) -> ListenKeyRecord:
        """POST: the API key's active listen key, extended, or a new one."""
        with self._cond:
            now = self._clock()
            active = self._active.get(api_key)
            record = self._current(active) if active is not None else None
            if record is not None and record.state == "active":
                extended = replace(
                    record, expires_at=now + self.validity, keepalives=record.keepalives + 1
                )
                return self._set(extended, "extended")
            key = "".join(secrets.choice(_LISTEN_KEY_ALPHABET) for _ in range(64))
            return self._set(
                ListenKeyRecord(key, api_key, "active", now, now + self.validity), "created"
            )

    def _owned_active(self, api_key: str, listen_key: str | None) -> ListenKeyRecord:
        if listen_key is None:
            listen_key = self._active.get(api_key)
        record = None if listen_key is None else self._current(listen_key)
        if record is None or record.api_key != api_key or record.state != "active":
            raise KeyError(listen_key)
        return record

    def keepalive(self, api_key: str, listen_key: str | None = None) -> ListenKeyRecord:
        """PUT: extend ``listen_key`` (default: the API key's active one).

        KeyError when it is not an active key of ``api_key`` (Binance: -1125).
        """
        with self._cond:
            record = self._owned_active(api_key, listen_key)
            now = self._clock()
            extended = replace(
                record, expires_at=now + self.validity, keepalives=record.keepalives + 1
            )
            return self._set(extended, "extended")

    def close(self, api_key: str, listen_key: str | None = None) -> ListenKeyRecord:
        """DELETE: close ``listen_key`` (default: the API key's active one); KeyError as for
        :meth:`keepalive`."""
        with self._cond:
            record = self._owned_active(api_key, listen_key)
            return self._set(replace(record, state="closed", ended_at=self._clock()), "closed")

    def expire(self, listen_key: str) -> ListenKeyRecord:
        """End ``listen_key`` now as if its 60 minutes had run out; KeyError if not active."""
        with self._cond:
            record = self._current(listen_key)
            if record is None or record.state != "active":
                raise KeyError(listen_key)
            now = self._clock()
            return self._set(
                replace(record, state="expired", expires_at=now, ended_at=now), "expired"
            )

    def get(self, listen_key: str) -> ListenKeyRecord | None:
        """The current record of ``listen_key`` (expiry by time applied), None if unknown."""
        with self._cond:
            return self._current(listen_key)

    def snapshot(self) -> tuple[ListenKeyRecord, ...]:
        """Every listen key ever created, oldest first, expiry by time applied."""
        with self._cond:
            return tuple(self._current(key) or self._keys[key] for key in list(self._keys))


# ------------------------------------------------------------------------ parameters


class _Params:
    """Query parameters with Binance-style validation and read tracking (for -1104)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values = dict(pairs)  # later pairs win: callers put the query string last
        self._read: set[str] = set()
        self.api_key: str | None = None  # set once a USER_STREAM/SIGNED request is authorized

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def raw(self, name: str) -> str | None:
        self._read.add(name)
        value = self._values.get(name)
        return value if value != "" else None

    def required(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            raise _ApiError(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        return value

    def integer(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):
            raise _ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[0-9]{1,20}$'.",
            )
        return int(value)

    def symbol(self, name: str = "symbol") -> str:
        value = self.required(name)
        if not _SYMBOL.fullmatch(value):
            raise _ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        return value

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise _ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is 'true, false'.",
            )
        return value == "true"

    def check_all_read(self) -> None:
        # Binance rejects parameters an endpoint does not read.
        unread = set(self._values) - self._read
        if unread:
            raise _ApiError(
                -1104,
                f"Not all sent parameters were read; read '{len(self._values) - len(unread)}' "
                f"parameter(s) but was sent '{len(self._values)}'.",
            )


#: NONE: public; MARKET_DATA and USER_STREAM: an API key, no signature; SIGNED: both.
Security = Literal["NONE", "MARKET_DATA", "USER_STREAM", "SIGNED"]

#: USD-M aggTrades serves the last 48 hours only (binance-protocol.md 8.4).
FUTURES_AGG_TRADES_WINDOW_MS = 48 * 3_600_000


@dataclass(frozen=True, slots=True)
class _Route:
    weight: Callable[[_Params], int]
    handler: Callable[[_Params], Any]
    security: Security = "NONE"


def _fixed(weight: int) -> Callable[[_Params], int]:
    return lambda params: weight


def _without_signature(raw: str) -> str:
    """``raw`` (a query string or form body, as sent) without its ``signature`` parameter."""
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


_NO_LISTEN_KEY = _ApiError(-1125, "This listenKey does not exist.")


class RestApp:
    """The REST endpoints as a function of (method, target, headers, body); see the module
    docstring. ``api_keys`` and ``listen_keys`` default to empty stores."""

    def __init__(
        self,
        *,
        call_market: MarketCall,
        weights: WeightMeter,
        faults: RestFaults,
        record: Callable[[RestRequest], None],
        api_keys: ApiKeys | None = None,
        listen_keys: ListenKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._call_market = call_market
        self._weights = weights
        self._faults = faults
        self._record = record
        self._api_keys = api_keys if api_keys is not None else ApiKeys()
        self._listen_keys = listen_keys if listen_keys is not None else ListenKeys()
        self._clock = clock
        self._routes: Mapping[str, Mapping[str, _Route]] = {
            "/api/v3/ping": {"GET": _Route(_fixed(1), self._ping)},
            "/api/v3/time": {"GET": _Route(_fixed(1), self._time)},
            "/api/v3/exchangeInfo": {"GET": _Route(_fixed(20), self._exchange_info)},
            "/api/v3/depth": {"GET": _Route(self._depth_weight, self._depth)},
            "/api/v3/aggTrades": {"GET": _Route(_fixed(4), self._agg_trades)},
            "/api/v3/historicalTrades": {"GET": _Route(_fixed(25), self._historical_trades)},
            "/api/v3/trades": {"GET": _Route(_fixed(25), self._trades)},
            "/api/v3/klines": {"GET": _Route(_fixed(2), self._klines)},
            "/api/v3/uiKlines": {"GET": _Route(_fixed(2), self._klines)},
            "/api/v3/avgPrice": {"GET": _Route(_fixed(2), self._avg_price)},
            "/api/v3/account": {"GET": _Route(_fixed(20), self._account, "SIGNED")},
            "/fapi/v1/ping": {"GET": _Route(_fixed(1), self._ping)},
            "/fapi/v1/time": {"GET": _Route(_fixed(1), self._time)},
            "/fapi/v1/exchangeInfo": {"GET": _Route(_fixed(1), self._futures_exchange_info)},
            "/fapi/v1/depth": {"GET": _Route(self._futures_depth_weight, self._futures_depth)},
            "/fapi/v1/aggTrades": {"GET": _Route(_fixed(20), self._futures_agg_trades)},
            "/fapi/v1/trades": {"GET": _Route(_fixed(5), self._futures_trades)},
            "/fapi/v1/historicalTrades": {
                "GET": _Route(_fixed(20), self._futures_historical_trades, "MARKET_DATA")
            },
            "/fapi/v1/klines": {"GET": _Route(self._futures_klines_weight, self._futures_klines)},
            "/fapi/v1/listenKey": {
                "POST": _Route(_fixed(1), self._create_listen_key, "USER_STREAM"),
                "PUT": _Route(_fixed(1), self._keepalive_listen_key, "USER_STREAM"),
                "DELETE": _Route(_fixed(1), self._close_listen_key, "USER_STREAM"),
            },
        }

    # -- plumbing

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> RestResponse:
        """Answer one request and record it in ``fake.rest_requests``.

        ``headers`` are matched case-insensitively; ``body`` is read as a form when present.
        """
        parts = urlsplit(target)
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        weight = 0
        try:
            response, weight = self._dispatch(method, parts.path, parts.query, lowered, body)
        except Exception as exc:  # a bug here must not kill the HTTP thread silently
            response = _json(500, {"code": -1000, "msg": f"FakeBinance internal error: {exc!r}"})
        self._record(
            RestRequest(method, parts.path, parts.query, response.status, weight, time.time())
        )
        return response

    def _dispatch(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[RestResponse, int]:
        if path in ("/api/v3/userDataStream", "/api/v1/userDataStream"):
            return RestResponse(410, _GONE_HTML.encode(), content_type="text/html"), 0
        methods = self._routes.get(path)
        if methods is None:
            return _json(404, {"code": -1000, "msg": f"Unknown path: {path}"}), 0
        route = methods.get(method)
        if route is None:
            return _json(405, {"code": -1000, "msg": f"Method {method} not allowed on {path}."}), 0

        fault = self._faults.take()
        if fault is not None:
            return self._fault_response(*fault), 0

        body_text = body.decode("utf-8", "replace")
        # Query string last: Binance lets the query win over the body on duplicates.
        pairs = parse_qsl(body_text, keep_blank_values=True) + parse_qsl(
            query, keep_blank_values=True
        )
        params = _Params(pairs)
        try:
            weight = route.weight(params)
        except _ApiError:
            weight = 1  # a malformed weight-defining param; the handler reports it below
        charge = self._weights.charge(weight)
        used = (("X-MBX-USED-WEIGHT-1M", str(charge.used)),)
        if not charge.allowed:
            body_ = {"code": -1003, "msg": too_much_weight_msg(self._weights.limit)}
            return _json(429, body_, (*used, ("Retry-After", str(charge.retry_after)))), 0
        try:
            if route.security != "NONE":
                params.api_key = self._authenticate(headers)
            if route.security == "SIGNED":
                self._check_signed(params, query, body_text)
            result = route.handler(params)
            params.check_all_read()
        except _ApiError as exc:
            return _json(exc.status, {"code": exc.code, "msg": exc.msg}, used), weight
        except Exception as exc:
            code = getattr(exc, "code", None)
            msg = getattr(exc, "msg", None)
            if isinstance(code, int) and isinstance(msg, str):  # MarketError
                return _json(400, {"code": code, "msg": msg}, used), weight
            raise
        return _json(200, result, used), weight

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        api_key = headers.get("x-mbx-apikey", "")
        if not api_key:
            raise _ApiError(-2014, "API-key format invalid.", status=401)
        if api_key not in self._api_keys:
            raise _ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        return api_key

    def _check_signed(self, params: _Params, query: str, body_text: str) -> None:
        # binance-protocol.md 7.2. Mandatory parameters first, then the signature over the
        # payload exactly as sent (percent-encoded), then the time window.
        assert params.api_key is not None
        timestamp = params.integer("timestamp")
        if timestamp is None:
            params.required("timestamp")  # raises -1102
        signature = params.required("signature")
        recv_raw = params.raw("recvWindow")
        recv_window = 5000.0
        if recv_raw is not None:
            if not _RECV_WINDOW.fullmatch(recv_raw):
                raise _ApiError(
                    -1100,
                    "Illegal characters found in parameter 'recvWindow'; "
                    "legal range is '^[0-9]{1,10}(\\.[0-9]{1,3})?$'.",
                )
            recv_window = float(recv_raw)
            if recv_window > 60000:
                raise _ApiError(-1131, "recvWindow must be less than 60000")
        payload = _without_signature(query) + _without_signature(body_text)
        if not self._api_keys.verify(params.api_key, payload, signature):
            raise _ApiError(-1022, "Signature for this request is not valid.")
        assert timestamp is not None
        stamp_ms = timestamp / 1000 if timestamp >= 10**15 else float(timestamp)  # µs → ms
        now_ms = self._clock() * 1000
        if stamp_ms >= now_ms + 1000:
            raise _ApiError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now_ms - stamp_ms > recv_window:
            raise _ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")

    def _fault_response(self, status: int, retry_after: int) -> RestResponse:
        headers = (
            ("X-MBX-USED-WEIGHT-1M", str(self._weights.used())),
            ("Retry-After", str(retry_after)),
        )
        if status == 429:
            return _json(
                429, {"code": -1003, "msg": too_much_weight_msg(self._weights.limit)}, headers
            )
        until = int(time.time() * 1000) + retry_after * 1000
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        return _json(418, {"code": -1003, "msg": msg}, headers)

    # -- spot endpoints

    def _ping(self, params: _Params) -> Any:
        return {}

    def _time(self, params: _Params) -> Any:
        return {"serverTime": self._call_market(lambda m: m.time_ms)}

    def _exchange_info(self, params: _Params) -> Any:
        symbol = params.symbol() if "symbol" in params else None
        symbols_raw = params.raw("symbols")
        status = params.raw("symbolStatus")
        params.raw("permissions")
        params.raw("showPermissionSets")
        if symbol is not None and symbols_raw is not None:
            raise _ApiError(-1128, "Combination of optional parameters invalid.")
        if status is not None and (symbol is not None or symbols_raw is not None):
            raise _ApiError(-1128, "Combination of optional parameters invalid.")
        wanted: list[str] | None = None
        if symbol is not None:
            wanted = [symbol]
        elif symbols_raw is not None:
            try:
                parsed = json.loads(symbols_raw)
            except json.JSONDecodeError:
                parsed = None
            if not (
                isinstance(parsed, list)
                and parsed
                and all(isinstance(s, str) and _SYMBOL.fullmatch(s) for s in parsed)
            ):
                raise _ApiError(
                    -1100,
                    "Illegal characters found in parameter 'symbols'; legal range is "
                    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
                )
            wanted = parsed
        info: dict[str, Any] = dict(self._call_market(lambda m: m.rest_exchange_info(wanted)))
        # Advertise the weight limit this server really enforces.
        info["rateLimits"] = [
            {**limit, "limit": self._weights.limit}
            if limit.get("rateLimitType") == "REQUEST_WEIGHT"
            else limit
            for limit in info.get("rateLimits", [])
        ]
        if status is not None:
            info["symbols"] = [s for s in info.get("symbols", []) if s.get("status") == status]
        return info

    def _depth_limit(self, params: _Params) -> int:
        limit = params.integer("limit")
        return 100 if limit is None else limit

    def _depth_weight(self, params: _Params) -> int:
        return depth_weight(min(self._depth_limit(params), 5000))

    def _depth(self, params: _Params) -> Any:
        symbol = params.symbol()
        limit = min(self._depth_limit(params), 5000)
        params.raw("symbolStatus")  # accepted, not modelled: every simulated symbol trades
        return self._call_market(lambda m: m.rest_depth(symbol, limit))

    def _agg_trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        from_id = params.integer("fromId")
        start = params.integer("startTime")
        end = params.integer("endTime")
        limit = params.integer("limit")
        return self._call_market(
            lambda m: m.rest_agg_trades(
                symbol, from_id, start, end, 500 if limit is None else limit
            )
        )

    def _historical_trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        from_id = params.integer("fromId")
        limit = params.integer("limit")
        return self._call_market(
            lambda m: m.rest_historical_trades(symbol, from_id, 500 if limit is None else limit)
        )

    def _trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        limit = params.integer("limit")
        return self._call_market(lambda m: m.rest_trades(symbol, 500 if limit is None else limit))

    def _klines(self, params: _Params) -> Any:
        symbol = params.symbol()
        interval = params.required("interval")
        start = params.integer("startTime")
        end = params.integer("endTime")
        limit = params.integer("limit")
        zone = params.raw("timeZone")
        if zone not in (None, "0", "00:00", "+00:00", "0:00"):
            raise _ApiError(-1100, "FakeBinance does not model timeZone offsets; use 0.")
        return self._call_market(
            lambda m: m.rest_klines(symbol, interval, start, end, 500 if limit is None else limit)
        )

    def _avg_price(self, params: _Params) -> Any:
        symbol = params.symbol()
        return self._call_market(lambda m: m.rest_avg_price(symbol))

    def _assets(self) -> list[str]:
        info = self._call_market(lambda m: m.rest_exchange_info(None))
        assets = {s[side] for s in info["symbols"] for side in ("baseAsset", "quoteAsset")}
        return sorted(assets)

    def _account(self, params: _Params) -> Any:
        omit_zero = params.flag("omitZeroBalances")
        assert params.api_key is not None
        zero = "0.00000000"
        balances = (
            []
            if omit_zero
            else [{"asset": a, "free": zero, "locked": zero} for a in self._assets()]
        )
        rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": zero, "seller": zero}
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": rates,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._call_market(lambda m: m.time_ms),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            # A stable made-up uid per API key, so tests can tell accounts apart.
            "uid": int.from_bytes(hmac_sha256_hex(b"uid", params.api_key).encode()[:6], "big"),
        }

    # -- USD-M endpoints

    def _futures_exchange_info(self, params: _Params) -> Any:
        spot: dict[str, Any] = self._call_market(lambda m: m.rest_exchange_info(None))
        symbols = [_futures_symbol(s) for s in spot["symbols"]]
        margin_assets = sorted({s["marginAsset"] for s in symbols})
        return {
            "timezone": "UTC",
            "serverTime": spot["serverTime"],
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self._weights.limit,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [
                {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                for a in margin_assets
            ],
            "symbols": symbols,
        }

    def _futures_depth_limit(self, params: _Params) -> int:
        limit = params.integer("limit")
        if limit is None:
            return 500
        if limit not in FUTURES_DEPTH_LIMITS:
            raise _ApiError(
                -1100,
                "Illegal characters found in parameter 'limit'; "
                "legal range is '5, 10, 20, 50, 100, 500, 1000'.",
            )
        return limit

    def _futures_depth_weight(self, params: _Params) -> int:
        return futures_depth_weight(self._futures_depth_limit(params))

    def _futures_depth(self, params: _Params) -> Any:
        symbol = params.symbol()
        limit = self._futures_depth_limit(params)

        def read(m: Market) -> dict[str, Any]:
            book = m.rest_depth(symbol, limit)
            now = m.time_ms
            # E: when the message was made; T: the matching engine's transaction time.
            return {
                "lastUpdateId": book["lastUpdateId"],
                "E": now,
                "T": now,
                "bids": book["bids"],
                "asks": book["asks"],
            }

        return self._call_market(read)

    def _futures_agg_trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        from_id = params.integer("fromId")
        start = params.integer("startTime")
        end = params.integer("endTime")
        limit = params.integer("limit")
        if start is not None and end is not None and end - start > 3_600_000:
            raise _ApiError(-1127, "More than 1 hours between startTime and endTime.")
        rows = self._call_market(
            lambda m: m.rest_agg_trades(
                symbol,
                from_id,
                start,
                end,
                500 if limit is None else limit,
                window_ms=FUTURES_AGG_TRADES_WINDOW_MS,
            )
        )
        # USD-M rows have no "M" (best price match) field.
        return [{k: v for k, v in row.items() if k != "M"} for row in rows]

    def _futures_trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        limit = params.integer("limit")
        return self._call_market(
            lambda m: m.rest_trades(symbol, 500 if limit is None else limit, best_match=False)
        )

    def _futures_historical_trades(self, params: _Params) -> Any:
        symbol = params.symbol()
        from_id = params.integer("fromId")
        limit = params.integer("limit")
        # USD-M: default 100, at most 500 (larger served as 500, like the other limits here).
        limit = 100 if limit is None else limit if limit < 1 else min(limit, 500)
        return self._call_market(
            lambda m: m.rest_historical_trades(symbol, from_id, limit, best_match=False)
        )

    def _futures_klines_limit(self, params: _Params) -> int:
        limit = params.integer("limit")
        return 500 if limit is None else min(limit, 1500)

    def _futures_klines_weight(self, params: _Params) -> int:
        return futures_klines_weight(self._futures_klines_limit(params))

    def _futures_klines(self, params: _Params) -> Any:
        symbol = params.symbol()
        interval = params.required("interval")
        start = params.integer("startTime")
        end = params.integer("endTime")
        limit = self._futures_klines_limit(params)
        if interval not in _FUTURES_INTERVALS:
            raise _ApiError(-1120, "Invalid interval.")
        return self._call_market(lambda m: m.rest_klines(symbol, interval, start, end, limit))

    def _create_listen_key(self, params: _Params) -> Any:
        assert params.api_key is not None
        return {"listenKey": self._listen_keys.create(params.api_key).listen_key}

    def _keepalive_listen_key(self, params: _Params) -> Any:
        assert params.api_key is not None
        try:
            self._listen_keys.keepalive(params.api_key, params.raw("listenKey"))
        except KeyError:
            raise _NO_LISTEN_KEY from None
        return {}

    def _close_listen_key(self, params: _Params) -> Any:
        assert params.api_key is not None
        try:
            self._listen_keys.close(params.api_key, params.raw("listenKey"))
        except KeyError:
            raise _NO_LISTEN_KEY from None
        return {}


def _decimals(step: str) -> int:
    """Decimal places of a tick/step size such as ``"0.01000000"`` (2)."""
    digits = step.rstrip("0").partition(".")[2]
    return len(digits)


def _futures_symbol(spot: Mapping[str, Any]) -> dict[str, Any]:
    """A spot exchangeInfo symbol reshaped into a USD-M perpetual's keys."""
    filters = {f["filterType"]: f for f in spot.get("filters", [])}
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    return {
        "symbol": spot["symbol"],
        "pair": spot["symbol"],
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": spot["status"],
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spot["baseAsset"],
        "quoteAsset": spot["quoteAsset"],
        "marginAsset": spot["quoteAsset"],
        "pricePrecision": _decimals(price.get("tickSize", "0.01")),
        "quantityPrecision": _decimals(lot.get("stepSize", "0.001")),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            f
            for name, f in filters.items()
            if name in ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MAX_NUM_ORDERS")
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


class _Handler(BaseHTTPRequestHandler):
    server: RestServer
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API front end

    def version_string(self) -> str:
        return "FakeBinance"

    def _serve(self) -> None:
        # Drain a request body (POST/PUT/DELETE forms) so keep-alive framing stays right.
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        response = self.server.app.handle(self.command, self.path, headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read fake.rest_requests instead of stderr noise


class RestServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with named daemon threads and a hard close of client sockets."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: RestApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._clients_lock = threading.Lock()
        self._clients: dict[socket.socket, threading.Thread] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_client,
            args=(request, client_address),
            name="FakeBinance-rest-conn",
            daemon=True,
        )
        with self._clients_lock:
            self._clients[request] = thread
        thread.start()

    def _serve_client(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._clients_lock:
                self._clients.pop(request, None)

    def close_clients(self, timeout: float) -> None:
        """Shut down every client socket (wakes keep-alive readers) and join their threads."""
        with self._clients_lock:
            clients = list(self._clients.items())
        for sock, _thread in clients:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _sock, thread in clients:
            thread.join(max(0.0, deadline - time.monotonic()))
