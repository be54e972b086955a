"""Tests of the synthetic market behind FakeBinance (rxbinance.testing._market): pure, fast."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from rxbinance.testing._market import BookState, Market, MarketError
from rxbinance.testing._market_names import candle_close, candle_open, fmt8, parse8

START = 1_699_999_200_000  # 2023-11-14T22:00:00Z, a whole hour
MINUTE = 60_000

# The reference payloads (docs/binance-protocol.md §4.2 and §7), used for exact key sets and
# JSON value types.
REFERENCE: dict[str, Any] = {
    "aggTrade": {"e": "aggTrade", "E": 1, "s": "BNBBTC", "a": 12345, "p": "0.001", "q": "100",
                 "f": 100, "l": 105, "T": 1, "m": True, "M": True},
    "trade": {"e": "trade", "E": 1, "s": "BNBBTC", "t": 12345, "p": "0.001", "q": "100", "T": 1,
              "m": True, "M": True},
    "kline": {"e": "kline", "E": 1, "s": "BNBBTC", "k": {
        "t": 1, "T": 2, "s": "BNBBTC", "i": "1m", "f": 100, "L": 200, "o": "0.0010",
        "c": "0.0020", "h": "0.0025", "l": "0.0015", "v": "1000", "n": 100, "x": False,
        "q": "1.0000", "V": "500", "Q": "0.500", "B": "123456"}},
    "miniTicker": {"e": "24hrMiniTicker", "E": 1, "s": "BNBBTC", "c": "0.0025", "o": "0.0010",
                   "h": "0.0025", "l": "0.0010", "v": "10000", "q": "18"},
    "ticker": {"e": "24hrTicker", "E": 1, "s": "BNBBTC", "p": "0.0015", "P": "250.00",
               "w": "0.0018", "x": "0.0009", "c": "0.0025", "Q": "10", "b": "0.0024", "B": "10",
               "a": "0.0026", "A": "100", "o": "0.0010", "h": "0.0025", "l": "0.0010",
               "v": "10000", "q": "18", "O": 0, "C": 86400000, "F": 0, "L": 18150, "n": 18151},
    "windowTicker": {"e": "1hTicker", "E": 1, "s": "BNBBTC", "p": "0.0015", "P": "250.00",
                     "o": "0.0010", "h": "0.0025", "l": "0.0010", "c": "0.0025", "w": "0.0018",
                     "v": "10000", "q": "18", "O": 0, "C": 1, "F": 0, "L": 18150, "n": 18151},
    "bookTicker": {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
                   "a": "25.36520000", "A": "40.66000000"},
    "avgPrice": {"e": "avgPrice", "E": 1, "s": "BTCUSDT", "i": "5m", "w": "25776.86000000",
                 "T": 1},
    "partialDepth": {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]},
    "diffDepth": {"e": "depthUpdate", "E": 1, "s": "BNBBTC", "U": 157, "u": 160,
                  "b": [["0.0024", "10"]], "a": [["0.0026", "100"]]},
    "restDepth": {"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]],
                  "asks": [["4.00000200", "12.00000000"]]},
    "restAggTrade": {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
                     "T": 1498793709153, "m": True, "M": True},
    "restKline": [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
                  "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397",
                  "28.46694368", "0"],
    "restAvgPrice": {"mins": 5, "price": "9.35751834", "closeTime": 1694061154503},
    "exchangeInfo": {"timezone": "UTC", "serverTime": 1, "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
        "exchangeFilters": [], "symbols": [{
            "symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "baseAssetPrecision": 8,
            "quoteAsset": "BTC", "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT"], "icebergAllowed": True, "ocoAllowed": True,
            "otoAllowed": True, "opoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False, "cancelReplaceAllowed": False, "amendAllowed": False,
            "pegInstructionsAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True, "filters": [], "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]], "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"]}]},
}  # fmt: skip


def assert_shape(actual: Any, reference: Any, where: str = "$") -> None:
    """Same JSON type at every level and the same key set for objects. A reference list of
    more than two scalars is a fixed-length row (a kline), compared position by position; any
    other list's items are each compared with the reference's first item."""
    assert type(actual) is type(reference), f"{where}: {actual!r} vs {reference!r}"
    if isinstance(reference, dict):
        assert set(actual) == set(reference), f"{where}: keys {sorted(actual)}"
        for key, value in reference.items():
            assert_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(reference, list) and reference:
        if all(not isinstance(x, list | dict) for x in reference) and len(reference) > 2:
            assert len(actual) == len(reference), where
            for i, (a, r) in enumerate(zip(actual, reference, strict=True)):
                assert_shape(a, r, f"{where}[{i}]")
        else:
            for i, item in enumerate(actual):
                assert_shape(item, reference[0], f"{where}[{i}]")


def assert_binance_number(text: str) -> None:
    """Prices/quantities are strings with exactly 8 decimals, as Binance prints them."""
    whole, dot, frac = text.lstrip("-").partition(".")
    assert dot, text
    assert whole.isdigit(), text
    assert frac.isdigit(), text
    assert len(frac) == 8, text


def run(market: Market, active: Iterable[str], steps: int) -> list[tuple[str, Any]]:
    names = frozenset(active)
    out: list[tuple[str, Any]] = []
    for _ in range(steps):
        out.extend(market.step(names))
    return out


class LocalBook:
    """A client-side book: a REST snapshot plus diff events, spot algorithm (§5.1)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last = snapshot["lastUpdateId"]
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}

    def apply(self, event: dict[str, Any]) -> None:
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for p, q in levels:
                if Decimal(q):
                    side[Decimal(p)] = Decimal(q)
                else:
                    side.pop(Decimal(p), None)
        self.last = event["u"]

    def feed(self, event: dict[str, Any]) -> None:
        """Apply unless already covered; assert the sequence rules of §5.1."""
        if event["u"] <= self.last:
            return
        assert event["U"] <= self.last + 1, "gap"
        self.apply(event)

    def matches(self, state: BookState) -> bool:
        return (
            self.last == state.last_update_id
            and sorted(self.bids.items(), reverse=True) == list(state.bids)
            and sorted(self.asks.items()) == list(state.asks)
        )


