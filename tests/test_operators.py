"""Combined-stream operators: pure tests on subjects, and one over a real combined socket."""

from __future__ import annotations

from typing import Any

from reactivex.subject import Subject

import rxbinance.operators as rbo
from rxbinance import BinanceStreams
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}
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
