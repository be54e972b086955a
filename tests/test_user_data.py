"""BinanceStreams.user() and start_user_socket against FakeBinance, over real sockets.

Spot: the WS API subscription (signed, checked, renewed on every connection), events unwrapped,
sharing, refusals surfacing as on_error. USD-M: the listenKey created over REST, kept alive,
renewed on listenKeyExpired or a -1125 keepalive, closed on dispose.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rxbinance import BinanceStreams
from rxbinance.errors import BinanceAPIError
from rxbinance.events import Connected, Disconnected, GaveUp, Reconnecting, Rejected
from rxbinance.protocol.signing import ws_signature_payload
from rxbinance.rest import Client
from rxbinance.testing import ConnectionRecord, FakeBinance
from rxbinance.websockets import BinanceSocketManager
from tests.conftest import Collector, rxbinance_threads

KEY, SECRET = "user-key", "user-secret"
GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}

EXECUTION = {
    "e": "executionReport",
    "E": 1499405658658,
    "s": "ETHBTC",
    "c": "mUvoqJxFIILMdfAW5iGSOW",
    "S": "BUY",
    "x": "NEW",
    "X": "NEW",
    "i": 4293153,
}
ACCOUNT = {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "ETH", "f": "1"}]}
FUTURES_ORDER = {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {"s": "BTCUSDT", "x": "NEW"}}


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, api_keys={KEY: SECRET}) as server:
        yield server


def make_streams(fake: FakeBinance, **options: Any) -> BinanceStreams:
    settings: dict[str, Any] = {
        "ws_url": fake.ws_url,
        "rest_url": fake.rest_url,
        "ws_api_url": fake.ws_api_url,
        "api_key": KEY,
        "api_secret": SECRET,
        "retry_delay": 0.05,
        "max_retry_delay": 0.2,
        "stall_timeout": 5.0,
    }
    settings.update(options)
    return BinanceStreams(**settings)


@pytest.fixture
def spot(fake: FakeBinance) -> Iterator[BinanceStreams]:
    with make_streams(fake) as streams:
        yield streams
    assert not rxbinance_threads(), "close() left threads behind"


@pytest.fixture
def usdm(fake: FakeBinance) -> Iterator[BinanceStreams]:
    with make_streams(fake, market="usdm", listen_key_keepalive=0.05) as streams:
        yield streams
    assert not rxbinance_threads(), "close() left threads behind"


def watch(streams: BinanceStreams) -> Collector:
    events = Collector()
    streams.events.subscribe(events)
    return events


def new_user_stream(fake: FakeBinance, *old: ConnectionRecord) -> ConnectionRecord:
    """Wait for a user data connection other than ``old`` (which the server may not have
    noticed closing yet) and return it."""
    seen = {c.id for c in old}

    def fresh(f: FakeBinance) -> bool:
        return any(c.id not in seen for c in f.user_streams(KEY))

    fake.wait_for(fresh, timeout=10)
    return next(c for c in fake.user_streams(KEY) if c.id not in seen)


def subscribe_requests(fake: FakeBinance) -> list[dict[str, Any]]:
    return [
        message
        for connection in fake.connections
        if connection.kind == "ws-api"
        for message in connection.control_messages
        if message.get("method") == "userDataStream.subscribe.signature"
    ]


# ----------------------------------------------------------------------------------- spot


def test_spot_events_arrive_unwrapped_on_one_shared_connection(
    fake: FakeBinance, spot: BinanceStreams
) -> None:
    first, second = Collector(), Collector()
    sub1 = spot.user().subscribe(first)
    sub2 = spot.user().subscribe(second)
    (connection,) = fake.wait_for_user_streams(1, KEY)
    assert connection.kind == "ws-api"

    assert fake.publish_user_event(KEY, EXECUTION) == 1
    assert fake.publish_user_event(KEY, ACCOUNT) == 1
    first.wait_count(2)
    second.wait_count(2)
    assert first.items == [EXECUTION, ACCOUNT]
    assert second.items == [EXECUTION, ACCOUNT]
    assert first.threads[0] == "rxbinance:userData"

    # The request is Binance's, signed over the sorted raw params.
    (request,) = subscribe_requests(fake)
    params = request["params"]
    assert sorted(params) == ["apiKey", "signature", "timestamp"]
    assert params["apiKey"] == KEY
    assert ws_signature_payload(params) == f"apiKey={KEY}&timestamp={params['timestamp']}"
    assert fake.api_keys.verify(KEY, ws_signature_payload(params), params["signature"])

    # Ref-counted: the last dispose closes the connection; a new subscriber opens a new one.
    sub1.dispose()
    assert fake.publish_user_event(KEY, ACCOUNT) == 1
    second.wait_count(3)
    sub2.dispose()
    fake.wait_for(lambda f: not f.user_streams())
    third = Collector()
    sub3 = spot.user().subscribe(third)
    fake.wait_for_user_streams(1, KEY)
    assert len(subscribe_requests(fake)) == 2
    sub3.dispose()


@pytest.mark.parametrize("fault", ["drop", "server_shutdown"])
def test_spot_subscribes_again_after_every_reconnect(
    fake: FakeBinance, spot: BinanceStreams, fault: str
) -> None:
    events = watch(spot)
    got = Collector()
    sub = spot.user().subscribe(got)
    (old,) = fake.wait_for_user_streams(1, KEY)
    fake.publish_user_event(KEY, EXECUTION)
    got.wait_count(1)

    if fault == "drop":
        fake.drop_connections()
    else:
        fake.server_shutdown()
    new_user_stream(fake, old)
    assert sum(isinstance(e, Connected) for e in events.items) == 2
    fake.publish_user_event(KEY, ACCOUNT)
    got.wait_count(2)
    assert got.items == [EXECUTION, ACCOUNT]
    first, again = subscribe_requests(fake)
    assert again["id"] != first["id"]
    assert again["params"]["timestamp"] >= first["params"]["timestamp"]
    assert not got.completed
    assert not got.errors
    sub.dispose()


def test_event_stream_terminated_is_delivered_then_the_subscription_renewed(
    fake: FakeBinance, spot: BinanceStreams
) -> None:
    events = watch(spot)
    got = Collector()
    sub = spot.user().subscribe(got)
    (old,) = fake.wait_for_user_streams(1, KEY)
    terminated = {"e": "eventStreamTerminated", "E": 1728973001334}
    fake.publish_user_event(KEY, terminated)
    got.wait_count(1)
    new_user_stream(fake, old)
    fake.publish_user_event(KEY, EXECUTION)
    got.wait_count(2)
    assert got.items == [terminated, EXECUTION]
    reconnecting = [e for e in events.items if isinstance(e, Reconnecting)]
    assert [(e.attempt, e.delay) for e in reconnecting] == [(0, 0.0)]  # at once, not counted
    sub.dispose()


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        ({"api_secret": "not-the-secret"}, 400, -1022),
        ({"api_key": "unknown-key"}, 401, -2015),
    ],
)
def test_a_refused_subscription_is_an_error_not_a_reconnect_loop(
    fake: FakeBinance, options: dict[str, Any], status: int, code: int
) -> None:
    with make_streams(fake, **options) as streams:
        events = watch(streams)
        got = Collector()
        streams.user().subscribe(got)
        got.wait_for(lambda c: bool(c.errors))
        (error,) = got.errors
        assert isinstance(error, BinanceAPIError)
        assert (error.status, error.code) == (status, code)
        assert SECRET not in str(error)
        assert not got.items
        events.wait_for(lambda c: any(isinstance(e, Rejected) for e in c.items))
        rejected = next(e for e in events.items if isinstance(e, Rejected))
        assert rejected.stream == "userData"
        assert str(code) in rejected.reason
        assert len(fake.attempts) == 1  # no retry
        assert not any(isinstance(e, (Reconnecting, GaveUp)) for e in events.items)
        # The stream was forgotten: a later subscriber tries afresh (and is refused again).
        again = Collector()
        streams.user().subscribe(again)
        again.wait_for(lambda c: bool(c.errors))
        assert len(fake.wait_for_attempts(2)) == 2


def test_spot_with_an_ed25519_key(fake: FakeBinance) -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fake.add_api_key(
        "ed-key",
        public_key=private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    with make_streams(fake, api_key="ed-key", api_secret=pem) as streams:
        assert "PRIVATE" not in repr(streams)
        got = Collector()
        streams.user().subscribe(got)
        fake.wait_for_user_streams(1, "ed-key")
        fake.publish_user_event("ed-key", EXECUTION)
        got.wait_count(1)
        assert got.items == [EXECUTION]
        (request,) = subscribe_requests(fake)
        assert not request["params"]["signature"].isalnum()  # base64, not hex


def test_a_timestamp_outside_the_window_is_reported(fake: FakeBinance) -> None:
    fake.user_data.clock_skew = -5.0  # the client's clock looks 5 s fast
    with make_streams(fake) as streams:
        got = Collector()
        streams.user().subscribe(got)
        got.wait_for(lambda c: bool(c.errors))
        assert isinstance(got.errors[0], BinanceAPIError)
        assert got.errors[0].code == -1021


def test_a_key_revoked_while_streaming_ends_the_stream_with_an_error(
    fake: FakeBinance, spot: BinanceStreams
) -> None:
    events = watch(spot)
    got = Collector()
    spot.user().subscribe(got)
    fake.wait_for_user_streams(1, KEY)
    fake.revoke_api_key(KEY)
    got.wait_for(lambda c: bool(c.errors))
    assert isinstance(got.errors[0], BinanceAPIError)
    assert (got.errors[0].status, got.errors[0].code) == (401, -2015)
    events.wait_for(lambda c: any(isinstance(e, Rejected) for e in c.items))
    assert sum(isinstance(e, Connected) for e in events.items) == 1


def test_spot_gives_up_like_a_market_stream(fake: FakeBinance) -> None:
    fake.refuse_connections(None)
    with make_streams(fake, max_retries=2) as streams:
        got = Collector()
        streams.user().subscribe(got)
        got.wait_completed()
        assert got.items == [GIVE_UP]
        assert len(fake.attempts) == 3


def test_user_needs_keys(fake: FakeBinance) -> None:
    for options, named in [
        ({"api_key": None, "api_secret": None}, "api_key and api_secret"),
        ({"api_secret": None}, "api_secret"),
        ({"market": "usdm", "api_key": None}, "api_key"),
    ]:
        with make_streams(fake, **options) as streams, pytest.raises(ValueError, match=named):
            streams.user()


def test_the_secret_never_shows(spot: BinanceStreams) -> None:
    assert SECRET not in repr(spot)
    assert KEY not in repr(spot)


# ----------------------------------------------------------------------------------- USD-M


def active_keys(fake: FakeBinance) -> list[str]:
    return [k.listen_key for k in fake.listen_keys if k.state == "active"]


def test_usdm_creates_a_listen_key_and_delivers_events(
    fake: FakeBinance, usdm: BinanceStreams
) -> None:
    got, other = Collector(), Collector()
    sub = usdm.user().subscribe(got)
    sub2 = usdm.user().subscribe(other)
    (connection,) = fake.wait_for_user_streams(1, KEY)
    (listen_key,) = active_keys(fake)
    assert connection.path.startswith(f"/private/ws?listenKey={listen_key}&events=")
    assert "ORDER_TRADE_UPDATE" in connection.path
    assert fake.publish_user_event(KEY, FUTURES_ORDER) == 1
    got.wait_count(1)
    other.wait_count(1)
    assert got.items == [FUTURES_ORDER]
    sub.dispose()
    sub2.dispose()


def test_usdm_keeps_the_listen_key_alive(fake: FakeBinance, usdm: BinanceStreams) -> None:
    sub = usdm.user().subscribe(Collector())
    fake.wait_for_user_streams(1, KEY)
    fake.wait_for(lambda f: any(k.keepalives >= 3 for k in f.listen_keys))
    puts = [r for r in fake.rest_requests if r.method == "PUT"]
    assert puts
    assert all(r.path == "/fapi/v1/listenKey" for r in puts)
    sub.dispose()


def test_usdm_renews_the_key_on_listen_key_expired(fake: FakeBinance, usdm: BinanceStreams) -> None:
    events = watch(usdm)
    got = Collector()
    sub = usdm.user().subscribe(got)
    fake.wait_for_user_streams(1, KEY)
    (old,) = active_keys(fake)
    fake.expire_listen_key(old)
    got.wait_count(1)
    expired = got.items[0]
    assert expired["e"] == "listenKeyExpired"
    assert isinstance(expired["E"], str)  # as Binance sends it: delivered untouched
    fake.wait_for(lambda f: len(active_keys(f)) == 1 and active_keys(f)[0] != old)
    (connection,) = fake.wait_for_user_streams(1, KEY)
    (new,) = active_keys(fake)
    assert new in connection.path
    fake.publish_user_event(KEY, FUTURES_ORDER)
    got.wait_count(2)
    assert got.items[1] == FUTURES_ORDER
    assert [e.attempt for e in events.items if isinstance(e, Reconnecting)] == [0]
    sub.dispose()


def test_usdm_reconnects_when_the_keepalive_says_the_key_is_gone(
    fake: FakeBinance, usdm: BinanceStreams
) -> None:
    got = Collector()
    sub = usdm.user().subscribe(got)
    (old_connection,) = fake.wait_for_user_streams(1, KEY)
    (old,) = active_keys(fake)
    # Closed behind the stream's back: no listenKeyExpired, only the next keepalive's -1125.
    response = requests.delete(
        f"{fake.rest_url}/fapi/v1/listenKey?listenKey={old}",
        headers={"X-MBX-APIKEY": KEY},
        timeout=5,
    )
    assert response.status_code == 200
    new_user_stream(fake, old_connection)
    (new,) = active_keys(fake)
    assert new != old
    fake.publish_user_event(KEY, FUTURES_ORDER)
    got.wait_count(1)
    assert got.items == [FUTURES_ORDER]
    sub.dispose()


def test_usdm_dispose_closes_the_listen_key(fake: FakeBinance, usdm: BinanceStreams) -> None:
    sub = usdm.user().subscribe(Collector())
    fake.wait_for_user_streams(1, KEY)
    sub.dispose()
    fake.wait_for(lambda f: [k.state for k in f.listen_keys] == ["closed"])
    deletes = [r for r in fake.rest_requests if r.method == "DELETE"]
    assert [r.status for r in deletes] == [200]


def test_usdm_an_unknown_api_key_is_an_error(fake: FakeBinance) -> None:
    with make_streams(fake, market="usdm", api_key="unknown-key") as streams:
        events = watch(streams)
        got = Collector()
        streams.user().subscribe(got)
        got.wait_for(lambda c: bool(c.errors))
        assert isinstance(got.errors[0], BinanceAPIError)
        assert got.errors[0].code == -2015
        events.wait_for(lambda c: any(isinstance(e, Rejected) for e in c.items))
        assert fake.attempts == ()  # no WebSocket was even tried
    assert not rxbinance_threads()


def test_usdm_reconnects_after_a_drop_with_the_same_key(
    fake: FakeBinance, usdm: BinanceStreams
) -> None:
    events = watch(usdm)
    got = Collector()
    sub = usdm.user().subscribe(got)
    (old,) = fake.wait_for_user_streams(1, KEY)
    fake.drop_connections()
    new_user_stream(fake, old)
    assert any(isinstance(e, Disconnected) for e in events.items)
    assert len(fake.listen_keys) == 1  # POST returned the active key again
    fake.publish_user_event(KEY, FUTURES_ORDER)
    got.wait_count(1)
    sub.dispose()


# --------------------------------------------------------------------- start_user_socket


class PythonBinanceClient:
    """What python-binance's Client looks like to the socket manager."""

    API_KEY = KEY
    API_SECRET = SECRET


