"""FakeBinance's user data side and USD-M routes, spoken to with a bare websocket-client.

The WS API's userDataStream methods (signature checks, subscription ids, the event envelope,
eventStreamTerminated, revoked keys) and the stream port's /public, /market and /private routes
(a stream on the wrong route connects and delivers nothing; listenKeyExpired with a string E).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from rxbinance.protocol.signing import load_signer, sign_ws_params
from rxbinance.testing import FakeBinance

TIMEOUT = 5.0
KEY, SECRET = "test-key", "test-secret"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, api_keys={KEY: SECRET}) as server:
        yield server


@pytest.fixture
def api(fake: FakeBinance) -> Iterator[websocket.WebSocket]:
    ws = websocket.create_connection(fake.ws_api_url, timeout=TIMEOUT)
    yield ws
    ws.close()


def signed(api_key: str = KEY, secret: Any = SECRET, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": api_key, "timestamp": int(time.time() * 1000), **extra}
    params["signature"] = sign_ws_params(params, secret)
    return params


def call(ws: websocket.WebSocket, method: str, params: dict[str, Any] | None = None) -> Any:
    request: dict[str, Any] = {"id": method.replace(".", "-"), "method": method}
    if params is not None:
        request["params"] = params
    ws.send(json.dumps(request))
    reply = json.loads(ws.recv())
    assert reply["id"] == request["id"]
    return reply


def subscribe(ws: websocket.WebSocket, **kwargs: Any) -> Any:
    return call(ws, "userDataStream.subscribe.signature", signed(**kwargs))


def error_of(reply: dict[str, Any]) -> tuple[int, int, str]:
    return reply["status"], reply["error"]["code"], reply["error"]["msg"]


# ----------------------------------------------------------------------------- WS API


def test_subscribe_then_events_arrive_wrapped_with_the_subscription_id(
    fake: FakeBinance, api: websocket.WebSocket
) -> None:
    reply = subscribe(api)
    assert (reply["status"], reply["result"]) == (200, {"subscriptionId": 0})
    assert call(api, "session.subscriptions")["result"] == [{"subscriptionId": 0}]
    assert [c.kind for c in fake.wait_for_user_streams(1, KEY)] == ["ws-api"]

    event = {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100.00000000"}
    assert fake.publish_user_event(KEY, event) == 1
    assert json.loads(api.recv()) == {"subscriptionId": 0, "event": event}
    assert fake.publish_user_event("someone-else", event) == 0


def test_one_subscription_per_account_per_connection(api: websocket.WebSocket) -> None:
    subscribe(api)
    assert error_of(subscribe(api)) == (
        400,
        -2035,
        "User Data Stream subscription already active.",
    )


def test_unsubscribe_replies_then_terminates_the_stream(
    fake: FakeBinance, api: websocket.WebSocket
) -> None:
    subscribe(api)
    reply = call(api, "userDataStream.unsubscribe", {"subscriptionId": 0})
    assert (reply["status"], reply["result"]) == (200, {})
    terminated = json.loads(api.recv())
    assert terminated["subscriptionId"] == 0
    assert terminated["event"]["e"] == "eventStreamTerminated"
    assert call(api, "session.subscriptions")["result"] == []
    assert fake.publish_user_event(KEY, {"e": "balanceUpdate", "E": 1}) == 0
    assert error_of(call(api, "userDataStream.unsubscribe", {"subscriptionId": 0}))[1] == -2036
    # A new subscription gets the next id.
    assert subscribe(api)["result"] == {"subscriptionId": 1}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            signed(api_key="unknown"),
            (401, -2015, "Invalid API-key, IP, or permissions for action."),
        ),
        (signed(secret="wrong"), (400, -1022, "Signature for this request is not valid.")),
        (
            {"apiKey": KEY, "timestamp": 1},
            (
                400,
                -1102,
                "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
            ),
        ),
        (
            {"apiKey": KEY, "timestamp": int(time.time() * 1000) - 60_000, "signature": "x"},
            (400, -1022, "Signature for this request is not valid."),
        ),
    ],
)
def test_refusals(
    api: websocket.WebSocket, params: dict[str, Any], expected: tuple[int, int, str]
) -> None:
    assert error_of(call(api, "userDataStream.subscribe.signature", params)) == expected


def test_old_or_future_timestamps_are_refused_with_1021(
    fake: FakeBinance, api: websocket.WebSocket
) -> None:
    stale = signed()
    stale["timestamp"] -= 10_000
    stale["signature"] = sign_ws_params(stale, SECRET)
    assert error_of(call(api, "userDataStream.subscribe.signature", stale)) == (
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )
    # recvWindow is part of the signed params and widens the window.
    ok = signed(recvWindow=20_000)
    ok["timestamp"] -= 10_000
    ok["signature"] = sign_ws_params(ok, SECRET)
    assert call(api, "userDataStream.subscribe.signature", ok)["status"] == 200

    fake.user_data.clock_skew = -5.0  # the server's clock 5 s behind the client's
    other = websocket.create_connection(fake.ws_api_url, timeout=TIMEOUT)
    try:
        assert error_of(subscribe(other))[:2] == (400, -1021)
        assert "ahead of the server's time" in error_of(subscribe(other))[2]
    finally:
        other.close()


def test_ed25519_keys_are_checked(fake: FakeBinance, api: websocket.WebSocket) -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.add_api_key("ed-key", public_key=public)
    wrong = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert error_of(subscribe(api, api_key="ed-key", secret=load_signer(wrong)))[1] == -1022
    assert subscribe(api, api_key="ed-key", secret=load_signer(pem))["status"] == 200


def test_a_revoked_key_ends_its_subscriptions_with_an_unsolicited_401(
    fake: FakeBinance, api: websocket.WebSocket
) -> None:
    subscribe(api)
    assert fake.revoke_api_key(KEY) == 1
    assert json.loads(api.recv()) == {
        "id": None,
        "status": 401,
        "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
    }
    assert fake.user_streams() == ()
    assert error_of(subscribe(api))[:2] == (401, -2015)


# ------------------------------------------------------------------------ USD-M routes


def recv_json(ws: websocket.WebSocket) -> Any:
    return json.loads(ws.recv())


def test_each_route_serves_only_its_streams(fake: FakeBinance) -> None:
    public = websocket.create_connection(
        fake.ws_url + "/public/ws/btcusdt@bookTicker/btcusdt@markPrice", timeout=TIMEOUT
    )
    market = websocket.create_connection(
        fake.ws_url + "/market/ws/btcusdt@bookTicker/btcusdt@markPrice", timeout=TIMEOUT
    )
    try:
        fake.wait_for_connections(2, stream="btcusdt@markPrice")
        book = {"e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}
        mark = {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "1"}
        assert fake.publish("btcusdt@bookTicker", book) == 1  # /public only
        assert fake.publish("btcusdt@markPrice", mark) == 1  # /market only
        assert recv_json(public) == book
        assert recv_json(market) == mark  # the bookTicker never came to /market
        paths = sorted(c.path for c in fake.open_connections)
        assert paths[0].startswith("/market/ws/")
        assert paths[1].startswith("/public/ws/")
    finally:
        public.close()
        market.close()


def test_routed_combined_streams_and_subscribe(fake: FakeBinance) -> None:
    ws = websocket.create_connection(
        fake.ws_url + "/market/stream?streams=btcusdt@forceOrder", timeout=TIMEOUT
    )
    try:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@500ms"], "id": 1}))
        assert recv_json(ws) == {"result": None, "id": 1}  # accepted, yet /public data
        fake.wait_for_connections(1, stream="btcusdt@depth@500ms")
        assert fake.publish("btcusdt@depth@500ms", {"e": "depthUpdate"}) == 0
        order = {"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT"}}
        assert fake.publish("btcusdt@forceOrder", order) == 1
        assert recv_json(ws) == {"stream": "btcusdt@forceOrder", "data": order}
    finally:
        ws.close()


@pytest.mark.parametrize(
    "path",
    [
        "/public/ws/btcusdt@trade",  # not a USD-M stream
        "/market/ws/btcusdt@kline_1s",  # no 1s klines on USD-M
        "/market/ws/BTCUSDT@aggTrade",
    ],
)
def test_routes_use_the_usdm_grammar(fake: FakeBinance, path: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(fake.ws_url + path, timeout=TIMEOUT)
    assert info.value.status_code == 400


def create_listen_key(fake: FakeBinance, api_key: str = KEY) -> str:
    response = requests.post(
        fake.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}, timeout=TIMEOUT
    )
    response.raise_for_status()
    key: str = response.json()["listenKey"]
    return key


def test_private_route_delivers_user_events_of_its_listen_key(fake: FakeBinance) -> None:
    listen_key = create_listen_key(fake)
    ws = websocket.create_connection(
        f"{fake.ws_url}/private/ws?listenKey={listen_key}&events=ORDER_TRADE_UPDATE",
        timeout=TIMEOUT,
    )
    try:
        fake.wait_for_user_streams(1, KEY)
        order = {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {"s": "BTCUSDT"}}
        assert fake.publish_user_event(KEY, {"e": "ACCOUNT_UPDATE", "E": 1}) == 0  # filtered
        assert fake.publish_user_event("other", order) == 0
        assert fake.publish_user_event(KEY, order) == 1
        assert recv_json(ws) == order

        fake.expire_listen_key(listen_key)
        expired = recv_json(ws)
        assert expired["e"] == "listenKeyExpired"
        assert expired["listenKey"] == listen_key
        assert isinstance(expired["E"], str)
        assert expired["E"].isdigit()
        assert fake.publish_user_event(KEY, order) == 0  # a dead key delivers nothing
    finally:
        ws.close()


def test_private_stream_mode_wraps_in_the_listen_key(fake: FakeBinance) -> None:
    listen_key = create_listen_key(fake)
    ws = websocket.create_connection(
        f"{fake.ws_url}/private/stream?listenKey={listen_key}", timeout=TIMEOUT
    )
    try:
        fake.wait_for_user_streams(1, KEY)
        event = {"e": "ACCOUNT_UPDATE", "E": 1}
        assert fake.publish_user_event(KEY, event) == 1
        assert recv_json(ws) == {"stream": listen_key, "data": event}
    finally:
        ws.close()


@pytest.mark.parametrize("listen_key", ["", "nope"])
def test_private_route_refuses_unknown_listen_keys(fake: FakeBinance, listen_key: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(
            f"{fake.ws_url}/private/ws?listenKey={listen_key}", timeout=TIMEOUT
        )
    assert info.value.status_code == 400
    assert json.loads(fake.attempts[-1].body) == {
        "code": -1125,
        "msg": "This listenKey does not exist.",
    }