# ---------------------------------------------------------------------------- stream names
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("btcusdt@trade", "ok"),
        ("btcusdt@aggTrade", "ok"),
        ("btcusdt@kline_1m", "ok"),
        ("btcusdt@kline_1M", "ok"),
        ("btcusdt@kline_1s@+08:00", "ok"),
        ("btcusdt@kline_1w@+08:00", "ok"),
        ("btcusdt@miniTicker", "ok"),
        ("!miniTicker@arr", "ok"),
        ("btcusdt@ticker", "ok"),
        ("btcusdt@ticker_1h", "ok"),
        ("btcusdt@ticker_4h", "ok"),
        ("btcusdt@ticker_1d", "ok"),
        ("!ticker_1h@arr", "ok"),
        ("!ticker_1d@arr", "ok"),
        ("btcusdt@bookTicker", "ok"),
        ("btcusdt@avgPrice", "ok"),
        ("btcusdt@depth", "ok"),
        ("btcusdt@depth@100ms", "ok"),
        ("btcusdt@depth5", "ok"),
        ("btcusdt@depth10@100ms", "ok"),
        ("btcusdt@depth20", "ok"),
        ("xrpusdt@trade", "ok"),  # well-formed, not simulated: accepted, never delivers
        ("1000satsusdt@trade", "ok"),
        ("!ticker@arr", "retired"),
        ("!bookTicker", "retired"),
        ("", "invalid"),
        ("BTCUSDT@trade", "invalid"),
        ("btcUSDT@trade", "invalid"),
        ("btcusdt", "invalid"),
        ("btcusdt@", "invalid"),
        ("@trade", "invalid"),
        ("btcusdt@trades", "invalid"),
        ("btcusdt@aggtrade", "invalid"),
        ("btcusdt@kline_2m", "invalid"),
        ("btcusdt@kline_1H", "invalid"),
        ("btcusdt@kline_", "invalid"),
        ("btcusdt@kline_1m@+09:00", "invalid"),
        ("btcusdt@ticker_2h", "invalid"),
        ("btcusdt@depth15", "invalid"),
        ("btcusdt@depth@500ms", "invalid"),
        ("btcusdt@depth5@1000ms", "invalid"),
        ("btc-usdt@trade", "invalid"),
        ("btcusdt@trade@100ms", "invalid"),
        ("!miniTicker", "invalid"),
        ("!ticker_2h@arr", "invalid"),
        ("btcusdt@trade ", "invalid"),
    ],
)
def test_classify_stream(name: str, expected: str) -> None:
    assert Market(("BTCUSDT",), start_time_ms=START, book_depth=5).classify_stream(name) == expected


@pytest.mark.parametrize(
    ("interval", "tz_hours", "t", "open_iso"),
    [
        ("1s", 0, "2024-03-05T10:11:12.999", "2024-03-05T10:11:12"),
        ("1m", 0, "2024-03-05T10:11:12", "2024-03-05T10:11:00"),
        ("15m", 0, "2024-03-05T10:29:59", "2024-03-05T10:15:00"),
        ("4h", 0, "2024-03-05T10:11:12", "2024-03-05T08:00:00"),
        ("6h", 8, "2024-03-05T10:11:12", "2024-03-05T10:00:00"),  # 18:00 at UTC+8
        ("1d", 0, "2024-03-05T10:11:12", "2024-03-05T00:00:00"),
        ("1d", 8, "2024-03-05T10:11:12", "2024-03-04T16:00:00"),
        ("1d", 8, "2024-03-05T16:00:00", "2024-03-05T16:00:00"),
        ("1w", 0, "2024-03-05T10:11:12", "2024-03-04T00:00:00"),  # Monday
        ("1w", 0, "2024-03-04T00:00:00", "2024-03-04T00:00:00"),
        ("1w", 8, "2024-03-04T03:00:00", "2024-03-03T16:00:00"),
        ("1M", 0, "2024-02-29T23:59:59", "2024-02-01T00:00:00"),
        ("1M", 8, "2024-02-29T17:00:00", "2024-02-29T16:00:00"),
    ],
)
def test_candle_open(interval: str, tz_hours: int, t: str, open_iso: str) -> None:
    def ms(iso: str) -> int:
        from datetime import UTC, datetime

        return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)

    opened = candle_open(interval, ms(t), tz_hours * 3_600_000)
    assert opened == ms(open_iso)
    closed = candle_close(interval, opened, tz_hours * 3_600_000)
    assert candle_open(interval, closed, tz_hours * 3_600_000) == opened
    assert candle_open(interval, closed + 1, tz_hours * 3_600_000) == closed + 1


def test_candle_close_of_months() -> None:
    feb = candle_open("1M", START + 100 * 86_400_000)  # 2024-02-22 → February 2024
    assert candle_close("1M", feb) - feb + 1 == 29 * 86_400_000  # leap year


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0.00000000"),
        (1, "0.00000001"),
        (6_000_001_000_000, "60000.01000000"),
        (-150_000_000, "-1.50000000"),
    ],
)
def test_fmt8(value: int, text: str) -> None:
    assert fmt8(value) == text
    if value >= 0:
        assert parse8(text) == value


# ---------------------------------------------------------------------------- payload shapes
ALL_KINDS = {
    "btcusdt@trade": "trade",
    "btcusdt@aggTrade": "aggTrade",
    "btcusdt@kline_1s": "kline",
    "btcusdt@kline_1m": "kline",
    "btcusdt@kline_1d@+08:00": "kline",
    "btcusdt@miniTicker": "miniTicker",
    "btcusdt@ticker": "ticker",
    "btcusdt@ticker_1h": "windowTicker",
    "btcusdt@ticker_4h": "windowTicker",
    "btcusdt@ticker_1d": "windowTicker",
    "btcusdt@bookTicker": "bookTicker",
    "btcusdt@avgPrice": "avgPrice",
    "btcusdt@depth5": "partialDepth",
    "btcusdt@depth10@100ms": "partialDepth",
    "btcusdt@depth20": "partialDepth",
    "btcusdt@depth": "diffDepth",
    "btcusdt@depth@100ms": "diffDepth",
    "!miniTicker@arr": "miniTicker",
    "!ticker_4h@arr": "windowTicker",
}