@pytest.mark.parametrize("kind", ["python-binance", "rxbinance"])
def test_start_user_socket(fake: FakeBinance, kind: str) -> None:
    client: Any = (
        PythonBinanceClient()
        if kind == "python-binance"
        else Client(KEY, SECRET, base_url=fake.rest_url)
    )
    got = Collector()
    with BinanceSocketManager(client, ws_url=fake.ws_url, ws_api_url=fake.ws_api_url) as bm:
        assert bm.start_user_socket(got.on_next) == "userData"
        assert bm.start_user_socket(got.on_next) is False
        bm.start()
        fake.wait_for_user_streams(1, KEY)
        fake.publish_user_event(KEY, EXECUTION)
        got.wait_count(1)
        assert got.items == [EXECUTION]
    if isinstance(client, Client):
        client.close()


def test_start_user_socket_reports_a_refusal_once(fake: FakeBinance) -> None:
    client = PythonBinanceClient()
    client.API_SECRET = "wrong"  # type: ignore[misc]
    got = Collector()
    with BinanceSocketManager(client, ws_url=fake.ws_url, ws_api_url=fake.ws_api_url) as bm:
        bm.start_user_socket(got.on_next)
        bm.start()
        got.wait_count(1)
        (message,) = got.items
        assert message["e"] == "error"
        assert message["type"] == "BinanceAPIError"
        assert message["code"] == -1022
        # The socket is forgotten: starting it again is allowed.
        assert bm.start_user_socket(got.on_next) == "userData"


def test_start_user_socket_needs_keys(fake: FakeBinance) -> None:
    with (
        BinanceSocketManager(None, ws_url=fake.ws_url) as bm,
        pytest.raises(ValueError, match="API key and secret"),
    ):
        bm.start_user_socket(print)


def test_start_user_socket_on_usdm_follows_the_client_market(fake: FakeBinance) -> None:
    client = Client(KEY, SECRET, base_url=fake.rest_url, market="usdm")
    got = Collector()
    try:
        with BinanceSocketManager(
            client, ws_url=fake.ws_url, rest_url=fake.rest_url, ws_api_url=fake.ws_api_url
        ) as bm:
            bm.start_user_socket(got.on_next)
            bm.start()
            (connection,) = fake.wait_for_user_streams(1, KEY)
            assert connection.path.startswith("/private/ws?")
            fake.publish_user_event(KEY, FUTURES_ORDER)
            got.wait_count(1)
        fake.wait_for(lambda f: [k.state for k in f.listen_keys] == ["closed"])
    finally:
        client.close()
