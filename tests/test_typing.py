"""What mypy sees: raw streams are typed payloads, and parse() turns them into models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = """
import rxbinance.operators as rbo
from rxbinance import BinanceStreams
from rxbinance.models import Trade

streams = BinanceStreams()
reveal_type(streams.trades("BNBBTC"))
reveal_type(streams.trades("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.agg_trades("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.klines("BNBBTC", "1m").pipe(rbo.parse()))
reveal_type(streams.symbol_ticker("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.rolling_ticker("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.mini_ticker("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.mini_ticker().pipe(rbo.parse()))
reveal_type(streams.book_ticker("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.avg_price("BNBBTC").pipe(rbo.parse()))
reveal_type(streams.trades("BNBBTC").pipe(rbo.parse_as(Trade)))

def show(trade: Trade) -> None:
    print(trade.price, trade.trade_dt)

streams.trades("BNBBTC").pipe(rbo.parse()).subscribe(show)
"""

EXPECTED = [
    "Observable[TypedDict(rxbinance.protocol.payloads.TradePayload,",
    "Observable[rxbinance.models._market.Trade]",
    "Observable[rxbinance.models._market.AggTrade]",
    "Observable[rxbinance.models._market.Kline]",
    "Observable[rxbinance.models._market.Ticker]",
    "Observable[rxbinance.models._market.RollingTicker]",
    "Observable[rxbinance.models._market.MiniTicker]",
    "Observable[list[rxbinance.models._market.MiniTicker]]",
    "Observable[rxbinance.models._market.BookTicker]",
    "Observable[rxbinance.models._market.AvgPrice]",
    "Observable[rxbinance.models._market.Trade]",
]


def test_parse_gives_each_stream_its_model_type(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    revealed = [line for line in result.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == len(EXPECTED), result.stdout
    for line, expected in zip(revealed, EXPECTED, strict=True):
        assert expected in line, line
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert errors == [], result.stdout
