"""Reconnection timing in virtual time: the supervisor of one stream key, driven through the
transport seam (a scripted socket) and reactivex's TestScheduler. No real time passes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observer
from reactivex.testing import TestScheduler

from rxbinance._reactive.reconnect import GIVE_UP_MESSAGE, ReconnectPolicy
from rxbinance._reactive.shared import SharedConnection
from rxbinance.errors import ConnectError, ConnectionDropped, ConnectionFailure, ServerShutdown
from rxbinance.events import ConnectionEvent, GaveUp, Reconnecting


class ScriptedSocket:
    """A transport socket whose fate the test decides."""

    def __init__(self, on_message: Callable[[Any], None], on_closed: Callable[..., None]) -> None:
        self.messages = 0
        self.started = False
        self.closed = False
        self._on_message = on_message
        self._on_closed = on_closed

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True

    def join(self, timeout: float | None = None) -> None:
        pass

    def deliver(self, message: Any) -> None:
        self.messages += 1
        self._on_message(message)

    def fail(self, failure: ConnectionFailure) -> None:
        self._on_closed(failure)


class Harness:
    def __init__(self, policy: ReconnectPolicy) -> None:
        self.scheduler = TestScheduler()
        self.sockets: list[ScriptedSocket] = []
        self.opened_at: list[float] = []
        self.events: list[ConnectionEvent] = []
        self.received: list[Any] = []
        self.completed = False
        self.terminated = False

        def open_socket(url: str, *, key: str, on_message: Any, on_event: Any, on_closed: Any):
            sock = ScriptedSocket(on_message, on_closed)
            self.sockets.append(sock)
            self.opened_at.append(self.scheduler.clock)
            return sock

        def on_terminated(_: SharedConnection) -> None:
            self.terminated = True

        self.connection = SharedConnection(
            "btcusdt@trade",
            "ws://unused/ws/btcusdt@trade",
            open_socket=open_socket,
            policy=policy,
            timer_scheduler=self.scheduler,
            emit_event=self.events.append,
            on_terminated=on_terminated,
        )

        def unexpected(error: Exception) -> None:
            raise AssertionError(f"unexpected error {error!r}")

        def completed() -> None:
            self.completed = True

        self.connection.fanout.add(Observer(self.received.append, unexpected, completed))

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
    h.at(0, h.connection.start)
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
    h.at(10, h.connection.start)
    h.at(11, lambda: h.sockets[-1].fail(refused()))
    h.scheduler.advance_to(12.999)
    assert len(h.sockets) == 1
    h.scheduler.advance_to(13.0)
    assert len(h.sockets) == 2
    assert h.opened_at == [10, 13.0]


def test_delay_is_capped() -> None:
    h = Harness(no_jitter(max_retries=10, retry_delay=1.0, cap=5.0))
    h.at(0, h.connection.start)
    for i in range(8):
        h.at(1000 * (i + 1), lambda: h.sockets[-1].fail(refused()))
    h.scheduler.start()
    delays = [e.delay for e in h.events if isinstance(e, Reconnecting)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_data_resets_the_failure_count() -> None:
    h = Harness(no_jitter(max_retries=2))
    h.at(0, h.connection.start)
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
    h.at(0, h.connection.start)
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
    h.at(0, h.connection.start)
    h.at(1, lambda: h.sockets[-1].fail(refused()))
    h.at(1.5, h.connection.stop)
    h.scheduler.start()
    assert len(h.sockets) == 1


def test_stop_closes_the_current_socket_and_ignores_its_late_close() -> None:
    h = Harness(no_jitter())
    h.at(0, h.connection.start)
    h.at(1, h.connection.stop)
    h.at(2, lambda: h.sockets[-1].fail(ConnectionDropped("late", code=1000)))
    h.scheduler.start()
    assert h.sockets[0].closed
    assert len(h.sockets) == 1
    assert not h.events


def test_zero_retries_gives_up_after_one_attempt() -> None:
    h = Harness(no_jitter(max_retries=0))
    h.at(0, h.connection.start)
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
