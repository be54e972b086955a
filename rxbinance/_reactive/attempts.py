"""One budget of connection attempts per host, shared by every connection of the process.

Binance allows 300 connection attempts per 5 minutes per IP (spot and the WebSocket API;
binance-protocol.md 2) and bans the IP of whoever keeps exceeding it. One reconnect storm of a
process with hundreds of sockets would be enough, so every socket the library opens, first
connections and reconnects alike, takes an attempt from :func:`attempts_for` its host first,
and waits when the window is full.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["DEFAULT_ATTEMPTS", "ConnectionAttempts", "attempts_for"]

#: (attempts, seconds): under Binance's 300 per 5 minutes, with room for the WS API's own.
DEFAULT_ATTEMPTS = (280, 300.0)


class ConnectionAttempts:
    """A sliding window of at most ``limit`` connection attempts per ``window`` seconds.

    :meth:`reserve` takes an attempt now and returns 0, or, when the window is full, takes
    nothing and returns how many seconds until an attempt frees up. Thread-safe, never blocks.

    An attempt is kept a little longer than ``window`` (1%, at least 50 ms): the server counts
    it when the handshake arrives, a moment after it was taken here, and a first handshake
    slower than a later one must not put one attempt too many in the server's window.
    """

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._span = window + max(0.05, 0.01 * window)
        self._clock = clock
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self.taken = 0  # attempts taken so far
        self.delayed = 0  # reservations that had to wait

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            times = self._times
            while times and times[0] <= now - self._span:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                self.taken += 1
                return 0.0
            self.delayed += 1
            return max(0.001, times[0] + self._span - now)

    def __repr__(self) -> str:
        return f"ConnectionAttempts({self.limit} per {self.window:g} s, taken={self.taken})"


_registry: dict[tuple[str, int, float], ConnectionAttempts] = {}
_registry_lock = threading.Lock()


def attempts_for(url: str, limit: int, window: float) -> ConnectionAttempts:
    """The process-wide budget of ``url``'s host (and port) for this limit."""
    parts = urlsplit(url)
    key = (f"{parts.hostname}:{parts.port}", limit, window)
    with _registry_lock:
        budget = _registry.get(key)
        if budget is None:
            budget = _registry[key] = ConnectionAttempts(limit, window)
        return budget
