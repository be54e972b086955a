"""A local order book kept in sync with Binance's, as a hot, shared Observable.

Layers: :class:`~rxbinance.protocol.book.BookSync` owns the rules (buffering, snapshot
alignment, gaps); :class:`~rxbinance.pipelines._book.PersistentBook` stores the book so that
every emitted :class:`OrderBook` is immutable and free to take; this module owns the I/O around
them: the diff depth subscription, the REST snapshot fetches (on a worker thread, throttled by
the shared :class:`~rxbinance._reactive.budget.WeightBudget`), reconnects, and sharing.

Threads: diff events are handled on the depth socket's reader thread (or the streams'
scheduler). Snapshots are fetched on one daemon worker thread per book
(``rxbinance-book:<SYMBOL>``) that exists only while there is something to fetch or report, so
the reader never waits for REST. Both feed ``BookSync`` under one lock and post the books to the
book's hub entry under it; the entry delivers them after the lock is released, in the order
posted, so subscribers receive books one at a time, in update-id order, and never run under a
lock of the book.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from reactivex import Observable, abc

from rxbinance._reactive.budget import WeightBudget
from rxbinance._reactive.context import StreamsContext
from rxbinance._reactive.hub import Sink
from rxbinance._reactive.reconnect import retry_after
from rxbinance.errors import InvalidInputError, ProtocolError
from rxbinance.events import (
    BookResyncing,
    BookSnapshotFailed,
    BookSynced,
    Connected,
    ConnectionEvent,
    Disconnected,
    Gap,
)
from rxbinance.models import DepthUpdate, ParseError, parser_for
from rxbinance.pipelines._book import Level, OrderBook, PersistentBook
from rxbinance.pipelines._rest import DepthClient
from rxbinance.protocol import names
from rxbinance.protocol.book import BookSync, BookSyncStatistics, SyncAction, read_diff
from rxbinance.protocol.frames import give_up_error, is_give_up
from rxbinance.protocol.limits import check_depth_limit, depth_weight

if TYPE_CHECKING:
    from rxbinance.streams import BinanceStreams

__all__ = ["order_book", "order_book_statistics"]

log = logging.getLogger("rxbinance.pipelines")

# A hub key: ("order_book", SYMBOL, limit, speed), and the depth source when it is not the
# streams' own socket.
_BookKey = tuple[Any, ...]

_UPDATED = SyncAction.UPDATED  # a global's lookup is cheaper than an enum attribute's


def order_book(
    streams: BinanceStreams,
    symbol: str,
    limit: int = 1000,
    speed: int = 100,
    *,
    rest: DepthClient | None = None,
    budget: WeightBudget | None = None,
    depth: Observable[Any] | None = None,
) -> Observable[OrderBook]:
    """The local order book of ``symbol``: an Observable of :class:`OrderBook`, one per change.

    .. code-block:: python

        book = rxbinance.order_book(streams, "BTCUSDT")
        book.subscribe(lambda b: print(b.update_id, b.best_bid, b.best_ask, b.spread))

    **Algorithm** (Binance's, via :class:`~rxbinance.protocol.book.BookSync`): subscribe to the
    diff depth stream (``<symbol>@depth@100ms``, or ``@depth`` for ``speed=1000``) and buffer;
    on the first event fetch ``GET /api/v3/depth?limit=<limit>``; refetch while the snapshot
    is older than the first buffered event; drop the events it already contains; the first
    applied event must straddle its ``lastUpdateId``; then apply every event in order
    (quantity 0 removes a level). USD-M streams (``BinanceStreams(market="usdm...")``) use the
    ``pu`` chain instead.

    **Resync.** A gap in the update ids, a crossed book, a malformed diff event, or a
    disconnect of the depth socket discards the book of that symbol only, and it syncs again
    from a new snapshot. Until then nothing is emitted: no book is ever stale, crossed or
    half-applied. :attr:`BinanceStreams.events` tells what happens:
    :class:`~rxbinance.events.BookResyncing` (with the reason),
    :class:`~rxbinance.events.BookSynced`, :class:`~rxbinance.events.BookSnapshotFailed`.

    **REST.** Snapshots come from ``rest`` (default: ``streams.rest``), fetched on a worker
    thread, never on the socket's reader. Each one first takes its request weight (``limit``
    1000 costs 50 on spot) from ``budget`` (default: the one :func:`rest_budget` of the
    streams, shared by every book and pipeline of ``streams``), so a mass resync is spread out
    instead of getting the IP banned; a 429/418 pauses that budget for its ``Retry-After``.
    Failed fetches are retried with a growing delay (0.1 s doubling to 30 s).

    **Sharing.** Hot and ref-counted like every stream: one book per (symbol, limit, speed) per
    BinanceStreams, however many subscribers. The first subscriber starts it, the last dispose
    stops it (and its depth subscription), and a later subscriber starts afresh. A subscriber
    joining a synced book receives the current book at once, and then only newer ones.

    **Ending.** When the depth stream gives up reconnecting, subscribers get ``on_error`` with
    a :class:`~rxbinance.errors.ConnectionFailure` naming the stream; when the streams are
    closed, they complete. Subscribing after :meth:`BinanceStreams.close` gives ``on_error``
    (:class:`~rxbinance.errors.StreamsClosed`) at once. A book that cannot start (no REST
    client) ends its subscribers with that error and leaves nothing behind: the next subscriber
    tries again.

    **Threads.** Books are emitted on the depth socket's reader thread, or on the snapshot
    worker thread (``rxbinance-book:<SYMBOL>``) for the first book after a sync, one at a
    time, or on the streams' ``scheduler`` if it has one. A subscriber that raises is logged
    and stays subscribed.

    **Another source.** ``depth``: the diff depth messages to follow instead of the streams'
    own ``<symbol>@depth`` socket, e.g. consumed from Redis
    (``rxbinance.bridge.consume(url, "rxbinance:btcusdt@depth")``, raw payloads): the
    algorithm, snapshots (from ``rest``) and events are the same; a message the source missed
    (a ``Gap`` in it, or a hole in the update ids) resyncs the book. Such a book is shared per
    source Observable, not per symbol.

    ``limit``: snapshot depth, spot 1-5000 (1000 covers what most strategies look at; levels
    beyond the snapshot are unknown until they change), USD-M 5/10/20/50/100/500/1000.
    ``speed``: the diff stream's period in ms: spot 100 or 1000, USD-M 100, 250 or 500. Bad
    values raise ValueError now, naming the allowed ones.
    """
    context = streams.context
    futures = context.product == "usdm"
    try:
        stream_name = names.depth_stream_for(context.product, symbol, None, speed)
    except InvalidInputError as exc:  # the allowed speeds differ per market: say which
        raise InvalidInputError(f"{exc} (market {context.market!r})") from None
    check_depth_limit(limit, context.product)
    upper = stream_name.partition("@")[0].upper()
    key: _BookKey = ("order_book", upper, limit, speed)
    if depth is None:
        depth = streams.depth(upper, speed=speed)
    else:
        key = (*key, depth)  # one book per source

    source = depth

    def make() -> _BookConnection:
        # Runs for the first subscriber: a REST client that cannot be had (no rest_url) fails
        # that subscriber, and leaves nothing behind in the hub.
        return _BookConnection(
            context,
            key,
            depth=source,
            stream_name=stream_name,
            futures=futures,
            rest=rest if rest is not None else context.rest(),
            budget=budget if budget is not None else context.budget,
        )

    return context.hub.observable(key, make, name=f"the {upper} order book")


def order_book_statistics(streams: BinanceStreams) -> dict[str, BookSyncStatistics]:
    """A snapshot of the counters of every live book of ``streams``, keyed
    ``"<SYMBOL>/<limit>/<speed>"`` (``"BTCUSDT/1000/100"``; ``"BTCUSDT/1000/100/<n>"`` for
    books of another ``depth`` source, numbered): state, update id, events received, applied
    and ignored, snapshots fetched and rejected, resyncs."""
    result = {}
    others = 0
    for entry in streams.context.hub.entries():
        book = entry.source
        if isinstance(book, _BookConnection):
            _, symbol, limit, speed, *source = book.key
            name = f"{symbol}/{limit}/{speed}"
            if source:
                others += 1
                name = f"{name}/{others}"
            result[name] = book.statistics()
    return result


# --------------------------------------------------------------------------------------------
# One live book: a hub source


class _BookConnection:
    """One symbol's book: BookSync + PersistentBook, fed by the depth stream and a worker.

    A hub source: books are posted to the hub entry under ``_lock`` (so their order is the
    order of the book's states, whichever thread made them) and delivered by ``sink.flush()``
    after the lock is released, so no subscriber runs under it. The latest book is the entry's
    current state: a subscriber joining a synced book receives it first.
    """

    def __init__(
        self,
        context: StreamsContext,
        key: _BookKey,
        *,
        depth: Observable[Any],
        stream_name: str,
        futures: bool,
        rest: DepthClient,
        budget: WeightBudget,
    ) -> None:
        self.key = key
        _, self.symbol, self.limit, _speed, *_source = key
        self.stream_name = stream_name
        self._context = context
        self._depth = depth
        self._rest = rest
        self._budget = budget
        self._weight = depth_weight(self.limit, "usdm" if futures else "spot")
        self._parse = parser_for(stream_name)
        self._lock = threading.RLock()  # guards everything below
        self._sink: Sink[OrderBook] | None = None
        self._sync = BookSync(self.symbol, futures=futures)
        self._book = PersistentBook()
        self._sync.book = self._book  # same interface; its states can be kept for free
        self._announced = False  # BookSynced posted for the current sync
        self._generation = 0  # bumped when the book is discarded: older fetches are stale
        self._need_snapshot = False
        self._snapshots = 0  # snapshots fetched for the current sync
        self._failures = 0  # consecutive failed or unusable snapshot fetches
        self._last_event_time: int | None = None
        # Book events go out through one FIFO drained by the worker only: never while holding
        # self._lock (events subscribers run on the emitting thread).
        self._outbox: collections.deque[ConnectionEvent] = collections.deque()
        self._worker: threading.Thread | None = None
        self._stopped = False
        self._stop_event = threading.Event()
        self._subscriptions: list[abc.DisposableBase] = []

    # -- lifecycle (the hub's Source protocol) -----------------------------------------------

    def start(self, sink: Sink[OrderBook]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._sink = sink
            self._post_resyncing("start")
        # Events first, so that no Connected of the depth socket can be missed.
        subscriptions = [
            self._context.events.subscribe(self._on_connection_event),
            self._depth.subscribe(self._on_depth, self._on_source_error, self._on_source_completed),
        ]
        with self._lock:
            if not self._halted():  # (a method: mypy would keep the narrowing from above)
                self._subscriptions = subscriptions
                return
        for subscription in subscriptions:  # it ended while subscribing (closed streams)
            subscription.dispose()

    def _halted(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """The last subscriber left: unsubscribe; an in-flight fetch is discarded."""
        for subscription in self._halt() or ():
            subscription.dispose()

    def _halt(self) -> list[abc.DisposableBase] | None:
        """Mark the book stopped (waking the worker); its subscriptions, or None if it already
        was. Call without the lock."""
        with self._lock:
            if self._stopped:
                return None
            self._stopped = True
            self._stop_event.set()
            subscriptions, self._subscriptions = self._subscriptions, []
            return subscriptions

    def _terminate(self, error: Exception | None) -> None:
        subscriptions = self._halt()
        if subscriptions is None:
            return
        if self._sink is not None:
            self._sink.end(error)
        for subscription in subscriptions:
            subscription.dispose()

    def statistics(self) -> BookSyncStatistics:
        with self._lock:
            return self._sync.statistics()

    # -- sources -----------------------------------------------------------------------------

    def _on_depth(self, message: Any) -> None:
        # The hot path: a plain depthUpdate of our symbol that continues the synced book goes
        # from the decoded dict straight into the book, its levels parsed as they are applied,
        # with no model object in between. Everything else (a Gap, the give-up message, events
        # buffered during a sync, stale or gapped ones, a malformed or unusual payload, another
        # symbol) takes the model's path below, which handles it exactly as before.
        if message.__class__ is dict:
            fields = read_diff(message)
            if fields is not None and fields[0] == self.symbol:
                _, event_time, first, final, prev_final, bids, asks = fields
                handled = False
                with self._lock:
                    if self._stopped:
                        return
                    sync = self._sync
                    if sync.admits(first, final, prev_final):
                        try:
                            self._book.apply_json(bids, asks)
                        except (ValueError, TypeError, ArithmeticError):
                            pass  # a bad level, nothing applied: the model's path names it
                        else:
                            self._last_event_time = event_time
                            action = sync.applied(final)
                            if action is _UPDATED and self._announced:
                                # The steady state, inlined: the book is at u, emit its view.
                                sink = self._sink
                                if sink is not None:
                                    view = self._book.view(self.symbol, final, event_time)
                                    sink.post(view, current=True)
                            else:
                                self._act(action)
                            handled = True
                if handled:  # deliver what was posted, after the lock
                    sink = self._sink
                    if sink is not None:
                        sink.flush()
                    return
        if type(message) is Gap:
            return  # the next event shows BookSync the same hole: it resyncs from a snapshot
        if is_give_up(message):
            self._terminate(give_up_error(message, self.stream_name))
            return
        try:
            event = self._parse(message)
        except ParseError as exc:
            log.warning("%s: malformed diff depth event, resyncing: %s", self.stream_name, exc)
            with self._lock:
                if not self._stopped:
                    self._discard(f"malformed diff event: {exc}")
            return
        if not isinstance(event, DepthUpdate):
            log.warning("%s: unexpected %s ignored", self.stream_name, type(event).__name__)
            return
        with self._lock:
            if self._stopped:
                return
            self._last_event_time = event.event_time
            try:
                action = self._sync.on_event(event)
            except ValueError as exc:  # another symbol's event: cannot happen on this stream
                log.warning("%s: %s", self.stream_name, exc)
                return
            self._act(action)
        self._flush()

    def _act(self, action: SyncAction) -> None:
        """Do what BookSync asked after a diff event (under ``_lock``)."""
        if action is SyncAction.UPDATED:
            self._publish()
        elif action is SyncAction.FETCH_SNAPSHOT:
            self._need_snapshot = True
            self._ensure_worker()
        elif action is SyncAction.RESYNC:
            self._resync(self._sync.reason or "resync")

    def _on_connection_event(self, event: ConnectionEvent) -> None:
        # Any thread; posts events to the outbox, never emits from here.
        if event.stream != self.stream_name:
            return
        if isinstance(event, (Disconnected, Connected)):
            with self._lock:
                if self._stopped or self._sync.state == "waiting_for_event":
                    return  # nothing to discard (the first Connected, or already reset)
                self._discard("disconnected" if isinstance(event, Disconnected) else "reconnect")

    def _on_source_error(self, error: Exception) -> None:
        self._terminate(error)

    def _on_source_completed(self) -> None:
        self._terminate(None)

    # -- state changes (under self._lock) ------------------------------------------------------

    def _publish(self) -> None:
        update_id = self._sync.update_id
        assert update_id is not None  # UPDATED means synced
        book = self._book.view(self.symbol, update_id, self._last_event_time)
        if not self._announced:
            self._announced = True
            self._failures = 0
            self._post(
                BookSynced(
                    self.stream_name,
                    time.time(),
                    symbol=self.symbol,
                    update_id=update_id,
                    snapshots=self._snapshots,
                )
            )
        if self._sink is not None:
            self._sink.post(book, current=True)  # delivered by _flush(), after the lock

    def _flush(self) -> None:
        """Deliver the posted books, in order: call without holding ``_lock``."""
        if self._sink is not None:
            self._sink.flush()

    def _discard(self, reason: str) -> None:
        """Forget the book and the buffer: the next diff event starts a new sync."""
        self._sync.reset()
        self._need_snapshot = False
        self._invalidate(reason)

    def _resync(self, reason: str) -> None:
        """BookSync discarded the book but kept its buffer: fetch a new snapshot now."""
        self._invalidate(reason)
        self._need_snapshot = True
        self._ensure_worker()

    def _invalidate(self, reason: str) -> None:
        self._generation += 1
        if self._sink is not None:
            self._sink.forget_current()  # a late joiner must not get a book of the old sync
        self._snapshots = 0
        if self._announced:
            self._announced = False
            self._post_resyncing(reason)

    def _post_resyncing(self, reason: str) -> None:
        self._post(BookResyncing(self.stream_name, time.time(), symbol=self.symbol, reason=reason))

    def _post(self, event: ConnectionEvent) -> None:
        self._outbox.append(event)
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._worker is None and not self._stopped:
            worker = self._context.new_thread(self._work, f"rxbinance-book:{self.symbol}")
            self._worker = worker
            worker.start()

    # -- the worker --------------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        return self._context.rest_retry.delay(failures) if failures > 0 else 0.0

    def _work(self) -> None:
        while True:
            self._drain()
            with self._lock:
                if self._stopped:
                    self._worker = None
                    self._outbox.clear()
                    return
                if self._outbox:
                    continue
                if not self._need_snapshot:
                    self._worker = None
                    return
                self._need_snapshot = False
                generation = self._generation
                delay = self._backoff(self._failures)
            if delay and self._stop_event.wait(delay):
                continue
            self._fetch(generation)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    return
                event = self._outbox.popleft()
            self._context.emit_event(event)

    def _fetch(self, generation: int) -> None:
        if not self._budget.acquire(self._weight, self._stop_event):
            return  # stopped while waiting for weight
        try:
            body = self._rest.depth(self.symbol, limit=self.limit)
            last_update_id, bids, asks = _parse_snapshot(body)
        except Exception as exc:
            self._budget.refund(self._weight, exc)  # a refused connection costs no weight
            pause = retry_after(exc)
            if pause is not None:
                self._budget.pause(pause)  # per IP: every book of these streams waits
            with self._lock:
                if self._stopped:
                    return
                self._failures += 1
                retry_in = max(pause or 0.0, self._backoff(self._failures))
                if generation == self._generation:
                    self._need_snapshot = True
                self._post(
                    BookSnapshotFailed(
                        self.stream_name,
                        time.time(),
                        symbol=self.symbol,
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in=retry_in,
                    )
                )
            log.warning("%s: depth snapshot failed: %r", self.symbol, exc)
            return
        with self._lock:
            if self._stopped or generation != self._generation:
                return  # the book was discarded meanwhile; a newer request is under way
            self._snapshots += 1
            action = self._sync.on_snapshot(last_update_id, bids, asks)
            if action is SyncAction.UPDATED:
                self._publish()
            elif action is SyncAction.FETCH_SNAPSHOT:  # older than the buffered events
                self._failures += 1
                self._need_snapshot = True
                self._post(
                    BookSnapshotFailed(
                        self.stream_name,
                        time.time(),
                        symbol=self.symbol,
                        error=self._sync.reason or "snapshot too old",
                        retry_in=self._backoff(self._failures),
                    )
                )
            elif action is SyncAction.RESYNC:
                self._failures += 1
                self._resync(self._sync.reason or "snapshot does not continue the events")
        self._flush()


def _parse_snapshot(body: Any) -> tuple[int, list[Level], list[Level]]:
    """``{"lastUpdateId", "bids", "asks"}`` -> (id, bids, asks) with Decimal levels."""
    try:
        last_update_id = body["lastUpdateId"]
        if isinstance(last_update_id, bool) or not isinstance(last_update_id, int):
            raise TypeError("lastUpdateId is not an integer")
        bids = [(Decimal(p), Decimal(q)) for p, q, *_ in body["bids"]]
        asks = [(Decimal(p), Decimal(q)) for p, q, *_ in body["asks"]]
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ProtocolError(f"malformed depth snapshot: {exc!r}") from exc
    return last_update_id, bids, asks
