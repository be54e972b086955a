"""USD-M user data: the listenKey belongs to the account, not to a connection (issue 9, 5).

Binance returns the same listenKey to every POST of an account while one is active, so a
stream disposed and subscribed again at once has its old connection DELETE (deferred, on the
keepalive thread) the key the new connection was just given. These tests drive real sockets
against FakeBinance: the race forced in each order with hooks on our own objects, the
ListenKeyHolder's counting table-driven, and the user-level loop of dispose and subscribe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rxbinance import BinanceStreams
from rxbinance._reactive.user_data import ListenKeyClient, ListenKeyHolder, UsdmUserSocket
from rxbinance.errors import BinanceAPIError, RxBinanceError
from rxbinance.events import Connected, Connecting, ConnectionEvent
from rxbinance.protocol.names import USDM_USER_EVENTS
from rxbinance.rest import Client
from rxbinance.testing import ConnectionRecord, FakeBinance
from tests.conftest import Collector, rxbinance_threads

KEY, SECRET = "user-key", "user-secret"
FUTURES_ORDER = {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {"s": "BTCUSDT", "x": "NEW"}}
LISTEN_KEY_PATH = "/fapi/v1/listenKey"
WAIT = 10.0  # seconds: only a bound on waits for events, never a pace


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, api_keys={KEY: SECRET}) as server:
        yield server


@pytest.fixture
def rest(fake: FakeBinance) -> Iterator[Client]:
    client = Client(KEY, SECRET, base_url=fake.rest_url, market="usdm")
    yield client
    client.close()


def key_states(fake: FakeBinance) -> dict[str, str]:
    return {k.listen_key: k.state for k in fake.listen_keys}


def listen_key_calls(fake: FakeBinance) -> list[tuple[str, int]]:
    return [(r.method, r.status) for r in fake.rest_requests if r.path == LISTEN_KEY_PATH]


@dataclass
class Connection:
    """One UsdmUserSocket and what it reported."""

    socket: UsdmUserSocket
    got: Collector
    closed: threading.Event = field(default_factory=threading.Event)
    failures: list[RxBinanceError | None] = field(default_factory=list)

    def close_and_join(self) -> None:
        self.socket.close()
        self.socket.join(WAIT)
        assert self.closed.wait(WAIT), "the reader never reported on_closed"
        assert self.failures == [None]


def open_connection(
    fake: FakeBinance, rest: ListenKeyClient, holder: ListenKeyHolder | None
) -> Connection:
    got = Collector()
    connection: Connection

    def on_closed(failure: RxBinanceError | None) -> None:
        connection.failures.append(failure)
        connection.closed.set()

    sock = UsdmUserSocket(
        rest=rest,
        ws_url=fake.ws_url,
        events=USDM_USER_EVENTS,
        keepalive=1800.0,  # no keepalive during a test: a closed key is not noticed, as live
        key="userData",
        on_message=got.on_next,
        on_event=lambda event: None,
        on_closed=on_closed,
        stall_timeout=5.0,
        holder=holder,
    )
    connection = Connection(sock, got)
    sock.start()
    return connection


def new_user_stream(fake: FakeBinance, *old: ConnectionRecord) -> ConnectionRecord:
    """Wait for a /private connection on an active key other than ``old``; return it."""
    seen = {c.id for c in old}
    fake.wait_for(lambda f: any(c.id not in seen for c in f.user_streams(KEY)), WAIT)
    return next(c for c in fake.user_streams(KEY) if c.id not in seen)


class HeldReleases(ListenKeyHolder):
    """A holder whose releases wait for ``go``: forces "the new connection acquires first"."""

    def __init__(self) -> None:
        super().__init__()
        self.releasing = threading.Event()
        self.go = threading.Event()

    def release(self, rest: ListenKeyClient, listen_key: str, *, close: bool) -> bool:
        self.releasing.set()
        assert self.go.wait(WAIT), "the test never let the release go"
        return super().release(rest, listen_key, close=close)


class AnnouncedAcquires(ListenKeyHolder):
    """A holder that says when a connection starts acquiring the key."""

    def __init__(self) -> None:
        super().__init__()
        self.acquiring = threading.Event()

    def acquire(self, rest: ListenKeyClient) -> str:
        self.acquiring.set()
        return super().acquire(rest)


class HeldDeletes:
    """The real REST client, its DELETEs held until ``go``: forces "the DELETE is in flight"."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.deleting = threading.Event()
        self.go = threading.Event()

    def create_listen_key(self) -> str:
        return self._client.create_listen_key()

    def keepalive_listen_key(self, listen_key: str) -> None:
        self._client.keepalive_listen_key(listen_key)

    def close_listen_key(self, listen_key: str) -> None:
        self.deleting.set()
        assert self.go.wait(WAIT), "the test never let the DELETE go"
        self._client.close_listen_key(listen_key)


