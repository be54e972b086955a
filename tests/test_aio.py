"""rxbinance.aio.aiter: async for over Observables, on the running loop, with disposal on break,
close and cancel, errors raised, and the two bounded-queue policies."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex.subject import Subject

from rxbinance import BinanceStreams
from rxbinance._reactive.bounded import BoundedStatistics
from rxbinance.aio import ObservableIterator, QueueOverflow, aiter
from rxbinance.recording import Recorder, replay
from rxbinance.testing import FakeBinance


def test_items_then_the_end() -> None:
    async def main() -> list[int]:
        return [x async for x in aiter(reactivex.of(1, 2, 3))]

    assert asyncio.run(main()) == [1, 2, 3]


def test_an_error_is_raised_after_the_items_before_it() -> None:
    boom = RuntimeError("boom")

    async def main() -> list[int]:
        got: list[int] = []

        async def consume() -> None:
            async for x in aiter(reactivex.concat(reactivex.of(1, 2), reactivex.throw(boom))):
                got.append(x)

        with pytest.raises(RuntimeError) as info:
            await consume()
        assert info.value is boom
        return got

    assert asyncio.run(main()) == [1, 2]


def test_items_from_another_thread_arrive_on_the_loop_thread() -> None:
    subject: Subject[int] = Subject()

    def produce() -> None:
        for i in range(100):
            subject.on_next(i)
        subject.on_completed()

    async def main() -> tuple[list[int], set[str]]:
        items = aiter(subject)
        got: list[int] = []
        threads: set[str] = set()
        producer = threading.Thread(target=produce, name="producer")
        first = asyncio.ensure_future(items.__anext__())  # subscribes
        await asyncio.sleep(0)  # let it subscribe before the producer starts
        producer.start()
        got.append(await first)
        async for x in items:
            got.append(x)
            threads.add(threading.current_thread().name)
        producer.join()
        return got, threads

    got, threads = asyncio.run(main())
    assert got == list(range(100))
    assert threads == {threading.main_thread().name}


def test_nothing_is_subscribed_until_iteration_starts() -> None:
    subject: Subject[int] = Subject()
    items = aiter(subject)  # no running loop needed to create it
    assert not subject.observers

    async def main() -> int:
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0)
        assert len(subject.observers) == 1
        subject.on_next(7)
        return await waiting

    assert asyncio.run(main()) == 7
    asyncio.run(items.aclose())
    assert not subject.observers


def test_break_disposes_the_subscription_at_once() -> None:
    subject: Subject[int] = Subject()

    async def main() -> None:
        subject_fed = asyncio.get_running_loop().call_soon(
            lambda: [subject.on_next(i) for i in range(5)]
        )
        async for x in aiter(subject):
            if x == 2:
                break
        assert not subject.observers, "break must dispose"
        subject_fed.cancel()

    asyncio.run(main())


def test_async_with_and_aclose_dispose() -> None:
    subject: Subject[int] = Subject()

    async def main() -> None:
        async with aiter(subject) as items:
            asyncio.get_running_loop().call_soon(subject.on_next, 1)
            assert await items.__anext__() == 1
            assert len(subject.observers) == 1
        assert not subject.observers
        with pytest.raises(StopAsyncIteration):
            await items.__anext__()

    asyncio.run(main())


def test_cancelling_the_waiting_task_disposes() -> None:
    subject: Subject[int] = Subject()

    async def consume(items: ObservableIterator[int]) -> None:
        async for _ in items:
            pass

    async def main() -> None:
        task = asyncio.create_task(consume(aiter(subject)))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(subject.observers) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not subject.observers

    asyncio.run(main())


def test_a_full_bounded_queue_fails_with_queue_overflow() -> None:
    subject: Subject[int] = Subject()

    async def main() -> list[int]:
        items = aiter(subject, maxsize=2)
        got: list[int] = []
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0)
        for i in range(5):  # five arrive before the consumer runs again
            subject.on_next(i)
        got.append(await waiting)

        async def consume() -> None:
            async for x in items:
                got.append(x)

        with pytest.raises(QueueOverflow) as info:
            await consume()
        assert info.value.maxsize == 2
        assert not subject.observers, "the overflow disposes at once"
        return got

    # All five hand-overs run on the loop before the woken consumer does: two fit, the third
    # overflows; the two waiting items are still delivered, then the error.
    assert asyncio.run(main()) == [0, 1]


def test_drop_oldest_keeps_the_latest() -> None:
    subject: Subject[int] = Subject()

    async def main() -> list[int]:
        items = aiter(subject, maxsize=2, overflow="drop_oldest")
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0)
        for i in range(10):
            subject.on_next(i)
        subject.on_completed()
        return [await waiting] + [x async for x in items]

    assert asyncio.run(main()) == [8, 9]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="invalid maxsize -1"):
        aiter(reactivex.empty(), maxsize=-1)
    with pytest.raises(ValueError, match="invalid overflow 'drop_newest'"):
        aiter(reactivex.empty(), overflow="drop_newest")  # type: ignore[arg-type]


def test_live_trades_from_fake_binance_and_break_closes_the_socket() -> None:
    with (
        FakeBinance(tick_interval=0.005) as fake,
        BinanceStreams(ws_url=fake.ws_url) as streams,
    ):

        async def main() -> list[dict[str, Any]]:
            got = []
            async for trade in aiter(streams.trades("ETHUSDT")):
                got.append(trade)
                if len(got) == 5:
                    break
            return got

        trades = asyncio.run(main())
        assert [t["s"] for t in trades] == ["ETHUSDT"] * 5
        assert [t["t"] for t in trades] == sorted(t["t"] for t in trades)
        assert streams.statistics() == {}, "break closed the shared socket"
        fake.wait_for(lambda f: not f.open_connections, timeout=10)


def test_a_replay_iterates_like_live(tmp_path: Path) -> None:
    with Recorder(tmp_path / "r.jsonl", ["btcusdt@trade"]) as recorder:
        for i in range(20):
            recorder.write("btcusdt@trade", {"t": i}, received=float(i))

    async def main() -> list[int]:
        return [m["t"] async for m in aiter(replay(recorder.path, speed=None))]

    assert asyncio.run(main()) == list(range(20))


def test_works_on_a_loop_that_is_already_running_like_jupyters() -> None:
    """A kernel's loop runs forever; cells submit coroutines to it. aiter only ever uses the
    running loop: it never starts, runs or nests one."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="kernel-loop")
    runner.start()
    try:
        subject: Subject[int] = Subject()

        async def cell() -> list[tuple[int, str]]:
            asyncio.get_running_loop().call_soon(
                lambda: threading.Thread(target=lambda: [*map(subject.on_next, range(3))]).start()
            )
            got = []
            async for x in aiter(subject):
                got.append((x, threading.current_thread().name))
                if x == 2:
                    break
            return got

        result = asyncio.run_coroutine_threadsafe(cell(), loop).result(timeout=10)
        assert result == [(0, "kernel-loop"), (1, "kernel-loop"), (2, "kernel-loop")]
        assert not subject.observers
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(timeout=10)
        loop.close()


