"""The ``rxbinance`` command line (also ``python -m rxbinance``).

For now one command: ``rxbinance demo`` streams trades from the embedded simulated market
(:class:`rxbinance.testing.FakeBinance` on 127.0.0.1), so it works on a machine with no network.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from typing import Any

from rxbinance.protocol.names import normalize_symbol

__all__ = ["main"]


def _format_trade(message: dict[str, Any]) -> str:
    side = "sell" if message["m"] else "buy "  # buyer is maker: the taker sold
    return f"{message['s']:<10} #{message['t']:<8} {side} {message['q']:>16} @ {message['p']:>16}"


def demo(count: int, symbol: str) -> int:
    try:
        from rxbinance.testing import FakeBinance
    except ImportError as exc:  # the `testing` extra brings the `websockets` server library
        print(
            f"rxbinance demo needs the simulator: pip install 'rxbinance[testing]' ({exc})",
            file=sys.stderr,
        )
        return 2
    from rxbinance import BinanceStreams

    done = threading.Event()
    printed = 0

    def show(message: dict[str, Any]) -> None:
        nonlocal printed
        if printed >= count:
            return
        if message.get("e") == "error":  # the give-up message
            print(f"stream ended: {message['m']}", file=sys.stderr)
            done.set()
            return
        print(_format_trade(message), flush=True)
        printed += 1
        if printed >= count:
            done.set()

    with FakeBinance(tick_interval=0.05) as fake, BinanceStreams(ws_url=fake.ws_url) as streams:
        print(f"rxbinance demo: {count} trades of {symbol}, simulated market at {fake.ws_url}")
        subscription = streams.trades(symbol).subscribe(show, on_completed=done.set)
        try:
            done.wait()
        finally:
            subscription.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rxbinance", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    demo_parser = commands.add_parser("demo", help="stream trades from the embedded simulator")
    demo_parser.add_argument("--count", type=int, default=15, help="trades to show (15)")
    demo_parser.add_argument("--symbol", default="BTCUSDT", help="BTCUSDT, ETHUSDT or BNBBTC")
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        count = getattr(args, "count", 15)
        symbol = getattr(args, "symbol", "BTCUSDT")
        try:
            normalize_symbol(symbol)
        except ValueError as exc:
            print(f"rxbinance: {exc}", file=sys.stderr)
            return 2
        try:
            return demo(count, symbol)
        except KeyboardInterrupt:
            return 130
    parser.error(f"unknown command {args.command!r}")  # exits with status 2