def test_every_stream_kind_has_the_reference_shape() -> None:
    market = Market(start_time_ms=START - 3_000, book_depth=100)
    out = run(market, ALL_KINDS, 40)  # crosses a minute boundary: closed and open klines
    seen: dict[str, int] = {}
    for name, payload in out:
        seen[name] = seen.get(name, 0) + 1
        kind = ALL_KINDS[name]
        items = payload if name.startswith("!") else [payload]
        assert isinstance(items, list)
        assert items
        for item in items:
            assert_shape(item, REFERENCE[kind], name)
            for key, value in item.items():
                if isinstance(value, str) and key not in ("e", "s", "i", "P"):
                    assert_binance_number(value)
            if kind == "kline":
                k = item["k"]
                assert k["i"] == name.split("_")[1].split("@")[0]
                for key in "ohlcvqVQ":
                    assert_binance_number(k[key])
            if kind == "windowTicker":
                assert item["e"] == name.split("_")[1].split("@")[0] + "Ticker"
            if kind in ("partialDepth", "diffDepth"):
                for levels in (item.get("b", item.get("bids")), item.get("a", item.get("asks"))):
                    for price, qty in levels:
                        assert_binance_number(price)
                        assert_binance_number(qty)
    assert set(seen) == set(ALL_KINDS)
    for name, payload in out:
        if not name.startswith("!") and ALL_KINDS[name] != "partialDepth":
            assert payload["s"] == "BTCUSDT"


def test_rest_bodies_have_the_reference_shape() -> None:
    market = Market(start_time_ms=START, book_depth=100)
    run(market, (), 30)
    assert_shape(market.rest_depth("BTCUSDT", 5), REFERENCE["restDepth"])
    rows = market.rest_agg_trades("BTCUSDT", limit=5)
    assert rows
    for row in rows:
        assert_shape(row, REFERENCE["restAggTrade"])
    for row in market.rest_klines("BTCUSDT", "1s", limit=3):
        assert_shape(row, REFERENCE["restKline"])
    assert_shape(market.rest_avg_price("BNBBTC"), REFERENCE["restAvgPrice"])
    info = market.rest_exchange_info()
    ref = REFERENCE["exchangeInfo"]
    assert set(info) == set(ref)
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "BNBBTC"]
    for entry in info["symbols"]:
        assert set(entry) == set(ref["symbols"][0])
        assert_shape(
            {k: v for k, v in entry.items() if k != "filters"},
            {k: v for k, v in ref["symbols"][0].items() if k != "filters"},
        )
    assert {r["rateLimitType"] for r in info["rateLimits"]} == {
        "REQUEST_WEIGHT",
        "ORDERS",
        "RAW_REQUESTS",
    }


def test_exchange_info_filters_match_the_book_and_trades() -> None:
    market = Market(start_time_ms=START, book_depth=200)
    run(market, (), 50)
    for entry in market.rest_exchange_info()["symbols"]:
        filters = {f["filterType"]: f for f in entry["filters"]}
        tick = parse8(filters["PRICE_FILTER"]["tickSize"])
        step = parse8(filters["LOT_SIZE"]["stepSize"])
        symbol = entry["symbol"]
        book = market.rest_depth(symbol, 5000)
        for price, qty in book["bids"] + book["asks"]:
            assert parse8(price) % tick == 0
            assert parse8(price) > 0
            assert parse8(qty) % step == 0
            assert parse8(qty) > 0
        for trade in market.trade_history(symbol):
            assert parse8(trade["p"]) % tick == 0
            assert parse8(trade["q"]) % step == 0
    btc = market.rest_exchange_info(["BTCUSDT"])["symbols"][0]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert (btc["baseAsset"], btc["quoteAsset"]) == ("BTC", "USDT")
    assert 50_000 < float(market.rest_depth("BTCUSDT", 1)["bids"][0][0]) < 70_000


# ---------------------------------------------------------------------------- determinism
def test_same_seed_same_output_different_seed_different_output() -> None:
    names = [
        "btcusdt@trade",
        "ethusdt@depth@100ms",
        "bnbbtc@kline_1s",
        "!miniTicker@arr",
        "btcusdt@bookTicker",
        "ethusdt@aggTrade",
    ]

    def record(seed: int, active: Iterable[str]) -> str:
        market = Market(seed=seed, start_time_ms=START, book_depth=100)
        names = list(active)
        out = [market.step(set(names)) for _ in range(60)]
        rest = [market.rest_depth("ETHUSDT", 20), market.rest_klines("BNBBTC", "1s")]
        return json.dumps([out, rest])

    first = record(7, names)
    assert record(7, reversed(names)) == first  # independent of the order of `active`
    assert record(8, names) != first


def test_symbols_are_simulated_independently() -> None:
    alone = Market(("ETHUSDT",), seed=3, start_time_ms=START, book_depth=100)
    together = Market(("BTCUSDT", "ETHUSDT"), seed=3, start_time_ms=START, book_depth=100)
    names = {"ethusdt@trade", "ethusdt@depth@100ms"}
    assert run(alone, names, 50) == run(together, names, 50)
    assert alone.true_book("ETHUSDT") == together.true_book("ETHUSDT")


def test_time_advances_by_tick_and_events_carry_market_time() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, tick_ms=250, book_depth=50)
    for i in range(1, 9):
        out = market.step({"btcusdt@trade", "btcusdt@depth@100ms"})
        assert market.time_ms == START + 250 * i
        assert all(p["E"] == market.time_ms for _, p in out)


def test_unsimulated_symbols_and_retired_names_never_emit() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, book_depth=50)
    assert (
        run(
            market,
            {
                "xrpusdt@trade",
                "ethusdt@depth@100ms",
                "!ticker@arr",
                "!bookTicker",
                "BTCUSDT@trade",
                "btcusdt@blockTrade",
            },
            30,
        )
        == []
    )
    assert market.step(()) == []