# ------------------------------------------------------------------- the race, both orders


def test_the_new_connection_keeps_the_key_the_old_one_would_delete(
    fake: FakeBinance, rest: Client
) -> None:
    # Dispose and subscribe again at once, where the new connection gets its key (the same
    # key: Binance's POST returns the active one) before the old one's deferred release.
    holder = HeldReleases()
    old = open_connection(fake, rest, holder)
    (old_stream,) = fake.wait_for_user_streams(1, KEY)
    (listen_key,) = key_states(fake)
    old.socket.close()
    assert holder.releasing.wait(WAIT)  # the old keepalive thread is about to release
    new = open_connection(fake, rest, holder)
    new_stream = new_user_stream(fake, old_stream)
    assert listen_key in new_stream.path  # the very same key
    holder.go.set()
    old.socket.join(WAIT)
    assert old.closed.wait(WAIT)

    assert key_states(fake) == {listen_key: "active"}
    assert listen_key_calls(fake) == [("POST", 200), ("POST", 200)]  # no DELETE
    assert fake.publish_user_event(KEY, FUTURES_ORDER) == 1
    new.got.wait_count(1)
    assert new.got.items == [FUTURES_ORDER]
    assert old.got.items == []

    new.close_and_join()  # the last holder closes the key
    assert key_states(fake) == {listen_key: "closed"}
    assert listen_key_calls(fake)[-1] == ("DELETE", 200)
    assert not rxbinance_threads()


def test_a_delete_in_flight_makes_the_new_connection_wait_for_a_fresh_key(
    fake: FakeBinance, rest: Client
) -> None:
    # The other order: the old connection decided to DELETE (nobody else held the key) and
    # its DELETE is on the wire when the new connection starts. The new POST must wait for
    # it, or it would be answered the key the DELETE is about to close.
    holder = AnnouncedAcquires()
    held = HeldDeletes(rest)
    old = open_connection(fake, held, holder)
    (old_stream,) = fake.wait_for_user_streams(1, KEY)
    (old_key,) = key_states(fake)
    old.socket.close()
    assert held.deleting.wait(WAIT)  # the DELETE is decided and held
    holder.acquiring.clear()
    new = open_connection(fake, held, holder)
    assert holder.acquiring.wait(WAIT)  # the new reader is acquiring: its POST must wait
    held.go.set()
    new_stream = new_user_stream(fake, old_stream)
    old.socket.join(WAIT)

    states = key_states(fake)
    assert states.pop(old_key) == "closed"
    ((new_key, state),) = states.items()
    assert state == "active"
    assert new_key in new_stream.path
    assert listen_key_calls(fake) == [("POST", 200), ("DELETE", 200), ("POST", 200)]
    assert fake.publish_user_event(KEY, FUTURES_ORDER) == 1
    new.got.wait_count(1)
    assert new.got.items == [FUTURES_ORDER]

    new.close_and_join()
    assert key_states(fake) == {old_key: "closed", new_key: "closed"}
    assert not rxbinance_threads()


def test_without_a_shared_holder_a_connection_closes_its_key(
    fake: FakeBinance, rest: Client
) -> None:
    # holder=None (the default): the connection is alone, so close() always DELETEs.
    connection = open_connection(fake, rest, None)
    fake.wait_for_user_streams(1, KEY)
    (listen_key,) = key_states(fake)
    connection.close_and_join()
    assert key_states(fake) == {listen_key: "closed"}
    assert listen_key_calls(fake) == [("POST", 200), ("DELETE", 200)]


# ------------------------------------------------------------------ the holder's counting

# Steps on one holder: ("acquire", name) or ("release", name, close). Expected: how many
# DELETEs were sent, and the key's state at the end.
HOLDER_CASES: dict[str, tuple[list[tuple[Any, ...]], int, str]] = {
    "alone, closed": ([("acquire", "a"), ("release", "a", True)], 1, "closed"),
    "alone, failed (its retry reuses the key)": (
        [("acquire", "a"), ("release", "a", False)],
        0,
        "active",
    ),
    "older closed while a newer holds": (
        [("acquire", "a"), ("acquire", "b"), ("release", "a", True)],
        0,
        "active",
    ),
    "older closed, then the newer": (
        [("acquire", "a"), ("acquire", "b"), ("release", "a", True), ("release", "b", True)],
        1,
        "closed",
    ),
    "newer failed, then the older closed last": (
        [("acquire", "a"), ("acquire", "b"), ("release", "b", False), ("release", "a", True)],
        1,
        "closed",
    ),
    "closed, then a newer acquires a fresh key": (
        [("acquire", "a"), ("release", "a", True), ("acquire", "b")],
        1,
        "active",
    ),
}


