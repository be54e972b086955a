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

Items wait in a :class:`~rxbinance._reactive.bounded.BoundedBuffer`, the queue
``rxbinance.operators.observe_on_bounded`` uses too: the source's thread appends to it under a
short lock and never blocks; the consumer, when it finds nothing waiting, awaits a wake-up that
the next item posts to the loop with ``loop.call_soon_threadsafe`` (safe from any thread). So the
loop gets one callback per wake-up, not one per item. Nothing here starts, runs or stops an
event loop: it uses the one that is running, so it works unchanged inside Jupyter's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from reactivex import Observable

from rxbinance._reactive.bounded import (
    BoundedBuffer,
    BoundedStatistics,
    OverflowPolicy,
    check_bound,
)
from rxbinance._reactive.delivery import ERROR, NEXT
from rxbinance.errors import QueueOverflow

__all__ = ["ObservableIterator", "QueueOverflow", "aiter"]

T = TypeVar("T")

Overflow = OverflowPolicy  # the name this module used first


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
    down by the consumer: items wait in a queue until the consumer takes them.

    - ``maxsize=0`` (the default): the queue is unbounded, like ``ops.observe_on``. A consumer
      slower than the stream makes it grow without bound (latency and memory), so keep the
      body of the loop fast or use a bound.
    - ``maxsize=N``: at most N items wait. When an item arrives to a full queue, ``overflow``
      decides, as for :func:`rxbinance.operators.observe_on_bounded` (the same queue):
      ``"error"`` ends the iteration with :class:`QueueOverflow` (raised once the N waiting
      items were consumed; the subscription is disposed at once); ``"drop_oldest"`` drops the
      oldest waiting item to make room, so the consumer always sees the latest N (right for
      books and tickers, where only the latest matters; wrong for trades); ``"latest"`` drops
      every waiting item, so the consumer skips the backlog and gets the newest item next.

    The bound counts items handed over by the source's thread, whether or not the loop has run
    since. :meth:`ObservableIterator.statistics` tells how many were delivered and dropped.

    Must be iterated on one event loop, from coroutines of that loop (it is not thread-safe on
    the consuming side, like an ``asyncio.Queue``).
    """
    check_bound(maxsize, overflow, unbounded=True)
    return ObservableIterator(source, maxsize=maxsize, overflow=overflow)


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
        buffer = self._channel.buffer
        state = "closed" if buffer.closed else f"{buffer.statistics().queued} waiting"
        return f"<ObservableIterator {state}>"

    def statistics(self) -> BoundedStatistics:
        """A frozen snapshot of the queue: items ``queued``, ``delivered`` to the loop body,
        ``dropped`` by the overflow policy, its ``high_water`` mark. From any thread."""
        return self._channel.buffer.statistics()

    async def __anext__(self) -> T:
        channel = self._channel
        if channel.loop is None:
            channel.start(self._source)
        buffer = channel.buffer
        while (entry := buffer.take()) is None:
            # Idle now: the next entry the source hands over posts a wake-up to the loop.
            if buffer.closed:
                raise StopAsyncIteration
            loop = channel.loop
            assert loop is not None
            channel.waiter = loop.create_future()
            try:
                await channel.waiter
            except asyncio.CancelledError:
                buffer.close()
                raise
            finally:
                channel.waiter = None
        kind, value = entry
        if kind == NEXT:
            return value  # type: ignore[no-any-return]
        buffer.close()
        if kind == ERROR:
            raise value
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Dispose the subscription and end the iteration. Idempotent."""
        self._channel.buffer.close()

    def __del__(self) -> None:
        # `break` out of `async for` drops the last reference to the iterator at once on
        # CPython: dispose there, so leaving the loop closes the socket without waiting for a
        # garbage collection (an async generator would only be closed later, by a loop task).
        # This works because nothing the subscription holds refers back to the iterator: the
        # source's observer (the buffer) and its wake-ups reference only the channel.
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.buffer.close()


class _Channel:
    """The buffer between the source's thread and the loop, and the consumer waiting on it."""

    __slots__ = ("buffer", "loop", "waiter")

    def __init__(self, maxsize: int, overflow: Overflow) -> None:
        self.buffer = BoundedBuffer(maxsize, overflow, self._wake)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiter: asyncio.Future[None] | None = None  # loop thread only

    def start(self, source: Observable[Any]) -> None:
        self.loop = asyncio.get_running_loop()
        self.buffer.attach(source)

    def _wake(self) -> None:
        """On the source's thread (the buffer found the consumer idle): wake it on the loop."""
        loop = self.loop
        assert loop is not None  # set before the source was subscribed
        try:
            loop.call_soon_threadsafe(self._wake_on_loop)
        except RuntimeError:  # the loop is closed: nobody will ever consume this
            self.buffer.close()

    def _wake_on_loop(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