# ---------------------------------------------------------------------------- book & depth
@pytest.mark.parametrize("name", ["btcusdt@depth@100ms", "btcusdt@depth"])
def test_diff_events_are_contiguous_and_replay_to_the_true_book(name: str) -> None:
    market = Market(("BTCUSDT", "ETHUSDT"), start_time_ms=START + 450, book_depth=150)
    run(market, (), 7)  # a snapshot while the 1000 ms speed has pending changes
    book = LocalBook(market.rest_depth("BTCUSDT", 5000))
    assert book.matches(market.true_book("BTCUSDT"))
    previous: int | None = None
    events = 0
    for _ in range(120):
        out = market.step({name})
        for stream, event in out:
            assert stream == name
            assert event["U"] <= event["u"]
            if previous is not None:
                assert event["U"] == previous + 1
            previous = event["u"]
            assert event["E"] == market.time_ms
            book.feed(event)
            events += 1
            assert book.matches(market.true_book("BTCUSDT", event["u"]))
            assert event["u"] == market.last_update_id("BTCUSDT")  # cut at the end of a tick
            bids = [Decimal(p) for p, _ in event["b"]]
            asks = [Decimal(p) for p, _ in event["a"]]
            assert bids == sorted(bids, reverse=True)
            assert asks == sorted(asks)
    assert events == (120 if name.endswith("100ms") else 12)


def test_diff_cursor_advances_while_nobody_listens() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, book_depth=100)
    name = "btcusdt@depth@100ms"
    [(_, first)] = market.step({name})
    run(market, (), 10)
    [(_, later)] = market.step({name})
    assert later["U"] > first["u"] + 1  # the unseen events covered the ids in between
    before = market.last_update_id("BTCUSDT")
    [(_, event)] = market.step({name})
    assert event["U"] == before + 1


def test_book_is_never_crossed_at_any_update_id_and_keeps_its_depth() -> None:
    market = Market(("BNBBTC", "BTCUSDT"), seed=11, start_time_ms=START, book_depth=40)
    run(market, (), 300)
    for symbol in market.symbols:
        last = market.last_update_id(symbol)
        first = max(market.oldest_update_id(symbol), last - 800)
        sizes = []
        for uid in range(first, last + 1):
            state = market.true_book(symbol, uid)
            assert state.bids[0][0] < state.asks[0][0], (symbol, uid)
            assert all(q > 0 for _, q in state.bids + state.asks)
            assert [p for p, _ in state.bids] == sorted((p for p, _ in state.bids), reverse=True)
            sizes += [len(state.bids), len(state.asks)]
        # Sweeps dip a side for a moment; the deep end is topped up a few levels per tick.
        assert min(sizes) >= 20
        assert max(sizes) <= 50
        assert 36 <= statistics.mean(sizes) <= 42


def test_every_update_changes_exactly_one_level() -> None:
    market = Market(("ETHUSDT",), start_time_ms=START, book_depth=60)
    run(market, (), 60)
    last = market.last_update_id("ETHUSDT")
    previous = market.true_book("ETHUSDT", last - 200)
    for uid in range(last - 199, last + 1):
        state = market.true_book("ETHUSDT", uid)
        changed = (set(state.bids) ^ set(previous.bids)) | (set(state.asks) ^ set(previous.asks))
        prices = {p for p, _ in changed}
        assert len(prices) == 1, (uid, changed)
        previous = state


def test_true_book_history_matches_what_was_current() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, book_depth=300)
    recorded = []
    for _ in range(300):
        market.step(())
        if market.time_ms % 3_000 == 0:
            recorded.append(market.true_book("BTCUSDT"))
    assert len(recorded) == 10
    for state in recorded:
        assert market.true_book("BTCUSDT", state.last_update_id) == state
    with pytest.raises(ValueError, match="outside"):
        market.true_book("BTCUSDT", market.last_update_id("BTCUSDT") + 1)
    with pytest.raises(ValueError, match="not simulated"):
        market.true_book("XRPUSDT")


def test_history_is_bounded_and_old_ids_are_refused() -> None:
    def market(history: int) -> Market:
        return Market(("BTCUSDT",), start_time_ms=START, book_depth=50, history_ticks=history)

    short, full = market(80), market(10**6)
    first_id = short.last_update_id("BTCUSDT")
    run(short, {"btcusdt@depth"}, 600)
    run(full, (), 600)
    oldest = short.oldest_update_id("BTCUSDT")
    assert oldest > first_id
    assert short.true_book("BTCUSDT", oldest) == full.true_book("BTCUSDT", oldest)
    with pytest.raises(ValueError, match="outside"):
        short.true_book("BTCUSDT", oldest - 1)
    # At least the last history_ticks ticks are kept, and at most one epoch (ticks // 8) more.
    kept, everything = short.trade_history("BTCUSDT"), full.trade_history("BTCUSDT")
    assert kept == everything[-len(kept) :]
    assert kept[0]["T"] > short.time_ms - (80 + 10 + 1) * 100
    recent = [t for t in everything if t["T"] > short.time_ms - 80 * 100]
    assert len(kept) >= len(recent)
    assert short.agg_trade_history("BTCUSDT")[0]["f"] == kept[0]["t"]


def test_rest_depth_plus_later_diffs_is_the_true_book_for_both_speeds() -> None:
    market = Market(("ETHUSDT",), start_time_ms=START + 30, book_depth=400)
    names = ["ethusdt@depth@100ms", "ethusdt@depth"]
    buffered: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(4):  # subscribed before the snapshot, as §5.1 says
        for name, event in market.step(set(names)):
            buffered[name].append(event)
    snapshot = market.rest_depth("ETHUSDT", 5000)
    assert len(snapshot["bids"]) == len(market.true_book("ETHUSDT").bids)
    books = {n: LocalBook(snapshot) for n in names}
    for _ in range(25):
        for name, event in market.step(set(names)):
            buffered[name].append(event)
    for name in names:
        events = [e for e in buffered[name] if e["u"] > snapshot["lastUpdateId"]]
        assert events[0]["U"] <= snapshot["lastUpdateId"] + 1 <= events[0]["u"]
        for event in events:
            books[name].feed(event)
        assert books[name].matches(market.true_book("ETHUSDT", books[name].last))
    assert books[names[0]].last == market.last_update_id("ETHUSDT")


