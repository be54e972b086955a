"""FakeBinance's REST additions: USD-M endpoints, listen keys, API keys and SIGNED checks.

Most tests drive the pure :class:`RestApp` in memory (headers and bodies exactly as chosen, a
fake clock); a few go over HTTP to check the wiring into FakeBinance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from rxbinance.protocol.signing import encode_params, hmac_sha256_hex
from rxbinance.testing import FakeBinance, Market, RestRequest
from rxbinance.testing._limits import WeightMeter
from rxbinance.testing._rest import (
    ApiKeys,
    ListenKeyRecord,
    ListenKeys,
    RestApp,
    RestFaults,
    RestResponse,
)

KEY = "test-key"
SECRET = "test-secret"
NOW = 1_800_000_000.0  # the app's wall clock in these tests (seconds)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class App:
    """A RestApp on a paused market with one API key and a settable clock."""

    def __init__(self) -> None:
        self.market = Market(symbols=("BTCUSDT", "ETHUSDT"), seed=1)
        self.clock = Clock()
        self.keys = ApiKeys({KEY: SECRET})
        self.listen_keys = ListenKeys(clock=self.clock)
        self.records: list[RestRequest] = []
        self.app = RestApp(
            call_market=lambda fn: fn(self.market),
            weights=WeightMeter(1_000_000),
            faults=RestFaults(),
            record=self.records.append,
            api_keys=self.keys,
            listen_keys=self.listen_keys,
            clock=self.clock,
        )

    def call(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, Any, RestResponse]:
        response = self.app.handle(method, target, headers, body)
        return response.status, json.loads(response.body), response

    def signed(
        self,
        params: dict[str, object] | None = None,
        *,
        timestamp: float | None = None,
        secret: str = SECRET,
        key: str = KEY,
    ) -> tuple[int, Any]:
        stamp = int((self.clock.now if timestamp is None else timestamp) * 1000)
        payload = encode_params({**(params or {}), "timestamp": stamp})
        signature = hmac_sha256_hex(secret, payload)
        target = f"/api/v3/account?{payload}&signature={signature}"
        status, body, _ = self.call("GET", target, {"X-MBX-APIKEY": key})
        return status, body


@pytest.fixture
def app() -> App:
    return App()


def weight_of(response: RestResponse) -> int:
    return int(dict(response.headers)["X-MBX-USED-WEIGHT-1M"])


# ----------------------------------------------------------------------------- USD-M


@pytest.mark.parametrize(
    ("limit", "weight"),
    [(None, 10), (5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)],
)
def test_futures_depth_limits_and_weights(app: App, limit: int | None, weight: int) -> None:
    query = "symbol=BTCUSDT" + ("" if limit is None else f"&limit={limit}")
    status, body, _ = app.call("GET", f"/fapi/v1/depth?{query}")
    assert status == 200
    assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
    assert body["E"] == body["T"] == app.market.time_ms
    book = app.market.rest_depth("BTCUSDT", 500 if limit is None else limit)
    assert (body["lastUpdateId"], body["bids"], body["asks"]) == (
        book["lastUpdateId"],
        book["bids"],
        book["asks"],
    )
    if limit is not None and limit <= 20:
        assert len(body["bids"]) == limit
    assert app.records[-1].weight == weight


@pytest.mark.parametrize("limit", [0, 7, 200, 5000])
def test_futures_depth_rejects_other_limits(app: App, limit: int) -> None:
    status, body, _ = app.call("GET", f"/fapi/v1/depth?symbol=BTCUSDT&limit={limit}")
    assert (status, body["code"]) == (400, -1100)
    assert "5, 10, 20, 50, 100, 500, 1000" in body["msg"]


@pytest.mark.parametrize(
    ("limit", "weight"), [(None, 5), (99, 1), (100, 2), (499, 2), (1000, 5), (1500, 10)]
)
def test_futures_klines_weights(app: App, limit: int | None, weight: int) -> None:
    query = "symbol=BTCUSDT&interval=1m" + ("" if limit is None else f"&limit={limit}")
    status, _, _ = app.call("GET", f"/fapi/v1/klines?{query}")
    assert status == 200
    assert app.records[-1].weight == weight


def test_futures_klines_have_no_1s(app: App) -> None:
    status, body, _ = app.call("GET", "/fapi/v1/klines?symbol=BTCUSDT&interval=1s")
    assert (status, body["code"]) == (400, -1120)
    status, body, _ = app.call("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1s")
    assert status == 200  # spot has it


def test_futures_agg_trades(app: App) -> None:
    for _ in range(200):
        app.market.step({"btcusdt@aggTrade"})
    status, rows, _ = app.call("GET", "/fapi/v1/aggTrades?symbol=BTCUSDT&limit=3")
    assert status == 200
    spot = app.market.rest_agg_trades("BTCUSDT", None, None, None, 3)
    assert rows == [{k: v for k, v in row.items() if k != "M"} for row in spot]
    assert app.records[-1].weight == 20
    status, body, _ = app.call(
        "GET", "/fapi/v1/aggTrades?symbol=BTCUSDT&startTime=0&endTime=3600001"
    )
    assert (status, body["code"]) == (400, -1127)


def test_futures_exchange_info_takes_no_parameters(app: App) -> None:
    status, info, _ = app.call("GET", "/fapi/v1/exchangeInfo")
    assert status == 200
    assert info["futuresType"] == "U_MARGINED"
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    btc = info["symbols"][0]
    assert (btc["contractType"], btc["marginAsset"], btc["pricePrecision"]) == (
        "PERPETUAL",
        "USDT",
        2,
    )
    assert app.records[-1].weight == 1
    status, body, _ = app.call("GET", "/fapi/v1/exchangeInfo?symbol=BTCUSDT")
    assert (status, body["code"]) == (400, -1104)


# ------------------------------------------------------------------------ listen keys


def test_listen_key_needs_an_api_key_header(app: App) -> None:
    status, body, _ = app.call("POST", "/fapi/v1/listenKey")
    assert (status, body["code"], body["msg"]) == (401, -2014, "API-key format invalid.")
    status, body, _ = app.call("POST", "/fapi/v1/listenKey", {"X-MBX-APIKEY": "nobody"})
    assert (status, body["code"]) == (401, -2015)
    # Header names are case-insensitive.
    status, body, _ = app.call("POST", "/fapi/v1/listenKey", {"x-mbx-apikey": KEY})
    assert status == 200
    assert len(body["listenKey"]) == 64
    assert body["listenKey"].isalnum()


def test_listen_key_lifecycle_and_expiry_by_time(app: App) -> None:
    headers = {"X-MBX-APIKEY": KEY}
    _, body, _ = app.call("POST", "/fapi/v1/listenKey", headers)
    key = body["listenKey"]
    assert app.listen_keys.get(key) == ListenKeyRecord(key, KEY, "active", NOW, NOW + 3600)

    app.clock.now += 1800
    assert app.call("PUT", "/fapi/v1/listenKey", headers)[:2] == (200, {})  # no listenKey=
    assert app.listen_keys.get(key).expires_at == NOW + 1800 + 3600  # type: ignore[union-attr]

    app.clock.now += 3600  # validity runs out: noticed at the next look
    status, body, _ = app.call("PUT", f"/fapi/v1/listenKey?listenKey={key}", headers)
    assert (status, body) == (400, {"code": -1125, "msg": "This listenKey does not exist."})
    record = app.listen_keys.get(key)
    assert record is not None
    assert (record.state, record.ended_at) == ("expired", NOW + 1800 + 3600)

    _, body, _ = app.call("POST", "/fapi/v1/listenKey", headers)
    assert body["listenKey"] != key
    assert [r.state for r in app.listen_keys.snapshot()] == ["expired", "active"]


def test_listen_keys_belong_to_their_api_key(app: App) -> None:
    app.keys.add("other", "other-secret")
    _, body, _ = app.call("POST", "/fapi/v1/listenKey", {"X-MBX-APIKEY": KEY})
    key = body["listenKey"]
    for method in ("PUT", "DELETE"):
        status, body, _ = app.call(
            method, f"/fapi/v1/listenKey?listenKey={key}", {"X-MBX-APIKEY": "other"}
        )
        assert (status, body["code"]) == (400, -1125)
        # ... and "other" has no key of its own to default to.
        status, body, _ = app.call(method, "/fapi/v1/listenKey", {"X-MBX-APIKEY": "other"})
        assert (status, body["code"]) == (400, -1125)
    # The form body carries listenKey too (python clients send it there).
    status, body, _ = app.call(
        "DELETE",
        "/fapi/v1/listenKey",
        {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"},
        f"listenKey={key}".encode(),
    )
    assert (status, body) == (200, {})
    assert app.listen_keys.get(key).state == "closed"  # type: ignore[union-attr]


def test_listen_key_listeners(app: App) -> None:
    events: list[tuple[str, str]] = []
    app.listen_keys.add_listener(lambda event, record: events.append((event, record.state)))
    key = app.listen_keys.create(KEY).listen_key
    app.listen_keys.create(KEY)
    app.listen_keys.keepalive(KEY, key)
    app.listen_keys.expire(key)
    with pytest.raises(KeyError):
        app.listen_keys.expire(key)
    with pytest.raises(KeyError):
        app.listen_keys.close(KEY, key)
    assert events == [
        ("created", "active"),
        ("extended", "active"),
        ("extended", "active"),
        ("expired", "expired"),
    ]


# -------------------------------------------------------------------- SIGNED checks


def test_signed_account_accepted(app: App) -> None:
    status, body = app.signed({"omitZeroBalances": "true"})
    assert status == 200
    assert body["balances"] == []
    assert body["accountType"] == "SPOT"
    assert app.records[-1].weight == 20
    status, body = app.signed()
    assert {b["asset"] for b in body["balances"]} == {"BTC", "ETH", "USDT"}


def test_signature_hex_is_case_insensitive(app: App) -> None:
    payload = encode_params({"timestamp": int(NOW * 1000)})
    signature = hmac_sha256_hex(SECRET, payload).upper()
    status, _, _ = app.call(
        "GET", f"/api/v3/account?{payload}&signature={signature}", {"X-MBX-APIKEY": KEY}
    )
    assert status == 200


@pytest.mark.parametrize(
    ("offset_s", "recv_window", "expected"),
    [
        (0, None, 200),
        (-4.9, None, 200),
        (-5.1, None, -1021),  # older than the default recvWindow (5000 ms)
        (0.9, None, 200),
        (1.0, None, -1021),  # 1000 ms ahead of the server
        (-30, 60000, 200),
        (-30, 29999.5, -1021),
    ],
)
def test_timestamp_window(
    app: App, offset_s: float, recv_window: float | None, expected: int
) -> None:
    params: dict[str, object] = {} if recv_window is None else {"recvWindow": recv_window}
    status, body = app.signed(params, timestamp=NOW + offset_s)
    if expected == 200:
        assert status == 200, body
    else:
        assert (status, body["code"]) == (400, expected)
        assert "Timestamp for this request" in body["msg"]


def test_microsecond_timestamps(app: App) -> None:
    payload = encode_params({"timestamp": int(NOW * 1_000_000)})
    signature = hmac_sha256_hex(SECRET, payload)
    status, _, _ = app.call(
        "GET", f"/api/v3/account?{payload}&signature={signature}", {"X-MBX-APIKEY": KEY}
    )
    assert status == 200


def test_recv_window_over_60000(app: App) -> None:
    status, body = app.signed({"recvWindow": 60001})
    assert (status, body["code"]) == (400, -1131)


def test_wrong_secret_unknown_key_missing_parts(app: App) -> None:
    assert app.signed(secret="nope")[1]["code"] == -1022
    assert app.signed(key="nope") == (
        401,
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
    )
    app.keys.remove(KEY)
    assert app.signed()[1]["code"] == -2015
    app.keys.add(KEY, SECRET)
    headers = {"X-MBX-APIKEY": KEY}
    status, body, _ = app.call("GET", "/api/v3/account?signature=abc", headers)
    assert (status, body["code"]) == (400, -1102)
    assert "'timestamp'" in body["msg"]
    status, body, _ = app.call("GET", f"/api/v3/account?timestamp={int(NOW * 1000)}", headers)
    assert (status, body["code"]) == (400, -1102)
    assert "'signature'" in body["msg"]


def test_payload_is_signed_percent_encoded(app: App) -> None:
    # Signing the raw values but sending them encoded: -1022, as on Binance since 2026-01-15.
    stamp = int(NOW * 1000)
    raw = f"omitZeroBalances=true&note=a b&timestamp={stamp}"
    sent = f"omitZeroBalances=true&note={quote('a b', safe='')}&timestamp={stamp}"
    naive = hmac_sha256_hex(SECRET, raw)
    status, body, _ = app.call(
        "GET", f"/api/v3/account?{sent}&signature={naive}", {"X-MBX-APIKEY": KEY}
    )
    assert (status, body["code"]) == (400, -1022)
    good = hmac_sha256_hex(SECRET, sent)
    status, body, _ = app.call(
        "GET", f"/api/v3/account?{sent}&signature={good}", {"X-MBX-APIKEY": KEY}
    )
    assert (status, body["code"]) == (400, -1104)  # the signature passed; "note" is not a parameter


def test_query_then_body_is_the_payload(app: App) -> None:
    stamp = int(NOW * 1000)
    query, form = "omitZeroBalances=true", f"timestamp={stamp}"
    signature = hmac_sha256_hex(SECRET, query + form)  # concatenated, no separator
    status, body, _ = app.call(
        "GET",
        f"/api/v3/account?{query}&signature={signature}",
        {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"},
        form.encode(),
    )
    assert status == 200, body
    assert body["balances"] == []


def test_api_keys_hide_secrets() -> None:
    keys = ApiKeys({"k": "super-secret"})
    assert "super-secret" not in repr(keys)
    assert "super-secret" not in repr(keys.get("k"))
    with pytest.raises(ValueError, match="exactly one"):
        keys.add("x")
    with pytest.raises(ValueError, match="exactly one"):
        keys.add("x", "s", public_key="pem")
    assert keys.verify("k", "payload", hmac_sha256_hex("super-secret", "payload"))
    assert not keys.verify("k", "payload", "00")
    assert not keys.verify("unknown", "payload", hmac_sha256_hex("super-secret", "payload"))


def test_ed25519_public_key_verifies_base64() -> None:
    pytest.importorskip("cryptography")
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = ApiKeys()
    entry = keys.add("ed", public_key=public)
    assert entry.key_type == "ed25519"
    signature = base64.b64encode(private.sign(b"apiKey=ed&timestamp=1")).decode()
    assert keys.verify("ed", "apiKey=ed&timestamp=1", signature)
    assert not keys.verify("ed", "apiKey=ed&timestamp=2", signature)
    assert not keys.verify("ed", "apiKey=ed&timestamp=1", "not base64!")


# --------------------------------------------------------------- wiring into FakeBinance


@pytest.fixture
def keyed_fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, api_keys={KEY: SECRET}) as fake:
        yield fake


def test_fake_wiring(keyed_fake: FakeBinance) -> None:
    fake = keyed_fake
    assert KEY in fake.api_keys
    with requests.Session() as http:
        response = http.post(
            fake.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}, timeout=10
        )
        key = response.json()["listenKey"]
        assert "X-MBX-USED-WEIGHT-1M" in response.headers
        (record,) = fake.listen_keys
        assert (record.listen_key, record.state) == (key, "active")
        assert abs(record.expires_at - time.time() - 3600) < 60

        fake.expire_listen_key(key)
        fake.wait_for(lambda f: f.listen_keys[0].state == "expired", timeout=5)
        with pytest.raises(KeyError):
            fake.expire_listen_key(key)
        response = http.put(
            fake.rest_url + "/fapi/v1/listenKey",
            params={"listenKey": key},
            headers={"X-MBX-APIKEY": KEY},
            timeout=10,
        )
        assert response.json()["code"] == -1125

        # A SIGNED call with the wall clock, through the real HTTP server.
        payload = encode_params({"timestamp": int(time.time() * 1000)})
        signature = hmac_sha256_hex(SECRET, payload)
        response = http.get(
            f"{fake.rest_url}/api/v3/account?{payload}&signature={signature}",
            headers={"X-MBX-APIKEY": KEY},
            timeout=10,
        )
        assert response.status_code == 200
        fake.add_api_key("late", "late-secret")
        assert fake.api_keys.verify("late", "x", hmac_sha256_hex("late-secret", "x"))
