"""Shared fixtures: a FakeBinance per test, and a BinanceStreams pointed at it.

Also the rule that no test skips in CI: CI installs '.[dev]', which brings every optional
dependency a test can ask for (pandas, cryptography, the notebook kernel...), so a skip there
means a test silently stopped testing. Under ``CI`` (set by CI services, ``CI=true``), a skip,
at collection or in a test, is reported as a failure that gives the skip's reason. Outside CI a
skip stays a skip (``-ra`` lists it), so a partial install can still run what it can.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
import websocket

from rxbinance import BinanceStreams
from rxbinance.testing import FakeBinance


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def fail_a_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skip (not an xfail, which pytest also reports as skipped) into a failure."""
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI ({reason}): CI installs '.[dev]' and runs every test; "
            "a test that cannot run there is a failure, not a skip"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, Any]:
    report = yield
    fail_a_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, Any]:
    report = yield
    fail_a_skip_in_ci(report)
    return report


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    """A paused FakeBinance: the market moves only when the test calls ``fake.step()``, and
    scripted payloads go out with ``fake.publish()``."""
    with FakeBinance(tick_interval=None) as server:
        yield server


@pytest.fixture
def streams(fake: FakeBinance) -> Iterator[BinanceStreams]:
    with BinanceStreams(
        ws_url=fake.ws_url,
        rest_url=fake.rest_url,
        retry_delay=0.05,
        max_retry_delay=0.2,
        stall_timeout=5.0,
    ) as client:
        yield client
    assert not rxbinance_threads(), "close() left threads behind"


def rxbinance_threads() -> list[threading.Thread]:
    """Reader threads still alive (timer threads exit on their own when idle)."""
    return [t for t in threading.enumerate() if t.name.startswith("rxbinance:")]


class Collector:
    """Collects what an Observable emits and lets a test wait for it without sleeping."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = False
        self.threads: list[str] = []
        self._cond = threading.Condition()

    def on_next(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self.threads.append(threading.current_thread().name)
            self._cond.notify_all()

    def on_error(self, error: Exception) -> None:
        with self._cond:
            self.errors.append(error)
            self._cond.notify_all()

    def on_completed(self) -> None:
        with self._cond:
            self.completed = True
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(
                    f"timed out; items={self.items[-5:]!r} errors={self.errors!r} "
                    f"completed={self.completed}"
                )

    def wait_count(self, n: int, timeout: float = 10.0) -> None:
        self.wait_for(lambda c: len(c.items) >= n, timeout)

    def wait_completed(self, timeout: float = 10.0) -> None:
        self.wait_for(lambda c: c.completed, timeout)


@pytest.fixture
def sockets() -> Iterator[list[websocket.WebSocket]]:
    """Raw websocket-client connections a test opens (to FakeBinance), closed after it."""
    opened: list[websocket.WebSocket] = []
    yield opened
    for ws in opened:
        ws.close(timeout=0.1)
        ws.shutdown()  # close() is a no-op once websocket-client answered a server close
