"""Where a command's data comes from: the built-in simulated market (``--sim``) or a real
Binance market (``--market``, ``--ws-url``, ``--rest-url``), and the symbol check before it."""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from rxbinance.cli._format import Precision, precisions, short_error
from rxbinance.cli._pump import CommandError, Status
from rxbinance.errors import BinanceAPIError, InvalidInputError, RateLimitError, RequestError
from rxbinance.protocol.endpoints import endpoints_for
from rxbinance.protocol.names import validate_stream_name
from rxbinance.streams import BinanceStreams

__all__ = ["check_symbols", "open_streams", "rest_available", "symbols_of", "validate_names"]

# Binance's "Invalid symbol." (binance-protocol.md 7): the one REST answer that means "no
# such symbol" rather than "something went wrong".
_INVALID_SYMBOL = -1121
# Checking symbols one by one (to name the bad one) costs 20 request weight each on spot.
_MAX_SINGLE_CHECKS = 10


def validate_names(market: str, names: list[str]) -> list[str]:
    """Return ``names`` if each is a stream of ``market``, else raise InvalidInputError saying
    precisely what is wrong (the library's own check: no simulator, no socket, no streams)."""
    product = endpoints_for(market).product
    for name in names:  # one by one, in the order given: the first bad one is named
        validate_stream_name(name, product, market=market)
    return names


def open_streams(args: argparse.Namespace, stack: ExitStack, status: Status) -> BinanceStreams:
    """A BinanceStreams for the command, closed by ``stack``; with ``--sim``, on a
    FakeBinance started for the command (and stopped after the streams are closed)."""
    ws_url: str | None = args.ws_url
    rest_url: str | None = args.rest_url
    if args.sim:
        if ws_url or rest_url:
            raise CommandError(
                "--sim runs the built-in market: leave out --ws-url and --rest-url", status=2
            )
        try:
            from rxbinance.testing import FakeBinance
        except ImportError as exc:  # the `testing` extra brings the websockets server
            raise CommandError(f"--sim needs the simulator: {exc}") from exc
        fake = stack.enter_context(
            FakeBinance(tick_interval=args.sim_tick, max_incoming_per_second=None)
        )
        symbols = ", ".join(fake.with_market(lambda market: market.symbols))
        status.info(f"simulated market at {fake.ws_url} (symbols {symbols})")
        ws_url, rest_url = fake.ws_url, fake.rest_url
    streams = BinanceStreams(
        market=args.market,
        ws_url=ws_url,
        rest_url=rest_url,
        max_retries=args.retries,
        retry_delay=args.retry_delay,
        max_retry_delay=max(args.retry_delay, 30.0),
    )
    stack.callback(streams.close)
    return streams


def rest_available(args: argparse.Namespace) -> bool:
    """False when ``--ws-url`` points somewhere without a ``--rest-url``: REST would go to the
    market's real exchange, not to the server the streams come from."""
    return bool(args.sim or args.rest_url or not args.ws_url)


def symbols_of(stream_names: list[str]) -> list[str]:
    """The symbols the stream names are about (uppercase, sorted), all-market streams and
    continuous-contract pairs left out."""
    found = set()
    for name in stream_names:
        symbol, _, kind = name.partition("@")
        if name.startswith("!") or kind.startswith("continuousKline"):
            continue
        found.add(symbol.upper())
    return sorted(found)


def check_symbols(streams: BinanceStreams, symbols: list[str], market: str) -> dict[str, Precision]:
    """Ask the exchange (``exchangeInfo``) whether ``symbols`` are listed, and return the
    precision of each (its tick and step sizes; empty when the check was skipped).

    Binance accepts a stream of an unknown symbol and then sends nothing, forever; this turns
    that silence into an error naming the symbol. Raises CommandError (status 2) for unknown
    symbols and (status 1) when the exchange cannot be reached; a rate limit skips the check.
    """
    if not symbols:
        return {}
    rest = streams.rest
    try:
        return precisions(rest.exchange_info(symbols=symbols))
    except InvalidInputError as exc:  # USD-M: the client itself says which are not listed
        raise CommandError(str(exc), status=2) from exc
    except RateLimitError:
        return {}  # not worth failing for: the stream itself will tell
    except BinanceAPIError as exc:
        if exc.code != _INVALID_SYMBOL:
            raise CommandError(f"cannot check the symbols on {streams.rest_url}: {exc}") from exc
        failure = exc
    except RequestError as exc:
        raise CommandError(
            f"cannot reach {streams.rest_url}: {short_error(str(exc))} (is the exchange "
            "reachable from here? --sim runs the built-in market; --no-check skips this check)"
        ) from exc
    unknown = symbols
    if 1 < len(symbols) <= _MAX_SINGLE_CHECKS:
        unknown = []
        for symbol in symbols:
            try:
                rest.exchange_info(symbol=symbol)
            except BinanceAPIError as exc:
                if exc.code == _INVALID_SYMBOL:
                    unknown.append(symbol)
    listed = ", ".join(repr(s) for s in unknown or symbols)
    plural = "s" if len(unknown or symbols) > 1 else ""
    raise CommandError(
        f"unknown symbol{plural} {listed} on market {market!r} ({failure.msg})", status=2
    ) from failure
