"""rxbinance.rest.Client over real HTTP: against FakeBinance, and against tiny scripted servers
for what FakeBinance cannot do (never answer, odd bodies, 418 without Retry-After)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from rxbinance.errors import (
    BinanceAPIError,
    InvalidInputError,
    ProtocolError,
    RateLimitError,
    RequestError,
    RequestTimeout,
    RxBinanceError,
)
from rxbinance.protocol.endpoints import MARKETS
from rxbinance.rest import Client
from rxbinance.testing import FakeBinance

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.fixture
def keyed(fake: FakeBinance) -> FakeBinance:
    fake.add_api_key(API_KEY, SECRET)
    return fake


@pytest.fixture
def client(keyed: FakeBinance) -> Iterator[Client]:
    with Client(API_KEY, SECRET, base_url=keyed.rest_url) as c:
        yield c


@pytest.fixture
def futures(keyed: FakeBinance) -> Iterator[Client]:
    with Client(API_KEY, SECRET, base_url=keyed.rest_url, market="usdm") as c:
        yield c


def requests_to(fake: FakeBinance, path: str) -> list[Any]:
    return [r for r in fake.rest_requests if r.path == path]


def in_one_minute(check: Callable[[], None]) -> None:
    """Run ``check`` until one run starts and ends in the same wall-clock minute (request
    weight resets on the minute, which would break a difference of two readings)."""
    for _ in range(3):
        minute = int(time.time() // 60)
        check()
        if int(time.time() // 60) == minute:
            return
    raise AssertionError("three minute boundaries in a row")


# ----------------------------------------------------------------------- market data


def test_ping_time_and_used_weight(fake: FakeBinance, client: Client) -> None:
    assert client.used_weight is None  # nothing sent yet
    assert client.ping() is None
    assert isinstance(client.used_weight, int)
    # Paused market: the server's clock is the market's, exactly.
    assert client.server_time() == fake.with_market(lambda m: m.time_ms)
    assert [r.path for r in fake.rest_requests] == ["/api/v3/ping", "/api/v3/time"]

    def check() -> None:
        client.ping()
        before = client.used_weight
        client.depth("BTCUSDT", limit=500)  # weight 25
        assert before is not None
        assert client.used_weight == before + 25
        assert client.used_weight == fake.rest_weight_used()

    in_one_minute(check)


def test_depth_is_the_market_snapshot_and_symbols_go_uppercase(
    fake: FakeBinance, client: Client
) -> None:
    fake.step(5)
    book = client.depth("btcusdt", limit=7)
    assert book == fake.with_market(lambda m: m.rest_depth("BTCUSDT", 7))
    assert len(book["bids"]) == 7
    (request,) = requests_to(fake, "/api/v3/depth")
    assert request.params == {"symbol": "BTCUSDT", "limit": "7"}
    assert request.weight == 5


def test_agg_trades_and_klines_pass_their_parameters(fake: FakeBinance, client: Client) -> None:
    fake.step(300)
    trades = client.agg_trades("ETHUSDT", limit=5)
    assert trades == fake.with_market(lambda m: m.rest_agg_trades("ETHUSDT", None, None, None, 5))
    assert len(trades) == 5
    first = trades[0]["a"]
    assert client.agg_trades("ETHUSDT", from_id=first, limit=2) == trades[:2]
    start, end = trades[1]["T"], trades[3]["T"]
    by_time = client.agg_trades("ETHUSDT", start_time=start, end_time=end)
    assert [t["a"] for t in by_time] == [
        t["a"]
        for t in fake.with_market(lambda m: m.rest_agg_trades("ETHUSDT", None, start, end, 500))
    ]
    assert requests_to(fake, "/api/v3/aggTrades")[2].params == {
        "symbol": "ETHUSDT",
        "startTime": str(start),
        "endTime": str(end),
    }

    rows = client.klines("ETHUSDT", "1s", limit=3)
    assert rows == fake.with_market(lambda m: m.rest_klines("ETHUSDT", "1s", None, None, 3))
    assert len(rows) == 3
    assert all(len(row) == 12 for row in rows)
    later = client.klines("ETHUSDT", "1s", start_time=rows[1][0], end_time=rows[2][0])
    assert [r[0] for r in later] == [rows[1][0], rows[2][0]]
    assert requests_to(fake, "/api/v3/klines")[1].params == {
        "symbol": "ETHUSDT",
        "interval": "1s",
        "startTime": str(rows[1][0]),
        "endTime": str(rows[2][0]),
    }


def test_historical_trades_and_trades(fake: FakeBinance, client: Client) -> None:
    fake.step(300)
    history = fake.trades("ETHUSDT")
    recent = client.trades("ethusdt", limit=5)
    assert recent == fake.with_market(lambda m: m.rest_trades("ETHUSDT", 5))
    assert [t["id"] for t in recent] == [t["t"] for t in history[-5:]]
    start = history[20]["t"]
    rows = client.historical_trades("ETHUSDT", from_id=start, limit=3)
    assert [t["id"] for t in rows] == [start, start + 1, start + 2]  # from_id inclusive
    assert rows[0]["price"] == history[20]["p"]
    assert rows[0]["isBestMatch"] is True
    assert client.historical_trades("ETHUSDT") == client.trades("ETHUSDT")  # the most recent 500
    assert requests_to(fake, "/api/v3/historicalTrades")[0].params == {
        "symbol": "ETHUSDT",
        "fromId": str(start),
        "limit": "3",
    }
    assert requests_to(fake, "/api/v3/trades")[0].params == {"symbol": "ETHUSDT", "limit": "5"}
    assert {r.weight for r in fake.rest_requests} == {25}


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_paging_by_id_shows_what_binance_no_longer_has(keyed: FakeBinance, market: str) -> None:
    keyed.step(300)
    aggs = keyed.with_market(lambda m: m.agg_trade_history("BTCUSDT"))
    cut = aggs[200]
    keyed.with_market(lambda m: m.forget_history("BTCUSDT", before_agg_id=cut["a"]))
    with Client(API_KEY, base_url=keyed.rest_url, market=market) as c:
        # Asked from an id REST no longer has, Binance answers from its oldest: the first id
        # returned above the one asked is how a repair learns of the hole.
        page = c.agg_trades("BTCUSDT", from_id=aggs[10]["a"], limit=2)
        assert [r["a"] for r in page] == [cut["a"], cut["a"] + 1]
        trades = c.historical_trades("BTCUSDT", from_id=aggs[10]["f"], limit=2)
        assert [r["id"] for r in trades] == [cut["f"], cut["f"] + 1]
        # Retained ids come back as asked.
        later = c.agg_trades("BTCUSDT", from_id=aggs[250]["a"], limit=1)
        assert later[0]["a"] == aggs[250]["a"]


def test_exchange_info_all_one_or_several(fake: FakeBinance, client: Client) -> None:
    assert {s["symbol"] for s in client.exchange_info()["symbols"]} == {
        "BTCUSDT",
        "ETHUSDT",
        "BNBBTC",
    }
    assert [s["symbol"] for s in client.exchange_info("bnbbtc")["symbols"]] == ["BNBBTC"]
    several = client.exchange_info(symbols=["ETHUSDT", "BTCUSDT"])
    assert {s["symbol"] for s in several["symbols"]} == {"ETHUSDT", "BTCUSDT"}
    queries = [r.query for r in requests_to(fake, "/api/v3/exchangeInfo")]
    assert queries == ["", "symbol=BNBBTC", "symbols=%5B%22ETHUSDT%22%2C%22BTCUSDT%22%5D"]
    with pytest.raises(InvalidInputError, match="not both"):
        client.exchange_info("BTCUSDT", ["ETHUSDT"])
    with pytest.raises(InvalidInputError, match="'BTCUSDT'"):
        client.exchange_info(symbols="BTCUSDT")
    assert len(fake.rest_requests) == 3


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.depth("BTC USDT"), "'BTC USDT'"),
        (lambda c: c.depth(""), "''"),
        (lambda c: c.depth(123), "123"),
        (lambda c: c.depth("BTCUSDT", limit=0), "0"),
        (lambda c: c.depth("BTCUSDT", limit=5001), "5001"),
        (lambda c: c.depth("BTCUSDT", limit=True), "True"),
        (lambda c: c.depth("BTCUSDT", limit="5"), "'5'"),
        (lambda c: c.klines("BTCUSDT", "2m"), "'2m'"),
        (lambda c: c.klines("BTCUSDT", "1M", limit=1001), "1001"),
        (lambda c: c.klines("BTC/USDT", "1m"), "'BTC/USDT'"),
        (lambda c: c.klines("BTCUSDT", "1m", start_time=-1), "-1"),
        (lambda c: c.klines("BTCUSDT", "1m", start_time=5, end_time=4), "after end_time"),
        (lambda c: c.agg_trades("BTCUSDT", from_id=-3), "-3"),
        (lambda c: c.agg_trades("BTCUSDT", limit=1001), "1001"),
        (lambda c: c.agg_trades("BTCUSDT", start_time=1.5), "1.5"),
        (lambda c: c.agg_trades("BTCUSDT", from_id=5, start_time=1), "not both"),
        (lambda c: c.agg_trades("BTCUSDT", from_id=5, end_time=1), "not both"),
        (lambda c: c.historical_trades("BTC USDT"), "'BTC USDT'"),
        (lambda c: c.historical_trades("BTCUSDT", from_id=-1), "-1"),
        (lambda c: c.historical_trades("BTCUSDT", from_id=True), "True"),
        (lambda c: c.historical_trades("BTCUSDT", from_id="7"), "'7'"),
        (lambda c: c.historical_trades("BTCUSDT", limit=0), "0"),
        (lambda c: c.historical_trades("BTCUSDT", limit=1001), "1001"),
        (lambda c: c.trades(""), "''"),
        (lambda c: c.trades("BTCUSDT", limit=1001), "1001"),
        (lambda c: c.trades("BTCUSDT", limit=2.0), "2.0"),
        (lambda c: c.exchange_info("BTC-USDT"), "'BTC-USDT'"),
    ],
)
def test_invalid_arguments_raise_before_any_request(
    fake: FakeBinance, client: Client, call: Callable[[Client], Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("/", ".")) as info:
        call(client)
    assert isinstance(info.value, InvalidInputError)
    assert fake.rest_requests == ()


def test_client_arguments_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="'coinm'"):
        Client(market="coinm")
    with pytest.raises(InvalidInputError, match="timeout"):
        Client(timeout=0)
    with pytest.raises(InvalidInputError, match="recv_window"):
        Client(recv_window=60001)
    with pytest.raises(InvalidInputError, match="api_key"):
        Client(api_key="")


@pytest.mark.parametrize("market", list(MARKETS))
def test_market_picks_base_url_and_prefix(market: str) -> None:
    with Client(market=market) as c:
        assert c.base_url == MARKETS[market].rest_url
        assert c.market == market
    with Client(market=market, base_url="http://127.0.0.1:1/") as c:
        assert c.base_url == "http://127.0.0.1:1"


# ---------------------------------------------------------------------------- USD-M


def test_usdm_market_data_uses_fapi(fake: FakeBinance, futures: Client) -> None:
    fake.step(300)
    futures.ping()
    assert futures.server_time() == fake.with_market(lambda m: m.time_ms)
    book = futures.depth("BTCUSDT", limit=5)
    assert set(book) == {"lastUpdateId", "E", "T", "bids", "asks"}
    assert len(book["asks"]) == 5
    trades = futures.agg_trades("BTCUSDT", limit=3)
    assert len(trades) == 3
    assert all("M" not in t for t in trades)  # USD-M rows have no M
    rows = futures.klines("BTCUSDT", "1m", limit=2)
    assert rows == fake.with_market(lambda m: m.rest_klines("BTCUSDT", "1m", None, None, 2))
    info = futures.exchange_info(symbols=["ETHUSDT", "BTCUSDT"])
    assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT", "BTCUSDT"]
    assert info["symbols"][0]["contractType"] == "PERPETUAL"
    assert {r.path for r in fake.rest_requests} == {
        "/fapi/v1/ping",
        "/fapi/v1/time",
        "/fapi/v1/depth",
        "/fapi/v1/aggTrades",
        "/fapi/v1/klines",
        "/fapi/v1/exchangeInfo",
    }
    # USD-M exchangeInfo takes no parameters: the client filters.
    assert requests_to(fake, "/fapi/v1/exchangeInfo")[0].query == ""
    assert requests_to(fake, "/fapi/v1/depth")[0].weight == 2


def test_usdm_validation(fake: FakeBinance, futures: Client) -> None:
    with pytest.raises(InvalidInputError, match="7 on usdm"):
        futures.depth("BTCUSDT", limit=7)
    with pytest.raises(InvalidInputError, match="'1s' on usdm"):
        futures.klines("BTCUSDT", "1s")
    with pytest.raises(InvalidInputError, match="1501"):
        futures.klines("BTCUSDT", "1m", limit=1501)
    assert fake.rest_requests == ()
    futures.klines("BTCUSDT", "1m", limit=1500)  # USD-M allows up to 1500
    with pytest.raises(InvalidInputError, match="'XRPUSDT'"):
        futures.exchange_info(symbols=["BTCUSDT", "XRPUSDT"])


def test_usdm_trades_and_historical_trades(fake: FakeBinance, futures: Client) -> None:
    fake.step(300)
    history = fake.trades("BTCUSDT")
    recent = futures.trades("BTCUSDT", limit=4)
    assert [t["id"] for t in recent] == [t["t"] for t in history[-4:]]
    assert all("isBestMatch" not in t for t in recent)  # USD-M items have none
    start = history[3]["t"]
    rows = futures.historical_trades("BTCUSDT", from_id=start, limit=500)  # USD-M's maximum
    assert [t["id"] for t in rows] == [t["t"] for t in history[3:503]]
    assert [(r.path, r.weight) for r in fake.rest_requests] == [
        ("/fapi/v1/trades", 5),
        ("/fapi/v1/historicalTrades", 20),
    ]
    with pytest.raises(InvalidInputError, match="501"):
        futures.historical_trades("BTCUSDT", limit=501)
    futures.trades("BTCUSDT", limit=1000)  # recent trades allow 1000 on USD-M too
    assert len(fake.rest_requests) == 3


def test_usdm_historical_trades_need_an_api_key(fake: FakeBinance) -> None:
    with Client(base_url=fake.rest_url, market="usdm") as anonymous:
        with pytest.raises(InvalidInputError, match="on usdm needs an API key") as info:
            anonymous.historical_trades("BTCUSDT", from_id=1)
        assert "agg_trades" in str(info.value)  # names the way that needs none
        assert isinstance(anonymous.trades("BTCUSDT", limit=1), list)  # recent trades need none
    with Client(base_url=fake.rest_url) as spot:
        assert isinstance(spot.historical_trades("BTCUSDT", limit=1), list)  # spot needs none
    assert [r.path for r in fake.rest_requests] == ["/fapi/v1/trades", "/api/v3/historicalTrades"]


def test_usdm_listen_key_lifecycle(fake: FakeBinance, futures: Client) -> None:
    key = futures.create_listen_key()
    (record,) = fake.listen_keys
    assert (record.listen_key, record.api_key, record.state) == (key, API_KEY, "active")
    assert record.expires_at == pytest.approx(record.created_at + 3600, abs=5)

    assert futures.create_listen_key() == key  # the active key again, extended
    futures.keepalive_listen_key(key)
    (record,) = fake.listen_keys
    assert record.keepalives == 2
    put = requests_to(fake, "/fapi/v1/listenKey")[-1]
    assert (put.method, put.params, put.status) == ("PUT", {"listenKey": key}, 200)

    futures.close_listen_key(key)
    assert fake.listen_keys[0].state == "closed"
    with pytest.raises(BinanceAPIError) as info:
        futures.keepalive_listen_key(key)
    assert (info.value.status, info.value.code, info.value.msg) == (
        400,
        -1125,
        "This listenKey does not exist.",
    )

    # After an expiry, keepalive fails and a new key is created.
    second = futures.create_listen_key()
    assert second != key
    fake.expire_listen_key(second)
    with pytest.raises(BinanceAPIError, match="-1125"):
        futures.keepalive_listen_key(second)
    third = futures.create_listen_key()
    assert third not in (key, second)
    assert [k.state for k in fake.listen_keys] == ["closed", "expired", "active"]


def test_usdm_listen_key_needs_a_known_api_key(keyed: FakeBinance) -> None:
    with Client(base_url=keyed.rest_url, market="usdm") as anonymous:
        with pytest.raises(InvalidInputError, match="api_key"):
            anonymous.create_listen_key()
        assert keyed.rest_requests == ()
        # Sent without the header anyway (through the escape hatch): Binance's -2014.
        with pytest.raises(BinanceAPIError) as info:
            anonymous.request("POST", "/fapi/v1/listenKey")
        assert (info.value.status, info.value.code) == (401, -2014)
    with (
        Client("unknown", base_url=keyed.rest_url, market="usdm") as stranger,
        pytest.raises(BinanceAPIError) as info,
    ):
        stranger.create_listen_key()
    assert (info.value.status, info.value.code) == (401, -2015)
    assert keyed.listen_keys == ()


def test_spot_listen_keys_are_refused_with_the_replacement(
    fake: FakeBinance, client: Client
) -> None:
    for call in (
        client.create_listen_key,
        lambda: client.keepalive_listen_key("abc"),
        lambda: client.close_listen_key("abc"),
    ):
        with pytest.raises(InvalidInputError, match="2026-02-20") as info:
            call()
        assert "user()" in str(info.value)
        assert "WebSocket API" in str(info.value)
    assert fake.rest_requests == ()


# ---------------------------------------------------------------------------- signing


def test_signed_request_is_accepted(fake: FakeBinance, client: Client) -> None:
    account = client.signed_request("GET", "/api/v3/account", {"omitZeroBalances": False})
    assert account["accountType"] == "SPOT"
    assert {b["asset"] for b in account["balances"]} == {"BTC", "ETH", "USDT", "BNB"}
    (request,) = requests_to(fake, "/api/v3/account")
    assert request.status == 200
    assert list(request.params) == ["omitZeroBalances", "timestamp", "signature"]
    assert abs(int(request.params["timestamp"]) - time.time() * 1000) < 60_000


def test_signed_request_percent_encodes_before_signing(fake: FakeBinance, client: Client) -> None:
    # A value that needs encoding: the fake verifies the signature over the encoded payload
    # and only then complains about the unknown parameter (-1104, not -1022).
    with pytest.raises(BinanceAPIError) as info:
        client.signed_request("GET", "/api/v3/account", {"note": 'a b/ü&"x"'})
    assert info.value.code == -1104


def test_recv_window_is_sent(keyed: FakeBinance) -> None:
    with Client(API_KEY, SECRET, base_url=keyed.rest_url, recv_window=10000.5) as c:
        c.signed_request("GET", "/api/v3/account")
    (request,) = keyed.rest_requests
    assert request.params["recvWindow"] == "10000.5"
    assert request.status == 200


def test_wrong_secret_unknown_key_and_missing_secret(keyed: FakeBinance) -> None:
    with (
        Client(API_KEY, "not-the-secret", base_url=keyed.rest_url) as wrong,
        pytest.raises(BinanceAPIError) as info,
    ):
        wrong.signed_request("GET", "/api/v3/account")
    assert (info.value.status, info.value.code, info.value.msg) == (
        400,
        -1022,
        "Signature for this request is not valid.",
    )
    with (
        Client("someone-else", SECRET, base_url=keyed.rest_url) as stranger,
        pytest.raises(BinanceAPIError) as info,
    ):
        stranger.signed_request("GET", "/api/v3/account")
    assert (info.value.status, info.value.code) == (401, -2015)
    with (
        Client(API_KEY, base_url=keyed.rest_url) as keyless,
        pytest.raises(InvalidInputError, match="api_secret"),
    ):
        keyless.signed_request("GET", "/api/v3/account")
    with (
        Client(base_url=keyed.rest_url) as anonymous,
        pytest.raises(InvalidInputError, match="api_key"),
    ):
        anonymous.signed_request("GET", "/api/v3/account")
    assert len(keyed.rest_requests) == 2


def _ed25519_pair() -> tuple[str, str]:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_ed25519_key_end_to_end(fake: FakeBinance) -> None:
    private, public = _ed25519_pair()
    other_private, _ = _ed25519_pair()
    fake.add_api_key("ed-key", public_key=public)
    with Client("ed-key", private, base_url=fake.rest_url) as c:
        assert "ed25519" in repr(c)
        assert "PRIVATE" not in repr(c)
        for _ in range(3):  # several signatures: some contain '+' or '/' to percent-encode
            assert c.signed_request("GET", "/api/v3/account")["accountType"] == "SPOT"
    with (
        Client("ed-key", other_private, base_url=fake.rest_url) as wrong,
        pytest.raises(BinanceAPIError, match="-1022"),
    ):
        wrong.signed_request("GET", "/api/v3/account")


def test_rsa_key_end_to_end(fake: FakeBinance) -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    fake.add_api_key("rsa-key", public_key=public)
    with Client("rsa-key", private, base_url=fake.rest_url) as c:
        assert c.signed_request("GET", "/api/v3/account")["accountType"] == "SPOT"


# ----------------------------------------------------------------------------- errors


def test_binance_error_carries_status_code_and_msg(fake: FakeBinance, client: Client) -> None:
    with pytest.raises(BinanceAPIError) as info:
        client.depth("NOPE")
    error = info.value
    assert (error.status, error.code, error.msg) == (400, -1121, "Invalid symbol.")
    assert isinstance(error, RxBinanceError)
    assert not isinstance(error, RateLimitError)
    assert "400" in str(error)
    assert "-1121" in str(error)
    assert "Invalid symbol." in str(error)
    assert "/api/v3/depth" in str(error)
    assert error.method == "GET"


def test_unknown_path_is_an_api_error(client: Client) -> None:
    with pytest.raises(BinanceAPIError) as info:
        client.request("GET", "/api/v3/nothing")
    assert (info.value.status, info.value.code) == (404, -1000)


def test_html_410_still_gives_a_clear_error(fake: FakeBinance, client: Client) -> None:
    with pytest.raises(BinanceAPIError) as info:
        client.request("POST", "/api/v3/userDataStream", with_api_key=True)
    error = info.value
    assert error.status == 410
    assert error.code is None
    assert "410 Gone" in error.msg
    assert "text/html" in error.msg
    assert "retired" in error.msg
    assert "no Binance code" in str(error)
    assert "<html>" not in str(error)


def test_429_then_refuses_without_requests(fake: FakeBinance, client: Client) -> None:
    fake.rest_fault(429, retry_after=30, times=1)
    with pytest.raises(RateLimitError) as info:
        client.depth("BTCUSDT")
    error = info.value
    assert (error.status, error.code, error.banned) == (429, -1003, False)
    assert error.retry_after == 30
    assert isinstance(error, BinanceAPIError)
    assert "retry after 30 s" in str(error)
    assert len(fake.rest_requests) == 1

    # Every call during the 30 s, whatever endpoint, is refused locally.
    for call in (
        client.ping,
        lambda: client.depth("ETHUSDT"),
        lambda: client.signed_request("GET", "/api/v3/account"),
    ):
        with pytest.raises(RateLimitError) as refused:
            call()
        assert refused.value.status == 429
        assert refused.value.retry_after is not None
        assert 0 < refused.value.retry_after <= 30
        assert "not sent" in str(refused.value)
    assert len(fake.rest_requests) == 1
    assert 0 < client.rate_limited_for <= 30


def test_retry_after_is_honoured_then_calls_resume(fake: FakeBinance, client: Client) -> None:
    fake.rest_fault(429, retry_after=1, times=1)
    with pytest.raises(RateLimitError):
        client.ping()
    with pytest.raises(RateLimitError, match="not sent"):
        client.ping()
    # Waiting out Retry-After is the behaviour under test: a plain sleep of that length.
    time.sleep(client.rate_limited_for)
    assert client.rate_limited_for == 0.0
    client.ping()
    first, second = fake.rest_requests
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 0.9


def test_418_ban(fake: FakeBinance, client: Client) -> None:
    fake.rest_fault(418, retry_after=120, times=None)
    with pytest.raises(RateLimitError) as info:
        client.server_time()
    assert (info.value.status, info.value.banned, info.value.retry_after) == (418, True, 120)
    assert "banned until" in info.value.msg
    fake.clear_rest_fault()
    with pytest.raises(RateLimitError) as refused:
        client.server_time()
    assert refused.value.banned
    assert "IP banned" in str(refused.value)
    assert len(fake.rest_requests) == 1


def test_other_clients_are_not_blocked(fake: FakeBinance, client: Client) -> None:
    # The deadline belongs to the client that was told; a fresh one may probe.
    fake.rest_fault(429, retry_after=30, times=1)
    with pytest.raises(RateLimitError):
        client.ping()
    with Client(base_url=fake.rest_url) as other:
        other.ping()
    assert [r.status for r in fake.rest_requests] == [429, 200]


# ------------------------------------------------------------ scripted HTTP servers


class ScriptedServer:
    """127.0.0.1 server answering the n-th connection with the n-th scripted response
    (complete HTTP bytes), or holding it open without a word when the script says None."""

    def __init__(self, script: list[bytes | None]) -> None:
        self._script = list(script)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # lets the accept loop notice close()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closing = threading.Event()
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, name="scripted-http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._script and not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                response = self._script.pop(0)
                if response is None:
                    self._closing.wait()  # never answer; close when the test ends
                else:
                    conn.sendall(response)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(10)
        self._listener.close()


def http_response(
    status: str,
    body: str,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[bytes | None]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(script: list[bytes | None]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_timeout_raises_request_timeout(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted([None])
    started = time.monotonic()
    with Client(base_url=server.url, timeout=0.2) as c, pytest.raises(RequestTimeout) as info:
        c.ping()
    assert time.monotonic() - started < 10  # bounded by the timeout, never a hang
    error = info.value
    assert isinstance(error, RequestError)
    assert isinstance(error.__cause__, requests.Timeout)
    assert error.method == "GET"
    assert error.url == server.url + "/api/v3/ping"
    assert "0.2 s" in str(error)


def test_connection_refused_raises_request_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c,
        pytest.raises(RequestError) as info,
    ):
        c.server_time()
    assert not isinstance(info.value, RequestTimeout)
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert f"127.0.0.1:{port}/api/v3/time" in str(info.value)


def test_418_without_retry_after_uses_the_ban_time(scripted: Callable[..., ScriptedServer]) -> None:
    until = int(time.time() * 1000) + 90_000
    body = (
        f'{{"code":-1003,"msg":"Way too much request weight used; IP banned until {until}. '
        'Please use WebSocket Streams for live updates to avoid bans."}'
    )
    server = scripted([http_response("418 I'm a teapot", body)])
    with Client(base_url=server.url) as c:
        with pytest.raises(RateLimitError) as info:
            c.ping()
        assert info.value.banned
        assert info.value.retry_after == pytest.approx(90, abs=10)
        with pytest.raises(RateLimitError, match="not sent"):
            c.ping()
    assert len(server.requests) == 1


def test_429_without_retry_after_does_not_block(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(
        [
            http_response(
                "429 Too Many Requests", '{"code":-1003,"msg":"Too much request weight used"}'
            ),
            http_response("200 OK", "{}", {"X-MBX-USED-WEIGHT-1M": "7"}),
        ]
    )
    with Client(base_url=server.url) as c:
        with pytest.raises(RateLimitError) as info:
            c.ping()
        assert info.value.retry_after is None
        assert c.rate_limited_for == 0.0
        c.ping()  # nothing to honour: sent
        assert c.used_weight == 7
    assert len(server.requests) == 2


def test_odd_bodies(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(
        [
            http_response("200 OK", "<html>maintenance</html>", content_type="text/html"),
            http_response("502 Bad Gateway", "upstream down", content_type="text/plain"),
            http_response("200 OK", "{}", {"X-MBX-USED-WEIGHT-1M": "lots"}),
        ]
    )
    with Client(base_url=server.url) as c:
        with pytest.raises(ProtocolError, match="not JSON"):
            c.ping()
        with pytest.raises(BinanceAPIError) as info:
            c.ping()
        assert (info.value.status, info.value.code) == (502, None)
        assert "upstream down" in info.value.msg
        assert "text/plain" in info.value.msg
        c.ping()
        assert c.used_weight is None  # an unreadable header is ignored


def test_api_key_header_only_where_needed(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted([http_response("200 OK", "{}"), http_response("200 OK", "{}")])
    with Client(API_KEY, SECRET, base_url=server.url) as c:
        c.ping()
        c.signed_request("GET", "/api/v3/account")
    public, signed = (r.decode().lower() for r in server.requests)
    assert "x-mbx-apikey" not in public
    assert f"x-mbx-apikey: {API_KEY.lower()}" in signed


def test_api_key_header_for_usdm_historical_trades_only(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted([http_response("200 OK", "[]") for _ in range(3)])
    with Client(API_KEY, SECRET, base_url=server.url) as spot:
        spot.historical_trades("BTCUSDT", from_id=5)
        spot.trades("BTCUSDT")
    with Client(API_KEY, SECRET, base_url=server.url, market="usdm") as usdm:
        usdm.historical_trades("BTCUSDT", from_id=5)
    spot_old, spot_recent, usdm_old = (r.decode().lower() for r in server.requests)
    assert spot_old.startswith("get /api/v3/historicaltrades?symbol=btcusdt&fromid=5 ")
    assert "x-mbx-apikey" not in spot_old
    assert "x-mbx-apikey" not in spot_recent
    assert usdm_old.startswith("get /fapi/v1/historicaltrades?symbol=btcusdt&fromid=5 ")
    assert f"x-mbx-apikey: {API_KEY.lower()}" in usdm_old
    assert "signature" not in usdm_old  # MARKET_DATA: a key, no signature


# ------------------------------------------------------------------ secrets and threads


def test_secret_never_leaks(
    keyed: FakeBinance, caplog: pytest.LogCaptureFixture, scripted: Callable[..., ScriptedServer]
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with Client(API_KEY, SECRET, base_url=keyed.rest_url, market="usdm") as c:
        seen.append(repr(c))
        c.signed_request("GET", "/api/v3/account")
        key = c.create_listen_key()
        c.keepalive_listen_key(key)
        keyed.rest_fault(429, retry_after=30, times=1)
        for call in (
            lambda: c.signed_request("GET", "/api/v3/account"),
            lambda: c.signed_request("GET", "/api/v3/account"),  # refused locally
        ):
            with pytest.raises(RateLimitError) as info:
                call()
            seen += [str(info.value), repr(info.value)]
    with (
        Client(API_KEY, "wrong", base_url=keyed.rest_url) as wrong,
        pytest.raises(BinanceAPIError) as api_error,
    ):
        wrong.signed_request("GET", "/api/v3/account")
    seen += [str(api_error.value), repr(api_error.value)]
    server = scripted([None])
    with (
        Client(API_KEY, SECRET, base_url=server.url, timeout=0.2) as slow,
        pytest.raises(RequestTimeout) as timeout,
    ):
        slow.signed_request("GET", "/api/v3/account")
    seen += [str(timeout.value), repr(timeout.value), timeout.value.url]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(API_KEY, SECRET, base_url=f"http://127.0.0.1:{port}") as refused,
        pytest.raises(RequestError) as request_error,
    ):
        refused.signed_request("GET", "/api/v3/account")
    seen += [str(request_error.value), repr(request_error.value)]

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("rxbinance")]
    assert any("/api/v3/account?timestamp=" in line for line in ours)  # signed calls logged
    everything = "\n".join([caplog.text, *seen, *ours])
    assert SECRET not in everything
    assert API_KEY not in "\n".join([*seen[:1], *ours])  # repr and our logs show it masked
    assert "vmPU…" in seen[0]
    # Our log lines and exception messages carry URLs without signatures.
    for text in [*ours, *seen]:
        for part in text.split("signature=")[1:]:
            assert part.startswith("<redacted>"), text


def test_concurrent_calls_from_threads(fake: FakeBinance, client: Client) -> None:
    errors: list[BaseException] = []
    books: list[dict[str, Any]] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(10):
                book = client.depth("BTCUSDT", limit=5)
                with lock:
                    books.append(book)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(books) == 80
    assert len(requests_to(fake, "/api/v3/depth")) == 80
    assert isinstance(client.used_weight, int)


def test_a_given_session_is_used_and_left_open(fake: FakeBinance) -> None:
    with requests.Session() as session:
        seen: list[str] = []
        session.hooks["response"].append(lambda r, *a, **k: seen.append(r.url))
        with Client(base_url=fake.rest_url, session=session) as c:
            c.ping()
        assert seen == [fake.rest_url + "/api/v3/ping"]
        assert session.get(fake.rest_url + "/api/v3/ping", timeout=5).json() == {}


def test_close_is_idempotent(fake: FakeBinance) -> None:
    c = Client(base_url=fake.rest_url)
    c.ping()
    c.close()
    c.close()
