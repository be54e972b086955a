"""Typed operators: parse, parse_as, parse_list_as, closed_klines, resample, spread, mid,
to_dataframe; in memory, and against FakeBinance's streams."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import reactivex
from reactivex.subject import Subject

import rxbinance
import rxbinance.operators as rbo
from rxbinance import BinanceStreams
from rxbinance.errors import ConnectionFailure, InvalidInputError
from rxbinance.models import (
    AggTrade,
    BookTicker,
    Kline,
    MiniTicker,
    ParseError,
    PartialDepth,
    Trade,
)
from rxbinance.pipelines import Quote
from rxbinance.pipelines._book import PersistentBook
from rxbinance.testing import FakeBinance
from tests.conftest import Collector

D = Decimal
GIVE_UP = {"e": "error", "m": "Max reconnect retries reached"}
TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
AGG = {
    "e": "aggTrade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "a": 12345,
    "p": "0.001",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 1672515782136,
    "m": True,
    "M": True,
}
BOOK_TICKER = {"u": 400900217, "s": "BNBUSDT", "b": "25.35", "B": "31.21", "a": "25.36", "A": "4"}
MINI = {
    "e": "24hrMiniTicker",
    "E": 1672515782136,
    "s": "BNBBTC",
    "c": "0.0025",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
}


def run(source: list[Any], *operators: Any) -> Collector:
    """Push ``source`` through ``operators`` synchronously and collect the result."""
    collector = Collector()
    subject: Subject[Any] = Subject()
    subject.pipe(*operators).subscribe(collector)
    for item in source:
        subject.on_next(item)
    subject.on_completed()
    return collector


# -- parse ----------------------------------------------------------------------------------


def test_parse_picks_the_model_unwraps_combined_messages_and_parses_arrays() -> None:
    wrapped = {"stream": "bnbbtc@aggTrade", "data": AGG}
    out = run([TRADE, wrapped, [MINI, MINI], BOOK_TICKER], rbo.parse())
    trade, agg, minis, ticker = out.items
    assert isinstance(trade, Trade)
    assert trade.price == D("0.001")
    assert trade.trade_id == 12345
    assert isinstance(agg, AggTrade)
    assert agg.last_trade_id == 105
    assert isinstance(minis, list)
    assert [type(m) for m in minis] == [MiniTicker, MiniTicker]
    assert isinstance(ticker, BookTicker)
    assert ticker.ask_quantity == D(4)
    assert out.completed
    assert not out.errors


def test_parse_with_a_stream_name_gives_partial_depth_its_symbol() -> None:
    payload = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}
    (depth,) = run([payload], rbo.parse("bnbbtc@depth5@100ms")).items
    assert isinstance(depth, PartialDepth)
    assert depth.symbol == "BNBBTC"
    assert depth.bids == ((D("0.0024"), D(10)),)
    (anonymous,) = run([payload], rbo.parse()).items
    assert isinstance(anonymous, PartialDepth)
    assert anonymous.symbol is None


def test_the_give_up_dict_ends_a_typed_chain_with_a_connection_failure() -> None:
    out = run([TRADE, GIVE_UP, TRADE], rbo.parse())
    assert len(out.items) == 1
    (error,) = out.errors
    assert isinstance(error, ConnectionFailure)
    assert "Max reconnect retries reached" in str(error)
    assert not out.completed


def wrap(stream: str, data: Any) -> dict[str, Any]:
    return {"stream": stream, "data": data}


@pytest.mark.parametrize(
    ("operator", "messages", "stream"),
    [
        pytest.param(rbo.parse("bnbbtc@trade"), [TRADE], "bnbbtc@trade", id="parse(stream)"),
        pytest.param(
            rbo.parse_as(Trade, "bnbbtc@trade"), [TRADE], "bnbbtc@trade", id="parse_as(stream)"
        ),
        pytest.param(
            rbo.parse_list_as(MiniTicker, "!miniTicker@arr"),
            [[MINI]],
            "!miniTicker@arr",
            id="parse_list_as(stream)",
        ),
        # On a combined stream the names come from the wrappers seen: sorted, joined by '/',
        # the key of the multiplex socket.
        pytest.param(
            rbo.parse(),
            [wrap("bnbbtc@trade", TRADE), wrap("bnbbtc@aggTrade", AGG)],
            "bnbbtc@aggTrade/bnbbtc@trade",
            id="parse() of wrappers",
        ),
        pytest.param(
            rbo.parse_as(Trade),
            [wrap("bnbbtc@trade", TRADE), wrap("bnbbtc@trade", TRADE)],
            "bnbbtc@trade",
            id="parse_as() of wrappers",
        ),
        pytest.param(rbo.parse(), [TRADE], "", id="nothing to name it by"),
    ],
)
def test_the_give_up_error_of_typed_operators_names_the_stream(
    operator: Any, messages: list[Any], stream: str
) -> None:
    out = run([*messages, GIVE_UP], operator)
    assert len(out.items) == len(messages)
    (error,) = out.errors
    assert isinstance(error, ConnectionFailure)
    where = f"{stream}: " if stream else ""
    assert str(error) == f"{where}Max reconnect retries reached"
    assert error.stream == stream


def test_to_dataframe_names_the_stream_of_wrappers_in_its_give_up_error() -> None:
    pytest.importorskip("pandas")
    out = run([wrap("bnbbtc@trade", TRADE), GIVE_UP], rbo.to_dataframe())
    (error,) = out.errors
    assert isinstance(error, ConnectionFailure)
    assert str(error) == "bnbbtc@trade: Max reconnect retries reached"


def test_a_malformed_payload_is_an_error_by_default_and_dropped_with_skip(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = dict(TRADE, p=None)
    out = run([TRADE, bad, TRADE], rbo.parse())
    assert len(out.items) == 1
    (error,) = out.errors
    assert isinstance(error, ParseError)
    assert error.field == "p"

    skipped = run([TRADE, bad, TRADE], rbo.parse(errors="skip"))
    assert len(skipped.items) == 2
    assert not skipped.errors
    assert skipped.completed
    assert "does not parse" in caplog.text
    with pytest.raises(ValueError, match="errors"):
        rbo.parse(errors="ignore")  # type: ignore[arg-type]


def test_parse_as_is_typed_and_refuses_other_events() -> None:
    out = run([TRADE, {"stream": "bnbbtc@trade", "data": TRADE}], rbo.parse_as(Trade))
    assert [t.trade_id for t in out.items] == [12345, 12345]
    assert out.completed

    wrong = run([TRADE, AGG], rbo.parse_as(Trade))
    assert len(wrong.items) == 1
    (error,) = wrong.errors
    assert isinstance(error, ParseError)
    assert "expected a Trade payload, got AggTrade" in str(error)

    tickers = run([BOOK_TICKER], rbo.parse_as(BookTicker))
    assert tickers.items[0].update_id == 400900217
    skipping = run([AGG, TRADE, GIVE_UP], rbo.parse_as(Trade, errors="skip"))
    assert len(skipping.items) == 1
    assert isinstance(skipping.errors[0], ConnectionFailure)


def test_parse_list_as_parses_arrays_and_refuses_single_events() -> None:
    out = run(
        [[MINI, MINI], {"stream": "!miniTicker@arr", "data": [MINI]}], rbo.parse_list_as(MiniTicker)
    )
    assert [len(batch) for batch in out.items] == [2, 1]
    assert all(isinstance(m, MiniTicker) for batch in out.items for m in batch)
    (error,) = run([MINI], rbo.parse_list_as(MiniTicker)).errors
    assert isinstance(error, ParseError)
    assert "JSON array" in str(error)


# -- klines ---------------------------------------------------------------------------------

MINUTE = 60_000


def kline(
    open_time: int,
    *,
    interval: str = "1m",
    width: int = MINUTE,
    closed: bool = True,
    symbol: str = "BTCUSDT",
    o: str = "10",
    h: str = "12",
    low: str = "9",
    c: str = "11",
    v: str = "1",
    n: int = 1,
    first: int = 1,
    last: int = 1,
) -> Kline:
    return Kline(
        event_time=open_time + width,
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=open_time + width - 1,
        open=D(o),
        high=D(h),
        low=D(low),
        close=D(c),
        volume=D(v),
        quote_volume=D(v) * 10,
        taker_buy_base_volume=D(v) / 2,
        taker_buy_quote_volume=D(v) * 5,
        trades=n,
        first_trade_id=first,
        last_trade_id=last,
        closed=closed,
    )


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


T0 = ms(2024, 1, 1)  # a Monday, 00:00 UTC


def test_closed_klines_passes_each_finished_candle_once_per_symbol() -> None:
    source = [
        kline(T0, closed=False),
        kline(T0),
        kline(T0),  # a repeat (e.g. after a reconnect)
        kline(T0, symbol="ETHUSDT"),  # another symbol: its own series
        kline(T0 + MINUTE, closed=False),
        kline(T0 - MINUTE),  # older than the last one passed
        kline(T0 + MINUTE),
    ]
    out = run(source, rbo.closed_klines())
    assert [(k.symbol, k.open_time) for k in out.items] == [
        ("BTCUSDT", T0),
        ("ETHUSDT", T0),
        ("BTCUSDT", T0 + MINUTE),
    ]
    assert all(k.closed for k in out.items)


def test_resample_aggregates_complete_periods_exactly() -> None:
    parts = [
        kline(
            T0 + i * MINUTE,
            o=str(10 + i),
            h=str(20 + i),
            low=str(5 + i),
            c=str(11 + i),
            v=str(i + 1),
            n=i + 1,
            first=100 + i,
            last=100 + i,
        )
        for i in range(10)
    ]
    # Open candles are ignored; the 5m periods end with their 5th part.
    source = [kline(T0, closed=False), *parts]
    out = run(source, rbo.resample("5m"))
    first, second = out.items
    assert (first.open_time, first.close_time, first.interval) == (T0, T0 + 5 * MINUTE - 1, "5m")
    assert (first.open, first.high, first.low, first.close) == (D(10), D(24), D(5), D(15))
    assert first.volume == D(15)
    assert first.trades == 15
    assert first.quote_volume == D(150)
    assert first.taker_buy_base_volume == D("7.5")
    assert (first.first_trade_id, first.last_trade_id) == (100, 104)
    assert first.event_time == parts[4].event_time
    assert first.closed
    assert (second.open_time, second.open, second.close) == (T0 + 5 * MINUTE, D(15), D(20))
    assert out.completed


# Each case: the 1m parts (minutes after T0, in arrival order), the 5m periods emitted (their
# open, in minutes after T0), and the periods dropped with the level of their log line.
COMPLETE_PERIOD_CASES = [
    pytest.param(range(10), [0, 5], [], id="on the boundary"),
    pytest.param(range(2, 10), [5], [("DEBUG", 0)], id="starting mid-period"),
    pytest.param([0, 1, 3, 4, *range(5, 10)], [5], [("WARNING", 0)], id="a gap inside a period"),
    # The period is over when its last part arrives, hole or not; it is dropped at once.
    pytest.param([0, 1, 3, 4], [], [("WARNING", 0)], id="a gap, then the part ending it"),
    # Its end is missing: a part of a later period tells it is over.
    pytest.param([0, 1, 2, 3, *range(5, 10)], [5], [("WARNING", 0)], id="a missing end"),
    # After a gap across a boundary the data resumes mid-period: not the leading one, so warned.
    pytest.param([*range(5), 7, 8, 9], [0], [("WARNING", 5)], id="resuming mid-period"),
    # Whole periods missing: nothing was built for them, so nothing is dropped.
    pytest.param([*range(5), *range(15, 20)], [0, 15], [], id="whole periods missing"),
    # The open period at the end is never emitted, complete or not so far.
    pytest.param(range(8), [0], [], id="the trailing open period"),
    pytest.param([0, 1, 1, 2, 0, 3, 4], [0], [], id="repeated parts count once"),
    pytest.param([*range(6), 3, 6, 7, 8, 9], [0, 5], [], id="a late part of a closed period"),
]


@pytest.mark.parametrize(("parts", "emitted", "dropped"), COMPLETE_PERIOD_CASES)
def test_resample_emits_complete_periods_only(
    parts: list[int],
    emitted: list[int],
    dropped: list[tuple[str, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="rxbinance.operators")
    # Plus open updates, which never count.
    source = [kline(T0 + m * MINUTE, v=str(m + 1)) for m in parts] + [
        kline(T0 + 30 * MINUTE, closed=False)
    ]
    out = run(source, rbo.resample("5m"))
    assert [(k.open_time - T0) // MINUTE for k in out.items] == emitted
    for candle in out.items:
        first = (candle.open_time - T0) // MINUTE
        # Every part of the period, each once: volumes first+1 .. first+5.
        assert candle.volume == sum(range(first + 1, first + 6))
        assert candle.trades == 5
        assert candle.close_time == candle.open_time + 5 * MINUTE - 1
    logged = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "rxbinance.operators"
    ]
    assert [level for level, _ in logged] == [level for level, _ in dropped]
    for (_, message), (level, minute) in zip(logged, dropped, strict=True):
        period = datetime.fromtimestamp((T0 + minute * MINUTE) / 1000, UTC)
        what = "the leading period" if level == "DEBUG" else "the period"
        assert f"BTCUSDT: dropped {what} {period:%Y-%m-%d %H:%M:%S} UTC" in message
    assert out.completed
    assert not out.errors


def test_resample_of_1s_history_starting_mid_minute_drops_the_leading_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="rxbinance.operators")
    second = 1_000
    start = T0 + 37 * second  # history of 1s candles begins at 00:00:37
    source = [
        kline(start + i * second, interval="1s", width=second, v="1")
        for i in range(3 * 60 - 37)  # up to 00:02:59
    ]
    out = run(source, rbo.resample("1m"))
    assert [(k.open_time - T0) // MINUTE for k in out.items] == [1, 2]
    assert [k.volume for k in out.items] == [D(60), D(60)]
    (record,) = caplog.records
    assert record.levelname == "DEBUG"
    assert "dropped the leading period 2024-01-01 00:00:00 UTC" in record.getMessage()
    assert "the data starts at 2024-01-01 00:00:37 UTC" in record.getMessage()


def test_resample_judges_each_symbol_on_its_own() -> None:
    source = []
    for m in range(10):
        source.append(kline(T0 + m * MINUTE))
        if m >= 1:  # ETHUSDT's data starts a minute late
            source.append(kline(T0 + m * MINUTE, symbol="ETHUSDT"))
    out = run(source, rbo.resample("5m"))
    assert [(k.symbol, (k.open_time - T0) // MINUTE) for k in out.items] == [
        ("BTCUSDT", 0),
        ("BTCUSDT", 5),
        ("ETHUSDT", 5),
    ]


@pytest.mark.parametrize(
    ("interval", "part_interval", "start", "parts", "expected_open", "expected_close"),
    [
        # Months: January has 31 days; the period ends with the part of Jan 31.
        ("1M", "1d", ms(2024, 1, 1), 31, ms(2024, 1, 1), ms(2024, 2, 1) - 1),
        # February 2024 has 29 days.
        ("1M", "1d", ms(2024, 2, 1), 29, ms(2024, 2, 1), ms(2024, 3, 1) - 1),
        # Weeks open on Monday: 2024-01-01 is one.
        ("1w", "1d", ms(2024, 1, 1), 7, ms(2024, 1, 1), ms(2024, 1, 8) - 1),
        # 3d candles are multiples of 3 days since the epoch: Dec 31 2023 is day 19722, a
        # multiple of 3.
        ("3d", "1d", ms(2023, 12, 31), 3, ms(2023, 12, 31), ms(2024, 1, 3) - 1),
    ],
)
def test_resample_boundaries_follow_binance(
    interval: str,
    part_interval: str,
    start: int,
    parts: int,
    expected_open: int,
    expected_close: int,
) -> None:
    day = 86_400_000
    source = [kline(start + i * day, interval=part_interval, width=day) for i in range(parts)]
    (candle,) = run(source, rbo.resample(interval)).items
    assert (candle.open_time, candle.close_time) == (expected_open, expected_close)
    assert candle.volume == D(parts)
    assert candle.interval == interval


def test_resample_at_a_utc_offset() -> None:
    hour = 3_600_000
    # Day candles at UTC+8 open at 16:00 UTC the day before.
    start = ms(2024, 1, 1) - 8 * hour
    source = [kline(start + i * hour, interval="1h", width=hour) for i in range(24)]
    (candle,) = run(source, rbo.resample("1d", utc_offset="+08:00")).items
    assert candle.open_time == start
    assert candle.close_time == start + 24 * hour - 1
    # At UTC the same parts straddle two days: Dec 31 has only its last 8 hours (a leading
    # partial period, dropped) and Jan 1 is not over when the source ends.
    at_utc = run(source, rbo.resample("1d"))
    assert at_utc.items == []
    assert at_utc.completed


def test_resample_refuses_parts_longer_than_a_period_and_bad_arguments() -> None:
    (error,) = run([kline(T0, interval="1h", width=3_600_000)], rbo.resample("15m")).errors
    assert isinstance(error, InvalidInputError)
    assert "spans two periods" in str(error)
    with pytest.raises(ValueError, match="interval"):
        rbo.resample("2m")
    with pytest.raises(ValueError, match="offset"):
        rbo.resample("1d", utc_offset="8")


# -- quotes ---------------------------------------------------------------------------------


def test_spread_and_mid_of_quotes_and_books_skip_empty_sides() -> None:
    quote = Quote("BTCUSDT", 1, D("100.0"), D(1), D("100.5"), D(2))
    book = PersistentBook()
    book.load([(D(99), D(1))], [(D(101), D(1))])
    full = book.view("BTCUSDT", 7, None)
    book.load([(D(99), D(1))], [])
    one_sided = book.view("BTCUSDT", 8, None)
    items = [quote, full, one_sided]
    assert run(items, rbo.spread()).items == [D("0.5"), D(2)]
    assert run(items, rbo.mid()).items == [D("100.25"), D(100)]


# -- to_dataframe ---------------------------------------------------------------------------


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ModuleNotFoundError) as info:
        rbo.to_dataframe()
    assert str(info.value) == "to_dataframe() needs pandas: pip install 'rxbinance[pandas]'"


def test_to_dataframe_live_updating_keeps_one_row_per_key() -> None:
    pd = pytest.importorskip("pandas")
    source = [
        kline(T0, closed=False, c="10.5", n=1),
        kline(T0, c="11", n=2),  # the same candle, updated in place
        kline(T0 + MINUTE, closed=False, c="12"),
        kline(T0 + 2 * MINUTE, c="13"),
    ]
    frames = run(source, rbo.to_dataframe(key="open_time", max_rows=2)).items
    assert [len(f) for f in frames] == [1, 1, 2, 2]
    first, second, _, last = frames
    assert first["close"].iloc[0] == 10.5
    assert second["close"].iloc[0] == 11.0
    assert list(last["close"]) == [12.0, 13.0]
    assert last.index[0] == pd.Timestamp(T0 + MINUTE, unit="ms", tz="UTC")
    assert str(last["close_time"].dtype).startswith("datetime64")


def test_to_dataframe_batched_and_exact() -> None:
    pytest.importorskip("pandas")
    source = [[kline(T0), kline(T0 + MINUTE)], [], [kline(T0 + 2 * MINUTE)]]
    frames = run(source, rbo.to_dataframe(batch=True, exact=True)).items
    assert [len(f) for f in frames] == [2, 1]
    assert frames[0]["close"].iloc[0] == D(11)
    assert isinstance(frames[0]["close"].iloc[0], Decimal)


# -- against FakeBinance --------------------------------------------------------------------


def test_closed_klines_of_the_live_stream_equal_the_rest_candles(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    out = Collector()
    source = streams.klines("BTCUSDT", "1s").pipe(rbo.parse_as(Kline), rbo.closed_klines())
    subscription = source.subscribe(out)
    try:
        fake.wait_for_connections(1, stream="btcusdt@kline_1s")
        fake.step(60)  # 6 s of market time: at least 5 one-second candles close
        out.wait_count(5)
        rows = fake.with_market(lambda m: m.rest_klines("BTCUSDT", "1s", limit=1000))
        by_open = {row[0]: row for row in rows}
        for candle in out.items[:5]:
            row = by_open[candle.open_time]
            assert candle.closed
            assert candle.close_time == row[6]
            ohlc = [candle.open, candle.high, candle.low, candle.close]
            assert ohlc == [Decimal(x) for x in row[1:5]]
            # Decimal, not str: an empty candle's "0.00000000" prints as 0E-8.
            assert (candle.volume, candle.trades) == (Decimal(row[5]), row[8])
        opens = [c.open_time for c in out.items]
        assert opens == sorted(set(opens))  # each once, in order
    finally:
        subscription.dispose()


def test_reactivex_sources_work_too() -> None:
    out = Collector()
    reactivex.from_iterable([TRADE]).pipe(rbo.parse_as(Trade)).subscribe(out)
    assert out.items[0].symbol == "BNBBTC"
    assert out.completed


# -- the give-up reads the same everywhere ----------------------------------------------------


def _typed_pipelines() -> list[Any]:
    def order_book(streams: BinanceStreams) -> Any:
        return rxbinance.order_book(streams, "BTCUSDT")

    def klines(streams: BinanceStreams) -> Any:
        return rxbinance.klines_with_history(streams, "BTCUSDT", "1s", history=5)

    def quotes(streams: BinanceStreams) -> Any:
        return rxbinance.best_bid_ask(streams, "BTCUSDT")

    def parsed(streams: BinanceStreams) -> Any:
        return streams.trades("BTCUSDT").pipe(rbo.parse("btcusdt@trade"))

    def parsed_multiplex(streams: BinanceStreams) -> Any:
        combined = streams.multiplex(["btcusdt@trade", "btcusdt@aggTrade"])
        return combined.pipe(rbo.parse_as(Trade, errors="skip"))

    def raw(streams: BinanceStreams) -> Any:
        return streams.agg_trades("BTCUSDT").pipe(rbo.raise_on_give_up("btcusdt@aggTrade"))

    return [
        pytest.param(order_book, "btcusdt@depth@100ms", id="order_book"),
        pytest.param(klines, "btcusdt@kline_1s", id="klines_with_history"),
        pytest.param(quotes, "btcusdt@bookTicker", id="best_bid_ask"),
        pytest.param(parsed, "btcusdt@trade", id="parse(stream)"),
        pytest.param(parsed_multiplex, "btcusdt@aggTrade/btcusdt@trade", id="parse_as multiplex"),
        pytest.param(raw, "btcusdt@aggTrade", id="raise_on_give_up"),
    ]


@pytest.mark.parametrize(("pipeline", "stream"), _typed_pipelines())
def test_every_typed_pipeline_ends_with_a_connection_failure_naming_its_stream(
    fake: FakeBinance, pipeline: Callable[[BinanceStreams], Any], stream: str
) -> None:
    fake.step(20)  # some history for the REST snapshot and klines
    with BinanceStreams(
        ws_url=fake.ws_url, rest_url=fake.rest_url, max_retries=1, retry_delay=0.01
    ) as streams:
        out = Collector()
        sub = pipeline(streams).subscribe(out)
        fake.wait_for_connections(1)
        fake.step(5)  # data on every stream (multiplex wrappers name their streams)
        out.wait_count(1)
        fake.refuse_connections(None)
        fake.drop_connections()
        out.wait_for(lambda c: bool(c.errors) or c.completed)
        (error,) = out.errors
        assert isinstance(error, ConnectionFailure)
        assert str(error) == f"{stream}: Max reconnect retries reached"
        assert error.stream == stream
        sub.dispose()


def test_to_dataframe_skips_gaps() -> None:
    from rxbinance.events import Gap

    trade = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 1, "m": True,
             "M": True}  # fmt: skip
    gap = Gap("btcusdt@trade", 0.0, 2, 3, "beyond REST retention")
    frames: list[Any] = []
    reactivex.from_([trade, gap, {**trade, "t": 4}]).pipe(
        rbo.parse(), rbo.to_dataframe()
    ).subscribe(frames.append)
    assert len(frames) == 2  # one per trade, none for the gap
    assert list(frames[-1]["trade_id"]) == [1, 4]
    assert "reason" not in frames[-1].columns
    batches: list[Any] = []
    reactivex.of([rbo_parse_one(trade), gap]).pipe(rbo.to_dataframe(batch=True)).subscribe(
        batches.append
    )
    assert list(batches[-1]["trade_id"]) == [1]


def rbo_parse_one(payload: dict[str, Any]) -> Any:
    from rxbinance.models import parse

    return parse(payload)


def test_closed_klines_and_resample_pass_a_gap_on_in_place() -> None:
    from rxbinance.events import Gap

    gap = Gap("btcusdt@kline_1m", 0.0, T0 + MINUTE, T0 + 2 * MINUTE, "beyond REST retention")
    source: list[Any] = [kline(T0), gap, kline(T0 + 3 * MINUTE)]
    out = run(source, rbo.closed_klines())
    assert out.items == [source[0], gap, source[2]]
    assert not out.errors
    # resample: the hour with the hole is not emitted, and the Gap says why, where it was.
    hour = [kline(T0 + i * MINUTE) for i in range(60)]
    holed = hour[:1] + [gap] + hour[3:] + [kline(T0 + (60 + i) * MINUTE) for i in range(60)]
    out = run(holed, rbo.resample("1h"))
    assert not out.errors
    assert out.items[0] is gap
    assert [k.open_time for k in out.items[1:]] == [T0 + 60 * MINUTE]
