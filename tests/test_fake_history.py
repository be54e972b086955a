"""FakeBinance's REST trade history over real HTTP (requests): spot historicalTrades and
trades, USD-M trades and historicalTrades, their weights and errors, and REST retention
(Market.forget_history, rest_history_ms, USD-M's 48 hours) on every trade endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests

from rxbinance.testing import FakeBinance, Market
from tests.test_fake_rest import in_one_minute, used

TIMEOUT = 10.0
KEY = "history-key"
T = TypeVar("T")

TRADE_KEYS = {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(tick_interval=None, close_timeout=0.3, api_keys={KEY: "secret"}) as server:
        server.step(400)  # about 1500 trades per symbol: more than one page of 1000
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(
    fake: FakeBinance, http: requests.Session, path: str, *, key: str | None = None, **params: Any
) -> requests.Response:
    headers = {} if key is None else {"X-MBX-APIKEY": key}
    return http.get(fake.rest_url + path, params=params, headers=headers, timeout=TIMEOUT)


def ok(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def as_rest(trade: dict[str, Any], best_match: bool = True) -> dict[str, Any]:
    """The REST item Binance gives for a ``trade`` stream payload."""
    quote = (Decimal(trade["p"]) * Decimal(trade["q"])).quantize(Decimal("1e-8"), "ROUND_DOWN")
    row = {
        "id": trade["t"],
        "price": trade["p"],
        "qty": trade["q"],
        "quoteQty": f"{quote:.8f}",
        "time": trade["T"],
        "isBuyerMaker": trade["m"],
    }
    if best_match:
        row["isBestMatch"] = True
    return row


# ------------------------------------------------------------------- spot endpoints


def test_historical_trades_by_id_are_the_stream_trades(
    fake: FakeBinance, http: requests.Session
) -> None:
    history = fake.trades("ETHUSDT")
    assert len(history) > 1000
    start = history[100]["t"]
    rows = ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=start, limit=7))
    assert rows == [as_rest(t) for t in history[100:107]]  # fromId inclusive, id order
    assert set(rows[0]) == TRADE_KEYS
    # Default limit 500, larger limits served as 1000, no fromId: the most recent.
    assert ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT")) == [
        as_rest(t) for t in history[-500:]
    ]
    big = ok(
        get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=start, limit=5000)
    )
    assert [r["id"] for r in big] == [t["t"] for t in history[100:1100]]
    # Past the newest trade: nothing yet.
    after = history[-1]["t"] + 1
    assert ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=after)) == []
    fake.step(20)
    newer = ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=after))
    assert newer
    assert newer[0]["id"] == after


def test_recent_trades(fake: FakeBinance, http: requests.Session) -> None:
    history = fake.trades("BNBBTC")
    assert ok(get(fake, http, "/api/v3/trades", symbol="BNBBTC", limit=5)) == [
        as_rest(t) for t in history[-5:]
    ]
    assert len(ok(get(fake, http, "/api/v3/trades", symbol="BNBBTC"))) == 500
    eth = fake.trades("ETHUSDT")
    assert len(eth) > 1000
    rows = ok(get(fake, http, "/api/v3/trades", symbol="ETHUSDT", limit=1001))
    assert [r["id"] for r in rows] == [t["t"] for t in eth[-1000:]]  # served as 1000


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/v3/historicalTrades", {}, -1102),
        ("/api/v3/historicalTrades", {"symbol": "NOPEUSDT"}, -1121),
        ("/api/v3/historicalTrades", {"symbol": "btcusdt"}, -1100),
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "limit": 0}, -1100),
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "limit": "ten"}, -1100),
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "fromId": -1}, -1100),
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "fromId": "1.5"}, -1100),
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "startTime": 1}, -1104),
        ("/api/v3/trades", {}, -1102),
        ("/api/v3/trades", {"symbol": "NOPEUSDT"}, -1121),
        ("/api/v3/trades", {"symbol": "BTCUSDT", "limit": -5}, -1100),
        ("/api/v3/trades", {"symbol": "BTCUSDT", "fromId": 1}, -1104),
        ("/fapi/v1/trades", {"symbol": "NOPEUSDT"}, -1121),
        ("/fapi/v1/trades", {"symbol": "BTCUSDT", "limit": 0}, -1100),
        ("/fapi/v1/historicalTrades", {"symbol": "NOPEUSDT"}, -1121),
        ("/fapi/v1/historicalTrades", {"symbol": "BTCUSDT", "limit": 0}, -1100),
        ("/fapi/v1/historicalTrades", {"symbol": "BTCUSDT", "fromId": -2}, -1100),
    ],
)
def test_bad_parameters(
    fake: FakeBinance, http: requests.Session, path: str, params: dict[str, Any], code: int
) -> None:
    response = get(fake, http, path, key=KEY, **params)  # USD-M's historicalTrades needs one
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "msg"}


# ----------------------------------------------------------------------------- USD-M


def test_futures_trades_and_historical_trades(fake: FakeBinance, http: requests.Session) -> None:
    history = fake.trades("BTCUSDT")
    assert ok(get(fake, http, "/fapi/v1/trades", symbol="BTCUSDT", limit=3)) == [
        as_rest(t, best_match=False) for t in history[-3:]
    ]
    start = history[10]["t"]
    rows = ok(get(fake, http, "/fapi/v1/historicalTrades", key=KEY, symbol="BTCUSDT", fromId=start))
    # USD-M: default limit 100, no isBestMatch.
    assert rows == [as_rest(t, best_match=False) for t in history[10:110]]
    many = get(fake, http, "/fapi/v1/historicalTrades", key=KEY, symbol="BTCUSDT", limit=900)
    assert [r["id"] for r in ok(many)] == [t["t"] for t in history[-500:]]  # at most 500


def test_futures_historical_trades_need_an_api_key(
    fake: FakeBinance, http: requests.Session
) -> None:
    response = get(fake, http, "/fapi/v1/historicalTrades", symbol="BTCUSDT")
    assert (response.status_code, response.json()["code"]) == (401, -2014)
    response = get(fake, http, "/fapi/v1/historicalTrades", key="unknown", symbol="BTCUSDT")
    assert (response.status_code, response.json()["code"]) == (401, -2015)
    # The spot endpoint needs none.
    assert get(fake, http, "/api/v3/historicalTrades", symbol="BTCUSDT").status_code == 200


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    [
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT"}, 25),
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "fromId": 1, "limit": 1000}, 25),
        ("/api/v3/trades", {"symbol": "BTCUSDT"}, 25),
        ("/api/v3/trades", {"symbol": "BTCUSDT", "limit": 1}, 25),
        ("/fapi/v1/trades", {"symbol": "BTCUSDT"}, 5),
        ("/fapi/v1/historicalTrades", {"symbol": "BTCUSDT"}, 20),
        ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT", "fromId": 1}, 20),
        ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": 1}, 4),
    ],
)
def test_weights(
    fake: FakeBinance, http: requests.Session, path: str, params: dict[str, Any], weight: int
) -> None:
    def check() -> None:
        before = used(get(fake, http, "/api/v3/ping"))
        response = get(fake, http, path, key=KEY, **params)
        assert response.status_code == 200
        assert used(response) - before == weight
        assert fake.rest_weight_used() == used(response)

    in_one_minute(check)
    assert fake.rest_requests[-1].weight == weight


def test_over_the_weight_limit_nothing_is_served() -> None:
    with (
        FakeBinance(tick_interval=None, rest_weight_limit=60) as fake,
        requests.Session() as http,
    ):

        def check() -> None:
            statuses = [
                get(fake, http, "/api/v3/historicalTrades", symbol="BTCUSDT").status_code
                for _ in range(3)
            ]
            assert statuses == [200, 200, 429]  # 25 + 25 fit in 60, a third does not
            assert fake.rest_weight_used() == 50

        in_one_minute(check)


# ------------------------------------------------------------------------- retention


def first_id(rows: list[dict[str, Any]], key: str) -> int:
    assert rows, "expected rows"
    return int(rows[0][key])


def test_forget_history_by_agg_id(fake: FakeBinance, http: requests.Session) -> None:
    aggs = fake.with_market(lambda m: m.agg_trade_history("BTCUSDT"))
    trades = fake.trades("BTCUSDT")
    cut = aggs[300]
    oldest = fake.with_market(lambda m: m.forget_history("BTCUSDT", before_agg_id=cut["a"]))
    assert oldest == (cut["f"], cut["a"])
    assert fake.with_market(lambda m: m.rest_oldest_ids("BTCUSDT")) == oldest

    # Asked for older ids, every endpoint answers from the oldest it still has.
    spot = ok(get(fake, http, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=aggs[0]["a"], limit=3))
    assert [r["a"] for r in spot] == [a["a"] for a in aggs[300:303]]
    futures = ok(get(fake, http, "/fapi/v1/aggTrades", symbol="BTCUSDT", fromId=aggs[5]["a"]))
    assert first_id(futures, "a") == cut["a"]
    historical = ok(
        get(fake, http, "/api/v3/historicalTrades", symbol="BTCUSDT", fromId=trades[0]["t"])
    )
    assert first_id(historical, "id") == cut["f"]
    assert historical[0] == as_rest(next(t for t in trades if t["t"] == cut["f"]))
    usdm = get(fake, http, "/fapi/v1/historicalTrades", key=KEY, symbol="BTCUSDT", fromId=0)
    assert first_id(ok(usdm), "id") == cut["f"]
    # By time too: a start before the cut starts at the cut.
    by_time = ok(get(fake, http, "/api/v3/aggTrades", symbol="BTCUSDT", startTime=aggs[0]["T"]))
    assert first_id(by_time, "a") == cut["a"]
    # Retained ids are served unchanged, and other symbols keep all their history.
    later = ok(get(fake, http, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=aggs[400]["a"]))
    assert first_id(later, "a") == aggs[400]["a"]
    eth = fake.with_market(lambda m: m.agg_trade_history("ETHUSDT"))[0]["a"]
    assert (
        first_id(ok(get(fake, http, "/api/v3/aggTrades", symbol="ETHUSDT", fromId=0)), "a") == eth
    )
    # The market's own history (the truth tests compare with) is untouched.
    assert fake.with_market(lambda m: m.agg_trade_history("BTCUSDT")) == aggs


def test_forget_history_by_trade_id_drops_the_agg_that_contains_it(fake: FakeBinance) -> None:
    aggs = fake.with_market(lambda m: m.agg_trade_history("ETHUSDT"))
    split = next(i for i, a in enumerate(aggs) if i > 50 and a["l"] > a["f"])
    cut = aggs[split]["f"] + 1  # inside an aggTrade of several trades
    oldest = fake.with_market(lambda m: m.forget_history("ETHUSDT", before_trade_id=cut))
    assert oldest == (cut, aggs[split + 1]["a"])


def test_forget_history_by_time(fake: FakeBinance, http: requests.Session) -> None:
    trades = fake.trades("BNBBTC")
    cut_ms = trades[600]["T"]
    first_kept = next(t for t in trades if t["T"] >= cut_ms)
    aggs = fake.with_market(lambda m: m.agg_trade_history("BNBBTC"))
    first_agg = next(a for a in aggs if a["T"] >= cut_ms)
    oldest = fake.with_market(lambda m: m.forget_history("BNBBTC", before_time_ms=cut_ms))
    assert oldest == (first_kept["t"], first_agg["a"])
    assert first_agg["f"] == first_kept["t"]  # trades and aggTrades are cut at the same point
    rows = ok(get(fake, http, "/api/v3/historicalTrades", symbol="BNBBTC", fromId=0, limit=1))
    assert rows == [as_rest(first_kept)]
    # An earlier cut afterwards changes nothing: cuts only move forward.
    again = fake.with_market(lambda m: m.forget_history("BNBBTC", before_time_ms=0))
    assert again == oldest


def test_forget_everything_then_only_new_trades(fake: FakeBinance, http: requests.Session) -> None:
    old = fake.trades("BTCUSDT")
    next_trade, next_agg = fake.with_market(lambda m: m.forget_history("BTCUSDT"))
    assert next_trade == old[-1]["t"] + 1
    assert ok(get(fake, http, "/api/v3/historicalTrades", symbol="BTCUSDT", fromId=0)) == []
    assert ok(get(fake, http, "/api/v3/trades", symbol="BTCUSDT")) == []
    assert ok(get(fake, http, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=0)) == []
    fake.step(10)
    rows = ok(get(fake, http, "/api/v3/historicalTrades", symbol="BTCUSDT", fromId=old[0]["t"]))
    assert first_id(rows, "id") == next_trade  # the caller sees the hole below it
    aggs = ok(get(fake, http, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=0))
    assert first_id(aggs, "a") == next_agg


def test_forget_history_checks_its_arguments(fake: FakeBinance) -> None:
    trades = fake.trades("BTCUSDT")
    with pytest.raises(ValueError, match="at most one"):
        fake.with_market(lambda m: m.forget_history("BTCUSDT", before_time_ms=1, before_agg_id=1))
    with pytest.raises(ValueError, match="above the next trade id"):
        fake.with_market(lambda m: m.forget_history("BTCUSDT", before_trade_id=trades[-1]["t"] + 2))
    with pytest.raises(ValueError, match="not simulated"):
        fake.with_market(lambda m: m.forget_history("XRPUSDT"))
    with pytest.raises(ValueError, match="rest_history_ms"):
        FakeBinance(rest_history_ms=0)
    with pytest.raises(ValueError, match="rest_history_ms"):
        Market(rest_history_ms=1.5)  # type: ignore[arg-type]


def test_rest_history_ms_keeps_a_rolling_window(http: requests.Session) -> None:
    with FakeBinance(tick_interval=None, rest_history_ms=5_000) as fake:
        fake.step(200)  # 20 s of market time at 100 ms a tick
        now = fake.with_market(lambda m: m.time_ms)
        trades = fake.trades("ETHUSDT")
        kept = [t for t in trades if t["T"] >= now - 5_000]
        assert len(kept) < len(trades)  # the window hides something
        rows = ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=0))
        assert rows == [as_rest(t) for t in kept]
        aggs = ok(get(fake, http, "/api/v3/aggTrades", symbol="ETHUSDT", fromId=0))
        assert aggs[0]["T"] >= now - 5_000
        assert aggs[0]["f"] == kept[0]["t"]
        # The window moves with market time.
        fake.step(30)
        rows = ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=0))
        assert rows[0]["id"] > kept[0]["t"]
        # It can be changed under the lock; None serves everything the market keeps.
        fake.with_market(lambda m: setattr(m, "rest_history_ms", None))
        rows = ok(get(fake, http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=0))
        assert rows[0]["id"] == trades[0]["t"]


def test_futures_agg_trades_serve_the_last_48_hours(http: requests.Session) -> None:
    hour = 3_600_000
    market = Market(("BTCUSDT",), start_time_ms=1_700_000_000_000, tick_ms=60_000, book_depth=50)
    with FakeBinance(tick_interval=None, market=market) as fake:
        fake.step(50 * 60)  # 50 hours of market time, a minute a tick
        now = fake.with_market(lambda m: m.time_ms)
        aggs = fake.with_market(lambda m: m.agg_trade_history("BTCUSDT"))
        recent = [a for a in aggs if a["T"] >= now - 48 * hour]
        assert aggs[0]["T"] < now - 49 * hour  # the market keeps more than 48 h
        rows = ok(get(fake, http, "/fapi/v1/aggTrades", symbol="BTCUSDT", fromId=0, limit=2))
        assert [r["a"] for r in rows] == [a["a"] for a in recent[:2]]
        assert "M" not in rows[0]
        # Spot has no such limit.
        spot = ok(get(fake, http, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=0, limit=1))
        assert spot[0]["a"] == aggs[0]["a"]
        # By time: a window older than 48 h is empty on USD-M, served on spot.
        old = {
            "symbol": "BTCUSDT",
            "startTime": now - 49 * hour,
            "endTime": now - 49 * hour + hour - 1,
        }
        assert ok(get(fake, http, "/fapi/v1/aggTrades", **old)) == []
        assert ok(get(fake, http, "/api/v3/aggTrades", **old))
        # Start and end less than an hour apart are accepted; more is -1127.
        recent_window = {"symbol": "BTCUSDT", "startTime": now - hour + 1, "endTime": now}
        assert ok(get(fake, http, "/fapi/v1/aggTrades", **recent_window))
        wide = get(
            fake,
            http,
            "/fapi/v1/aggTrades",
            symbol="BTCUSDT",
            startTime=now - 2 * hour,
            endTime=now,
        )
        assert (wide.status_code, wide.json()["code"]) == (400, -1127)
