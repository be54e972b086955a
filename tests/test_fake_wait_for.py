"""fake.wait_for returns as soon as its predicate holds, also when the predicate reads the
client's state, which no notification of the server's ever announces.

No test here times how fast anything is: each waits with a generous timeout and checks that
the wait ended before that timeout ran out (the bug was a wait that always ran it out, then
reported success), or that a predicate that never holds ends in TimeoutError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from rxbinance.testing import FakeBinance
from tests.conftest import rxbinance_threads

GENEROUS = 30.0


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None) as server:
        yield server


def test_a_list_a_subscriber_fills_ends_the_wait_before_the_timeout(fake: FakeBinance) -> None:
    """The README's own example: wait on a list the subscriber fills."""
    with fake.streams() as streams:
        seen: list[dict[str, object]] = []
        sub = streams.trades("BTCUSDT").subscribe(seen.append)
        fake.wait_for_connections(1, stream="btcusdt@trade")
        for _ in range(200):  # the market trades on some ticks only
            if len(fake.trades("BTCUSDT")) >= 3:
                break
            fake.step()
        deadline = time.monotonic() + GENEROUS
        assert fake.wait_for(lambda f: len(seen) >= 3, timeout=GENEROUS) is None
        assert time.monotonic() < deadline, "the wait ran out its timeout"
        assert len(seen) >= 3
        assert seen[:3] == fake.trades("BTCUSDT")[:3]
        sub.dispose()
    assert not rxbinance_threads()


def test_a_change_no_server_event_follows_ends_the_wait(fake: FakeBinance) -> None:
    """The client's state changes after the predicate was first found false, and the server
    does nothing afterwards: only the poll can see it."""
    filled: list[int] = []
    first_look = threading.Event()

    def filled_in(f: FakeBinance) -> bool:
        first_look.set()
        return bool(filled)

    def fill() -> None:
        if first_look.wait(GENEROUS):
            filled.append(1)

    filler = threading.Thread(target=fill, name="test-filler", daemon=True)
    filler.start()
    deadline = time.monotonic() + GENEROUS
    fake.wait_for(filled_in, timeout=GENEROUS)
    assert time.monotonic() < deadline, "the wait ran out its timeout"
    assert filled == [1]
    filler.join(GENEROUS)
    assert not filler.is_alive()


def test_a_predicate_on_the_clients_state_that_never_holds_times_out(
    fake: FakeBinance,
) -> None:
    seen: list[object] = []

    def three_trades(f: FakeBinance) -> bool:
        return len(seen) >= 3

    with pytest.raises(TimeoutError, match=r"wait_for\(three_trades\) still false after 0.05 s"):
        fake.wait_for(three_trades, timeout=0.05)
    assert seen == []


def test_a_predicate_already_true_returns_without_waiting(fake: FakeBinance) -> None:
    # timeout=0: the predicate is looked at once before any deadline applies.
    fake.wait_for(lambda f: f.open_connections == (), timeout=0)
    with pytest.raises(TimeoutError):
        fake.wait_for(lambda f: f.open_connections != (), timeout=0)