@pytest.mark.parametrize(
    ("offset_ms", "size"),
    [(0, 1), (500, 1), (300, 3), (700, 60)],  # 60 > the 1000 ms speed's pending changes
)
def test_inject_gap_breaks_a_naive_client_and_resync_recovers(offset_ms: int, size: int) -> None:
    market = Market(("BTCUSDT",), seed=offset_ms, start_time_ms=START, book_depth=200)
    names = ["btcusdt@depth@100ms", "btcusdt@depth"]
    run(market, (), 3)
    books = {n: LocalBook(market.rest_depth("BTCUSDT", 5000)) for n in names}
    for _ in range(10):  # both speeds deliver an event before the gap
        for name, event in market.step(set(names)):
            books[name].feed(event)
    while market.time_ms % 1000 != offset_ms:
        for name, event in market.step(set(names)):
            books[name].feed(event)
    skipped = market.inject_gap("BTCUSDT", size)
    assert skipped["@depth@100ms"] == size
    assert skipped["@depth"] >= size
    truth_after_gap = market.true_book("BTCUSDT")
    gapped: set[str] = set()
    while gapped != set(names):
        for name, event in market.step(set(names)):
            if name in gapped:
                continue
            gapped.add(name)
            assert event["U"] == books[name].last + 1 + skipped[name[7:]]
            naive = books[name]
            naive.apply(event)  # ignore the gap
            truth = market.true_book("BTCUSDT", event["u"])
            assert not naive.matches(truth)
            assert naive.last == truth.last_update_id
    assert market.true_book("BTCUSDT", truth_after_gap.last_update_id) == truth_after_gap
    # A client that resyncs from a new snapshot is right again.
    resynced = {n: LocalBook(market.rest_depth("BTCUSDT", 5000)) for n in names}
    for _ in range(12):
        for name, event in market.step(set(names)):
            resynced[name].feed(event)
    for name in names:
        assert resynced[name].matches(market.true_book("BTCUSDT", resynced[name].last))


def test_inject_gap_rejects_bad_arguments() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, book_depth=20)
    with pytest.raises(ValueError, match="size"):
        market.inject_gap("BTCUSDT", 0)
    with pytest.raises(ValueError, match="not simulated"):
        market.inject_gap("ETHUSDT")


def test_partial_depth_and_book_ticker_match_the_true_book() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, book_depth=100)
    names = {"btcusdt@depth5@100ms", "btcusdt@depth20", "btcusdt@bookTicker"}
    tickers = partial = 0
    initial = market.true_book("BTCUSDT")
    previous_best = (initial.bids[0], initial.asks[0])
    for _ in range(60):
        out = market.step(names)
        state = market.true_book("BTCUSDT")
        best = (state.bids[0], state.asks[0])
        emitted = {name for name, _ in out}
        assert ("btcusdt@bookTicker" in emitted) == (best != previous_best)
        previous_best = best
        for name, payload in out:
            if name == "btcusdt@bookTicker":
                tickers += 1
                assert payload["u"] == state.last_update_id
                assert (Decimal(payload["b"]), Decimal(payload["B"])) == state.bids[0]
                assert (Decimal(payload["a"]), Decimal(payload["A"])) == state.asks[0]
                continue
            partial += 1
            levels = 5 if name == "btcusdt@depth5@100ms" else 20
            assert payload["lastUpdateId"] == state.last_update_id
            assert [(Decimal(p), Decimal(q)) for p, q in payload["bids"]] == list(
                state.bids[:levels]
            )
            assert [(Decimal(p), Decimal(q)) for p, q in payload["asks"]] == list(
                state.asks[:levels]
            )
    assert tickers > 20
    assert partial == 60 + 6


# ---------------------------------------------------------------------------- trades
def test_trades_and_agg_trades_are_consistent() -> None:
    market = Market(start_time_ms=START, book_depth=100)
    names = {"btcusdt@trade", "btcusdt@aggTrade", "bnbbtc@trade", "bnbbtc@aggTrade"}
    out = run(market, names, 300)
    for symbol in ("BTCUSDT", "BNBBTC"):
        prefix = symbol.lower() + "@"
        trades = [p for n, p in out if n == prefix + "trade"]
        aggs = [p for n, p in out if n == prefix + "aggTrade"]
        assert trades == market.trade_history(symbol)
        assert aggs == market.agg_trade_history(symbol)
        assert len(trades) > 300
        assert len(aggs) > 200
        ids = [t["t"] for t in trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
        by_id = {t["t"]: t for t in trades}
        assert aggs[0]["f"] == ids[0]
        assert aggs[-1]["l"] == ids[-1]
        assert any(a["l"] > a["f"] for a in aggs)  # several makers at one price
        for a, b in itertools.pairwise(aggs):
            assert b["f"] == a["l"] + 1
        for agg in aggs:
            parts = [by_id[i] for i in range(agg["f"], agg["l"] + 1)]
            assert {(t["p"], t["T"], t["m"]) for t in parts} == {(agg["p"], agg["T"], agg["m"])}
            assert sum(parse8(t["q"]) for t in parts) == parse8(agg["q"])
            assert agg["E"] == agg["T"]
        assert {t["m"] for t in trades} == {True, False}


def test_every_fill_takes_from_the_best_level_of_its_side() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START, book_depth=30)
    fills = 0
    for _ in range(60):
        first = market.last_update_id("BTCUSDT")
        out = market.step({"btcusdt@aggTrade"})
        books = [
            market.true_book("BTCUSDT", u)
            for u in range(first, market.last_update_id("BTCUSDT") + 1)
        ]
        for _, agg in out:
            price, qty = Decimal(agg["p"]), Decimal(agg["q"])

            def side(book: BookState, bids: bool = agg["m"]) -> dict[Decimal, Decimal]:
                # Buyer is maker: a sell order took from the bids.
                return dict(book.bids if bids else book.asks)

            # Some update of this tick reduced (or removed) that very level by the agg's qty
            # while it was the best of its side.
            best = max if agg["m"] else min
            assert any(
                best(side(before)) == price
                and side(before)[price] - side(after).get(price, Decimal(0)) == qty
                for before, after in itertools.pairwise(books)
            )
            fills += 1
    assert fills > 40


# ---------------------------------------------------------------------------- klines
def kline_row(k: dict[str, Any]) -> list[Any]:
    return [
        k["t"],
        k["o"],
        k["h"],
        k["l"],
        k["c"],
        k["v"],
        k["T"],
        k["q"],
        k["n"],
        k["V"],
        k["Q"],
        "0",
    ]


