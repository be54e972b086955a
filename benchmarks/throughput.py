"""Throughput of rxbinance's hot path against websocket-client's own floor, over TLS and plain.

Usage::

    python benchmarks/throughput.py [--messages 200000] [--repeats 3] [--rst | --markdown]

A loopback server in a separate process (``_tls_burst_server.py``: its own GIL, its own core)
answers each connection with a burst of ``--messages`` realistic Binance ``trade`` frames, then a
close frame; it holds each upgraded connection until the client says go (on the server's stdin),
so every subscriber is in place before the first frame. This process is the client. For every
case it measures, from the first message received to the last, the wall time (messages per
second) and this process's CPU time, all threads counted (CPU seconds per 100k messages). Cases,
each over ``wss://`` (a self-signed certificate made at run time) and over plain ``ws://`` (case d
of issue 3):

- ``floor, defaults``: ``websocket.create_connection(url)`` with websocket-client's defaults, then
  ``ws.recv()`` + ``json.loads`` in a loop: for reference (its pure-Python UTF-8 check dominates);
- ``(a) floor``: the same loop in websocket-client's fastest honest configuration,
  ``skip_utf8_validation=True`` and a blocking socket: the floor of this stack, the 1.00;
- ``(b) 1 subscriber``: one counting subscriber of ``BinanceStreams.trades("BTCUSDT")``;
- ``(c) 10 subscribers``: ten counting subscribers of the same Observable (one shared socket);
- ``(d) 9 no-op + 1 counting``: nine subscribers that do nothing (the builtin ``id``) before
  one counting one: what the fan-out itself costs, without the subscribers' own code.

Each case runs ``--repeats`` times, interleaved, and the best run (highest messages per second)
is reported with its own CPU time: this is a noisy shared machine. Targets (issue 3): (b) at least
0.85 and (c) at least 0.75 of (a) of the same transport, in messages per second; the script prints
PASS or MISS for each and always exits 0: it is a benchmark, not a test. The last column gives the
same ratio computed from CPU per message, which time spent waiting for a busy core does not blur:
when the two disagree, the machine was busy. Issue 12's target for ten subscribers (at most
1.25x the CPU per message of one) is judged on (d) over (b), the median over the rounds; (c)
over (b) is printed beside it with the counting subscribers' own cost, measured alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websocket

# Measure the working tree, whatever the install (an editable install only links the modules
# that existed when it was made).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import (
    BurstServer,
    Run,
    burst_server,
    client_context,
    format_markdown,
    format_plain,
    format_rst,
    make_certificate,
)

from rxbinance import BinanceStreams
from rxbinance.events import Disconnected

TARGETS = {"b": 0.85, "c": 0.75}  # fraction of the floor (a) of the same transport


@dataclass(frozen=True, slots=True)
class Case:
    key: str  # "ref", "a", "b", "c"
    label: str
    run: Callable[[BurstServer, int, ssl.SSLContext | None], Run]


# -- the measured clients --------------------------------------------------------------------


def floor_run(server: BurstServer, n: int, ctx: ssl.SSLContext | None, *, fast: bool) -> Run:
    """websocket-client alone: ``recv()`` + ``json.loads`` for ``n`` messages."""
    options: dict[str, Any] = {}
    if ctx is not None:
        options["sslopt"] = {"context": ctx}
    if fast:
        options["skip_utf8_validation"] = True
    url, go = server.run_url()
    ws = websocket.create_connection(f"{url}/ws/btcusdt@trade", **options)
    try:
        go()
        recv, loads = ws.recv, json.loads
        loads(recv())
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(n - 1):
            loads(recv())
        wall1, cpu1 = time.perf_counter(), time.process_time()
    finally:
        ws.close()
    return Run(n - 1, wall1 - wall0, cpu1 - cpu0)


def counter(n: int, counts: list[int], index: int, on_first: Callable[[], None] | None,
            on_last: Callable[[], None] | None) -> Callable[[object], None]:  # fmt: skip
    """A benchmark subscriber: counts to ``n``, then stores the count at ``counts[index]``."""
    count = 0

    def on_next(_: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            counts[index] = count
            if on_last is not None:
                on_last()
        elif count == 1 and on_first is not None:
            on_first()

    return on_next


def subscribers_alone(n: int, subscribers: int, repeats: int) -> float:
    """CPU seconds per message that ``subscribers`` counting subscribers cost on their own:
    each called once per message by a plain loop, minus the same loop calling nothing (so the
    loop's own iteration, which the library's fan-out also pays, is not taken out). Best of
    ``repeats``."""
    message = object()
    best = float("inf")
    for _ in range(repeats):
        fns = [counter(n + 1, [0] * subscribers, i, None, None) for i in range(subscribers)]
        cpu0 = time.process_time()
        for _ in range(n):
            for fn in fns:
                fn(message)
        cpu1 = time.process_time()
        for _ in range(n):
            for _fn in fns:
                pass
        cpu2 = time.process_time()
        best = min(best, ((cpu1 - cpu0) - (cpu2 - cpu1)) / n)
    return best


def streams_run(
    server: BurstServer, n: int, ctx: ssl.SSLContext | None, *, subscribers: int, no_ops: int = 0
) -> Run:
    """``subscribers`` counting subscribers of ``BinanceStreams.trades``, until each saw ``n``,
    behind ``no_ops`` subscribers that do nothing.

    The first counting subscriber notes the start when it sees the first message; the last one
    notes the end when it sees the ``n``-th (the fan-out calls them in subscription order).
    """
    marks: dict[str, float] = {}
    done = threading.Event()

    def start() -> None:
        marks["wall0"], marks["cpu0"] = time.perf_counter(), time.process_time()

    def end() -> None:
        marks["wall1"], marks["cpu1"] = time.perf_counter(), time.process_time()
        done.set()

    counts = [0] * subscribers

    # A long retry delay: the server's close frame after the burst must not reconnect before
    # the dispose below (it does not affect the measured span).
    url, go = server.run_url()
    with BinanceStreams(ws_url=url, ssl_context=ctx, retry_delay=30.0) as streams:
        # A drop before the last message would make the span include a reconnect: note it.
        drops: list[str] = []
        streams.events.subscribe(
            lambda event: (
                drops.append(event.reason)
                if isinstance(event, Disconnected) and not done.is_set()
                else None
            )
        )
        trades = streams.trades("BTCUSDT")
        # The first subscribe opens the socket; on a busy machine its reader can be connected
        # and reading before the tenth subscribe, so the burst waits for go() below.
        # The no-op subscribers (the builtin ``id``: a C function, the cheapest callable there
        # is) come first, so the last counter still marks the end of the fan-out.
        subscriptions = [trades.subscribe(on_next=id) for _ in range(no_ops)]
        subscriptions += [
            trades.subscribe(
                on_next=counter(
                    n,
                    counts,
                    i,
                    start if i == 0 else None,
                    end if i == subscribers - 1 else None,
                )
            )
            for i in range(subscribers)
        ]
        go()
        timeout = 30.0 + n / 2_000  # ten times slower than the slowest stack here: stuck
        try:
            if not done.wait(timeout):
                raise RuntimeError(f"stuck after {timeout} s: {streams.statistics()}")
        finally:
            for subscription in subscriptions:
                subscription.dispose()
    if drops:
        raise RuntimeError(f"the connection dropped during the burst: {drops}")
    if counts != [n] * subscribers:
        raise RuntimeError(f"a subscriber missed messages: counts {counts}, expected {n} each")
    return Run(n - 1, marks["wall1"] - marks["wall0"], marks["cpu1"] - marks["cpu0"])


CASES = (
    Case(
        "ref",
        "floor, websocket-client defaults",
        lambda server, n, ctx: floor_run(server, n, ctx, fast=False),
    ),
    Case(
        "a",
        "(a) floor: recv() + json.loads",
        lambda server, n, ctx: floor_run(server, n, ctx, fast=True),
    ),
    Case(
        "b",
        "(b) trades(), 1 subscriber",
        lambda server, n, ctx: streams_run(server, n, ctx, subscribers=1),
    ),
    Case(
        "c",
        "(c) trades(), 10 subscribers",
        lambda server, n, ctx: streams_run(server, n, ctx, subscribers=10),
    ),
    Case(
        "d",
        "(d) trades(), 9 no-op + 1 counting",
        lambda server, n, ctx: streams_run(server, n, ctx, subscribers=1, no_ops=9),
    ),
)


# -- running and reporting -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    transport: str  # "wss" or "ws"
    case: Case
    best: Run
    floor: Run | None  # (a) of the same transport, None when it failed

    @property
    def ratio(self) -> float | None:
        """Messages per second as a fraction of the floor's: the issue's measure."""
        return self.best.rate / self.floor.rate if self.floor else None

    @property
    def cpu_ratio(self) -> float | None:
        """The floor's CPU per message over this case's: the same measure, but blind to time
        the client spent descheduled, so steadier on a loaded machine."""
        return self.floor.cpu_per_100k / self.best.cpu_per_100k if self.floor else None


def measure(server: BurstServer, n: int, ctx: ssl.SSLContext | None, repeats: int,
            runs: dict[str, list[Run | None]]) -> dict[str, Run]:  # fmt: skip
    """Best run of each case, repeats interleaved so a noisy spell hits every case alike;
    ``runs`` gets every run of each case, in order (None for a failed one)."""
    transport = server.scheme
    best: dict[str, Run] = {}
    for attempt in range(1, repeats + 1):
        for case in CASES:
            try:
                run = case.run(server, n, ctx)
            except Exception as exc:  # report and carry on: one broken case must not hide others
                print(f"  {transport} {case.label}: run {attempt} failed: {exc!r}", flush=True)
                runs.setdefault(case.key, []).append(None)
                continue
            runs.setdefault(case.key, []).append(run)
            print(
                f"  {transport:>3} run {attempt}  {case.label:<34} {run.rate:>9,.0f} msgs/s  "
                f"{run.cpu_per_100k:6.3f} CPU s/100k",
                flush=True,
            )
            if case.key not in best or run.rate > best[case.key].rate:
                best[case.key] = run
    return best


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = [["case", "transport", "msgs/s", "CPU s / 100k msgs", "vs (a)", "vs (a), by CPU"]]
    for row in rows:
        out.append(
            [
                row.case.label,
                f"{row.transport}://",
                f"{row.best.rate:,.0f}",
                f"{row.best.cpu_per_100k:.2f}",
                f"{row.ratio:.2f}" if row.ratio is not None else "n/a",
                f"{row.cpu_ratio:.2f}" if row.cpu_ratio is not None else "n/a",
            ]
        )
    return out


def verdicts(rows: list[Row]) -> list[str]:
    out = []
    for row in rows:
        target = TARGETS.get(row.case.key)
        if target is None:
            continue
        if row.ratio is None:
            out.append(f"MISS  {row.transport}:// {row.case.label}: no floor to compare with")
            continue
        verdict = "PASS" if row.ratio >= target else "MISS"
        out.append(
            f"{verdict}  {row.transport}:// {row.case.label}: {row.ratio:.2f} of the floor's "
            f"msgs/s (target >= {target:.2f}; by CPU per message {row.cpu_ratio:.2f})"
        )
    return out


def fan_out_verdicts(all_runs: dict[str, dict[str, list[Run | None]]], own: dict[int, float]
                     ) -> list[str]:  # fmt: skip
    """Ten subscribers against one, in CPU per message (issue 12's target: at most 1.25x).

    (d) over (b) is what the fan-out itself costs: nine more subscribers that do nothing (a C
    builtin). (c) over (b) adds the nine counting subscribers' own Python code, whose cost
    alone (``own``: CPU seconds per message of 1 and of 10 of them called by a plain loop) is
    printed beside it. Each ratio is the median over the repeats of the runs made one after
    the other (b, c, d of the same round): steadier on a shared machine than the best runs,
    which may come from different spells."""
    out = []
    for transport, runs in all_runs.items():
        ratios: dict[str, list[float]] = {"c": [], "d": []}
        for i, one in enumerate(runs.get("b", [])):
            for key, ratio in ratios.items():
                other = runs.get(key, [])
                if one is not None and i < len(other) and (run := other[i]) is not None:
                    ratio.append((run.cpu / run.messages) / (one.cpu / one.messages))
        if not ratios["c"] or not ratios["d"]:
            continue
        fan_out, counting = statistics.median(ratios["d"]), statistics.median(ratios["c"])
        verdict = "PASS" if fan_out <= 1.25 else "MISS"
        out.append(
            f"{verdict}  {transport}:// ten subscribers: the fan-out to nine more (no-op) costs "
            f"{fan_out:.2f}x the CPU per message of one (target <= 1.25); with nine more "
            f"counting ones, {counting:.2f}x (their counting alone: {own[10] * 1e9:.0f} ns a "
            f"message for ten, {own[1] * 1e9:.0f} ns for one); medians of "
            f"{len(ratios['d'])} rounds"
        )
    return out


def environment(n: int, repeats: int, ctx: ssl.SSLContext, port: int) -> str:
    # A bare TLS handshake (no upgrade, so no burst) to learn what the two ends negotiate.
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        tls = f"{sock.version()} {(sock.cipher() or ('?',))[0]}"
    return (
        f"Python {platform.python_version()}, websocket-client {websocket.__version__}, "
        f"{ssl.OPENSSL_VERSION}, {tls}, {os.cpu_count()} CPUs; "
        f"{n:,} trade messages per burst, best of {repeats}; "
        f"load average {os.getloadavg()[0]:.2f} before"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=200_000, help="per burst (200000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; best kept (3)")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--rst", action="store_true", help="also print an RST table (README)")
    style.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    # rxbinance logs a subscriber's exception or a malformed frame: show them, they spoil a run.
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.messages < 2 or args.repeats < 1:
        parser.error("--messages must be >= 2 and --repeats >= 1")

    rows: list[Row] = []
    all_runs: dict[str, dict[str, list[Run | None]]] = {}
    with tempfile.TemporaryDirectory(prefix="rxbinance-bench-") as tmp:
        cert, key = make_certificate(Path(tmp))
        ctx = client_context(cert)
        transports = [("wss", cert, key, ctx), ("ws", None, None, None)]
        about = ""
        for transport, c, k, context in transports:
            with burst_server(args.messages, c, k) as server:
                if context is not None:
                    about = environment(args.messages, args.repeats, context, server.port)
                print(f"{transport}:// server on port {server.port}", flush=True)
                runs = all_runs[transport] = {}
                best = measure(server, args.messages, context, args.repeats, runs)
            floor = best.get("a")
            rows += [
                Row(transport, case, best[case.key], floor) for case in CASES if case.key in best
            ]

    # The subscribers' own cost, measured in this run, so the fan-out's can be told apart.
    own = {k: subscribers_alone(args.messages, k, args.repeats) for k in (1, 10)}

    cells = table_rows(rows)
    print()
    print(f"{about}, {os.getloadavg()[0]:.2f} after")
    print()
    print(format_plain(cells))
    print()
    print("\n".join(verdicts(rows) + fan_out_verdicts(all_runs, own)))
    if args.rst:
        print()
        print(format_rst(cells))
    elif args.markdown:
        print()
        print(format_markdown(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
