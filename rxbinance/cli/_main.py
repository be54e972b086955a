"""Argument parsing, logging, signals, and the mapping of every failure to one line and an exit
status."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from rxbinance.cli import _commands
from rxbinance.cli._pump import CommandError
from rxbinance.errors import (
    BinanceAPIError,
    ConnectionFailure,
    InvalidInputError,
    RequestError,
    RxBinanceError,
)
from rxbinance.protocol.endpoints import MARKETS

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # the exchange, a file or the network failed
EXIT_USAGE = 2  # a bad argument: stream name, symbol, option (argparse's status too)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2, as shells report it
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (`| head`): 128 + SIGPIPE
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15

DESCRIPTION = "Binance market streams in the terminal: watch, order book, record and replay."

EPILOG = """\
examples:
  rxbinance demo                                  trades from the built-in simulated market
  rxbinance watch btcusdt@trade --pretty          live trades as a table (Ctrl-C to stop)
  rxbinance watch btcusdt@trade ethusdt@bookTicker --limit 10 | jq .
  rxbinance book BTCUSDT --depth 15               a live order book ladder
  rxbinance record btcusdt@depth@100ms -o book.jsonl.gz
  rxbinance replay book.jsonl.gz --speed 10
  rxbinance publish btcusdt@trade --redis redis://localhost:6379   fan out through Redis
  rxbinance watch --redis redis://localhost:6379 rxbinance:btcusdt@trade

Add --sim to any network command to run it against the built-in simulated market
(BTCUSDT, ETHUSDT, BNBBTC): no network needed.