@pytest.mark.parametrize(
    ("steps", "deletes", "final_state"), HOLDER_CASES.values(), ids=HOLDER_CASES.keys()
)
def test_the_holder_deletes_only_when_no_other_connection_holds_the_key(
    fake: FakeBinance,
    rest: Client,
    steps: list[tuple[Any, ...]],
    deletes: int,
    final_state: str,
) -> None:
    holder = ListenKeyHolder()
    keys: dict[str, str] = {}
    last_key = ""
    for step in steps:
        if step[0] == "acquire":
            keys[step[1]] = last_key = holder.acquire(rest)
        else:
            _, name, close = step
            holder.release(rest, keys[name], close=close)
    assert [m for m, _ in listen_key_calls(fake)].count("DELETE") == deletes
    assert all(status == 200 for _, status in listen_key_calls(fake))
    assert key_states(fake)[last_key] == final_state
    assert holder.holders == sum(1 if s[0] == "acquire" else -1 for s in steps)


def test_a_refused_post_is_not_counted(fake: FakeBinance) -> None:
    holder = ListenKeyHolder()
    stranger = Client("unknown-key", base_url=fake.rest_url, market="usdm")
    with pytest.raises(BinanceAPIError):
        holder.acquire(stranger)
    stranger.close()
    assert holder.holders == 0


# --------------------------------------------------------------- the user-level regression


def test_dispose_and_subscribe_again_at_once_keeps_the_stream_alive(fake: FakeBinance) -> None:
    with BinanceStreams(
        market="usdm",
        ws_url=fake.ws_url,
        rest_url=fake.rest_url,
        api_key=KEY,
        retry_delay=0.05,
        max_retry_delay=0.2,
        stall_timeout=5.0,
    ) as streams:
        progress = Handshakes()
        streams.events.subscribe(progress.on_next)
        sub = streams.user().subscribe(Collector())
        fake.wait_for_user_streams(1, KEY)
        old_threads: set[threading.Thread] = set()
        for _ in range(50):
            sub.dispose()
            old_threads.update(rxbinance_threads())  # every connection so far, now closing
            got = Collector()
            sub = streams.user().subscribe(got)
        # Every old connection done: readers outlive their keepalive thread, whose release
        # (and DELETE, if any) is the last thing a connection does.
        for thread in old_threads:
            thread.join(WAIT)
            assert not thread.is_alive()
        started = progress.wait_connected_not_in(old_threads)  # the last socket is open
        # Let the server catch up: every handshake the client started answered, and every
        # old connection seen closed, so the one connection left is the last subscription's.
        fake.wait_for(lambda f: len([a for a in f.attempts if private(a.path)]) == started, WAIT)
        fake.wait_for(
            lambda f: len([c for c in f.connections if private(c.path) and not c.closed_at]) == 1,
            WAIT,
        )
        (connection,) = fake.user_streams(KEY)  # empty if its key was closed under it
        states = key_states(fake)
        (active,) = [k for k, state in states.items() if state == "active"]
        assert active in connection.path
        # Only the last holder DELETEs, so no DELETE ever hit a key already closed.
        calls = listen_key_calls(fake)
        assert [c for c in calls if c[0] == "DELETE"] == [("DELETE", 200)] * (len(states) - 1)
        assert fake.publish_user_event(KEY, FUTURES_ORDER) == 1
        got.wait_count(1)
        assert got.items == [FUTURES_ORDER]
        sub.dispose()
    assert not rxbinance_threads()


def private(path: str) -> bool:
    return path.startswith("/private/")


class Handshakes:
    """Counts the handshakes the client started, and which reader threads completed one."""

    def __init__(self) -> None:
        self._started = 0
        self._connected: list[threading.Thread] = []
        self._cond = threading.Condition()

    def on_next(self, event: ConnectionEvent) -> None:
        with self._cond:
            if isinstance(event, Connecting):
                self._started += 1
            elif isinstance(event, Connected):
                self._connected.append(threading.current_thread())
            self._cond.notify_all()

    def wait_connected_not_in(self, old: set[threading.Thread]) -> int:
        """Wait for a Connected from a thread not in ``old``; return the handshakes started."""
        with self._cond:
            assert self._cond.wait_for(lambda: any(t not in old for t in self._connected), WAIT)
            return self._started
