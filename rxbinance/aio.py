"""The asyncio bridge: ``async for`` over any Observable.

.. code-block:: python

    import asyncio
    import rxbinance

    async def main() -> None:
        with rxbinance.BinanceStreams() as streams:
            async for trade in rxbinance.aiter(streams.trades("BTCUSDT")):
                print(trade["p"])
                if float(trade["q"]) > 1:
                    break  # disposes the subscription: the socket closes

    asyncio.run(main())  # in Jupyter: `await main()` in a cell; the running loop is used

Items cross from the socket's reader thread to the event loop with
``loop.call_soon_threadsafe``, which is safe from any thread and never blocks the reader.
Nothing here starts, runs or stops an event loop: it uses the one that is running, so it works
unchanged inside Jupyter's.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator
from typing import Any, Generic, Literal, TypeVar

from reactivex import Observable, abc

from rxbinance.errors import InvalidInputError, QueueOverflow

__all__ = ["ObservableIterator", "QueueOverflow", "aiter"]

T = TypeVar("T")

Overflow = Literal["error", "drop_oldest"]


def aiter(
    source: Observable[T],
    *,
    maxsize: int = 0,
    overflow: Overflow = "error",
) -> ObservableIterator[T]:
    """Iterate over ``source`` with ``async for``, on the running event loop.

    .. code-block:: python

        async for book in rxbinance.aiter(rxbinance.order_book(streams, "BTCUSDT"),
                                          maxsize=1, overflow="drop_oldest"):
            print(book.spread)  # always the latest book; stale ones are skipped

    **Lifetime.** The subscription starts at the first ``__anext__`` (creating the iterator
    subscribes nothing) and is disposed when the iteration ends: ``source`` completed (the loop
    ends) or failed (its exception is raised from the ``async for``, once the items before it
    were consumed); the loop is left early with ``break``, ``return`` or an exception (on
    CPython the iterator is released at once, which disposes the subscription; call
    :meth:`ObservableIterator.aclose` or use ``async with rxbinance.aiter(...) as items:`` to
    make this explicit on any Python); or the task awaiting the next item is cancelled. That
    includes a per-item ``asyncio.wait_for(items.__anext__(), t)`` that times out: put a
    timeout around the whole loop (``async with asyncio.timeout(t):``) instead.

    **Buffering.** ``source`` emits on its own thread (the socket's reader) and is never slowed
    down by the consumer: items wait in a queue on the event loop's thread.

    - ``maxsize=0`` (the default): the queue is unbounded, like ``ops.observe_on``. A consumer
      slower than the stream makes it grow without bound (latency and memory), so keep the
      body of the loop fast or use a bound.
    - ``maxsize=N``: at most N items wait. When an item arrives to a full queue,
      ``overflow="error"`` ends the iteration with :class:`QueueOverflow` (raised once the N
      waiting items were consumed; the subscription is disposed at once), and
      ``overflow="drop_oldest"`` drops the oldest waiting item to make room, so the consumer
      always sees the latest N (right for books and tickers, where only the latest matters;
      wrong for trades).

    The bound counts items that reached the loop's thread; items the reader handed over while
    the loop was busy are counted when the loop runs their hand-over callbacks.

    Must be iterated on one event loop, from coroutines of that loop (it is not thread-safe on
    the consuming side, like an ``asyncio.Queue``).
    """
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
        raise InvalidInputError(f"invalid maxsize {maxsize!r}: an int >= 0 (0 is unbounded)")
    if overflow not in ("error", "drop_oldest"):
        raise InvalidInputError(
            f"invalid overflow {overflow!r}: allowed are 'error', 'drop_oldest'"
        )
    return ObservableIterator(source, maxsize=maxsize, overflow=overflow)


_NEXT, _ERROR, _DONE = 0, 1, 2


class ObservableIterator(AsyncIterator[T], Generic[T]):
    """The async iterator returned by :func:`aiter` (see there for the semantics).

    Also an async context manager: ``async with aiter(obs) as items:`` disposes the
    subscription on exit, however the block is left.
    """

    def __init__(self, source: Observable[T], *, maxsize: int, overflow: Overflow) -> None:
        self._source = source
        self._channel = _Channel(maxsize, overflow)

    def __aiter__(self) -> ObservableIterator[T]:
        return self

    async def __aenter__(self) -> ObservableIterator[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        channel = self._channel
        state = "closed" if channel.disposed else f"{len(channel.queue)} waiting"
        return f"<ObservableIterator {state}>"

    async def __anext__(self) -> T:
        channel = self._channel
        if channel.loop is None:
            channel.start(self._source)
        queue = channel.queue
        while not queue:
            if channel.ended:
                raise StopAsyncIteration
            loop = channel.loop
            assert loop is not None
            channel.waiter = loop.create_future()
            try:
                await channel.waiter
            except asyncio.CancelledError:
                channel.close()
                raise
            finally:
                channel.waiter = None
        kind, value = queue.popleft()
        if kind == _NEXT:
            return value  # type: ignore[no-any-return]
        channel.close()
        if kind == _ERROR:
            raise value
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Dispose the subscription and end the iteration. Idempotent."""
        self._channel.close()

    def __del__(self) -> None:
        # `break` out of `async for` drops the last reference to the iterator at once on
        # CPython: dispose there, so leaving the loop closes the socket without waiting for a
        # garbage collection (an async generator would only be closed later, by a loop task).
        # This works because nothing the subscription holds refers back to the iterator: the
        # source's observer and the hand-over callbacks reference only the channel.
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.dispose()


class _Channel:
    """The queue between the source's thread and the loop, and the subscription."""

    __slots__ = (
        "disposed",
        "ended",
        "lock",
        "loop",
        "maxsize",
        "overflow",
        "queue",
        "subscription",
        "waiter",
    )

    def __init__(self, maxsize: int, overflow: Overflow) -> None:
        self.maxsize = maxsize
        self.overflow = overflow
        self.loop: asyncio.AbstractEventLoop | None = None
        # Loop-thread state: the queue of (kind, value), and the consumer waiting for it.
        self.queue: collections.deque[tuple[int, Any]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.ended = False  # a terminal entry is queued, or the iterator was closed
        # Touched from the source's thread too: `disposed` stops hand-overs at once.
        self.lock = threading.Lock()
        self.disposed = False
        self.subscription: abc.DisposableBase | None = None

    def start(self, source: Observable[Any]) -> None:
        self.loop = asyncio.get_running_loop()
        subscription = source.subscribe(self.on_next, self.on_error, self.on_completed)
        with self.lock:
            if not self.disposed:
                self.subscription = subscription
                return
        subscription.dispose()  # closed (or overflowed) during subscribe

    def close(self) -> None:
        """On the loop's thread: end the iteration and dispose."""
        self.ended = True
        self.queue.clear()
        self.dispose()

    def dispose(self) -> None:
        """From any thread. Idempotent."""
        with self.lock:
            self.disposed = True
            subscription, self.subscription = self.subscription, None
        if subscription is not None:
            subscription.dispose()

    def _hand_over(self, kind: int, value: Any) -> None:
        """On the source's thread: queue the item on the loop's thread."""
        loop = self.loop
        if self.disposed or loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._put, kind, value)
        except RuntimeError:  # the loop is closed: nobody will ever consume this
            self.dispose()

    def on_next(self, value: Any) -> None:
        self._hand_over(_NEXT, value)

    def on_error(self, error: Exception) -> None:
        self._hand_over(_ERROR, error)

    def on_completed(self) -> None:
        self._hand_over(_DONE, None)

    def _put(self, kind: int, value: Any) -> None:
        """On the loop's thread."""
        if self.ended:
            return
        if kind != _NEXT:
            self.ended = True
        elif self.maxsize and len(self.queue) >= self.maxsize:
            if self.overflow == "drop_oldest":
                self.queue.popleft()
            else:
                self.ended = True
                self.dispose()
                kind, value = _ERROR, QueueOverflow(self.maxsize)
        self.queue.append((kind, value))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