exit status: 0 done (--limit, --duration, or the end of a replay), 1 the exchange, network or a
file failed, 2 bad arguments (stream name, symbol, option), 130 interrupted (Ctrl-C), 141 the
reader of stdout went away, 143 terminated (SIGTERM)."""


_SIMULATOR_LOGGERS = ("asyncio", "websockets")


class _Terminated(BaseException):
    """Raised on the main thread by SIGTERM, to unwind (close sockets, finish files)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected seconds > 0, got 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    from rxbinance import __version__

    parser = argparse.ArgumentParser(
        prog="rxbinance",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rxbinance {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no status lines on stderr (errors only)"
    )
    common.add_argument(
        "--debug", action="store_true", help="log everything, and show tracebacks on errors"
    )

    network = argparse.ArgumentParser(add_help=False)
    where = network.add_argument_group("where the data comes from")
    where.add_argument(
        "--sim",
        action="store_true",
        help="use the built-in simulated market (BTCUSDT, ETHUSDT, BNBBTC): no network",
    )
    where.add_argument(
        "--sim-tick",
        type=_positive_seconds,
        default=0.1,
        metavar="SECONDS",
        help="real seconds per 100 ms tick of the simulated market (0.1: real time; "
        "smaller runs it faster)",
    )
    where.add_argument(
        "--market",
        choices=list(MARKETS),
        default="spot",
        help="which Binance market (default: spot)",
    )
    where.add_argument("--ws-url", metavar="URL", help="override the market's stream URL")
    where.add_argument("--rest-url", metavar="URL", help="override the market's REST URL")
    where.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not ask the exchange (REST exchangeInfo) whether the symbols exist",
    )
    healing = network.add_argument_group("connection")
    healing.add_argument(
        "--retries",
        type=_non_negative_int,
        default=5,
        metavar="N",
        help="reconnect attempts in a row before giving up (default: 5)",
    )
    healing.add_argument(
        "--retry-delay",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="first reconnect delay, doubling up to 30 s (default: 1.0)",
    )
    healing.add_argument(
        "--stats-interval",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="print the message rate on stderr this often (default: 10; 0: never)",
    )

    stop = argparse.ArgumentParser(add_help=False)
    when = stop.add_argument_group("when to stop (default: Ctrl-C)")
    when.add_argument(
        "-n", "--limit", type=_positive_int, metavar="N", help="stop after N messages"
    )
    when.add_argument(
        "--duration", type=_positive_seconds, metavar="SECONDS", help="stop after SECONDS"
    )

    def add(name: str, help_: str, parents: list[argparse.ArgumentParser]) -> Any:
        return commands.add_parser(
            name,
            help=help_,
            description=help_[0].upper() + help_[1:] + ".",
            parents=parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    watch = add("watch", "print messages of Binance streams", [common, network, stop])
    watch.add_argument(
        "streams",
        nargs="+",
        metavar="STREAM",
        help="Binance stream names, e.g. btcusdt@trade btcusdt@kline_1m (several: one "
        "multiplex socket, each message wrapped as {stream, data})",
    )
    watch.add_argument("--pretty", action="store_true", help="a readable table, not JSON lines")
    from_redis = watch.add_argument_group(
        "from Redis (what `rxbinance publish` wrote; needs the redis extra)"
    )
    from_redis.add_argument(
        "--redis",
        metavar="URL",
        help="read these Redis stream KEYs instead of Binance (e.g. rxbinance:btcusdt@trade)",
    )
    from_redis.add_argument(
        "--start",
        default="$",
        metavar="ID",
        help="'$' new entries (default), '0' everything kept, or after an entry id",
    )
    from_redis.add_argument("--group", metavar="NAME", help="share the entries in this group")
    from_redis.add_argument(
        "--consumer", metavar="NAME", help="this reader's name in --group (default host-pid)"
    )
    watch.epilog = (
        "JSON lines on stdout (one message a line), status on stderr. With --pretty, prices "
        "have the symbol's precision (from exchangeInfo; as sent with --no-check), and "
        "payloads without an event time (spot bookTicker, partial depth) show their receive "
        "time. With --redis URL the arguments are Redis keys and messages come from Redis "
        "(typed models print as their fields)."
    )
    watch.set_defaults(run=_commands.watch)

    book = add("book", "show a live order book ladder", [common, network, stop])
    book.add_argument("symbol", metavar="SYMBOL", help="e.g. BTCUSDT")
    book.add_argument(
        "-d", "--depth", type=_positive_int, default=10, metavar="N", help="levels a side (10)"
    )
    book.epilog = (
        "On a terminal the ladder redraws in place, with as many levels as the window holds; "
        "piped, every update is printed as a block (use --limit). The command gives up after "
        "--retries + 1 failed depth snapshots in a row."
    )
    book.set_defaults(run=_commands.book)

    record = add("record", "record Binance streams to a file", [common, network, stop])
    record.add_argument("streams", nargs="+", metavar="STREAM", help="Binance stream names")
    record.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="JSON lines with receive times; gzip when FILE ends in .gz",
    )
    record.add_argument("-f", "--force", action="store_true", help="overwrite FILE")
    record.epilog = (
        "Every line is flushed as it is written: a killed recorder loses at most its last "
        "line, and replay tolerates that."
    )
    record.set_defaults(run=_commands.record)

    replay = add("replay", "play a recording back", [common])
    replay.add_argument("file", metavar="FILE", help="a file written by rxbinance record")
    replay.add_argument(
        "-s",
        "--speed",
        type=_seconds,
        default=1.0,
        metavar="X",
        help="1: original timing (default), 10: ten times faster, 0: as fast as possible",
    )
    replay.add_argument("--pretty", action="store_true", help="a readable table, not JSON lines")
    replay.add_argument(
        "-n", "--limit", type=_positive_int, metavar="N", help="stop after N messages"
    )
    replay.set_defaults(run=_commands.replay_file)

    publish = add("publish", "publish Binance streams to Redis streams", [common, network, stop])
    publish.add_argument("streams", nargs="+", metavar="STREAM", help="Binance stream names")
    publish.add_argument(
        "--redis", required=True, metavar="URL", help="e.g. redis://localhost:6379/0"
    )
    publish.add_argument(
        "--key", metavar="KEY", help="one Redis key for all (default: rxbinance:<stream>)"
    )
    publish.add_argument(
        "--maxlen",
        type=_positive_int,
        metavar="N",
        help="keep about N entries per key (XADD MAXLEN ~ N; default: all)",
    )
    publish.epilog = (
        "Each message is one entry (XADD) with its stream name and receive time; read them "
        "with `rxbinance watch --redis URL KEY` or rxbinance.bridge.consume() on any machine. "
        "While Redis is away messages are buffered and resent; what the buffer cannot hold is "
        "reported as lost (a Gap)."
    )
    publish.set_defaults(run=_commands.publish)

    demo = add("demo", "stream trades from the built-in simulated market", [common])
    demo.add_argument("--count", type=_positive_int, default=15, help="trades to show (15)")
    demo.add_argument("--symbol", default="BTCUSDT", help="BTCUSDT, ETHUSDT or BNBBTC")
    demo.set_defaults(run=_commands.demo)
    return parser


