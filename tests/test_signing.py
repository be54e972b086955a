"""rxbinance.protocol.signing: the reference's test vectors, encodings and key types."""

from __future__ import annotations

import base64
import sys
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from rxbinance.errors import InvalidInputError
from rxbinance.protocol.signing import (
    CRYPTOGRAPHY_MISSING,
    encode_params,
    format_value,
    hmac_sha256_hex,
    load_signer,
    sign_rest_payload,
    sign_ws_params,
    signed_query,
    ws_signature_payload,
)

# binance-protocol.md 7.2
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
REST_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
REST_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
WS_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
WS_PAYLOAD = (
    f"apiKey={WS_API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
    "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
WS_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


# ------------------------------------------------------------------ reference vectors


def test_rest_vector() -> None:
    assert hmac_sha256_hex(SECRET, REST_PAYLOAD) == REST_SIGNATURE
    assert sign_rest_payload(REST_PAYLOAD, SECRET) == REST_SIGNATURE
    assert sign_rest_payload(REST_PAYLOAD, SECRET.encode()) == REST_SIGNATURE


def test_rest_vector_through_signed_query() -> None:
    params = [
        ("symbol", "LTCBTC"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", 1),
        ("price", Decimal("0.1")),
        ("recvWindow", 5000),
        ("timestamp", 1499827319559),
    ]
    payload, query = signed_query(params, SECRET)
    assert payload == REST_PAYLOAD
    assert query == f"{REST_PAYLOAD}&signature={REST_SIGNATURE}"


def test_ws_vector_sorts_params_whatever_their_order() -> None:
    params: dict[str, object] = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": WS_API_KEY,
    }
    assert ws_signature_payload(params) == WS_PAYLOAD
    assert sign_ws_params(params, SECRET) == WS_SIGNATURE
    reversed_params = dict(reversed(list(params.items())))
    assert sign_ws_params(reversed_params, SECRET) == WS_SIGNATURE
    # A signature already present (a re-sign) is not part of the payload.
    assert sign_ws_params({**params, "signature": "old"}, SECRET) == WS_SIGNATURE


def test_ws_payload_is_raw_not_percent_encoded() -> None:
    params = {"b": "a b/ü&", "a": True, "c": None}
    assert ws_signature_payload(params) == "a=true&b=a b/ü&"
    # REST encodes the same values; the two must differ (binance-protocol.md 10.9).
    assert encode_params(params) == "b=a%20b%2F%C3%BC%26&a=true"


def test_subscribe_signature_payload_shape() -> None:
    # userDataStream.subscribe.signature signs apiKey and timestamp (binance-protocol.md 6.2).
    params = {"timestamp": 1747385641636, "apiKey": "k"}
    assert ws_signature_payload(params) == "apiKey=k&timestamp=1747385641636"
    assert sign_ws_params(params, SECRET) == hmac_sha256_hex(
        SECRET, "apiKey=k&timestamp=1747385641636"
    )


# ----------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (True, "true"),
        (False, "false"),
        (5000, "5000"),
        (0.1, "0.1"),
        (Decimal("0.00001000"), "0.00001000"),
        (Decimal("1E-8"), "0.00000001"),
        ("BTCUSDT", "BTCUSDT"),
    ],
)
def test_format_value(value: object, wire: str) -> None:
    assert format_value(value) == wire


def test_encode_params_percent_encodes_everything_but_unreserved() -> None:
    assert encode_params({"symbols": '["BTCUSDT","ETHUSDT"]'}) == (
        "symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D"
    )
    assert encode_params([("a", "x y+z=~-_."), ("b", None), ("c", 1)]) == "a=x%20y%2Bz%3D~-_.&c=1"
    assert encode_params({}) == ""


def test_signed_query_decodes_back_to_the_signed_values() -> None:
    payload, query = signed_query({"note": "a b/ü", "timestamp": 1}, SECRET)
    assert hmac_sha256_hex(SECRET, payload) == dict(parse_qsl(query))["signature"]
    assert dict(parse_qsl(query))["note"] == "a b/ü"


def test_signed_query_without_params() -> None:
    payload, query = signed_query({}, SECRET)
    assert payload == ""
    assert query == f"signature={hmac_sha256_hex(SECRET, '')}"


# ---------------------------------------------------------------------- key types


def test_hmac_signer_hides_its_secret() -> None:
    signer = load_signer(SECRET)
    assert signer.key_type == "hmac"
    assert SECRET not in repr(signer)
    assert load_signer(signer) is signer  # a Signer passes through


def test_empty_secret_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        load_signer("")


# RFC 8032 section 7.1, test 1: an independent Ed25519 vector (empty message).
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def _pem(private_key: object) -> str:
    from cryptography.hazmat.primitives import serialization

    return private_key.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_ed25519_matches_rfc8032_and_is_base64() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
    pem = _pem(key)
    signer = load_signer(pem)
    assert signer.key_type == "ed25519"
    assert signer.sign("") == base64.b64encode(RFC8032_SIGNATURE).decode()
    assert "PRIVATE" not in repr(signer)
    # WS API and REST payloads verify with the public key.
    signature = sign_ws_params({"apiKey": "k", "timestamp": 1}, pem)
    key.public_key().verify(base64.b64decode(signature), b"apiKey=k&timestamp=1")
    assert sign_rest_payload(REST_PAYLOAD, pem.encode()) == signer.sign(REST_PAYLOAD)


def test_ed25519_signature_is_percent_encoded_in_the_query() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = _pem(ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))
    # Find a payload whose base64 signature has '+' or '/' (almost every one has '=').
    for timestamp in range(100):
        payload, query = signed_query({"timestamp": timestamp}, pem)
        signature = load_signer(pem).sign(payload)
        if "+" in signature or "/" in signature:
            break
    encoded = query.rpartition("signature=")[2]
    assert "+" not in encoded
    assert "/" not in encoded
    assert "=" not in encoded
    assert dict(parse_qsl(query))["signature"] == signature


def test_rsa_pkcs1v15_sha256() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = load_signer(_pem(key))
    assert signer.key_type == "rsa"
    signature = signer.sign(REST_PAYLOAD)
    key.public_key().verify(
        base64.b64decode(signature), REST_PAYLOAD.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_unsupported_and_broken_pem_keys() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(InvalidInputError, match="HMAC, Ed25519 and RSA"):
        load_signer(_pem(ec.generate_private_key(ec.SECP256R1())))
    broken = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidInputError, match="not a usable private key") as info:
        load_signer(broken)
    assert "bm90IGEga2V5" not in str(info.value)


def test_pem_key_without_cryptography_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes "import cryptography..." raise ImportError.
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
        "-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(ImportError, match="pip install cryptography") as info:
        load_signer(pem)
    assert str(info.value) == CRYPTOGRAPHY_MISSING
    assert "MC4CAQ" not in str(info.value)
    # HMAC secrets need only the standard library.
    assert load_signer(SECRET).sign(REST_PAYLOAD) == REST_SIGNATURE
