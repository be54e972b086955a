"""Reconnection timing in virtual time: the supervisor of one stream key, driven through the
transport seam (a scripted socket) and reactivex's TestScheduler. No real time passes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observer
from reactivex.abc import DisposableBase
from reactivex.testing import TestScheduler

from rxbinance._reactive.attempts import ConnectionAttempts
from rxbinance._reactive.connection import SharedConnection
from rxbinance._reactive.hub import Hub
from rxbinance._reactive.reconnect import GIVE_UP_MESSAGE, ReconnectPolicy, Retry, classify
from rxbinance.errors import (
    BinanceAPIError,
    ConnectError,
    ConnectionDropped,
    HandshakeError,
    InternalError,
    ServerShutdown,
    StallError,
)
from rxbinance.events import ConnectionEvent, GaveUp, Reconnecting, Rejected, RolledOver
from rxbinance.testing import ScriptedSocket, ScriptedTransport

KEY = "btcusdt@trade"


class Harness:
    """One stream key in a hub, its supervisor's timers on a TestScheduler, its sockets
    scripted."""

    def __init__(
        self,
        policy: ReconnectPolicy,
        rollover_after: float | None = None,
        attempts: Callable[[TestScheduler], ConnectionAttempts] | None = None,
        make_before_break: bool = True,
    ) -> None:
        self.scheduler = TestScheduler()
        self.opened_at: list[float] = []
        self.transport = ScriptedTransport(
            on_open=lambda _: self.opened_at.append(self.scheduler.clock)
        )
        # The factory is looked up on each open, so a test may swap the transport.
        open_socket: Any = lambda *args, **kwargs: self.transport(*args, **kwargs)  # noqa: E731
        self.events: list[ConnectionEvent] = []
        self.received: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = False
        self.hub = Hub()
        self.subscription: DisposableBase | None = None

        def make() -> SharedConnection:
            return SharedConnection(
                KEY,
                "ws://unused/ws/btcusdt@trade",
                open_socket=open_socket,
                policy=policy,
                timer_scheduler=self.scheduler,
                emit_event=self.events.append,
                rollover_after=rollover_after,
                attempts=None if attempts is None else attempts(self.scheduler),
                make_before_break=make_before_break,
            )

        self.observable = self.hub.observable(KEY, make)

    @property
    def sockets(self) -> list[ScriptedSocket]:
        return self.transport.sockets

    @property
    def terminated(self) -> bool:
        """The key was evicted from the hub: the next subscriber starts afresh."""
        return self.hub.get(KEY) is None

    def start(self) -> None:
        def completed() -> None:
            self.completed = True

        self.subscription = self.observable.subscribe(
            Observer(self.received.append, self.errors.append, completed)
        )

    def stop(self) -> None:
        assert self.subscription is not None
        self.subscription.dispose()

    def at(self, seconds: float, action: Callable[[], None]) -> None:
        self.scheduler.schedule_absolute(seconds, lambda *_: action())


def no_jitter(max_retries: int = 5, retry_delay: float = 1.0, cap: float = 30.0) -> ReconnectPolicy:
    return ReconnectPolicy(
        max_retries=max_retries, retry_delay=retry_delay, max_retry_delay=cap, jitter=0.0
    )


def refused() -> ConnectError:
    return ConnectError("refused", url="ws://unused")


def test_refused_forever_gives_up_after_max_retries_plus_one_attempts() -> None:
    h = Harness(no_jitter(max_retries=5))
    h.at(0, h.start)
    # Every socket fails as soon as it is started: the scheduler runs the reconnects.
    for i in range(6):
        h.at(0.001 + i * 100, lambda: h.sockets[-1].fail(refused()))
    h.scheduler.start()
    assert len(h.sockets) == 6  # 1 attempt + 5 retries
    # Exponential: 1, 2, 4, 8, 16 seconds after each failure.
    assert h.opened_at == pytest.approx([0, 1.001, 102.001, 204.001, 308.001, 416.001])
    delays = [e.delay for e in h.events if isinstance(e, Reconnecting)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert h.received == [GIVE_UP_MESSAGE]
    assert h.completed
    assert h.terminated
    gave_up = [e for e in h.events if isinstance(e, GaveUp)]
    assert len(gave_up) == 1
    assert gave_up[0].attempts == 5


def test_reconnect_waits_exactly_the_policy_delay() -> None:
    h = Harness(no_jitter(max_retries=5, retry_delay=2.0))
    h.at(10, h.start)
    h.at(11, lambda: h.sockets[-1].fail(refused()))
    h.scheduler.advance_to(12.999)
    assert len(h.sockets) == 1
    h.scheduler.advance_to(13.0)
    assert len(h.sockets) == 2
    assert h.opened_at == [10, 13.0]


def test_reconnects_wait_for_the_connection_attempt_budget() -> None:
    # Two attempts per minute: the second reconnect waits for the first attempt to age out.
    h = Harness(
        no_jitter(max_retries=5, retry_delay=1.0),
        attempts=lambda scheduler: ConnectionAttempts(2, 60.0, clock=lambda: scheduler.clock),
    )
    h.at(0, h.start)
    h.at(0.5, lambda: h.sockets[-1].fail(refused()))
    h.at(2.0, lambda: h.sockets[-1].fail(refused()))
    h.scheduler.advance_to(60.5)
    assert h.opened_at == [0, 1.5]  # the retry due at 4.0 waits for 60 s (plus 1%)
    h.scheduler.advance_to(60.6)
    assert h.opened_at == [0, 1.5, pytest.approx(60.6)]


def test_delay_is_capped() -> None:
    h = Harness(no_jitter(max_retries=10, retry_delay=1.0, cap=5.0))
    h.at(0, h.start)
    for i in range(8):
        h.at(1000 * (i + 1), lambda: h.sockets[-1].fail(refused()))
    h.scheduler.start()
    delays = [e.delay for e in h.events if isinstance(e, Reconnecting)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_data_resets_the_failure_count() -> None:
    h = Harness(no_jitter(max_retries=2))
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].fail(refused()))  # failure 1 -> retry at 2
    h.at(3, lambda: h.sockets[-1].fail(refused()))  # failure 2 -> retry at 3 + 2
    h.at(6, lambda: h.sockets[-1].deliver({"e": "trade"}))  # data flows: streak over
    h.at(7, lambda: h.sockets[-1].fail(ConnectionDropped("drop", code=1006)))
    h.scheduler.advance_to(7.5)
    delays = [e.delay for e in h.events if isinstance(e, Reconnecting)]
    assert delays == [1.0, 2.0, 1.0]  # back to the first delay, not given up
    assert not h.completed
    assert h.received == [{"e": "trade"}]


def test_server_shutdown_reconnects_at_once_and_is_not_counted() -> None:
    h = Harness(no_jitter(max_retries=1))
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].deliver({"e": "trade"}))
    h.at(2, lambda: h.sockets[-1].fail(ServerShutdown("bye")))
    h.at(3, lambda: h.sockets[-1].deliver({"e": "trade"}))
    h.at(4, lambda: h.sockets[-1].fail(ServerShutdown("bye")))
    h.scheduler.advance_to(4.0)
    assert h.opened_at == [0, 2, 4]
    reconnects = [e for e in h.events if isinstance(e, Reconnecting)]
    assert [(e.attempt, e.delay) for e in reconnects] == [(0, 0.0), (0, 0.0)]
    assert not h.completed


def test_stop_cancels_a_pending_reconnect() -> None:
    h = Harness(no_jitter())
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].fail(refused()))
    h.at(1.5, h.stop)
    h.scheduler.start()
    assert len(h.sockets) == 1


def test_stop_closes_the_current_socket_and_ignores_its_late_close() -> None:
    h = Harness(no_jitter())
    h.at(0, h.start)
    h.at(1, h.stop)
    h.at(2, lambda: h.sockets[-1].fail(ConnectionDropped("late", code=1000)))
    h.scheduler.start()
    assert h.sockets[0].closed
    assert len(h.sockets) == 1
    assert not h.events


def test_zero_retries_gives_up_after_one_attempt() -> None:
    h = Harness(no_jitter(max_retries=0))
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].fail(refused()))
    h.scheduler.start()
    assert len(h.sockets) == 1
    assert h.received == [GIVE_UP_MESSAGE]


@pytest.mark.parametrize("attempt", range(1, 12))
def test_jittered_delay_stays_within_bounds(attempt: int) -> None:
    policy = ReconnectPolicy(retry_delay=0.5, max_retry_delay=20.0, rng=random.Random(attempt))
    for _ in range(200):
        delay = policy.delay(attempt)
        assert 0.5 <= delay <= 20.0
        assert delay >= min(20.0, 0.5 * 2 ** (attempt - 1))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"max_retries": 1.5}, {"retry_delay": -1}, {"max_retry_delay": -2}],
)
def test_policy_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ReconnectPolicy(**kwargs)


# -- the classifier: retry now, back off, or end at once -------------------------------------


def test_repeated_server_shutdown_without_data_ends_in_the_give_up() -> None:
    h = Harness(no_jitter(max_retries=3))
    h.at(0, h.start)
    for i in range(10):
        h.at(1 + i * 100, lambda: h.sockets[-1].fail(ServerShutdown("bye")))
    h.scheduler.start()
    # The first goodbye is free; the next three are retried with backoff; then the give-up.
    assert len(h.sockets) == 1 + 1 + 3
    delays = [e.delay for e in h.events if isinstance(e, Reconnecting)]
    assert delays == [0.0, 1.0, 2.0, 4.0]
    assert h.received == [GIVE_UP_MESSAGE]
    assert h.completed
    assert h.terminated
    gave_up = [e for e in h.events if isinstance(e, GaveUp)]
    assert [e.attempts for e in gave_up] == [3]


def test_going_away_close_reconnects_at_once() -> None:
    # 1001 is how Binance (and FakeBinance's max_connection_age) end a connection at 24 h.
    h = Harness(no_jitter(max_retries=5, retry_delay=7.0))
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].deliver({"e": "trade"}))
    h.at(2, lambda: h.sockets[-1].fail(ConnectionDropped("going away", code=1001)))
    h.scheduler.advance_to(2.0)
    assert h.opened_at == [0, 2]


@pytest.mark.parametrize("status", [451, 404, 403, 400])
def test_a_4xx_handshake_refusal_is_fatal_at_once(status: int) -> None:
    h = Harness(no_jitter(max_retries=5))
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].fail(HandshakeError("refused", status=status, url="ws://x")))
    h.scheduler.start()
    assert len(h.sockets) == 1  # no retry, no 30 s of backoff
    assert h.received == []  # not the generic give-up dict
    assert len(h.errors) == 1
    error = h.errors[0]
    assert isinstance(error, HandshakeError)
    assert error.status == status
    assert f"HTTP {status}" in str(error)
    assert "not retried" in str(error)
    assert [type(e) for e in h.events if isinstance(e, (Rejected, Reconnecting))] == [Rejected]
    assert h.terminated


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_a_429_or_5xx_handshake_refusal_is_retried(status: int) -> None:
    h = Harness(no_jitter(max_retries=2))
    h.at(0, h.start)
    for i in range(3):
        h.at(1 + 10 * i, lambda: h.sockets[-1].fail(HandshakeError("busy", status=status)))
    h.scheduler.start()
    assert len(h.sockets) == 3
    assert h.received == [GIVE_UP_MESSAGE]
    assert h.errors == []


def test_a_bug_in_the_read_path_is_fatal_not_retried() -> None:
    h = Harness(no_jitter(max_retries=5))
    h.at(0, h.start)
    h.at(1, lambda: h.sockets[-1].fail(InternalError("the reader crashed: KeyError('x')")))
    h.scheduler.start()
    assert len(h.sockets) == 1
    assert [type(e) for e in h.errors] == [InternalError]
    assert h.terminated


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (ServerShutdown("bye"), Retry.NOW),
        (ConnectionDropped("going away", code=1001), Retry.NOW),
        (ConnectionDropped("abnormal", code=1006), Retry.BACKOFF),
        (ConnectionDropped("normal", code=1000), Retry.BACKOFF),
        (ConnectionDropped("too many requests", code=1008), Retry.BACKOFF),
        (ConnectError("refused"), Retry.BACKOFF),
        (StallError("quiet", timeout=1.0), Retry.BACKOFF),
        (HandshakeError("x", status=429), Retry.BACKOFF),
        (HandshakeError("x", status=503), Retry.BACKOFF),
        (HandshakeError("x", status=451), Retry.FATAL),
        (HandshakeError("x", status=404), Retry.FATAL),
        (BinanceAPIError(status=401, code=-2015, msg="Invalid API-key"), Retry.FATAL),
        (InternalError("bug"), Retry.FATAL),
        (KeyError("bug"), Retry.FATAL),
    ],
)
def test_classify(failure: BaseException, expected: Retry) -> None:
    assert classify(failure) is expected


# -- the last dispose racing a new subscribe ---------------------------------------------------


def test_a_subscribe_during_the_last_dispose_gets_a_new_socket() -> None:
    """The last subscriber leaves; while its socket is being closed (inside close(), on the
    disposing thread) a new subscriber arrives. It must get a fresh socket that stays open,
    never the one being closed. Scripted, so the interleaving is exact, not left to chance."""
    h = Harness(no_jitter())
    late: list[Any] = []
    late_subscription: list[DisposableBase] = []

    def subscribe_while_closing(sock: ScriptedSocket) -> None:
        if late_subscription or h.transport.sockets[0] is not sock:
            return  # only the first socket's close is interleaved
        original_close = sock.close

        def close() -> None:
            # The hub has evicted the key and released its lock before closing: a subscriber
            # arriving now must start afresh.
            late_subscription.append(h.observable.subscribe(late.append))
            original_close()

        sock.close = close  # type: ignore[method-assign]

    h.transport = ScriptedTransport(on_open=subscribe_while_closing)
    h.start()
    first = h.transport.sockets[0]
    first.deliver({"e": "trade", "t": 1})
    h.stop()  # the last dispose: closes `first`, and the late subscriber joins meanwhile
    assert first.closed
    assert len(h.transport.sockets) == 2
    second = h.transport.sockets[1]
    assert second.started
    assert not second.closed
    second.deliver({"e": "trade", "t": 2})
    assert late == [{"e": "trade", "t": 2}]
    assert h.received == [{"e": "trade", "t": 1}]
    late_subscription[0].dispose()
    assert second.closed
    assert h.terminated


# -- make-before-break rollover ---------------------------------------------------------------


def agg(i: int) -> dict[str, Any]:
    return {"e": "aggTrade", "a": i}


def test_rollover_opens_the_new_socket_first_and_switches_when_it_delivers() -> None:
    h = Harness(no_jitter(max_retries=0), rollover_after=100.0)
    h.at(0, h.start)
    h.at(1, lambda: [h.sockets[0].deliver(agg(i)) for i in (1, 2, 3)])
    h.scheduler.advance_to(99.0)
    assert len(h.sockets) == 1
    h.scheduler.advance_to(100.0)  # the age limit: a replacement opens, the old one goes on
    old, new = h.sockets
    assert new.started
    assert not old.closed
    old.deliver(agg(4))
    new.deliver(agg(3))  # the overlap: already delivered by the old socket, dropped
    assert old.closed  # the new one delivered: the old one is closed...
    old.deliver(agg(5))  # ...and whatever it still had in flight is ignored
    new.deliver(agg(4))
    new.deliver(agg(5))
    new.deliver(agg(6))
    assert [m["a"] for m in h.received] == [1, 2, 3, 4, 5, 6]
    rolled = [e for e in h.events if isinstance(e, RolledOver)]
    assert [(e.reason, e.dropped) for e in rolled] == [("age", 2)]
    assert not [e for e in h.events if isinstance(e, Reconnecting)]
    assert not h.completed  # max_retries=0, yet nothing was counted
    h.scheduler.advance_to(200.0)  # the new socket has its own age limit
    assert len(h.sockets) == 3


def test_a_shutdown_notice_rolls_over_at_once_and_the_old_close_is_not_a_failure() -> None:
    h = Harness(no_jitter(max_retries=0))  # no age limit: only the notice
    h.at(0, h.start)
    h.scheduler.advance_to(1.0)
    old = h.sockets[0]
    old.deliver(agg(1))
    old.announce_shutdown()
    old2, new = h.sockets
    assert old2 is old
    old.fail(ServerShutdown("closed after serverShutdown"))  # Binance closes it first
    new.deliver(agg(1))
    new.deliver(agg(2))
    assert [m["a"] for m in h.received] == [1, 2]
    assert not h.completed
    assert not [e for e in h.events if isinstance(e, Reconnecting)]
    assert [e.reason for e in h.events if isinstance(e, RolledOver)] == ["serverShutdown"]


def test_without_make_before_break_a_shutdown_notice_replaces_the_socket_at_once() -> None:
    # A pooled connection's way: no overlap (it could not be de-duplicated across streams).
    h = Harness(no_jitter(max_retries=0), make_before_break=False)
    h.at(0, h.start)
    h.scheduler.advance_to(1.0)
    old = h.sockets[0]
    old.deliver(agg(1))
    old.announce_shutdown()
    assert old.closed  # closed at once, before Binance does
    h.scheduler.advance_to(1.001)  # the reconnect was due at once, not after a delay
    old2, new = h.sockets
    assert old2 is old
    new.deliver(agg(2))
    assert [m["a"] for m in h.received] == [1, 2]
    assert not h.completed  # max_retries=0, yet nothing was counted
    assert not [e for e in h.events if isinstance(e, (Reconnecting, RolledOver))]


def test_a_replacement_that_fails_leaves_the_old_socket_delivering() -> None:
    h = Harness(no_jitter(max_retries=0, retry_delay=5.0), rollover_after=100.0)
    h.at(0, h.start)
    h.scheduler.advance_to(100.0)
    old, new = h.sockets
    new.fail(ConnectError("refused"))
    old.deliver(agg(1))  # straight through again
    assert [m["a"] for m in h.received] == [1]
    assert not old.closed
    assert not h.completed
    h.scheduler.advance_to(105.0)  # tried again after the retry delay
    assert len(h.sockets) == 3


def test_old_then_replacement_failing_during_a_rollover_still_reconnects() -> None:
    # A mass drop during a rollover: the old socket ends first (the replacement takes over),
    # then the replacement fails too. The stream must reconnect, not fall silent.
    h = Harness(no_jitter(max_retries=5, retry_delay=1.0), rollover_after=100.0)
    h.at(0, h.start)
    h.scheduler.advance_to(100.0)
    old, new = h.sockets
    old.fail(ConnectionDropped("drop", code=1006))
    new.fail(ConnectionDropped("drop", code=1006))
    h.scheduler.advance_to(101.0)
    assert len(h.sockets) == 3  # reconnected after the retry delay
    h.sockets[2].deliver(agg(1))
    assert [m["a"] for m in h.received] == [1]
    assert not h.completed