class _OneLine(logging.Formatter):
    """Library warnings as one line each, never a traceback (that is --debug's job)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"rxbinance: {record.levelname.lower()}: {record.getMessage()}"


class _Collapsing(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes a line the first time; identical lines right after it are counted, not repeated
    (a market that keeps sending the same bad event would otherwise flood the terminal)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._last = ""
        self._repeats = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if line == self._last:
            self._repeats += 1
            return
        self._flush_repeats()
        self._last = line
        super().emit(record)

    def _flush_repeats(self) -> None:
        if self._repeats:
            repeats = self._repeats
            self.stream.write(f"rxbinance: (the last warning repeated {repeats} more times)\n")
            self._repeats = 0

    def close(self) -> None:
        self.acquire()
        try:
            self._flush_repeats()
        finally:
            self.release()
        super().close()


def _not_reported_as_event(record: logging.LogRecord) -> bool:
    """False for the order book's log line about a failed snapshot: the same failure comes as
    a BookSnapshotFailed event, which the status reports in one short line (once is enough)."""
    return not (
        record.name.startswith("rxbinance.pipelines") and "snapshot failed" in str(record.msg)
    )


def _setup_logging(debug: bool) -> logging.Handler:
    logger = logging.getLogger("rxbinance")
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
        )
        logger.setLevel(logging.DEBUG)
    else:
        handler = _Collapsing()
        handler.setFormatter(_OneLine())
        handler.addFilter(_not_reported_as_event)
        logger.setLevel(logging.WARNING)
        # The simulator (--sim, demo) runs an asyncio websockets server in this process; its
        # complaints about clients that went away are noise here, not news (--debug shows them).
        for name in _SIMULATOR_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logger.addHandler(handler)
    return handler


def _describe(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit status for a failure."""
    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, InvalidInputError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file", EXIT_FAILURE
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_FAILURE
    if isinstance(exc, ConnectionFailure | BinanceAPIError | RequestError | RxBinanceError):
        return str(exc), EXIT_FAILURE
    return (
        f"unexpected {type(exc).__name__}: {exc} (a bug in rxbinance? run with --debug for "
        "the traceback)",
        EXIT_FAILURE,
    )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return EXIT_OK
    levels = {name: logging.getLogger(name).level for name in ("rxbinance", *_SIMULATOR_LOGGERS)}
    handler = _setup_logging(args.debug)
    # SIGTERM unwinds like Ctrl-C (files finished, sockets closed), unless it is ignored.
    previous = None
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except _Terminated:
        return EXIT_TERMINATED
    except BrokenPipeError:
        # Nobody reads stdout any more: point it at /dev/null so the interpreter's final
        # flush does not fail again, and leave without a word.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        message, status = _describe(exc)
        print(f"rxbinance: error: {message}", file=sys.stderr, flush=True)
        return status
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        logging.getLogger("rxbinance").removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        handler.close()