def ohlcv(trades: list[dict[str, Any]], prev_close: str) -> tuple[Any, ...]:
    if not trades:
        return prev_close, prev_close, prev_close, prev_close, "0.00000000", 0, -1, -1
    prices = [parse8(t["p"]) for t in trades]
    return (
        trades[0]["p"],
        fmt8(max(prices)),
        fmt8(min(prices)),
        trades[-1]["p"],
        fmt8(sum(parse8(t["q"]) for t in trades)),
        len(trades),
        trades[0]["t"],
        trades[-1]["t"],
    )


def test_klines_close_once_and_agree_with_rest_and_trades() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START - 5_000, book_depth=100)
    names = {"btcusdt@kline_1m", "btcusdt@kline_3m", "btcusdt@kline_1s", "btcusdt@kline_1m@+08:00"}
    closed: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    open_updates = 0
    while market.time_ms < START + 4 * MINUTE:
        before = market.time_ms
        for name, event in market.step(names):
            k = event["k"]
            assert event["E"] == market.time_ms
            assert k["t"] <= k["T"]
            interval = name.split("_")[1].split("@")[0]
            if k["x"]:
                assert before <= k["T"] < market.time_ms  # the tick where the interval ends
                closed[name].append(k)
            else:
                open_updates += 1
                assert k["t"] <= market.time_ms <= k["T"]
                if "@+08:00" not in name:  # the open candle equals REST at the same time
                    [row] = market.rest_klines("BTCUSDT", interval, start_time=k["t"], limit=1)
                    assert row == kline_row(k)
    assert open_updates > 0
    trades = market.trade_history("BTCUSDT")
    for name, candles in closed.items():
        interval = name.split("_")[1].split("@")[0]
        opens = [k["t"] for k in candles]
        assert len(opens) == len(set(opens))  # each candle closes exactly once
        width = {"1s": 1_000, "1m": MINUTE, "3m": 3 * MINUTE}[interval]
        assert opens == list(range(opens[0], opens[0] + width * len(opens), width))
        rows = {r[0]: r for r in market.rest_klines("BTCUSDT", interval, limit=1000)}
        for k in candles:
            assert rows[k["t"]] == kline_row(k)
            inside = [t for t in trades if k["t"] <= t["T"] <= k["T"]]
            expected = ohlcv(inside, k["o"])
            assert (k["o"], k["h"], k["l"], k["c"], k["v"], k["n"], k["f"], k["L"]) == expected
    assert [k["t"] for k in closed["btcusdt@kline_1m"]] == [
        START - MINUTE + i * MINUTE for i in range(5)
    ]
    assert [k["t"] for k in closed["btcusdt@kline_3m"]] == [START - 3 * MINUTE, START]
    assert len(closed["btcusdt@kline_1s"]) == 245
    assert closed["btcusdt@kline_1m@+08:00"] == closed["btcusdt@kline_1m"]


def test_empty_candles_carry_the_previous_close() -> None:
    # One step per minute: the 59 other seconds of each minute have no trade.
    market = Market(("ETHUSDT",), start_time_ms=START, tick_ms=MINUTE, book_depth=50)
    out = run(market, {"ethusdt@kline_1s"}, 3)
    closed = [p["k"] for _, p in out if p["k"]["x"]]
    assert [k["t"] for k in closed] == list(range(START, START + 3 * MINUTE, 1_000))
    empty = [k for k in closed if k["n"] == 0]
    assert len(empty) >= 3 * 59 - 1
    rows = market.rest_klines("ETHUSDT", "1s", start_time=START, end_time=START + 3 * MINUTE)
    assert len(rows) == 3 * 60 + 1
    for prev, k in itertools.pairwise(closed):
        if k["n"] == 0:
            assert k["o"] == k["h"] == k["l"] == k["c"] == prev["c"]
            assert k["v"] == k["q"] == k["V"] == k["Q"] == "0.00000000"
            assert (k["f"], k["L"]) == (-1, -1)
    assert [kline_row(k) for k in closed] == rows[:-1]


def test_long_interval_candles_accumulate_across_minutes() -> None:
    market = Market(("BNBBTC",), start_time_ms=START, tick_ms=5_000, book_depth=50)
    run(market, (), 12 * 65)  # 65 minutes
    [hour] = market.rest_klines("BNBBTC", "1h", start_time=START - 3_600_000 + 1, limit=1)
    minutes = market.rest_klines("BNBBTC", "1m", start_time=hour[0], end_time=hour[6], limit=1000)
    assert len(minutes) == 60 - (START - hour[0]) // MINUTE
    assert hour[1] == minutes[0][1]
    assert hour[4] == minutes[-1][4]
    assert parse8(hour[2]) == max(parse8(m[2]) for m in minutes)
    assert parse8(hour[3]) == min(parse8(m[3]) for m in minutes)
    assert parse8(hour[5]) == sum(parse8(m[5]) for m in minutes)
    assert hour[8] == sum(m[8] for m in minutes)
    [(_, day8)] = market.step({"bnbbtc@kline_1d@+08:00"})
    assert day8["k"]["t"] % 86_400_000 == 16 * 3_600_000  # 00:00 at UTC+8
    assert day8["k"]["T"] - day8["k"]["t"] == 86_400_000 - 1


