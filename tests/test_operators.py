"""Combined-stream operators and raise_on_give_up: pure tests on subjects and in virtual time,
and over real sockets to FakeBinance (a combined one, and a real give-up)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler
from reactivex.testing.reactivetest import ReactiveTest

import rxbinance
import rxbinance.operators as rbo
from rxbinance import BinanceStreams
from rxbinance.errors import ConnectionFailure
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}
on_next, on_error, on_completed = (
    ReactiveTest.on_next,
    ReactiveTest.on_error,
    ReactiveTest.on_completed,
)
subscribe = ReactiveTest.subscribe
DEPTH5 = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}


def wrapped(stream: str, data: Any) -> dict[str, Any]:
    return {"stream": stream, "data": data}


def test_select_stream_unwraps_one_stream_and_passes_the_give_up_dict() -> None:
    source: Subject[dict[str, Any]] = Subject()
    got = Collector()
    source.pipe(rbo.select_stream("a@depth5")).subscribe(got)
    source.on_next(wrapped("a@depth5", DEPTH5))
    source.on_next(wrapped("b@depth5", {"lastUpdateId": 1}))
    source.on_next(GIVE_UP)
    source.on_completed()
    assert got.items == [DEPTH5, GIVE_UP]
    assert got.completed


def test_demultiplex_makes_one_group_per_stream() -> None:
    source: Subject[dict[str, Any]] = Subject()
    groups: dict[str, Collector] = {}

    def on_group(group: Any) -> None:
        groups[group.key] = Collector()
        group.subscribe(groups[group.key])

    outer = Collector()
    source.pipe(rbo.demultiplex()).subscribe(on_next=on_group, on_completed=outer.on_completed)
    source.on_next(wrapped("a@depth5", {"lastUpdateId": 1}))
    source.on_next(wrapped("b@depth5", {"lastUpdateId": 2}))
    source.on_next(wrapped("a@depth5", {"lastUpdateId": 3}))
    source.on_next(GIVE_UP)
    source.on_completed()
    assert list(groups) == ["a@depth5", "b@depth5"]
    assert groups["a@depth5"].items == [{"lastUpdateId": 1}, {"lastUpdateId": 3}, GIVE_UP]
    assert groups["b@depth5"].items == [{"lastUpdateId": 2}, GIVE_UP]
    assert all(g.completed for g in groups.values())
    assert outer.completed


def test_merge_tagged_tags_and_serializes() -> None:
    btc: Subject[dict[str, Any]] = Subject()
    eth: Subject[dict[str, Any]] = Subject()
    got = Collector()
    rbo.merge_tagged({"btc": btc, "eth": eth}).subscribe(got)
    btc.on_next({"p": "1"})
    eth.on_next({"p": "2"})
    eth.on_next(GIVE_UP)
    btc.on_completed()
    assert not got.completed
    eth.on_completed()
    assert got.items == [
        {"stream": "btc", "data": {"p": "1"}},
        {"stream": "eth", "data": {"p": "2"}},
        GIVE_UP,
    ]
    assert got.completed


def test_tagged_stream_splits_again() -> None:
    btc: Subject[dict[str, Any]] = Subject()
    eth: Subject[dict[str, Any]] = Subject()
    got = Collector()
    rbo.merge_tagged({"btc": btc, "eth": eth}).pipe(rbo.select_stream("eth")).subscribe(got)
    btc.on_next({"p": "1"})
    eth.on_next({"p": "2"})
    assert got.items == [{"p": "2"}]


def test_multiplex_is_one_shared_combined_socket(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    first, second = Collector(), Collector()
    subs = [
        streams.multiplex(["ethbtc@depth5", "bnbbtc@depth5"])
        .pipe(rbo.select_stream("bnbbtc@depth5"))
        .subscribe(first),
        streams.multiplex(["bnbbtc@depth5", "ethbtc@depth5", "bnbbtc@depth5"]).subscribe(second),
    ]
    fake.wait_for_connections(1)
    assert len(fake.attempts) == 1
    assert fake.connections[0].path == "/stream?streams=bnbbtc@depth5/ethbtc@depth5"
    fake.publish("ethbtc@depth5", {**DEPTH5, "lastUpdateId": 1})
    fake.publish("bnbbtc@depth5", {**DEPTH5, "lastUpdateId": 2})
    first.wait_count(1)
    second.wait_count(2)
    # Partial depth carries no symbol: the stream name is what tells them apart.
    assert first.items == [{**DEPTH5, "lastUpdateId": 2}]
    assert second.items == [
        wrapped("ethbtc@depth5", {**DEPTH5, "lastUpdateId": 1}),
        wrapped("bnbbtc@depth5", {**DEPTH5, "lastUpdateId": 2}),
    ]
    for sub in subs:
        sub.dispose()


# -- raise_on_give_up -------------------------------------------------------------------------

TRADE = {"e": "trade", "s": "BNBBTC", "t": 1, "p": "0.001", "q": "1"}


def price(message: dict[str, Any]) -> str:
    return str(message["p"])  # a KeyError on the give-up dict, were it to get here


@pytest.mark.parametrize(
    ("stream", "messages", "named"),
    [
        pytest.param("bnbbtc@trade", [TRADE, TRADE], "bnbbtc@trade", id="named"),
        # Combined-stream wrappers name it: every name seen, sorted and joined by '/'.
        pytest.param(
            "",
            [wrapped("ethbtc@trade", TRADE), wrapped("bnbbtc@trade", TRADE)],
            "bnbbtc@trade/ethbtc@trade",
            id="wrappers",
        ),
        pytest.param(
            "mine", [wrapped("ethbtc@trade", TRADE)], "mine", id="the argument wins over wrappers"
        ),
        pytest.param("", [TRADE], "", id="no name known"),
    ],
)
def test_raise_on_give_up_turns_the_dict_into_a_connection_failure_naming_the_stream(
    stream: str, messages: list[dict[str, Any]], named: str
) -> None:
    got = Collector()
    reactivex.from_([*messages, GIVE_UP, TRADE]).pipe(rbo.raise_on_give_up(stream)).subscribe(got)
    assert got.items == messages  # passed through unchanged, the dict and what follows not
    assert all(a is b for a, b in zip(got.items, messages, strict=True))
    (error,) = got.errors
    assert isinstance(error, ConnectionFailure)
    assert str(error) == (f"{named}: " if named else "") + "Max reconnect retries reached"
    assert error.stream == named
    assert not got.completed


def test_after_raise_on_give_up_a_map_never_sees_the_give_up_dict() -> None:
    got = Collector()
    source = reactivex.from_([TRADE, GIVE_UP])
    source.pipe(rbo.raise_on_give_up("bnbbtc@trade"), ops.map(price)).subscribe(got)
    assert got.items == ["0.001"]
    (error,) = got.errors
    assert isinstance(error, ConnectionFailure)  # not the KeyError of price(GIVE_UP)


def named_failure(error: Exception) -> bool:
    return isinstance(error, ConnectionFailure) and error.stream == "bnbbtc@trade"


BOOM = ValueError("boom")


@pytest.mark.parametrize(
    ("source", "expected", "subscribed"),
    [
        pytest.param(
            [on_next(210, TRADE), on_next(220, GIVE_UP), on_completed(230)],
            [on_next(210, TRADE), on_error(220, named_failure)],
            # The give-up ends the subscription to the source at once.
            subscribe(200, 220),
            id="give-up",
        ),
        pytest.param(
            [on_next(210, TRADE), on_completed(230)],
            [on_next(210, TRADE), on_completed(230)],
            subscribe(200, 230),
            id="completion",
        ),
        pytest.param(
            [on_next(210, TRADE), on_error(230, BOOM)],
            [on_next(210, TRADE), on_error(230, BOOM)],
            subscribe(200, 230),
            id="error",
        ),
    ],
)
def test_raise_on_give_up_in_virtual_time(source: Any, expected: Any, subscribed: Any) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(*source)
    results = scheduler.start(lambda: xs.pipe(rbo.raise_on_give_up("bnbbtc@trade")))
    assert expected == results.messages  # expected first: its predicates compare
    assert xs.subscriptions == [subscribed]


def test_raise_on_give_up_refuses_a_stream_that_is_not_a_name() -> None:
    with pytest.raises(ValueError, match="invalid stream 5"):
        rbo.raise_on_give_up(5)  # type: ignore[arg-type]


def test_raise_on_give_up_after_a_real_give_up(fake: FakeBinance) -> None:
    with BinanceStreams(ws_url=fake.ws_url, max_retries=1, retry_delay=0.01) as streams:
        raw, prices, combined = Collector(), Collector(), Collector()
        subs = [
            streams.trades("BNBBTC").subscribe(raw),
            streams.trades("BNBBTC")
            .pipe(rbo.raise_on_give_up("bnbbtc@trade"), ops.map(price))
            .subscribe(prices),
            streams.multiplex(["bnbbtc@trade", "ethbtc@trade"])
            .pipe(rbo.raise_on_give_up())
            .subscribe(combined),
        ]
        fake.wait_for_connections(2)
        fake.publish("bnbbtc@trade", TRADE)
        fake.publish("ethbtc@trade", {**TRADE, "s": "ETHBTC"})
        prices.wait_count(1)
        combined.wait_count(2)
        fake.refuse_connections(None)
        fake.drop_connections()
        for collector in (raw, prices, combined):
            collector.wait_for(lambda c: c.completed or bool(c.errors))
        # The raw stream keeps python-binance's contract: the dict, then completion.
        assert raw.items == [TRADE, GIVE_UP]
        assert raw.completed
        assert prices.items == ["0.001"]
        (error,) = prices.errors
        assert isinstance(error, ConnectionFailure)
        assert str(error) == "bnbbtc@trade: Max reconnect retries reached"
        (error,) = combined.errors
        assert isinstance(error, ConnectionFailure)
        assert str(error) == "bnbbtc@trade/ethbtc@trade: Max reconnect retries reached"
        assert GIVE_UP not in combined.items
        for sub in subs:
            sub.dispose()


def test_the_readme_quickstart_runs_and_ends_with_the_named_failure(
    fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quickstart as written, against FakeBinance: its ``BinanceStreams()`` is pointed at
    the fake (with quick retries), and its ``...`` (where a program would run) trades, then
    loses the exchange for good."""
    readme = (Path(__file__).resolve().parent.parent / "README.rst").read_text()
    section = readme[readme.index("Quickstart\n---") :]
    match = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", section)
    assert match is not None
    block = match.group(1)
    example = "\n".join(line[4:] for line in block.splitlines())
    assert "rbo.raise_on_give_up(" in example
    assert example.count("\n    ...\n") == 1

    def to_fake(**kwargs: Any) -> BinanceStreams:
        return BinanceStreams(ws_url=fake.ws_url, max_retries=1, retry_delay=0.01, **kwargs)

    monkeypatch.setattr(rxbinance, "BinanceStreams", to_fake)
    printed = Collector()

    def run_for_a_while() -> None:
        fake.wait_for_connections(1, stream="bnbbtc@trade")
        # Consecutive trade ids, as Binance sends them (a repeated id is dropped as a repeat).
        for i, p in enumerate([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]):
            fake.publish("bnbbtc@trade", {**TRADE, "t": 100 + i, "p": f"{p}.0"})
        printed.wait_count(1)
        fake.refuse_connections(None)
        fake.drop_connections()
        printed.wait_count(2)

    namespace: dict[str, object] = {"print": printed.on_next, "run_for_a_while": run_for_a_while}
    code = example.replace("\n    ...\n", "\n    run_for_a_while()\n")
    exec(compile(code, "README.rst", "exec"), namespace)
    maximum, error = printed.items
    assert maximum == 9.0
    assert isinstance(error, ConnectionFailure)
    assert str(error) == "bnbbtc@trade: Max reconnect retries reached"
