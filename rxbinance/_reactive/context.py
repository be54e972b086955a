"""What a pipeline needs of the BinanceStreams it builds on, handed over explicitly.

A pipeline (an order book, klines with history, a user's own) gets one :class:`StreamsContext`
from ``streams.context`` and uses nothing else of the streams but their public stream methods:
no private attributes, no side tables keyed by the streams object. This is the edge between
the facade and what is built on it, as httpx hands a transport to a client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from reactivex import Observable

from rxbinance._reactive.bounded import DropCounters
from rxbinance._reactive.budget import WeightBudget
from rxbinance._reactive.hub import Hub
from rxbinance._reactive.reconnect import ReconnectPolicy
from rxbinance.events import ConnectionEvent
from rxbinance.protocol.endpoints import Product

if TYPE_CHECKING:
    from rxbinance.rest import Client

__all__ = ["REST_RETRY", "StreamsContext", "Threads"]

#: The backoff of REST retries (order book snapshots, kline backfill): 0.1 s doubling to 30 s,
#: jittered. The same ReconnectPolicy as sockets; only the numbers differ (its ``max_retries``
#: is not used: a snapshot is retried until the book is disposed).
REST_RETRY = ReconnectPolicy(max_retries=0, retry_delay=0.1, max_retry_delay=30.0)


class Threads:
    """Every thread a BinanceStreams starts for pipelines, so that ``close()`` can join them.

    Threads are named, daemon, and must end by themselves once the streams close (their
    streams complete). Sockets' reader threads are tracked the same way (:meth:`track`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def new_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A named daemon thread, not yet started, that ``close()`` joins."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.track(thread)
        return thread

    def track(self, thread: threading.Thread) -> None:
        """Join ``thread`` (started elsewhere, e.g. a socket's reader) at ``close()``."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def join_all(self, timeout: float) -> None:
        """Join every thread but the calling one, within ``timeout`` seconds in total."""
        with self._lock:
            threads, self._threads = self._threads, []
        current = threading.current_thread()
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not current and thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))


class StreamsContext:
    """The services of one BinanceStreams that pipelines share.

    - ``hub``: the keyed, ref-counted hub every stream, book and user socket lives in (a
      pipeline registers its own shared entries there, under keys of its own);
    - ``market``, ``product`` (``"spot"`` or ``"usdm"``);
    - ``events``: ``BinanceStreams.events``; ``emit_event(event)`` adds an event to it (call it
      without holding a lock: subscribers run on the calling thread);
    - ``new_thread(target, name)``: a named daemon worker thread that ``close()`` joins;
    - ``rest()``: the REST client (created on first use; raises if it cannot be, e.g. a
      ``ws_url`` without ``rest_url``);
    - ``budget``: the :class:`WeightBudget` every REST call of every pipeline draws from
      (assignable: :func:`rxbinance.set_rest_budget`);
    - ``rest_retry``: the backoff of REST retries;
    - ``drops``: items dropped by bounded delivery, per stream key
      (:func:`rxbinance.operators.observe_on_bounded` with ``streams=``), for statistics.
    """

    __slots__ = (
        "budget",
        "drops",
        "emit_event",
        "events",
        "hub",
        "market",
        "new_thread",
        "product",
        "rest",
        "rest_retry",
    )

    def __init__(
        self,
        *,
        hub: Hub,
        market: str,
        product: Product,
        events: Observable[ConnectionEvent],
        emit_event: Callable[[ConnectionEvent], None],
        new_thread: Callable[[Callable[[], None], str], threading.Thread],
        rest: Callable[[], Client],
        budget: WeightBudget,
        rest_retry: ReconnectPolicy = REST_RETRY,
        drops: DropCounters | None = None,
    ) -> None:
        self.hub = hub
        self.market = market
        self.product = product
        self.events = events
        self.emit_event = emit_event
        self.new_thread = new_thread
        self.rest = rest
        self.budget = budget
        self.rest_retry = rest_retry
        self.drops = DropCounters() if drops is None else drops

    def __repr__(self) -> str:
        return f"<StreamsContext market={self.market!r}>"