# ---------------------------------------------------------------------------- statistics
def test_tickers_and_avg_price_are_computed_from_trades() -> None:
    market = Market(("ETHUSDT",), start_time_ms=START, tick_ms=1_000, book_depth=80)
    names = {"ethusdt@ticker", "ethusdt@miniTicker", "ethusdt@ticker_1h", "ethusdt@avgPrice"}
    run(market, (), 65 * 60)  # 65 minutes: the 1h window has rolled past the oldest trades
    out = dict(market.step(names))
    now = market.time_ms
    trades = market.trade_history("ETHUSDT")

    def check(payload: dict[str, Any], window_start: int) -> None:
        inside = [t for t in trades if t["T"] >= window_start]
        prices = [parse8(t["p"]) for t in inside]
        assert payload["o"] == inside[0]["p"]
        assert payload["c"] == inside[-1]["p"]
        assert parse8(payload["h"]) == max(prices)
        assert parse8(payload["l"]) == min(prices)
        assert parse8(payload["v"]) == sum(parse8(t["q"]) for t in inside)
        quote = sum(parse8(t["p"]) * parse8(t["q"]) for t in inside)
        assert parse8(payload["q"]) == quote // 10**8
        if "n" in payload:
            assert (payload["F"], payload["L"], payload["n"]) == (
                inside[0]["t"],
                inside[-1]["t"],
                len(inside),
            )
            assert payload["O"] == window_start
            assert payload["C"] == now
            assert parse8(payload["w"]) == quote // parse8(payload["v"])
            change = parse8(payload["c"]) - parse8(payload["o"])
            assert parse8(payload["p"].lstrip("-")) == abs(change)
            assert float(payload["P"]) == pytest.approx(
                change / parse8(payload["o"]) * 100, abs=1e-3
            )

    hour_start = (now - 3_600_000) // MINUTE * MINUTE
    assert trades[0]["T"] < hour_start  # the 1h window really excludes older trades
    check(out["ethusdt@ticker_1h"], hour_start)
    check(out["ethusdt@ticker"], (now - 86_400_000) // MINUTE * MINUTE)
    check(out["ethusdt@miniTicker"], START)
    ticker = out["ethusdt@ticker"]
    state = market.true_book("ETHUSDT")
    assert (Decimal(ticker["b"]), Decimal(ticker["B"])) == state.bids[0]
    assert (Decimal(ticker["a"]), Decimal(ticker["A"])) == state.asks[0]
    assert ticker["Q"] == trades[-1]["q"]
    recent = [t for t in trades if t["T"] // 1000 > now // 1000 - 300]
    vwap = sum(parse8(t["p"]) * parse8(t["q"]) for t in recent) // sum(
        parse8(t["q"]) for t in recent
    )
    assert out["ethusdt@avgPrice"]["w"] == fmt8(vwap)
    assert out["ethusdt@avgPrice"]["T"] == trades[-1]["T"]
    assert market.rest_avg_price("ETHUSDT") == {
        "mins": 5,
        "price": fmt8(vwap),
        "closeTime": trades[-1]["T"],
    }


def test_cadences_in_market_time() -> None:
    market = Market(("BTCUSDT",), start_time_ms=START + 50, book_depth=60)
    names = {
        "btcusdt@ticker",
        "btcusdt@avgPrice",
        "btcusdt@depth",
        "btcusdt@depth5",
        "btcusdt@kline_5m",
        "btcusdt@kline_1s",
        "!ticker_1h@arr",
    }
    times: dict[str, list[int]] = {}
    for _ in range(100):
        for name, payload in market.step(names):
            if name == "btcusdt@kline_1s" and payload["k"]["x"]:
                continue
            times.setdefault(name, []).append(market.time_ms)
    for name in names - {"btcusdt@kline_5m"}:
        assert times[name] == [START + 1_000 * i + 50 for i in range(1, 11)], name
    assert times["btcusdt@kline_5m"] == [START + 2_000 * i + 50 for i in range(1, 6)]


def test_all_market_arrays_send_only_changed_symbols() -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "BNBBTC", "DOGEUSDT")
    market = Market(symbols, start_time_ms=START, book_depth=50)
    singles = {s.lower() + "@miniTicker" for s in symbols}
    last_sent: dict[str, dict[str, Any]] = {}
    arrays = 0
    for _ in range(40):
        out = market.step({"!miniTicker@arr", *singles})
        current = {p["s"]: p for n, p in out if n in singles}
        [items] = [p for n, p in out if n == "!miniTicker@arr"] or [[]]
        if not current:
            assert not items
            continue
        arrays += 1
        sent = {item["s"]: item for item in items}
        assert list(sent) == [s for s in symbols if s in sent]  # market order, no repeats
        for symbol in symbols:
            if symbol in sent:
                assert sent[symbol] == current[symbol]
                assert last_sent.get(symbol) != current[symbol] | {"E": 0}
                last_sent[symbol] = current[symbol] | {"E": 0}
            else:  # left out exactly when nothing changed since it was last sent
                assert last_sent[symbol] == current[symbol] | {"E": 0}
    assert arrays == 4


# ---------------------------------------------------------------------------- REST rules
@pytest.fixture(scope="module")
def busy() -> Market:
    market = Market(("BTCUSDT",), start_time_ms=START, tick_ms=1_000, book_depth=100)
    run(market, (), 1_200)  # 20 minutes, > 1000 aggTrades and 1s klines
    return market


