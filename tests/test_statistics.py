"""streams.statistics() against FakeBinance over real sockets: counts, rates, lag, age,
reconnects and repairs of each stream key."""

from __future__ import annotations

from rxbinance import BinanceStreams
from rxbinance.testing import FakeBinance
from tests.conftest import Collector


def test_a_live_stream_reports_rates_lag_and_age(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    got = Collector()
    streams.agg_trades("BTCUSDT").subscribe(got)
    fake.wait_for_connections(1, stream="btcusdt@aggTrade")
    fake.step(40)
    final = int(fake.with_market(lambda m: m.agg_trade_history("BTCUSDT"))[-1]["a"])
    got.wait_for(lambda c: bool(c.items) and c.items[-1]["a"] == final)
    stats = streams.statistics()["btcusdt@aggTrade"]
    assert stats.subscribers == 1
    assert stats.connects == 1
    assert stats.reconnects == 0
    assert stats.messages == len(got.items) > 0
    # Everything arrived within the last minute: the minute's rate covers all of it.
    assert stats.rate_60s > 0
    assert stats.rate_60s * 60 >= stats.messages
    # The fake stamps E with its market clock; the lag is whatever that is from ours, but
    # it is measured (sampled) and p50 <= p99.
    assert stats.lag_p50_ms is not None
    assert stats.lag_p99_ms is not None
    assert stats.lag_p50_ms <= stats.lag_p99_ms
    assert stats.last_message_age is not None
    assert 0 <= stats.last_message_age < 60
    assert stats.gaps_repaired == stats.gaps_unrepaired == stats.rest_weight == 0
    line = stats.summary()
    assert line.startswith("btcusdt@aggTrade 1 sub, ")
    assert f"{stats.messages:,} msgs" in line
    assert "0 reconnects" in line
    assert "gaps 0 repaired 0 lost" in line


def test_reconnects_and_repairs_are_counted(fake: FakeBinance) -> None:
    with BinanceStreams(
        ws_url=fake.ws_url, rest_url=fake.rest_url, retry_delay=0.05, max_retry_delay=0.2
    ) as streams:
        got = Collector()
        streams.agg_trades("BTCUSDT").subscribe(got)
        fake.wait_for_connections(1, stream="btcusdt@aggTrade")
        fake.step(20)
        last = lambda: int(fake.with_market(lambda m: m.agg_trade_history("BTCUSDT"))[-1]["a"])  # noqa: E731
        got.wait_for(lambda c: bool(c.items) and c.items[-1]["a"] == last())
        before = max(c.id for c in fake.connections)
        fake.refuse_connections()
        fake.drop_connections()
        fake.step(30)
        fake.accept_connections()
        fake.wait_for(lambda f: any(c.id > before and c.closed_at is None for c in f.connections))
        fake.step(10)
        got.wait_for(lambda c: c.items[-1]["a"] == last())
        stats = streams.statistics()["btcusdt@aggTrade"]
    assert stats.reconnects == stats.connects - 1 >= 1
    assert stats.gaps_repaired == 1
    assert stats.gaps_unrepaired == 0
    assert stats.rest_weight == stats.repair.rest_weight > 0  # type: ignore[union-attr]
    assert "gaps 1 repaired 0 lost" in stats.summary()
