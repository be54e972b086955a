"""Recordings and rxbinance.replay: the file format, crash tolerance, timing in virtual time, and
live data recorded then replayed through the same operators."""

from __future__ import annotations

import gzip
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import reactivex
import reactivex.operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxbinance import BinanceStreams
from rxbinance.events import Gap
from rxbinance.recording import (
    FORMAT_VERSION,
    Record,
    Recorder,
    RecordingError,
    open_recording,
    replay,
)
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error

TRADE = "btcusdt@trade"


def trade(i: int) -> dict[str, Any]:
    return {"e": "trade", "E": 1_700_000_000_000 + i, "s": "BTCUSDT", "t": i, "p": f"{i}.5"}


def write(path: Path, records: list[tuple[float, str, Any]], streams: list[str]) -> Path:
    with Recorder(path, streams, market="spot", url="ws://example/ws") as recorder:
        for t, stream, data in records:
            recorder.write(stream, data, received=t)
    return path


def collect(path: Path) -> tuple[list[Any], Collector]:
    """Replay as fast as possible and wait for the end."""
    got = Collector()
    replay(path, speed=None).subscribe(got)
    got.wait_for(lambda c: c.completed or bool(c.errors))
    return got.items, got


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_one_stream_round_trips_as_bare_payloads(tmp_path: Path, name: str) -> None:
    messages = [trade(i) for i in range(50)]
    path = write(tmp_path / name, [(100.0 + i, TRADE, m) for i, m in enumerate(messages)], [TRADE])
    raw = path.read_bytes()
    assert raw.startswith(b"\x1f\x8b") == name.endswith(".gz")

    with open_recording(path) as recording:
        assert recording.header.streams == (TRADE,)
        assert recording.header.combined is False
        assert recording.header.market == "spot"
        assert recording.header.version == FORMAT_VERSION
        records = list(recording)
        assert recording.torn is None
        assert recording.records == 50
    assert records[3] == Record(103.0, TRADE, messages[3])

    items, got = collect(path)
    assert items == messages
    assert got.completed
    assert set(got.threads) == {"rxbinance-replay"}


def test_the_file_is_json_lines_a_person_can_read(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [(1.5, TRADE, trade(1))], [TRADE])
    header, line = (json.loads(x) for x in path.read_text("utf-8").splitlines())
    assert header["rxbinance"] == "recording"
    assert header["streams"] == [TRADE]
    assert line == {"t": 1.5, "stream": TRADE, "data": trade(1)}


def test_several_streams_replay_as_multiplex_wrappers(tmp_path: Path) -> None:
    book = {"u": 7, "s": "BTCUSDT", "b": "1", "B": "2", "a": "3", "A": "4"}
    path = write(
        tmp_path / "r.jsonl.gz",
        [(1.0, TRADE, trade(1)), (1.1, "btcusdt@bookTicker", book)],
        [TRADE, "btcusdt@bookTicker"],
    )
    items, _ = collect(path)
    assert items == [
        {"stream": TRADE, "data": trade(1)},
        {"stream": "btcusdt@bookTicker", "data": book},
    ]


def test_gzip_lines_are_readable_before_the_recorder_closes(tmp_path: Path) -> None:
    """Z_SYNC_FLUSH per line: a reader sees every line written so far, trailer or not."""
    recorder = Recorder(tmp_path / "r.jsonl.gz", [TRADE])
    try:
        for i in range(5):
            recorder.write(TRADE, trade(i), received=float(i))
            with open_recording(recorder.path) as recording:
                assert [r.data for r in recording] == [trade(j) for j in range(i + 1)]
                assert recording.torn is not None  # no trailer yet: reported, tolerated
    finally:
        recorder.close()
    with open_recording(recorder.path) as recording:
        assert len(list(recording)) == 5
        assert recording.torn is None


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_a_recorder_killed_at_any_byte_loses_at_most_the_last_line(
    tmp_path: Path, name: str
) -> None:
    """Every possible cut of the last lines (what `kill -9` can leave) replays a prefix."""
    path = tmp_path / name
    recorder = Recorder(path, [TRADE])
    sizes = []
    for i in range(6):
        recorder.write(TRADE, trade(i), received=float(i))
        sizes.append(path.stat().st_size)  # flushed: the file holds every line so far
    full = path.read_bytes()  # no close(): no gzip trailer, as after a kill
    recorder.close()
    cut_path = tmp_path / ("cut" + name[1:])
    for cut in range(sizes[2], len(full) + 1):
        cut_path.write_bytes(full[:cut])
        with open_recording(cut_path) as recording:
            got = [r.data for r in recording]
        assert got == [trade(j) for j in range(len(got))], f"cut at {cut}"
        flushed = sum(1 for size in sizes if size <= cut)
        if name.endswith(".gz"):
            # Every flushed line; and a line whose block is cut may already decompress.
            assert flushed <= len(got) <= flushed + 1, f"cut at {cut}"
        else:
            # A line missing only its newline is complete; any shorter, it is dropped.
            assert len(got) == sum(1 for size in sizes if size - 1 <= cut), f"cut at {cut}"
            assert (recording.torn is None) == (cut in sizes or cut + 1 in sizes)