def test_rest_agg_trades_parameter_rules(busy: Market) -> None:
    aggs = busy.agg_trade_history("BTCUSDT")
    rows = [{k: v for k, v in a.items() if k not in ("e", "E", "s")} for a in aggs]
    assert len(rows) > 1_000
    mid = rows[len(rows) // 2]
    assert busy.rest_agg_trades("BTCUSDT") == rows[-500:]
    assert busy.rest_agg_trades("BTCUSDT", limit=3) == rows[-3:]
    assert busy.rest_agg_trades("BTCUSDT", limit=5_000) == rows[-1_000:]
    assert (
        busy.rest_agg_trades("BTCUSDT", from_id=mid["a"], limit=4)
        == [r for r in rows if r["a"] >= mid["a"]][:4]
    )
    assert busy.rest_agg_trades("BTCUSDT", from_id=rows[-1]["a"] + 1) == []
    at = mid["T"]
    assert (
        busy.rest_agg_trades("BTCUSDT", start_time=at, limit=5)
        == [r for r in rows if r["T"] >= at][:5]
    )
    assert (
        busy.rest_agg_trades("BTCUSDT", end_time=at, limit=5)
        == [r for r in rows if r["T"] <= at][-5:]
    )
    assert busy.rest_agg_trades("BTCUSDT", start_time=at, end_time=at + 2_000, limit=1_000) == [
        r for r in rows if at <= r["T"] <= at + 2_000
    ]
    assert busy.rest_agg_trades("BTCUSDT", start_time=at * 1_000, limit=5) == (
        busy.rest_agg_trades("BTCUSDT", start_time=at, limit=5)
    )  # µs accepted


def test_rest_klines_parameter_rules(busy: Market) -> None:
    everything = busy.rest_klines("BTCUSDT", "1s", limit=1_000)
    assert len(everything) == 1_000
    assert len(busy.rest_klines("BTCUSDT", "1s", limit=50_000)) == 1_000
    assert busy.rest_klines("BTCUSDT", "1s") == everything[-500:]
    assert everything[-1][0] == busy.time_ms // 1_000 * 1_000  # the open candle is last
    opens = [r[0] for r in everything]
    assert opens == list(range(opens[0], opens[0] + 1_000 * len(opens), 1_000))
    at = everything[100][0]
    assert busy.rest_klines("BTCUSDT", "1s", start_time=at + 1, limit=2) == everything[101:103]
    assert busy.rest_klines("BTCUSDT", "1s", start_time=at, limit=2) == everything[100:102]
    assert busy.rest_klines("BTCUSDT", "1s", end_time=at, limit=2) == everything[99:101]
    assert (
        busy.rest_klines("BTCUSDT", "1s", start_time=at, end_time=at + 4_999)
        == (everything[100:105])
    )
    minutes = busy.rest_klines("BTCUSDT", "1m")
    assert [r[0] for r in minutes] == [START + i * MINUTE for i in range(21)]
    assert busy.rest_klines("BTCUSDT", "1M")[0][0] == 1_698_796_800_000  # 2023-11-01


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda m: m.rest_depth("NOPE"), -1121),
        (lambda m: m.rest_depth("btcusdt"), -1121),
        (lambda m: m.rest_depth(""), -1102),
        (lambda m: m.rest_depth("BTCUSDT", 0), -1100),
        (lambda m: m.rest_agg_trades("NOPE"), -1121),
        (lambda m: m.rest_agg_trades("BTCUSDT", limit=0), -1100),
        (lambda m: m.rest_agg_trades("BTCUSDT", from_id=-1), -1100),
        (lambda m: m.rest_agg_trades("BTCUSDT", from_id=1, start_time=START), -1128),
        (lambda m: m.rest_agg_trades("BTCUSDT", start_time=START + 1, end_time=START), -1023),
        (lambda m: m.rest_klines("NOPE", "1m"), -1121),
        (lambda m: m.rest_klines("BTCUSDT", "1H"), -1120),
        (lambda m: m.rest_klines("BTCUSDT", ""), -1120),
        (lambda m: m.rest_klines("BTCUSDT", "1m", limit=-5), -1100),
        (lambda m: m.rest_klines("BTCUSDT", "1m", start_time=START + 1, end_time=START), -1023),
        (lambda m: m.rest_avg_price("NOPE"), -1121),
        (lambda m: m.rest_exchange_info(["BTCUSDT", "NOPE"]), -1121),
        (lambda m: m.rest_exchange_info([]), -1102),
    ],
)
def test_rest_errors(busy: Market, call: Any, code: int) -> None:
    with pytest.raises(MarketError) as caught:
        call(busy)
    assert caught.value.code == code
    assert caught.value.msg.endswith(".")
    assert str(code) in str(caught.value)


def test_rest_depth_limits(busy: Market) -> None:
    assert len(busy.rest_depth("BTCUSDT")["bids"]) == 100
    assert len(busy.rest_depth("BTCUSDT", 7)["asks"]) == 7
    full = busy.rest_depth("BTCUSDT", 50_000)
    state = busy.true_book("BTCUSDT")
    assert full["lastUpdateId"] == state.last_update_id
    assert [(Decimal(p), Decimal(q)) for p, q in full["bids"]] == list(state.bids)
    assert busy.rest_exchange_info(["BTCUSDT"])["serverTime"] == busy.time_ms


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="uppercase"):
        Market(("btcusdt",))
    with pytest.raises(ValueError, match="duplicate"):
        Market(("BTCUSDT", "BTCUSDT"))
    with pytest.raises(TypeError):
        Market("BTCUSDT")
    with pytest.raises(ValueError, match=">= 1"):
        Market(tick_ms=0)
    before = int(time.time() * 1000)
    assert before <= Market(("BTCUSDT",), book_depth=5).time_ms <= int(time.time() * 1000)


def test_other_symbols_get_a_plausible_market() -> None:
    market = Market(("DOGEUSDT", "SOLBTC"), start_time_ms=START, book_depth=50)
    run(market, (), 50)
    info = {s["symbol"]: s for s in market.rest_exchange_info()["symbols"]}
    assert (info["SOLBTC"]["baseAsset"], info["SOLBTC"]["quoteAsset"]) == ("SOL", "BTC")
    cfg = market.symbol_config("SOLBTC")
    tick = {f["filterType"]: f for f in info["SOLBTC"]["filters"]}["PRICE_FILTER"]["tickSize"]
    assert parse8(tick) == cfg.tick
    for symbol in market.symbols:
        state = market.true_book(symbol)
        assert 0 < state.bids[0][0] < state.asks[0][0]
        assert market.trade_history(symbol)


# ---------------------------------------------------------------------------- performance
def test_step_with_twenty_streams_is_fast() -> None:
    market = Market(start_time_ms=START)
    names = frozenset(
        {
            "btcusdt@trade",
            "btcusdt@aggTrade",
            "btcusdt@depth@100ms",
            "btcusdt@depth",
            "btcusdt@bookTicker",
            "btcusdt@kline_1m",
            "btcusdt@depth20@100ms",
            "btcusdt@ticker",
            "btcusdt@miniTicker",
            "btcusdt@avgPrice",
            "ethusdt@trade",
            "ethusdt@depth@100ms",
            "ethusdt@bookTicker",
            "ethusdt@kline_1s",
            "bnbbtc@trade",
            "bnbbtc@depth@100ms",
            "bnbbtc@aggTrade",
            "!miniTicker@arr",
            "btcusdt@ticker_1h",
            "bnbbtc@depth5",
        }
    )
    run(market, names, 100)
    costs = []
    for _ in range(600):
        started = time.perf_counter()
        market.step(names)
        costs.append(time.perf_counter() - started)
    # Typically ~0.2 ms; the bound is loose so a loaded CI machine does not flake.
    assert statistics.median(costs) < 0.003
