"""Chaos: what rxbinance loses under faults, counted against FakeBinance's true history.

Usage::

    python benchmarks/chaos.py [--seed 1] [--duration 20] [--symbols 20] [--no-rest]
                               [--fault-interval 0.1] [--fatal]

For ``--symbols`` symbols it subscribes aggTrades, trades, 1 s klines, the diff depth stream
and the local order book on one BinanceStreams against FakeBinance (REST included), injects a
seeded random mix of every fault the fake has (drops with close codes, refusals 503/429/500,
short and long stalls, serverShutdown, depth gaps, malformed and wrong-kind frames, REST
429/418, connection-age rollovers) for ``--duration`` seconds with the market ticking, then
counts what subscribers lost, received twice or out of order, closed candles missing, wrong
books, Gap events and whether each matches a real hole exactly, threads left after close() and
how long close() took (:func:`rxbinance.testing.run_chaos` does the work; its docstring says
exactly what each figure counts). ``--no-rest`` refuses every REST connection: nothing can be
repaired, so every hole must be a Gap with the right bounds. ``--fatal`` adds 451 refusals,
which no retry fixes (streams then end: see ``ended``).

The last line printed is the summary, e.g.::

    chaos: seed=1 duration=20s symbols=20 rest=on faults=98 rollovers=104 | aggtrades lost=0 ...

It is a measurement, not a test: it always exits 0 (tests/test_chaos.py asserts a short run).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxbinance.testing import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="market and fault schedule seed")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of faults")
    parser.add_argument("--symbols", type=int, default=20, help="symbols (5 streams each)")
    parser.add_argument("--no-rest", action="store_true", help="refuse every REST connection")
    parser.add_argument(
        "--fault-interval", type=float, default=0.1, help="mean seconds between faults"
    )
    parser.add_argument("--fatal", action="store_true", help="also refuse with 451 (fatal)")
    parser.add_argument("--verbose", action="store_true", help="print progress and problems")
    args = parser.parse_args(argv)
    # rxbinance logs every dropped junk frame and reconnect as a warning: hundreds here.
    logging.basicConfig(level=logging.ERROR)
    if args.verbose:
        logging.getLogger("rxbinance").setLevel(logging.WARNING)
    report = run_chaos(
        seed=args.seed,
        duration=args.duration,
        symbols=args.symbols,
        rest=not args.no_rest,
        fault_interval=args.fault_interval,
        fatal=args.fatal,
        log=print if args.verbose else None,
    )
    if args.verbose:
        print("faults:", dict(sorted(report.faults.items())))
        for tally in report.tallies.values():
            print(tally)
        for problem in report.failures:
            print("  ", problem[:300])
    print(report.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