def test_a_torn_last_line_ends_the_replay_normally_and_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "r.jsonl", [(float(i), TRADE, trade(i)) for i in range(3)], [TRADE])
    with path.open("ab") as f:
        f.write(b'{"t":3.0,"stream":"btcusdt@trade","data":{"e":"tra')
    with caplog.at_level(logging.WARNING, logger="rxbinance.recording"):
        items, got = collect(path)
    assert items == [trade(i) for i in range(3)]
    assert got.completed
    assert not got.errors
    assert "last line is incomplete" in caplog.text
    assert "dropped after 3 records" in caplog.text


def test_a_corrupt_line_in_the_middle_is_an_error_after_the_lines_before_it(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "r.jsonl", [(float(i), TRADE, trade(i)) for i in range(4)], [TRADE])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = b"garbage\n"  # header, trade 0, trade 1, *trade 2*, trade 3
    path.write_bytes(b"".join(lines))
    items, got = collect(path)
    assert items == [trade(0), trade(1)]
    assert len(got.errors) == 1
    error = got.errors[0]
    assert isinstance(error, RecordingError)
    assert isinstance(error, ValueError)
    assert error.line == 4
    assert str(error) == f"{path}, line 4: corrupt record 'garbage'"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty, not an rxbinance recording"),
        (b"hello\nworld\n", "not an rxbinance recording (it starts with 'hello'"),
        (b"\x00\x01\x02binary", "not an rxbinance recording"),
        (b'{"a": 1}\n', "not an rxbinance recording"),
        (b'{"rxbinance":"recording","version":99,"streams":["x@trade"]}\n', "newer than"),
        (b'{"rxbinance":"recording","version":1,"streams":[]}\n', "streams []"),
        (b'{"rxbinance":"recording","version":1,"str', "ends inside its header"),
        (gzip.compress(b"not json\n"), "not an rxbinance recording"),
        (gzip.compress(b'{"rxbinance":"recording"}\n')[:12], "ends inside its header"),
    ],
)
def test_a_file_that_is_not_a_recording_is_refused_at_once(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "not-a-recording"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as info:
        replay(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


def test_a_missing_file_and_a_bad_speed_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replay(tmp_path / "nope.jsonl")
    path = write(tmp_path / "r.jsonl", [(0.0, TRADE, trade(0))], [TRADE])
    for bad in (-1, float("nan"), float("inf"), True, "fast"):
        with pytest.raises(ValueError, match="invalid replay speed"):
            replay(path, speed=bad)  # type: ignore[arg-type]


def test_original_timing_in_virtual_time(tmp_path: Path) -> None:
    times = [1000.0, 1000.5, 1002.0, 1002.0]
    path = write(tmp_path / "r.jsonl", [(t, TRADE, trade(i)) for i, t in enumerate(times)], [TRADE])
    scheduler = TestScheduler()
    observer = scheduler.start(lambda: replay(path, speed=1.0, scheduler=scheduler))
    assert observer.messages == [
        on_next(200.0, trade(0)),
        on_next(200.5, trade(1)),
        on_next(202.0, trade(2)),
        on_next(202.0, trade(3)),
        on_completed(202.0),
    ]


@pytest.mark.parametrize(("speed", "expected"), [(4.0, [200.0, 200.5, 201.0]), (None, [200.0] * 3)])
def test_speed_scales_the_gaps(tmp_path: Path, speed: float | None, expected: list[float]) -> None:
    path = write(tmp_path / "r.jsonl", [(t, TRADE, t) for t in (10.0, 12.0, 14.0)], [TRADE])
    scheduler = TestScheduler()
    observer = scheduler.start(lambda: replay(path, speed=speed, scheduler=scheduler))
    assert [m.time for m in observer.messages[:-1]] == expected
    assert observer.messages[-1] == on_completed(expected[-1])


def test_a_subscribe_scheduler_is_used_when_replay_has_none(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [(t, TRADE, t) for t in (0.0, 3.0)], [TRADE])
    scheduler = TestScheduler()
    seen: list[tuple[float, Any]] = []
    replay(path).subscribe(lambda x: seen.append((scheduler.clock, x)), scheduler=scheduler)
    scheduler.advance_to(2.0)
    assert seen == [(0.0, 0.0)]
    scheduler.advance_to(3.0)
    assert seen == [(0.0, 0.0), (3.0, 3.0)]


def test_dispose_stops_the_replay_and_closes_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [(float(t), TRADE, t) for t in range(10)], [TRADE])
    scheduler = TestScheduler()
    observer = scheduler.start(lambda: replay(path, scheduler=scheduler), disposed=203.5)
    assert observer.messages == [on_next(200.0 + t, float(t)) for t in range(4)]
    assert not scheduler._queue


def test_a_long_recording_as_fast_as_possible_in_batches_with_take(tmp_path: Path) -> None:
    """take() disposes from inside on_next on the replay thread: no deadlock, no leak."""
    with Recorder(tmp_path / "r.jsonl.gz", [TRADE]) as recorder:
        for i in range(3000):
            recorder.write(TRADE, i, received=float(i))
    got = Collector()
    replay(recorder.path, speed=None).pipe(ops.take(1500)).subscribe(got)
    got.wait_completed()
    assert got.items == list(range(1500))
    all_of_it = Collector()
    replay(recorder.path, speed=0).pipe(ops.count()).subscribe(all_of_it)
    all_of_it.wait_completed()
    assert all_of_it.items == [3000]


def test_real_time_replay_waits_between_messages(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [(t, TRADE, t) for t in (0.0, 0.5, 1.0)], [TRADE])
    got = Collector()
    times: list[float] = []

    def on_item(x: Any) -> None:
        times.append(time.monotonic())
        got.on_next(x)

    replay(path, speed=2.0).subscribe(on_item, got.on_error, got.on_completed)
    got.wait_completed()
    assert got.items == [0.0, 0.5, 1.0]
    # Lower bounds only: a busy machine may be late, never early.
    assert times[1] - times[0] >= 0.2
    assert times[2] - times[0] >= 0.45


def test_each_subscription_replays_the_file_anew(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", [(float(t), TRADE, t) for t in range(3)], [TRADE])
    source = replay(path, speed=None)
    assert collect_all(source) == [0.0, 1.0, 2.0]
    assert collect_all(source) == [0.0, 1.0, 2.0]


def collect_all(source: reactivex.Observable[Any]) -> list[Any]:
    got = Collector()
    source.subscribe(got)
    got.wait_completed()
    return got.items


def test_live_data_recorded_then_replayed_gives_the_same_results(tmp_path: Path) -> None:
    """The point of replay: the operator chain written for live data, unchanged, on a file."""

    def prices(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        return source.pipe(
            ops.filter(lambda m: m["stream"] == "ethusdt@trade"),
            ops.map(lambda m: (m["data"]["t"], m["data"]["p"])),
        )

    names = ["btcusdt@trade", "ethusdt@trade"]
    live = Collector()
    with (
        FakeBinance(tick_interval=None) as fake,
        BinanceStreams(ws_url=fake.ws_url) as streams,
        Recorder(tmp_path / "live.jsonl.gz", names, combined=True) as recorder,
    ):
        source = streams.multiplex(names)
        source.subscribe(lambda m: recorder.write(m["stream"], m["data"]))
        prices(source).subscribe(live)
        fake.wait_for_connections(1)
        fake.step(50)
        n = len(fake.trades("ETHUSDT"))
        assert n > 10
        live.wait_count(n)  # the recorder, subscribed first, has them all too
    replayed = collect_all(prices(replay(recorder.path, speed=None)))
    assert replayed == live.items
    assert [t for t, _ in replayed] == sorted(t for t, _ in replayed)


def test_a_gap_is_recorded_and_replayed_in_place(tmp_path: Path) -> None:
    gap = Gap(TRADE, 102.0, first=3, last=7, reason="beyond REST retention")
    records = [(100.0, TRADE, trade(1)), (101.0, TRADE, trade(2)), (102.0, TRADE, gap)]
    records.append((103.0, TRADE, trade(8)))
    path = write(tmp_path / "gap.jsonl", records, [TRADE])
    line = path.read_text().splitlines()[3]
    assert json.loads(line)["gap"] == {"first": 3, "last": 7, "reason": "beyond REST retention"}
    items, _ = collect(path)
    assert [m["t"] if isinstance(m, dict) else m for m in items] == [1, 2, gap, 8]