def test_latest_skips_the_backlog() -> None:
    subject: Subject[int] = Subject()

    async def main() -> tuple[list[int], BoundedStatistics]:
        items = aiter(subject, maxsize=3, overflow="latest")
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0)
        for i in range(10):  # 0-2 wait, 3 drops them, 4-5 join it, 6 drops them, ...
            subject.on_next(i)
        subject.on_completed()
        got = [await waiting] + [x async for x in items]
        return got, items.statistics()

    got, statistics = asyncio.run(main())
    assert got == [9]
    assert statistics == BoundedStatistics(
        maxsize=3, overflow="latest", queued=0, delivered=1, dropped=9, high_water=3, overflows=1
    )


def test_the_bound_counts_items_handed_over_while_the_loop_is_busy() -> None:
    """The loop is blocked (it joins the producer) while another thread emits: the bound still
    applies to what was handed over, before the loop runs any callback."""
    subject: Subject[int] = Subject()

    def produce() -> None:
        for i in range(100):
            subject.on_next(i)
        subject.on_completed()

    async def main() -> tuple[list[int], BoundedStatistics, BoundedStatistics]:
        items = aiter(subject, maxsize=3, overflow="drop_oldest")
        first = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0)  # subscribed, waiting
        producer = threading.Thread(target=produce, name="producer")
        producer.start()
        producer.join()  # blocks the loop: nothing of the hand-over has run on it yet
        before = items.statistics()
        got = [await first] + [x async for x in items]
        return got, before, items.statistics()

    got, before, after = asyncio.run(main())
    assert before.queued == 3
    assert before.dropped == 97
    assert got == [97, 98, 99]
    assert after.delivered == 3
    assert after.queued == 0


def test_statistics_and_repr_of_an_unbounded_iterator() -> None:
    subject: Subject[int] = Subject()

    async def main() -> None:
        items = aiter(subject)
        waiting = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0)
        for i in range(5):
            subject.on_next(i)
        assert await waiting == 0
        assert repr(items) == "<ObservableIterator 4 waiting>"
        assert items.statistics() == BoundedStatistics(
            maxsize=0, overflow="error", queued=4, delivered=1, dropped=0, high_water=5,
            overflows=0,
        )  # fmt: skip
        await items.aclose()
        assert repr(items) == "<ObservableIterator closed>"
        assert not subject.observers

    asyncio.run(main())


def test_the_loop_is_woken_once_per_idle_spell_not_once_per_item() -> None:
    subject: Subject[int] = Subject()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        wakeups = 0
        original = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        try:
            items = aiter(subject)
            waiting = asyncio.ensure_future(items.__anext__())
            await asyncio.sleep(0)
            producer = threading.Thread(target=lambda: [*map(subject.on_next, range(50))])
            producer.start()
            producer.join()
            got = [await waiting]
            while len(got) < 50:
                got.append(await items.__anext__())
            assert got == list(range(50))
            await items.aclose()
        finally:
            del loop.call_soon_threadsafe
        return wakeups

    assert asyncio.run(main()) == 1
