"""FakeBinance's REST server and WebSocket API over real sockets (requests, websocket-client).

Endpoints and their errors, weights per endpoint (depth by limit), the per-minute weight limit
(429), scripted 429/418 faults, retired userDataStream (410), request records, and the WS API
envelope (ping, time, errors, rateLimits, shared weight, adding methods).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import requests
import websocket

from rxbinance.testing import FakeBinance
from rxbinance.testing._limits import WeightMeter

TIMEOUT = 10.0
T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, close_timeout=0.3) as server:
        server.with_market(lambda m: [m.step(()) for _ in range(50)])  # some history
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(fake: FakeBinance, http: requests.Session, path: str, **params: Any) -> requests.Response:
    return http.get(fake.rest_url + path, params=params, timeout=TIMEOUT)


def used(response: requests.Response) -> int:
    return int(response.headers["X-MBX-USED-WEIGHT-1M"])


def in_one_minute(check: Callable[[], T]) -> T:
    """Run ``check`` again if it straddled a wall-clock minute boundary (weights reset there)."""
    for _ in range(3):
        minute = int(time.time() // 60)
        result = check()
        if int(time.time() // 60) == minute:
            return result
    raise AssertionError("crossed a minute boundary three times in a row")


# --------------------------------------------------------------------------- endpoints


def test_ping_and_time(fake: FakeBinance, http: requests.Session) -> None:
    response = get(fake, http, "/api/v3/ping")
    assert (response.status_code, response.json()) == (200, {})
    assert response.headers["Content-Type"].startswith("application/json")
    now = fake.with_market(lambda m: m.time_ms)
    assert get(fake, http, "/api/v3/time").json() == {"serverTime": now}


def test_exchange_info(fake: FakeBinance, http: requests.Session) -> None:
    info = get(fake, http, "/api/v3/exchangeInfo").json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "BNBBTC"]
    weight_limit = [r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert weight_limit[0]["limit"] == 6000
    one = get(fake, http, "/api/v3/exchangeInfo", symbol="ETHUSDT").json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    two = get(fake, http, "/api/v3/exchangeInfo", symbols='["BNBBTC","BTCUSDT"]').json()
    assert [s["symbol"] for s in two["symbols"]] == ["BNBBTC", "BTCUSDT"]
    trading = get(fake, http, "/api/v3/exchangeInfo", symbolStatus="TRADING").json()
    assert len(trading["symbols"]) == 3
    assert get(fake, http, "/api/v3/exchangeInfo", symbolStatus="HALT").json()["symbols"] == []


def test_depth_matches_the_market(fake: FakeBinance, http: requests.Session) -> None:
    body = get(fake, http, "/api/v3/depth", symbol="BTCUSDT", limit=7).json()
    truth = fake.true_book("BTCUSDT")
    assert body["lastUpdateId"] == truth.last_update_id
    assert len(body["bids"]) == len(body["asks"]) == 7
    assert [(float(p), float(q)) for p, q in body["bids"]] == [
        (float(p), float(q)) for p, q in truth.bids[:7]
    ]
    assert len(get(fake, http, "/api/v3/depth", symbol="BTCUSDT").json()["bids"]) == 100


def test_agg_trades_klines_avg_price(fake: FakeBinance, http: requests.Session) -> None:
    history = fake.with_market(lambda m: m.agg_trade_history("ETHUSDT"))
    rows = get(fake, http, "/api/v3/aggTrades", symbol="ETHUSDT", limit=5).json()
    assert [r["a"] for r in rows] == [h["a"] for h in history[-5:]]
    assert set(rows[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    first = history[0]["a"]
    rows = get(fake, http, "/api/v3/aggTrades", symbol="ETHUSDT", fromId=first, limit=3).json()
    assert [r["a"] for r in rows] == [first, first + 1, first + 2]

    klines = get(fake, http, "/api/v3/klines", symbol="ETHUSDT", interval="1s", limit=3).json()
    assert len(klines) == 3
    assert all(len(row) == 12 for row in klines)
    ui = get(fake, http, "/api/v3/uiKlines", symbol="ETHUSDT", interval="1s", limit=3).json()
    assert ui == klines
    assert get(fake, http, "/api/v3/klines", symbol="ETHUSDT", interval="1s", timeZone="0").ok

    avg = get(fake, http, "/api/v3/avgPrice", symbol="ETHUSDT").json()
    assert set(avg) == {"mins", "price", "closeTime"}
    assert avg == fake.with_market(lambda m: m.rest_avg_price("ETHUSDT"))


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/v3/depth", {}, -1102),
        ("/api/v3/depth", {"symbol": ""}, -1102),
        ("/api/v3/depth", {"symbol": "btcusdt"}, -1100),
        ("/api/v3/depth", {"symbol": "NOPEUSDT"}, -1121),
        ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "ten"}, -1100),
        ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 0}, -1100),
        ("/api/v3/depth", {"symbol": "BTCUSDT", "foo": 1}, -1104),
        ("/api/v3/klines", {"symbol": "BTCUSDT"}, -1102),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "2m"}, -1120),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "timeZone": "8"}, -1100),
        ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": 1, "startTime": 1}, -1128),
        ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "startTime": "x"}, -1100),
        ("/api/v3/avgPrice", {}, -1102),
        ("/api/v3/exchangeInfo", {"symbol": "BTCUSDT", "symbols": '["ETHUSDT"]'}, -1128),
        ("/api/v3/exchangeInfo", {"symbols": "BTCUSDT"}, -1100),
        ("/api/v3/exchangeInfo", {"symbols": '["NOPEUSDT"]'}, -1121),
        ("/api/v3/exchangeInfo", {"symbol": "NOPEUSDT"}, -1121),
    ],
)
def test_bad_parameters(
    fake: FakeBinance, http: requests.Session, path: str, params: dict[str, Any], code: int
) -> None:
    response = get(fake, http, path, **params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "msg"}
    assert body["code"] == code
    assert "X-MBX-USED-WEIGHT-1M" in response.headers


def test_unknown_path_and_method(fake: FakeBinance, http: requests.Session) -> None:
    response = get(fake, http, "/api/v3/ticker/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == -1000
    response = http.post(fake.rest_url + "/api/v3/depth", timeout=TIMEOUT)
    assert response.status_code == 405


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/api/v3/userDataStream", "/api/v1/userDataStream"])
def test_user_data_stream_is_gone(
    fake: FakeBinance, http: requests.Session, method: str, path: str
) -> None:
    response = http.request(
        method, fake.rest_url + path, data={"listenKey": "abc"}, timeout=TIMEOUT
    )
    assert response.status_code == 410
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<center><h1>410 Gone</h1></center>" in response.text
    assert "nginx" in response.text


# ----------------------------------------------------------------------------- weights


@pytest.mark.parametrize(
    ("limit", "weight"),
    [
        (None, 5),
        (1, 5),
        (100, 5),
        (101, 25),
        (500, 25),
        (501, 50),
        (1000, 50),
        (1001, 250),
        (9999, 250),
    ],
)
def test_depth_weight_depends_on_limit(
    fake: FakeBinance, http: requests.Session, limit: int | None, weight: int
) -> None:
    params = {"symbol": "BNBBTC"} if limit is None else {"symbol": "BNBBTC", "limit": limit}

    def check() -> None:
        before = used(get(fake, http, "/api/v3/ping"))
        after = used(get(fake, http, "/api/v3/depth", **params))
        assert after - before == weight

    in_one_minute(check)
    assert fake.rest_requests[-1].weight == weight


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    [
        ("/api/v3/ping", {}, 1),
        ("/api/v3/time", {}, 1),
        ("/api/v3/exchangeInfo", {}, 20),
        ("/api/v3/aggTrades", {"symbol": "BTCUSDT"}, 4),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
        ("/api/v3/avgPrice", {"symbol": "BTCUSDT"}, 2),
    ],
)
def test_endpoint_weights(
    fake: FakeBinance, http: requests.Session, path: str, params: dict[str, Any], weight: int
) -> None:
    def check() -> None:
        before = used(get(fake, http, "/api/v3/ping"))
        assert used(get(fake, http, path, **params)) - before == weight

    in_one_minute(check)


def test_weight_limit_answers_429() -> None:
    def check() -> None:
        with (
            FakeBinance(tick_interval=None, rest_weight_limit=12) as fake,
            requests.Session() as http,
        ):
            statuses = []
            for _ in range(3):
                response = get(fake, http, "/api/v3/depth", symbol="BTCUSDT")  # weight 5
                statuses.append(response.status_code)
            assert statuses == [200, 200, 429]
            assert used(response) == 10  # the refused request is not charged
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            assert response.json() == {
                "code": -1003,
                "msg": "Too much request weight used; current limit is 12 request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            }
            assert get(fake, http, "/api/v3/ping").status_code == 200  # 11: still fits
            assert fake.rest_weight_used() == 11

    in_one_minute(check)


def test_weight_meter_resets_on_the_minute() -> None:
    now = [120.5]
    meter = WeightMeter(10, clock=lambda: now[0])
    assert meter.charge(6).allowed
    denied = meter.charge(6)
    assert (denied.allowed, denied.used, denied.retry_after) == (False, 6, 60)
    now[0] = 179.9
    assert meter.charge(4).used == 10
    now[0] = 180.0  # new wall-clock minute
    assert meter.used() == 0
    assert meter.charge(10).allowed


# ------------------------------------------------------------------------------ faults


def test_rest_fault_429_then_recovers(fake: FakeBinance, http: requests.Session) -> None:
    fake.rest_fault(status=429, retry_after=7, times=2)
    for _ in range(2):
        response = get(fake, http, "/api/v3/depth", symbol="BTCUSDT")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["code"] == -1003
        assert response.json()["msg"].startswith("Too much request weight used;")
    assert get(fake, http, "/api/v3/depth", symbol="BTCUSDT").status_code == 200
    assert [r.status for r in fake.rest_requests] == [429, 429, 200]
    assert [r.weight for r in fake.rest_requests] == [0, 0, 5]


def test_rest_fault_418_ban_until_cleared(fake: FakeBinance, http: requests.Session) -> None:
    fake.rest_fault(status=418, retry_after=120, times=None)
    for _ in range(3):
        response = get(fake, http, "/api/v3/time")
        assert response.status_code == 418
        assert response.headers["Retry-After"] == "120"
        body = response.json()
        assert body["code"] == -1003
        banned_until = int(body["msg"].split("IP banned until ")[1].split(".")[0])
        assert banned_until > time.time() * 1000 + 100_000
        assert body["msg"].endswith("Please use WebSocket Streams for live updates to avoid bans.")
    fake.clear_rest_fault()
    assert get(fake, http, "/api/v3/time").status_code == 200
    with pytest.raises(ValueError, match="429 or 418"):
        fake.rest_fault(status=500)


def test_rest_requests_are_recorded(fake: FakeBinance, http: requests.Session) -> None:
    get(fake, http, "/api/v3/depth", symbol="BTCUSDT", limit=5)
    http.delete(fake.rest_url + "/api/v3/userDataStream?listenKey=x", timeout=TIMEOUT)
    first, second = fake.rest_requests
    assert (first.method, first.path, first.status, first.weight) == (
        "GET",
        "/api/v3/depth",
        200,
        5,
    )
    assert first.params == {"symbol": "BTCUSDT", "limit": "5"}
    assert (second.method, second.path, second.query, second.status) == (
        "DELETE",
        "/api/v3/userDataStream",
        "listenKey=x",
        410,
    )
    fake.wait_for(lambda f: len(f.rest_requests) == 2)


# ------------------------------------------------------------------------------ WS API


@pytest.fixture
def api_connect(fake: FakeBinance) -> Iterator[Callable[[str], websocket.WebSocket]]:
    opened: list[websocket.WebSocket] = []

    def connect(query: str = "") -> websocket.WebSocket:
        ws = websocket.create_connection(fake.ws_api_url + query, timeout=TIMEOUT)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        ws.close(timeout=0.1)
        ws.shutdown()


def call(ws: websocket.WebSocket, message: Any) -> Any:
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.recv())


def test_ws_api_ping_and_time(fake: FakeBinance, api_connect: Any) -> None:
    ws = api_connect()
    (record,) = fake.wait_for_connections(1, kind="ws-api")
    assert record.kind == "ws-api"

    def check() -> None:
        reply = call(
            ws, {"id": "e2a85d9f-07a5-4f94-8d5f-789dc3deb097", "method": "ping", "params": {}}
        )
        assert reply["id"] == "e2a85d9f-07a5-4f94-8d5f-789dc3deb097"
        assert (reply["status"], reply["result"]) == (200, {})
        (limits,) = reply["rateLimits"]
        assert limits == {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
            "count": limits["count"],
        }
        reply2 = call(ws, {"id": 2, "method": "time"})
        assert reply2["result"] == {"serverTime": fake.with_market(lambda m: m.time_ms)}
        assert reply2["rateLimits"][0]["count"] == limits["count"] + 1

    in_one_minute(check)
    assert fake.connection(record.id).control_messages[1] == {"id": 2, "method": "time"}


def test_ws_api_connecting_costs_two_and_shares_rest_weight(
    fake: FakeBinance, http: requests.Session, api_connect: Any
) -> None:
    def check() -> None:
        before = used(get(fake, http, "/api/v3/ping"))
        ws = api_connect()
        count = call(ws, {"id": 1, "method": "ping"})["rateLimits"][0]["count"]
        assert count == before + 2 + 1
        assert used(get(fake, http, "/api/v3/ping")) == count + 1

    in_one_minute(check)


def test_ws_api_options(fake: FakeBinance, api_connect: Any) -> None:
    quiet = api_connect("?returnRateLimits=false&timeUnit=MICROSECOND")
    reply = call(quiet, {"id": None, "method": "time"})
    assert reply == {
        "id": None,
        "status": 200,
        "result": {"serverTime": fake.with_market(lambda m: m.time_ms) * 1000},
    }
    loud = api_connect()
    assert "rateLimits" not in call(
        loud, {"id": 1, "method": "ping", "params": {"returnRateLimits": False}}
    )


@pytest.mark.parametrize(
    ("message", "code", "reply_id"),
    [
        ("{nope", -1135, None),
        ("[1]", -1135, None),
        ({"id": 5, "params": {}}, -1102, 5),
        ({"id": 6, "method": "ping", "params": [1]}, -1135, 6),
        ({"id": [1], "method": "ping"}, -1100, None),
        ({"id": 7, "method": "order.place", "params": {}}, -1000, 7),
    ],
)
def test_ws_api_errors(api_connect: Any, message: Any, code: int, reply_id: Any) -> None:
    ws = api_connect()
    reply = call(ws, message)
    assert reply["id"] == reply_id
    assert reply["status"] == 400
    assert reply["error"]["code"] == code
    assert isinstance(reply["error"]["msg"], str)
    assert call(ws, {"id": "ok", "method": "ping"})["status"] == 200  # still usable


def test_ws_api_weight_limit() -> None:
    def check() -> None:
        with FakeBinance(tick_interval=None, rest_weight_limit=4, close_timeout=0.3) as fake:
            ws = websocket.create_connection(fake.ws_api_url, timeout=TIMEOUT)  # weight 2
            try:
                assert call(ws, {"id": 1, "method": "ping"})["status"] == 200
                assert call(ws, {"id": 2, "method": "ping"})["status"] == 200
                reply = call(ws, {"id": 3, "method": "ping"})
                assert reply["status"] == 429
                assert reply["error"]["code"] == -1003
                data = reply["error"]["data"]
                assert data["retryAfter"] > data["serverTime"]
            finally:
                ws.close()

    in_one_minute(check)


def test_ws_api_methods_can_be_added(fake: FakeBinance, api_connect: Any) -> None:
    from rxbinance.testing._wsapi import WsApiError, WsApiSession

    def echo(session: WsApiSession, params: dict[str, Any]) -> Any:
        if "fail" in params:
            raise WsApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        session.send({"event": {"e": "pushed", "to": session.connection_id}})
        return {"echo": params}

    fake.wsapi.add_method("test.echo", echo, weight=3)
    assert "test.echo" in fake.wsapi.methods
    ws = api_connect()
    (record,) = fake.wait_for_connections(1, kind="ws-api")
    ws.send(json.dumps({"id": 1, "method": "test.echo", "params": {"a": 1}}))
    assert json.loads(ws.recv()) == {"event": {"e": "pushed", "to": record.id}}
    assert json.loads(ws.recv())["result"] == {"echo": {"a": 1}}
    reply = call(ws, {"id": 2, "method": "test.echo", "params": {"fail": True}})
    assert (reply["status"], reply["error"]["code"]) == (401, -2015)
