"""The commands: watch, book, record, replay, demo, publish. Each returns the exit status."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from reactivex import Observable

from rxbinance.cli._connect import (
    check_symbols,
    open_streams,
    rest_available,
    symbols_of,
    validate_names,
)
from rxbinance.cli._format import TABLE_HEADER, Precision, json_line, precisions, table_rows
from rxbinance.cli._ladder import Screen, ladder, levels_that_fit
from rxbinance.cli._pump import CommandError, Pump, Status
from rxbinance.protocol.endpoints import endpoints_for
from rxbinance.protocol.limits import max_depth_limit
from rxbinance.protocol.names import normalize_symbol, normalize_usdm_symbol
from rxbinance.recording import Recorder, open_recording, replay
from rxbinance.streams import BinanceStreams

__all__ = ["book", "demo", "publish", "record", "replay_file", "watch"]


def _say(text: str) -> None:
    print(f"rxbinance: {text}", file=sys.stderr, flush=True)


def _status(args: argparse.Namespace) -> Status:
    return Status(_say, quiet=args.quiet, max_retries=getattr(args, "retries", 0))


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _source(streams: BinanceStreams, names: list[str]) -> Observable[Any]:
    """One raw socket for one stream (bare payloads), a multiplex socket for several
    (``{"stream", "data"}``). Validates the names (InvalidInputError)."""
    if len(names) == 1:
        return streams.stream(names[0])
    return streams.multiplex(names)


class _Printer:
    """Prints messages as JSON lines or table rows; ``combined`` messages are wrappers.

    Table rows show prices with ``precision`` (by symbol, from exchangeInfo) and, for
    payloads without an event time, the receive time when ``live`` (a replay's receive time
    would be the replay's, so it stays empty there)."""

    def __init__(
        self,
        out: TextIO,
        *,
        pretty: bool,
        combined: bool,
        stream: str,
        live: bool = True,
        precision: dict[str, Precision] | None = None,
    ) -> None:
        self.out = out
        self.pretty = pretty
        self.combined = combined
        self.stream = stream
        self.live = live
        self.precision = precision or {}
        if pretty:
            out.write(TABLE_HEADER + "\n")

    def __call__(self, message: Any, received: float = 0.0) -> None:
        if not self.pretty:
            self.out.write(json_line(message) + "\n")
            return
        when = received if self.live else None
        if self.combined and isinstance(message, dict) and "stream" in message:
            stream, payload = str(message["stream"]), message.get("data")
        else:
            stream, payload = self.stream, message
        rows = table_rows(stream, payload, received=when, precision=self.precision)
        self.out.write("\n".join(rows) + "\n")


def _network_pump(
    args: argparse.Namespace,
    status: Status,
    noun: str = "messages",
    *,
    keep_gaps: bool = False,
    streams: list[BinanceStreams] | None = None,
) -> Pump:
    """The pump of a command reading the network; its rate line adds the streams' health
    (``streams`` holds the BinanceStreams once open)."""

    def rate_line(count: int, rate: float) -> str:
        line = f"{count} {noun}, {rate:.1f}/s"
        if streams:
            health = _health(streams[0])
            if health:
                line += f" | {health}"
        return line

    return Pump(
        status,
        limit=args.limit,
        duration=args.duration,
        stats_interval=args.stats_interval,
        rate_line=rate_line,
        keep_gaps=keep_gaps,
    )


def _health(streams: BinanceStreams) -> str:
    """The streams' health in a few words: the worst lag, reconnects, repaired and lost gaps."""
    stats = list(streams.statistics().values())
    if not stats:
        return ""
    parts = []
    lags = [s.lag_p99_ms for s in stats if s.lag_p99_ms is not None]
    if lags:
        parts.append(f"lag p99 {max(lags):.0f} ms")
    reconnects = sum(s.reconnects for s in stats)
    parts.append(f"{reconnects} reconnect{'' if reconnects == 1 else 's'}")
    if any(s.repair is not None for s in stats):
        repaired = sum(s.gaps_repaired for s in stats)
        lost = sum(s.gaps_unrepaired for s in stats)
        parts.append(f"gaps {repaired} repaired {lost} lost")
    return ", ".join(parts)


def _start(
    args: argparse.Namespace, stack: ExitStack, status: Status, names: list[str]
) -> tuple[BinanceStreams, Observable[Any], dict[str, Precision]]:
    """The streams, the source of ``names``, and the precision of their symbols (empty with
    ``--no-check`` or without REST)."""
    validate_names(args.market, names)
    streams = open_streams(args, stack, status)
    source = _source(streams, names)
    precision: dict[str, Precision] = {}
    if args.check and rest_available(args):
        precision = check_symbols(streams, symbols_of(names), args.market)
    return streams, source, precision


def watch(args: argparse.Namespace) -> int:
    if args.redis is not None:
        from rxbinance.cli._redis import watch_redis

        status = _status(args)
        return watch_redis(args, status, _network_pump(args, status))
    names = _unique(args.streams)
    status = _status(args)
    out = sys.stdout
    with ExitStack() as stack:
        streams, source, precision = _start(args, stack, status, names)
        pump = _network_pump(args, status, streams=[streams])
        stack.callback(pump.dispose)
        printer = _Printer(
            out,
            pretty=args.pretty,
            combined=len(names) > 1,
            stream=names[0],
            precision=precision,
        )
        pump.watch_events(streams.events)
        pump.subscribe(source)
        pump.run(printer, out.flush)
        out.flush()
    return 0


def publish(args: argparse.Namespace) -> int:
    from rxbinance.cli._redis import publish_command

    status = _status(args)
    streams: list[BinanceStreams] = []
    return publish_command(
        args, status, _network_pump(args, status, noun="messages published", streams=streams)
    )


def record(args: argparse.Namespace) -> int:
    names = _unique(args.streams)
    path = Path(args.output)
    if path.exists() and not args.force:
        raise CommandError(f"{path} exists: pass --force to overwrite it")
    status = _status(args)
    with ExitStack() as stack:
        streams, source, _ = _start(args, stack, status, names)
        try:
            recorder = Recorder(path, names, market=args.market, url=streams.ws_url, started=None)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from exc
        stack.callback(recorder.close)
        combined = recorder.header.combined

        def write(message: Any, received: float) -> None:
            if combined:
                recorder.write(message["stream"], message["data"], received)
            else:
                recorder.write(names[0], message, received)

        pump = _network_pump(
            args,
            status,
            noun=f"messages recorded to {path}",
            keep_gaps=True,
            streams=[streams],
        )
        stack.callback(pump.dispose)
        pump.watch_events(streams.events)
        pump.subscribe(source)
        status.info(f"recording {', '.join(names)} to {path} (Ctrl-C to stop)")
        try:
            pump.run(write, lambda: None)
        finally:
            status.info(f"recorded {recorder.count} messages to {path}")
    return 0


def replay_file(args: argparse.Namespace) -> int:
    path = Path(args.file)
    with open_recording(path) as recording:
        header = recording.header
    source = replay(path, speed=args.speed)
    status = _status(args)
    out = sys.stdout
    pump = Pump(status, limit=args.limit)
    printer = _Printer(
        out, pretty=args.pretty, combined=header.combined, stream=header.streams[0], live=False
    )
    try:
        pump.subscribe(source)
        pump.run(printer, out.flush)
        out.flush()
    finally:
        pump.dispose()
    return 0


def book(args: argparse.Namespace) -> int:
    from rxbinance.pipelines import OrderBook, order_book

    usdm = endpoints_for(args.market).product == "usdm"
    normalize = normalize_usdm_symbol if usdm else normalize_symbol
    symbol = normalize(args.symbol).upper()
    # The snapshot must hold every level shown: spot snapshots go to 5000 levels, USD-M's
    # to 1000 (binance-protocol.md 7 and 8).
    most = max_depth_limit("usdm" if usdm else "spot")
    if not 1 <= args.depth <= most:
        market = "USD-M futures" if usdm else "spot"
        raise CommandError(
            f"invalid --depth {args.depth}: 1 to {most} levels on {market}", status=2
        )
    limit = 1000 if args.depth <= 1000 else most
    if not rest_available(args):
        raise CommandError(
            "the order book needs REST snapshots from the same exchange as --ws-url: "
            "pass --rest-url too",
            status=2,
        )
    out = sys.stdout
    screen: Screen | None = None
    latest: OrderBook | None = None
    precision: Precision | None = None
    status_line = ""

    def redraw() -> None:
        assert screen is not None
        # As many levels as the window holds, with the blank line and the status line.
        depth = levels_that_fit(args.depth, screen.size().lines, extra=2)
        lines = ladder(latest, depth, precision) if latest is not None else []
        screen.draw([*lines, "", status_line])

    def say(text: str) -> None:
        nonlocal status_line
        if screen is None:
            _say(text)
            return
        status_line = text
        redraw()

    status = Status(say, quiet=args.quiet, max_retries=args.retries)
    opened: list[BinanceStreams] = []  # the streams, once open: for the status line
    pump = _network_pump(args, status, noun="book updates", streams=opened)

    def show(item: OrderBook, received: float) -> None:
        nonlocal latest
        latest = item
        if screen is not None:
            if not pump.more_coming():  # only the latest book is worth drawing
                redraw()
        else:
            out.write("\n".join(ladder(item, args.depth, precision)) + "\n\n")

    with ExitStack() as stack:
        streams = open_streams(args, stack, status)
        opened.append(streams)
        status.rest_url = streams.rest_url  # named when the snapshots give up
        if args.check:
            precision = check_symbols(streams, [symbol], args.market).get(symbol)
        source = order_book(streams, symbol, limit=limit)
        if out.isatty():
            screen = Screen(out)
            stack.callback(screen.close)
        stack.callback(pump.dispose)
        pump.watch_events(streams.events)
        pump.subscribe(source)
        pump.run(show, out.flush)
        out.flush()
    return 0


def demo(args: argparse.Namespace) -> int:
    """Trades from the embedded simulator: the README's first command."""
    try:
        from rxbinance.testing import FakeBinance
    except ImportError as exc:  # the `testing` extra brings the `websockets` server library
        raise CommandError(f"rxbinance demo needs the simulator: {exc}") from exc
    symbol = normalize_symbol(args.symbol)
    status = Status(_say, quiet=True, max_retries=5)
    out = sys.stdout
    with ExitStack() as stack:
        fake = stack.enter_context(FakeBinance(tick_interval=0.05))
        # The simulator accepts a stream of any symbol and sends nothing for one it lacks:
        # without this check the demo would wait for ever, silently.
        simulated = fake.with_market(lambda market: market.symbols)
        if symbol.upper() not in simulated:
            raise CommandError(
                f"the simulated market has no symbol {symbol.upper()!r}: it has "
                f"{', '.join(simulated)}",
                status=2,
            )
        streams = stack.enter_context(BinanceStreams(ws_url=fake.ws_url, rest_url=fake.rest_url))
        source = streams.trades(symbol)
        precision = precisions(streams.rest.exchange_info(symbol=symbol.upper()))
        out.write(
            f"rxbinance demo: {args.count} trades of {symbol.upper()}, "
            f"simulated market at {fake.ws_url}\n"
        )
        printer = _Printer(
            out, pretty=True, combined=False, stream=f"{symbol}@trade", precision=precision
        )
        pump = Pump(status, limit=args.count)
        stack.callback(pump.dispose)
        pump.watch_events(streams.events)
        pump.subscribe(source)
        pump.run(printer, out.flush)
        out.write(
            "\nnext: rxbinance watch btcusdt@trade btcusdt@bookTicker --sim --pretty\n"
            "      rxbinance book BTCUSDT --sim\n"
            "      rxbinance record btcusdt@trade --sim -o trades.jsonl.gz; "
            "rxbinance replay trades.jsonl.gz\n"
            "      (leave out --sim for the real Binance; rxbinance --help for more)\n"
        )
        out.flush()
    return 0
