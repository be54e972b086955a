"""rxbinance.jupyter (delivery on the event loop, connect, live_display) and the HTML reprs.

Each async test runs in its own ``asyncio.run``: the loop plays the notebook kernel's. Waits
are asyncio Events set by callbacks that run on that loop, bounded by ``asyncio.wait_for``: if
a callback ran on another thread, the Event would not wake the loop and the wait would time
out, so these tests fail (never hang) when delivery leaves the loop.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import pytest
import reactivex.operators as ops
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler
from reactivex.subject import Subject

import rxbinance
import rxbinance.operators as rbo
from rxbinance import BinanceStreams
from rxbinance.jupyter import (
    LiveDisplay,
    NotebookStreams,
    connect,
    live_display,
    notebook_scheduler,
    on_loop,
)
from rxbinance.models import AccountPosition, AggTrade, DepthUpdate, Trade, parse
from rxbinance.pipelines._book import PersistentBook
from rxbinance.testing import FakeBinance

WAIT = 15.0  # generous: a loaded machine is slow, never wrong


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 4 * WAIT))


def streams_on(fake: FakeBinance, **kwargs: Any) -> BinanceStreams:
    return BinanceStreams(
        ws_url=fake.ws_url, rest_url=fake.rest_url, retry_delay=0.05, stall_timeout=5.0, **kwargs
    )


def simulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FakeBinance")]


# ------------------------------------------------------------------------------------------
# notebook_scheduler


def test_notebook_scheduler_delivers_socket_messages_on_the_loop_thread(
    fake: FakeBinance,
) -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        scheduler = notebook_scheduler()
        assert isinstance(scheduler, AsyncIOThreadSafeScheduler)
        received: list[dict[str, Any]] = []
        threads: set[int] = set()
        enough = asyncio.Event()

        def on_trade(message: dict[str, Any]) -> None:
            threads.add(threading.get_ident())
            received.append(message)
            if len(received) == 30:
                enough.set()  # an asyncio.Event: only wakes the loop from the loop's thread

        with streams_on(fake, scheduler=scheduler) as streams:
            subscription = streams.trades("BTCUSDT").subscribe(on_trade)
            await asyncio.to_thread(fake.wait_for_connections, 1, stream="btcusdt@trade")
            # The socket is read by its own thread: that is where messages come from.
            assert any(t.name == "rxbinance:btcusdt@trade" for t in threading.enumerate())
            sent: list[Any] = []
            while len(sent) < 30:
                sent += [p for s, p in await asyncio.to_thread(fake.step, 5) if "@trade" in s]
            await asyncio.wait_for(enough.wait(), WAIT)
            subscription.dispose()
        assert threads == {loop_thread}
        assert received == sent[: len(received)]

    run(main)


def test_a_raising_callback_is_logged_and_delivery_on_the_loop_goes_on(
    fake: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        calls: list[int] = []
        others: list[int] = []
        enough = asyncio.Event()

        def check() -> None:
            if len(others) >= 20 and len(calls) >= 20:
                enough.set()

        def explode(message: dict[str, Any]) -> None:
            calls.append(message["t"])
            check()
            raise ValueError("a notebook bug")

        def count(message: dict[str, Any]) -> None:
            others.append(message["t"])
            check()

        with streams_on(fake, scheduler=notebook_scheduler()) as streams:
            trades = streams.trades("BTCUSDT")
            first = trades.subscribe(explode)
            second = trades.subscribe(count)
            await asyncio.to_thread(fake.wait_for_connections, 1, stream="btcusdt@trade")
            sent = 0
            while sent < 20:
                sent += sum("@trade" in s for s, _ in await asyncio.to_thread(fake.step, 5))
            await asyncio.wait_for(enough.wait(), WAIT)
            first.dispose()
            second.dispose()
        # The raising subscriber got every message (it stayed subscribed), like the other one.
        assert calls[:20] == others[:20]
        assert "raised" in caplog.text
        assert "a notebook bug" in caplog.text

    with caplog.at_level(logging.ERROR):
        run(main)


def test_notebook_scheduler_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        notebook_scheduler()
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(notebook_scheduler(loop), AsyncIOThreadSafeScheduler)
    finally:
        loop.close()


# ------------------------------------------------------------------------------------------
# on_loop


def test_on_loop_moves_items_from_a_thread_onto_the_loop_in_order_guarded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        source = Subject[int]()
        got: list[tuple[int, int]] = []
        done = asyncio.Event()

        def on_next(item: int) -> None:
            got.append((item, threading.get_ident()))
            if item == 3:
                raise RuntimeError("boom in a callback")

        subscription = source.pipe(on_loop()).subscribe(on_next, on_completed=done.set)

        def produce() -> None:
            for i in range(200):
                source.on_next(i)
            source.on_completed()

        producer = threading.Thread(target=produce)
        producer.start()
        await asyncio.wait_for(done.wait(), WAIT)
        producer.join()
        assert [item for item, _ in got] == list(range(200))
        assert {thread for _, thread in got} == {loop_thread}
        assert "boom in a callback" in caplog.text
        subscription.dispose()

    with caplog.at_level(logging.ERROR):
        run(main)


def test_on_loop_dispose_drops_what_is_queued() -> None:
    async def main() -> None:
        source = Subject[int]()
        got: list[int] = []
        subscription = source.pipe(on_loop()).subscribe(got.append)
        source.on_next(1)  # queued for the loop, which has not run yet
        subscription.dispose()
        source.on_next(2)  # after dispose: not even queued
        await asyncio.sleep(0)  # give the loop one turn to run anything that was scheduled
        await asyncio.sleep(0)
        assert got == []
        assert not source.observers

    run(main)


def test_bounded_delivery_on_the_notebook_loop_skips_what_a_busy_cell_cannot_take() -> None:
    # What on_loop's docstring offers for fast streams: observe_on_bounded on the loop.
    async def main() -> None:
        loop_thread = threading.get_ident()
        source = Subject[int]()
        got: list[tuple[int, int]] = []
        done = asyncio.Event()
        bounded = rbo.observe_on_bounded(notebook_scheduler(), 1, "latest")
        source.pipe(bounded).subscribe(
            lambda item: got.append((item, threading.get_ident())), on_completed=done.set
        )

        def produce() -> None:  # while the loop is busy in this cell (the join below)
            for i in range(100):
                source.on_next(i)
            source.on_completed()

        producer = threading.Thread(target=produce)
        producer.start()
        producer.join()  # blocks the loop: nothing is delivered until it returns
        await asyncio.wait_for(done.wait(), WAIT)
        assert got == [(99, loop_thread)]  # the backlog skipped, the latest on the loop
        assert bounded.statistics().dropped == 99

    run(main)


def test_on_loop_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        on_loop()


# ------------------------------------------------------------------------------------------
# connect


def test_connect_offline_runs_a_simulator_with_history_and_delivers_on_the_loop() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        streams = connect(live=False, warmup=120, speed=5)
        try:
            assert isinstance(streams, NotebookStreams)
            assert streams.live is False
            simulator = streams.simulator
            assert simulator is not None
            assert streams.ws_url == simulator.ws_url
            assert streams.rest_url == simulator.rest_url
            assert "simulator" in repr(streams)
            # The warm-up left two minutes of 1 s candles for REST history.
            rows = await asyncio.to_thread(streams.rest.klines, "BTCUSDT", "1s", limit=1000)
            assert 115 <= len(rows) <= 125
            trades = await asyncio.wait_for(
                streams.trades("ETHUSDT").pipe(
                    ops.map(lambda m: (m["s"], threading.get_ident())), ops.take(3), ops.to_list()
                ),
                WAIT,
            )
            assert trades == [("ETHUSDT", loop_thread)] * 3
            # While a stream is live, the repr shows its health, one line per stream.
            heard = asyncio.Event()
            live = streams.trades("BTCUSDT").subscribe(lambda _: heard.set())
            await asyncio.wait_for(heard.wait(), WAIT)
            head, line = repr(streams).splitlines()
            assert "simulator" in head
            assert line.startswith("  btcusdt@trade 1 sub, ")
            assert "0 reconnects" in line
            live.dispose()
        finally:
            streams.close()
        assert repr(simulator) == "<FakeBinance stopped>"
        assert not simulator_threads()

    run(main)


def test_connect_live_makes_binance_streams_without_connecting() -> None:
    async def main() -> None:
        with connect(live=True, market="spot") as streams:
            assert streams.live is True
            assert streams.simulator is None
            assert streams.ws_url == "wss://stream.binance.com:9443"
            assert isinstance(streams.context.hub.scheduler, AsyncIOThreadSafeScheduler)
            assert "Binance" in repr(streams)
            assert not [t for t in threading.enumerate() if t.name.startswith("rxbinance:")]
        with connect(live=True, market="usdm", scheduler=None) as futures:
            assert futures.ws_url == "wss://fstream.binance.com"
            assert futures.context.hub.scheduler is None

    run(main)


def test_connect_rejects_bad_arguments_before_starting_anything() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="live must be True or False"):
            connect(live="no")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="invalid speed"):
            connect(speed=0)
        with pytest.raises(ValueError, match="invalid scheduler 'notebook'"):
            connect(scheduler="notebook")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not one string"):
            connect(symbols="BTCUSDT")
        with pytest.raises(ValueError, match="invalid warmup"):
            connect(warmup=-1)
        with pytest.raises(ValueError, match="ws_url: the simulator's own URLs"):
            connect(ws_url="ws://example.invalid")
        with pytest.raises(ValueError, match="max_retries"):
            connect(max_retries=-1)  # refused by BinanceStreams: the simulator is stopped
        assert not simulator_threads()

    run(main)
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        connect()  # scheduler="loop" outside a loop
    assert not simulator_threads()


def test_connect_without_a_loop_with_scheduler_none_delivers_on_reader_threads() -> None:
    with connect(scheduler=None, warmup=0) as streams:
        got = (
            streams.trades("BTCUSDT")
            .pipe(ops.map(lambda _: threading.current_thread().name), ops.take(2), ops.to_list())
            .run()
        )
        assert got == ["rxbinance:btcusdt@trade"] * 2
    assert not simulator_threads()


# ------------------------------------------------------------------------------------------
# live_display


class Screen:
    """A display target recording what was drawn; ``drawn`` fires on every draw."""

    def __init__(self) -> None:
        self.shown: list[Any] = []
        self.drawn = asyncio.Event()

    def update(self, obj: Any) -> None:
        self.shown.append(obj)
        self.drawn.set()


def test_live_display_draws_the_latest_item_at_most_once_per_period() -> None:
    async def main() -> None:
        source = Subject[int]()
        screen = Screen()
        view = live_display(source, every=0.2, target=screen)
        for i in range(100):  # one burst, within one period
            source.on_next(i)
        assert screen.shown == [0]  # the first item is drawn at once
        assert view.received == 100
        assert await asyncio.wait_for(view.wait(100), WAIT) == 99
        screen.drawn.clear()
        await asyncio.wait_for(screen.drawn.wait(), WAIT)  # the period's end: the latest only
        assert screen.shown == [0, 99]
        assert view.drawn == 2
        source.on_next(100)
        source.on_completed()  # the end draws what is pending without waiting for the period
        assert screen.shown == [0, 99, 100]
        assert view.done
        with pytest.raises(EOFError, match="after 101 of 500 items"):
            await view.wait(500)
        assert not source.observers

    run(main)


def test_live_display_takes_items_from_other_threads_and_renders_them() -> None:
    async def main() -> None:
        source = Subject[int]()
        screen = Screen()
        view = live_display(source, every=0, render=lambda n: f"<b>{n}</b>", target=screen)
        waiting = asyncio.ensure_future(view.wait(50))
        producer = threading.Thread(target=lambda: [source.on_next(i) for i in range(50)])
        producer.start()
        assert await asyncio.wait_for(waiting, WAIT) == 49
        producer.join()
        assert screen.shown[-1] == "<b>49</b>"
        assert view.latest == 49
        view.dispose()
        assert not source.observers
        assert "50 received" in repr(view)

    run(main)


def test_live_display_survives_a_failing_render_and_reports_the_source_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        source = Subject[int]()
        screen = Screen()

        def render(n: int) -> str:
            if n == 1:
                raise ZeroDivisionError("render bug")
            return str(n)

        view = live_display(source, every=0, render=render, target=screen)
        pending = asyncio.ensure_future(view.wait(10))
        for i in range(3):
            source.on_next(i)
        assert screen.shown == ["0", "2"]
        assert "render bug" in caplog.text
        source.on_error(ConnectionError("gone"))
        with pytest.raises(ConnectionError, match="gone"):
            await asyncio.wait_for(pending, WAIT)
        assert isinstance(view.error, ConnectionError)
        assert view.done

    with caplog.at_level(logging.ERROR):
        run(main)


def test_live_display_dispose_ends_pending_waits() -> None:
    async def main() -> None:
        source = Subject[int]()
        view: LiveDisplay[int] = live_display(source, target=Screen())
        pending = asyncio.ensure_future(view.wait(1))
        await asyncio.sleep(0)  # let it start waiting
        view.dispose()
        with pytest.raises(EOFError):
            await asyncio.wait_for(pending, WAIT)
        assert not source.observers
        with pytest.raises(ValueError, match="invalid count"):
            await view.wait(0)

    run(main)


def test_live_display_outside_ipython_asks_for_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("IPython")

    async def main() -> None:
        with pytest.raises(RuntimeError, match="pass target="):
            live_display(Subject[int]())

    run(main)
    capsys.readouterr()  # IPython's display() printed the placeholder outside a shell
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        live_display(Subject[int](), target=Screen())


def test_live_display_without_ipython_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # makes the import fail

    async def main() -> None:
        with pytest.raises(ModuleNotFoundError, match=r"pip install 'rxbinance\[notebook\]'"):
            live_display(Subject[int]())

    run(main)


def test_importing_the_module_pulls_in_neither_the_simulator_nor_ipython() -> None:
    code = "import sys, rxbinance.jupyter; print(sorted(m for m in sys.modules if m in {M}))"
    wanted = {"rxbinance.testing", "IPython", "websockets"}
    out = subprocess.run(
        [sys.executable, "-c", code.replace("{M}", repr(wanted))],
        capture_output=True,
        text=True,
        check=True,
        timeout=WAIT,
    )
    assert out.stdout.strip() == "[]"


def test_live_display_of_an_order_book_on_the_simulator() -> None:
    async def main() -> None:
        screen = Screen()
        with connect(warmup=0) as streams:
            view = live_display(rxbinance.order_book(streams, "BTCUSDT", limit=50), target=screen)
            book = await asyncio.wait_for(view.wait(5), WAIT)
            view.dispose()
        assert book.update_id > 0
        assert screen.shown
        assert all(isinstance(b, rxbinance.OrderBook) for b in screen.shown)
        assert "BTCUSDT" in screen.shown[-1]._repr_html_()

    run(main)


# ------------------------------------------------------------------------------------------
# HTML reprs

TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "<BNB&BTC>",
    "t": 12345,
    "p": "0.00100000",
    "q": "100.5",
    "T": 1672515782136,
    "m": True,
    "M": True,
}


def test_model_html_lists_every_field_with_its_key_and_escapes_values() -> None:
    trade = parse(TRADE)
    assert isinstance(trade, Trade)
    page = trade._repr_html_()
    assert "<caption" in page
    assert "Trade" in page
    assert "&lt;BNB&amp;BTC&gt;" in page
    assert "<BNB" not in page
    for attribute, value in [
        ("trade_id", "12345"),
        ("price", "0.00100000"),
        ("quantity", "100.5"),
        ("buyer_is_maker", "True"),
    ]:
        assert f"<th style='text-align:left'>{attribute}</th>" in page
        assert f">{value}</td>" in page
    assert "<code>p</code>" in page
    assert "1672515782136 <small>(2022-12-31 19:43:02.136 UTC)</small>" in page


def test_model_html_shows_none_levels_and_nested_models() -> None:
    agg = AggTrade.from_dict(
        {
            "e": "aggTrade",
            "E": 1,
            "s": "X",
            "a": 1,
            "p": "1",
            "q": "2",
            "f": 1,
            "l": 1,
            "T": 1,
            "m": False,
        }
    )
    assert agg.quantity_excluding_rpi is None
    assert "<i>None</i>" in agg._repr_html_()

    depth = DepthUpdate.from_dict(
        {
            "e": "depthUpdate",
            "E": 1,
            "s": "X",
            "U": 1,
            "u": 2,
            "b": [[f"{100 - i}.5", "1"] for i in range(12)],
            "a": [],
        }
    )
    page = depth._repr_html_()
    assert "<td>100.5</td>" in page
    assert "<td>91.5</td>" in page  # the 10th level
    assert "<td>90.5</td>" not in page  # the 11th is only counted
    assert "and 2 more" in page
    assert "<i>none</i>" in page  # no asks

    position = AccountPosition.from_dict(
        {
            "e": "outboundAccountPosition",
            "E": 1,
            "u": 2,
            "B": [{"a": "<ETH>", "f": "1.5", "l": "0"}, {"a": "BTC", "f": "0.1", "l": "0.2"}],
        }
    )
    page = position._repr_html_()
    assert page.count("<caption") == 3  # the position and its two balances
    assert "&lt;ETH&gt;" in page
    assert "0.2" in page


def test_model_html_of_a_time_too_large_for_a_date_shows_the_number() -> None:
    # timeUnit=MICROSECOND streams send microseconds: no datetime, but no crash either.
    trade = Trade.from_dict({**TRADE, "E": 10**19, "s": "BNBBTC"})
    assert f">{10**19}</td>" in trade._repr_html_()


def test_order_book_html_is_a_ladder_with_escaped_values() -> None:
    book = PersistentBook()
    book.load(
        [(Decimal(p), Decimal("1.5")) for p in ("99", "98", "97")],
        [(Decimal(p), Decimal("2.25")) for p in ("101", "102")],
    )
    page = book.view("<SYM&>", 42, 1672515782136)._repr_html_()
    assert "&lt;SYM&amp;&gt;" in page
    assert "<SYM" not in page
    assert "update id 42" in page
    assert "2022-12-31 19:43:02.136 UTC" in page
    assert "spread 2 · mid 100" in page
    assert "3 bid levels, 2 ask levels" in page
    # Asks above (highest first), the spread, then bids (highest first): best prices meet.
    marks = [">102</td>", ">101</td>", "spread 2", ">99</td>", ">98</td>", ">97</td>"]
    positions = [page.index(mark) for mark in marks]
    assert positions == sorted(positions)
    assert page.count(">2.25</td>") == 2
    assert page.count(">1.5</td>") == 3

    empty = PersistentBook().view("BTCUSDT", 1, None)._repr_html_()
    assert "one side is empty" in empty
    assert "0 bid levels, 0 ask levels" in empty


def test_order_book_html_shows_at_most_ten_levels_a_side() -> None:
    book = PersistentBook()
    book.load(
        [(Decimal(100 - i), Decimal(1)) for i in range(1, 31)],
        [(Decimal(100 + i), Decimal(1)) for i in range(1, 31)],
    )
    page = book.view("BTCUSDT", 7, None)._repr_html_()
    assert ">90</td>" in page
    assert ">89</td>" not in page
    assert ">110</td>" in page
    assert ">111</td>" not in page
    assert "30 bid levels, 30 ask levels" in page
