"""Jupyter support: deliver on the notebook's event loop, switch between simulator and Binance,
and show the latest item of a stream in one output that redraws in place.

.. code-block:: python

    import rxbinance
    from rxbinance.jupyter import connect, live_display

    LIVE = False                     # True: Binance; False: the embedded simulator, no network
    streams = connect(live=LIVE)     # subscribers are called on this notebook's event loop
    view = live_display(rxbinance.order_book(streams, "BTCUSDT"))   # a live HTML ladder
    book = await view.wait(20)       # a bounded wait: the cell ends, the display keeps going
    view.dispose()
    streams.close()

Why a scheduler: a Jupyter kernel runs an asyncio event loop on its main thread, and every cell
runs on that loop (which is why ``await`` works at the top level of a cell). rxbinance reads
each socket on its own thread, so by default callbacks run there, concurrently with the cell
and with the display machinery. Delivering on the loop instead makes every callback run on the
main thread, one at a time, between cells and ``await`` points: callbacks may update displays,
widgets and DataFrames the cells also use, with no lock. Nothing here starts, runs, nests or
patches an event loop (no ``asyncio.run``, no ``run_until_complete``, no ``nest_asyncio``) and
nothing blocks the loop's thread waiting for a socket: the loop stays the kernel's.

- :func:`notebook_scheduler`: the one argument, ``BinanceStreams(scheduler=notebook_scheduler())``;
- :func:`connect`: that, on the embedded simulator (``live=False``) or on Binance (``live=True``);
- :func:`on_loop`: an operator moving any Observable's items onto the loop (for
  :attr:`BinanceStreams.events`, which is emitted on reader threads, or for your own sources);
- :func:`live_display`: one output that shows the latest item, redrawn at most every
  ``every`` seconds, and an ``await``-able count of what arrived.

Two rules for cells, because callbacks run on the loop the cell runs on: wait with ``await``
(``await view.wait(n)``, ``async for ... in rxbinance.aiter(...)``, ``await
asyncio.wait_for(observable.pipe(ops.take(n), ops.to_list()), timeout)``), never with a blocking
call (``time.sleep``, ``Observable.run()``, ``threading.Event.wait``): the loop cannot deliver
while the cell blocks it, so a blocking wait for data deadlocks the kernel.

:func:`live_display` needs IPython (the ``notebook`` extra: ``pip install
'rxbinance[notebook]'``); the rest only the standard library. ``connect(live=False)`` imports
:mod:`rxbinance.testing` for the simulator, when called.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from rxbinance._reactive.delivery import ScheduledDelivery
from rxbinance.errors import InvalidInputError
from rxbinance.streams import BinanceStreams

if TYPE_CHECKING:
    from rxbinance.testing import FakeBinance

__all__ = [
    "DisplayTarget",
    "LiveDisplay",
    "NotebookStreams",
    "connect",
    "live_display",
    "notebook_scheduler",
    "on_loop",
]

log = logging.getLogger("rxbinance.jupyter")

T = TypeVar("T")

_NO_LOOP = (
    "needs a running asyncio event loop: call it in a notebook cell (the Jupyter kernel runs "
    "one) or in a coroutine"
)


def _running_loop(what: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(f"{what} {_NO_LOOP}") from None


def notebook_scheduler(
    loop: asyncio.AbstractEventLoop | None = None,
) -> AsyncIOThreadSafeScheduler:
    """A reactivex scheduler that runs its work on ``loop`` (default: the running loop).

    .. code-block:: python

        streams = BinanceStreams(scheduler=notebook_scheduler())   # in a notebook cell

    Work can be scheduled from any thread: it is handed over with
    ``loop.call_soon_threadsafe``, which wakes the loop and never blocks the caller (the socket
    reader). With it as ``BinanceStreams(scheduler=...)``, every subscriber of the streams and
    of the pipelines built on them (:func:`rxbinance.order_book`,
    :func:`rxbinance.klines_with_history`, :func:`rxbinance.best_bid_ask`) is called on the
    loop's thread, in order; one that raises is logged and stays subscribed.

    This is reactivex's ``AsyncIOThreadSafeScheduler``, not ``AsyncIOScheduler``: the latter
    does not wake the loop when work comes from another thread, so items would sit unseen.
    Raises ``RuntimeError`` when ``loop`` is None and no loop is running in this thread (a plain
    script: there, leave ``scheduler`` out and callbacks run on the reader threads).
    """
    if loop is None:
        loop = _running_loop("notebook_scheduler()")
    return AsyncIOThreadSafeScheduler(loop)


def on_loop(
    loop: asyncio.AbstractEventLoop | None = None,
) -> Callable[[Observable[T]], Observable[T]]:
    """An operator: the same items, delivered on ``loop`` (default: the loop running now).

    .. code-block:: python

        streams.events.pipe(on_loop()).subscribe(lambda event: log.append(event))

    Like ``ops.observe_on(notebook_scheduler())`` (order kept, unbounded queue, the source
    never slowed down) with one difference: a subscriber that raises is logged and stays
    subscribed, where ``observe_on`` would leave its queue stuck and deliver nothing more.
    Disposing drops what is still queued. The loop is looked up when ``on_loop()`` is called
    (``RuntimeError`` if none is running and ``loop`` is None).

    For a stream that may outrun the notebook, bound the queue instead:
    ``rbo.observe_on_bounded(notebook_scheduler(), 1000, "latest")`` delivers on the same loop
    and drops what a slow cell cannot take (see :func:`rxbinance.operators.observe_on_bounded`).
    """
    scheduler = notebook_scheduler(loop)

    def operator(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            target = ScheduledDelivery(observer, scheduler, "on_loop()")
            subscription = source.subscribe(target, scheduler=subscribe_scheduler)

            def dispose() -> None:
                target.dispose()
                subscription.dispose()

            return Disposable(dispose)

        return reactivex.create(subscribe)

    return operator


# ------------------------------------------------------------------------------------------
# The simulator / live switch


class NotebookStreams(BinanceStreams):
    """The :class:`~rxbinance.BinanceStreams` that :func:`connect` returns.

    Everything of BinanceStreams, plus:

    - ``live``: True when connected to Binance, False on the embedded simulator;
    - ``simulator``: the :class:`rxbinance.testing.FakeBinance` serving the simulated market
      (None when live), to inspect it (``streams.simulator.trades("BTCUSDT")``) or inject
      faults (``streams.simulator.drop_connections()``);
    - :meth:`close` also stops the simulator.
    """

    def __init__(self, *, live: bool, simulator: FakeBinance | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.live = live
        self.simulator = simulator

    def close(self) -> None:
        """Close every socket and subscriber (:meth:`BinanceStreams.close`), then stop the
        simulator if there is one. Idempotent."""
        try:
            super().close()
        finally:
            if self.simulator is not None:
                self.simulator.stop()

    def __repr__(self) -> str:
        """Where the streams go, then one line per live stream (its
        :meth:`~rxbinance.StreamStatistics.summary`: rate, lag, age, reconnects, gaps)."""
        where = "Binance" if self.live else "the embedded simulator (synthetic market)"
        head = f"<NotebookStreams on {where}, market={self.market!r}, ws_url={self.ws_url!r}>"
        lines = [f"  {stats.summary()}" for stats in self.statistics().values()]
        return "\n".join([head, *lines])


def connect(
    live: bool = False,
    *,
    scheduler: abc.SchedulerBase | Literal["loop"] | None = "loop",
    speed: float = 5.0,
    warmup: float = 300.0,
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "BNBBTC"),
    seed: int = 0,
    **options: Any,
) -> NotebookStreams:
    """Streams for a notebook: on Binance (``live=True``) or on the embedded simulator.

    .. code-block:: python

        LIVE = False
        streams = connect(live=LIVE)   # the same code runs on either

    ``live=False`` (the default) starts a :class:`rxbinance.testing.FakeBinance` on 127.0.0.1
    and points the streams at it: no network needed. Its synthetic market (``symbols``, a
    random walk seeded by ``seed``: same seed, same market) is first run for ``warmup``
    seconds of market time (about 1 ms of CPU per market second), so REST history (klines,
    trades) exists from the start, and then runs ``speed`` times faster than real time (the
    default 5: a ``1s`` candle closes every 0.2 s, a ``1m`` one every 12 s). Its market time
    starts at the wall clock and then runs ahead of it by that factor. It keeps the last hour
    of market time (order book changes, trades) for REST.

    ``live=True`` connects to Binance (``market``, ``api_key`` and the other
    :class:`~rxbinance.BinanceStreams` settings go in ``options``); nothing connects before
    the first subscription. ``speed``, ``warmup``, ``symbols`` and ``seed`` only concern the
    simulator.

    ``scheduler``: ``"loop"`` (the default) delivers on the running event loop
    (:func:`notebook_scheduler`; ``RuntimeError`` if none runs in this thread), None on the
    socket reader threads, or any reactivex scheduler. ``options`` go to BinanceStreams; with
    the simulator, ``ws_url``, ``rest_url`` and ``ws_api_url`` are its own (passing them raises
    ``ValueError``). Close the result (or use it as a context manager) to close the sockets and
    stop the simulator.
    """
    if not isinstance(live, bool):
        raise InvalidInputError(f"live must be True or False, got {live!r}")
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0 < speed < math.inf:
        raise InvalidInputError(f"invalid speed {speed!r}: a number > 0 (1 is real time)")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or not 0 <= warmup <= 3600:
        raise InvalidInputError(f"invalid warmup {warmup!r}: seconds of market time, 0 to 3600")
    resolved: abc.SchedulerBase | None
    if isinstance(scheduler, str):
        if scheduler != "loop":
            raise InvalidInputError(
                f"invalid scheduler {scheduler!r}: 'loop', None or a reactivex scheduler"
            )
        resolved = notebook_scheduler()
    else:
        resolved = scheduler
    if isinstance(symbols, str):
        raise InvalidInputError(
            f"symbols must be a sequence of symbols, not one string {symbols!r}"
        )
    if live:
        return NotebookStreams(live=True, scheduler=resolved, **options)
    fixed = sorted({"ws_url", "rest_url", "ws_api_url"} & options.keys())
    if fixed:
        raise InvalidInputError(
            f"{', '.join(fixed)}: the simulator's own URLs are used with live=False"
        )
    simulator = _start_simulator(symbols=symbols, seed=seed, speed=speed, warmup=warmup)
    try:
        return NotebookStreams(
            live=False,
            simulator=simulator,
            scheduler=resolved,
            ws_url=simulator.ws_url,
            rest_url=simulator.rest_url,
            ws_api_url=simulator.ws_api_url,
            **options,
        )
    except BaseException:
        simulator.stop()
        raise


def _start_simulator(
    *, symbols: Sequence[str], seed: int, speed: float, warmup: float
) -> FakeBinance:
    # Imported here: rxbinance.testing pulls in the websockets server, which only the
    # simulator needs (and the library proper never imports testing).
    from rxbinance.testing import FakeBinance, Market

    tick_ms = 100  # the simulator's market tick; FakeBinance's tick_interval is its real period
    ticks = round(warmup * 1000 / tick_ms)
    market = Market(
        tuple(symbols),
        seed=seed,
        start_time_ms=int(time.time() * 1000) - ticks * tick_ms,
        tick_ms=tick_ms,
        # An hour of market time (the longest warm-up): about 13 MB a symbol once full, where
        # the default (5.5 h) would let a notebook left open grow to about 70 MB a symbol.
        history_ticks=36_000,
    )
    for _ in range(ticks):
        market.step(())  # nobody listens yet: this only builds the history REST serves
    simulator = FakeBinance(market=market, tick_interval=tick_ms / 1000 / speed)
    simulator.start()
    return simulator


# ------------------------------------------------------------------------------------------
# Live display


class DisplayTarget(Protocol):
    """Where :func:`live_display` draws: anything with ``update(obj)``, such as the
    ``IPython.display.DisplayHandle`` that ``display(obj, display_id=True)`` returns."""

    def update(self, obj: Any) -> None: ...


def _ipython_target() -> DisplayTarget:
    try:
        # Optional: imported only when a live display is asked for (and typed Any: no stubs).
        display_module = importlib.import_module("IPython.display")
    except ImportError as exc:
        raise ModuleNotFoundError(
            "live_display() needs IPython: pip install 'rxbinance[notebook]'", name="IPython"
        ) from exc
    placeholder = display_module.HTML("<i>rxbinance: waiting for the first item…</i>")
    handle = display_module.display(placeholder, display_id=True)
    if handle is None:  # IPython.display.display outside an IPython shell: it only printed
        raise RuntimeError(
            "live_display() draws in IPython or Jupyter; elsewhere pass target= (an object "
            "with update(obj))"
        )
    target: DisplayTarget = handle
    return target


def live_display(
    source: Observable[T],
    *,
    every: float = 0.25,
    render: Callable[[T], Any] | None = None,
    target: DisplayTarget | None = None,
) -> LiveDisplay[T]:
    """Show the latest item of ``source`` in one output that redraws in place.

    .. code-block:: python

        view = live_display(rxbinance.order_book(streams, "BTCUSDT"))   # an HTML ladder
        await view.wait(50)   # the cell waits for 50 books (the display keeps updating)
        view.dispose()        # stop: the last book drawn stays on screen

    Subscribes at once and shows, in the output of the cell that called it, the latest item
    (``render(item)`` if given, e.g. ``lambda df: df.tail(10)``), through IPython's rich display:
    an :class:`~rxbinance.OrderBook` or a model as an HTML table, a DataFrame as a table, a
    matplotlib figure as a picture. The display updates at most once every ``every`` seconds
    (items in between are counted, and only the latest is drawn: a fast stream costs one
    redraw per period, not one per item), and at once when the source ends.

    Runs on the running event loop, whichever thread ``source`` emits on; must be called on
    the loop's thread (a notebook cell, a coroutine). A ``render`` or a draw that raises is
    logged and the next item is drawn as usual. The display stops when ``source`` ends or on
    :meth:`LiveDisplay.dispose`. ``target``: where to draw (default: a new IPython display,
    ``display(..., display_id=True)``; ``RuntimeError`` outside IPython).
    """
    if isinstance(every, bool) or not isinstance(every, (int, float)) or not 0 <= every < math.inf:
        raise InvalidInputError(f"invalid every {every!r}: seconds >= 0")
    loop = _running_loop("live_display()")
    view = LiveDisplay[T](
        loop, target if target is not None else _ipython_target(), render, float(every)
    )
    view._start(source)
    return view


class LiveDisplay(Generic[T]):
    """What :func:`live_display` returns: the display's state, a wait, and its off switch.

    Attributes (read them on the loop's thread):
        received: items that arrived so far.
        drawn: how many times the display was redrawn.
        latest: the latest item, or None before the first.
        error: the exception ``source`` ended with, or None.
        done: True once ``source`` ended or the display was disposed.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        target: DisplayTarget,
        render: Callable[[T], Any] | None,
        every: float,
    ) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()  # created on the loop's thread
        self._target = target
        self._render = render
        self._every = every
        self.received = 0
        self.drawn = 0
        self.latest: T | None = None
        self.error: Exception | None = None
        self.done = False
        self._drawn_upto = 0  # `received` at the last draw
        self._last_draw = -math.inf  # loop.time() of the last draw
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: list[tuple[int, asyncio.Future[T]]] = []
        self._subscription: abc.DisposableBase | None = None

    def __repr__(self) -> str:
        state = "done" if self.done else "live"
        return f"<LiveDisplay {state}: {self.received} received, {self.drawn} drawn>"

    # -- public --------------------------------------------------------------------------

    async def wait(self, count: int) -> T:
        """Wait until ``count`` items arrived in total (since the start) and return the latest.

        Returns at once if that many already arrived. Raises the source's exception if it
        failed first, and ``EOFError`` if it completed or the display was disposed first. Bound
        it: ``await asyncio.wait_for(view.wait(n), timeout)``.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInputError(f"invalid count {count!r}: an int >= 1")
        if self.received >= count:
            return self.latest  # type: ignore[return-value]  # received >= 1: an item
        if self.done:
            raise self._ended(count)
        future: asyncio.Future[T] = self._loop.create_future()
        self._waiters.append((count, future))
        try:
            return await future
        finally:
            self._waiters = [(n, f) for n, f in self._waiters if f is not future]

    def dispose(self) -> None:
        """Unsubscribe and stop redrawing (what is on screen stays). Idempotent; call it on the
        loop's thread. Pending :meth:`wait` calls raise ``EOFError``."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.dispose()
        if not self.done:
            self._end(None)

    # -- internals -----------------------------------------------------------------------

    def _start(self, source: Observable[T]) -> None:
        subscription = source.subscribe(
            lambda item: self._hand_over(self._on_next, item),
            lambda error: self._hand_over(self._on_error, error),
            lambda: self._hand_over(self._on_completed, None),
        )
        if self.done:  # ended during subscribe
            subscription.dispose()
        else:
            self._subscription = subscription

    def _hand_over(self, handler: Callable[[Any], None], value: Any) -> None:
        # From the source's thread: run `handler` on the loop's thread.
        if threading.get_ident() == self._loop_thread:
            handler(value)
            return
        try:
            self._loop.call_soon_threadsafe(handler, value)
        except RuntimeError:  # the loop is closed: nobody will ever look at this display
            subscription, self._subscription = self._subscription, None
            if subscription is not None:
                subscription.dispose()

    def _on_next(self, item: T) -> None:
        if self.done:
            return
        self.latest = item
        self.received += 1
        self._wake()
        if self._timer is not None:
            return  # a draw is already due: it will show this item
        delay = self._last_draw + self._every - self._loop.time()
        if delay <= 0:
            self._draw()
        else:
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.done and self._drawn_upto < self.received:
            self._draw()

    def _on_error(self, error: Exception) -> None:
        if not self.done:
            self._end(error)

    def _on_completed(self, _: Any) -> None:
        if not self.done:
            self._end(None)

    def _end(self, error: Exception | None) -> None:
        self.done = True
        self.error = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._drawn_upto < self.received:
            self._draw()  # the final state, without waiting for the period
        for count, future in self._waiters:
            if not future.done():
                future.set_exception(self._ended(count))

    def _ended(self, count: int) -> BaseException:
        if self.error is not None:
            return self.error
        return EOFError(f"the display ended after {self.received} of {count} items")

    def _wake(self) -> None:
        for count, future in self._waiters:
            if count <= self.received and not future.done():
                future.set_result(self.latest)  # type: ignore[arg-type]  # an item arrived

    def _draw(self) -> None:
        self._drawn_upto = self.received
        self._last_draw = self._loop.time()
        try:
            item = self.latest
            shown = self._render(item) if self._render is not None else item  # type: ignore[arg-type]
            self._target.update(shown)
        except Exception:
            log.exception("live_display: drawing an item failed; the next one is drawn anyway")
            return
        self.drawn += 1
