"""Signing of Binance requests: REST query strings and WebSocket API params (pure, no I/O).

Binance signs two different strings (binance-protocol.md 7.2 and 6.2), and mixing them up is
the classic signing bug (section 10.9):

- **REST** signs the request payload *as sent*: the percent-encoded query string, directly
  followed by the form body, without the ``signature`` parameter. Since 2026-01-15 Binance
  verifies the percent-encoded form, so a client that signs raw values and sends encoded ones
  is answered ``-1022``. :func:`encode_params` builds that string, :func:`sign_rest_payload`
  signs it.
- **The WebSocket API** signs the request ``params`` minus ``signature``, sorted by name,
  ``k=v`` joined by ``&``, values as raw UTF-8 (never percent-encoded):
  :func:`ws_signature_payload` builds it, :func:`sign_ws_params` signs it.

Three key types (:func:`load_signer` tells them apart):

- an **HMAC** secret (any plain string): HMAC-SHA256, lowercase hex (Binance compares
  case-insensitively);
- an **Ed25519** private key, PEM (PKCS#8): the signature is base64;
- an **RSA** private key, PEM (PKCS#8): RSASSA-PKCS1-v1_5 with SHA-256, base64.

The asymmetric keys need the optional ``cryptography`` package; without it they fail with an
ImportError whose message names ``pip install cryptography``. HMAC needs only the standard
library. Base64 signatures contain ``+``, ``/`` and ``=``: in a REST query string they must be
percent-encoded (:func:`signed_query` does it); in a WebSocket API JSON request they go as is.

No signer ever shows its key: their ``repr`` names the key type only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal, Protocol
from urllib.parse import quote

from rxbinance.errors import InvalidInputError

__all__ = [
    "CRYPTOGRAPHY_MISSING",
    "KeyType",
    "Signer",
    "encode_params",
    "format_value",
    "hmac_sha256_hex",
    "load_signer",
    "sign_rest_payload",
    "sign_ws_params",
    "signed_query",
    "ws_signature_payload",
]

KeyType = Literal["hmac", "ed25519", "rsa"]

#: The message of the ImportError raised for an Ed25519/RSA key without ``cryptography``.
CRYPTOGRAPHY_MISSING = (
    "Ed25519 and RSA API keys need the optional 'cryptography' package: pip install cryptography"
)

Params = Mapping[str, object] | Iterable[tuple[str, object]]


def format_value(value: object) -> str:
    """A parameter value as Binance expects it on the wire, before any encoding.

    ``True``/``False`` become ``true``/``false`` (JSON spelling, not Python's); Decimals keep
    their exact digits (``Decimal("0.00001000")`` stays ``0.00001000``); floats use Python's
    shortest round-trip form (``0.1`` not ``0.1000000000000000055``); everything else is
    ``str(value)``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        # str() of a Decimal may use exponent notation (1E-8); Binance wants plain digits.
        return format(value, "f")
    return str(value)


def _items(params: Params) -> list[tuple[str, object]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def encode_params(params: Params) -> str:
    """Percent-encode ``params`` into ``k=v&k=v``, in the given order, skipping None values.

    This is both the query string a REST request sends and (for SIGNED endpoints) the payload
    it signs. Every byte outside ``A-Z a-z 0-9 - _ . ~`` is percent-encoded as UTF-8, so
    ``symbols=["A","B"]`` becomes ``symbols=%5B%22A%22%2C%22B%22%5D`` and a space is ``%20``.
    """
    return "&".join(
        f"{quote(str(name), safe='')}={quote(format_value(value), safe='')}"
        for name, value in _items(params)
        if value is not None
    )


def ws_signature_payload(params: Mapping[str, object]) -> str:
    """The string a WebSocket API request signs: params except ``signature`` (and None values),
    sorted by name, ``k=v`` joined by ``&``, raw values (not percent-encoded)."""
    return "&".join(
        f"{name}={format_value(params[name])}"
        for name in sorted(params)
        if name != "signature" and params[name] is not None
    )


def hmac_sha256_hex(secret: str | bytes, payload: str | bytes) -> str:
    """HMAC-SHA256 of ``payload`` keyed by ``secret``, lowercase hex (UTF-8 for str)."""
    key = secret.encode() if isinstance(secret, str) else secret
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(key, data, hashlib.sha256).hexdigest()


class Signer(Protocol):
    """Signs payload strings with one API key's secret; made by :func:`load_signer`."""

    @property
    def key_type(self) -> KeyType:
        """``"hmac"``, ``"ed25519"`` or ``"rsa"``."""
        ...

    def sign(self, payload: str) -> str:
        """The signature of ``payload`` (UTF-8): hex for HMAC, base64 otherwise."""
        ...


class _HmacSigner:
    __slots__ = ("_secret",)

    def __init__(self, secret: str | bytes) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else bytes(secret)

    @property
    def key_type(self) -> KeyType:
        return "hmac"

    def sign(self, payload: str) -> str:
        return hmac_sha256_hex(self._secret, payload)

    def __repr__(self) -> str:
        return "<Signer hmac>"  # never the secret


class _PrivateKeySigner:
    __slots__ = ("_key", "_key_type")

    def __init__(self, key: Any, key_type: KeyType) -> None:
        self._key = key
        self._key_type: KeyType = key_type

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    def sign(self, payload: str) -> str:
        data = payload.encode()
        if self._key_type == "rsa":
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            raw = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raw = self._key.sign(data)
        return base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"<Signer {self._key_type}>"


def _is_pem(secret: str | bytes) -> bool:
    head = secret.lstrip()[:11]
    return head in ("-----BEGIN ", b"-----BEGIN ")


def load_signer(secret_or_key: str | bytes | Signer, *, password: bytes | None = None) -> Signer:
    """A :class:`Signer` for an API secret or private key.

    A string or bytes starting with ``-----BEGIN`` is a PEM private key (Ed25519 or RSA,
    optionally encrypted with ``password``); anything else is an HMAC secret. A Signer passes
    through unchanged (the escape hatch for keys held elsewhere, e.g. in an HSM).

    Raises:
        ImportError: a PEM key without the ``cryptography`` package (the message says
            ``pip install cryptography``).
        InvalidInputError: (a ValueError) an empty secret, a PEM that is not a private key,
            or another key type (Binance accepts HMAC, Ed25519 and RSA only). The message
            never quotes the key.
    """
    if not isinstance(secret_or_key, (str, bytes, bytearray)):
        return secret_or_key
    if not secret_or_key:
        raise InvalidInputError("the API secret is empty")
    if not _is_pem(secret_or_key):
        return _HmacSigner(secret_or_key)
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError as exc:
        raise ImportError(CRYPTOGRAPHY_MISSING) from exc
    pem = secret_or_key.encode() if isinstance(secret_or_key, str) else bytes(secret_or_key)
    try:
        key = load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        # cryptography's messages do not echo the key; ours must not either.
        raise InvalidInputError(
            f"the API secret looks like PEM but is not a usable private key: {exc}"
        ) from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _PrivateKeySigner(key, "ed25519")
    if isinstance(key, rsa.RSAPrivateKey):
        return _PrivateKeySigner(key, "rsa")
    raise InvalidInputError(
        f"unsupported private key type {type(key).__name__}: Binance accepts HMAC, Ed25519 and "
        "RSA API keys"
    )


def sign_rest_payload(payload: str, secret_or_key: str | bytes | Signer) -> str:
    """The signature of a REST payload (the percent-encoded query string followed by the form
    body, exactly as sent): HMAC hex or base64 (see :func:`load_signer`).

    >>> sign_rest_payload(
    ...     "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    ...     "&recvWindow=5000&timestamp=1499827319559",
    ...     "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ... )
    'c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71'
    """
    return load_signer(secret_or_key).sign(payload)


def signed_query(params: Params, secret_or_key: str | bytes | Signer) -> tuple[str, str]:
    """``(payload, query)`` for a SIGNED REST request carrying ``params`` in its query string.

    ``payload`` is the percent-encoded ``params`` (what was signed, safe to log); ``query``
    is ``payload&signature=<sig>`` with the signature percent-encoded (base64 has ``+/=``).
    The caller adds ``timestamp`` (and ``recvWindow``) to ``params`` first.
    """
    payload = encode_params(params)
    signature = load_signer(secret_or_key).sign(payload)
    separator = "&" if payload else ""
    return payload, f"{payload}{separator}signature={quote(signature, safe='')}"


def sign_ws_params(params: Mapping[str, object], secret_or_key: str | bytes | Signer) -> str:
    """The ``signature`` of a WebSocket API request's ``params`` (binance-protocol.md 6.2).

    Signs :func:`ws_signature_payload` of ``params`` (sorted, raw, ``signature`` excluded):
    HMAC-SHA256 hex, or base64 for Ed25519/RSA keys. Put the result in ``params["signature"]``
    unchanged (JSON needs no percent-encoding).

    >>> sign_ws_params(
    ...     {
    ...         "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
    ...         "quantity": "0.01000000", "price": "52000.00", "recvWindow": 100,
    ...         "timestamp": 1645423376532,
    ...         "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    ...     },
    ...     "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ... )
    'aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24'
    """
    return load_signer(secret_or_key).sign(ws_signature_payload(params))
