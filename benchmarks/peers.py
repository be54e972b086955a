"""Every Python Binance stream client we know of, against the same loopback flood: one table.

Usage::

    pip install -r benchmarks/requirements-peers.txt   # the peers (optional: missing = skipped)
    python benchmarks/peers.py [--messages 200000] [--repeats 3] [--quick]
                               [--only KEY,KEY] [--png PATH] [--json PATH] [--rst | --markdown]

The server is ``_tls_burst_server.py`` (a process of its own, 127.0.0.1 only, a self-signed
certificate made at run time): every connection gets the same ``--messages`` realistic spot
``trade`` frames over ``wss://``, raw or wrapped as a combined stream according to the path the
client asks for, and then nothing: the connection stays open as Binance's does (no close frame,
which python-binance would answer by dropping what it still has buffered). Each client runs in a
subprocess of its own (this script with ``--child KEY``): it connects and subscribes the way that
library's documentation shows, prints ``READY``, and the burst starts only then (the parent
releases the run on the server's stdin), so set-up never counts. The child's one callback per
message counts; it notes the wall clock and ``time.process_time()`` (every thread of the child) at
the first message and at the last, prints the figures and ends its process at once (``os._exit``:
teardown is not what is measured, and ending the process ends every peer's threads alike). Clients
run one after another, their order rotated on every repeat so that a noisy spell does not always
hit the same one, and the best run of each (highest messages per second) is reported with its own
CPU time.

What each row runs (``KEY``: what is timed per message):

- ``rxbinance-speed``: one subscriber of ``BinanceStreams.trades("BTCUSDT")``, which delivers
  every frame as a decoded dict (checked, sequenced, metered, shared); with orjson importable
  (the ``speed`` extra);
- ``rxbinance``: the same with ``RXBINANCE_JSON=stdlib`` (the standard json module);
- ``floor``: websocket-client's ``ws.recv()`` + ``json.loads`` in a loop, in its fastest honest
  configuration (``skip_utf8_validation=True``): the floor of rxbinance's own stack;
- ``websockets``: the websockets library's asyncio client, ``await ws.recv()`` + ``json.loads``;
- ``picows``: a picows ``WSListener.on_ws_frame`` doing ``json.loads`` of the payload;
- ``unicorn-websockets`` / ``unicorn-picows``: unicorn-binance-websocket-api's
  ``BinanceWebSocketApiManager`` with ``output_default="dict"`` and a ``process_stream_data``
  callback, on each of its two transports (``websocket_library=``);
- ``python-binance-bsm``: python-binance's asyncio ``BinanceSocketManager.trade_socket`` read with
  ``await socket.recv()``, at its default ``max_queue_size`` (100);
- ``python-binance-twm``: python-binance's ``ThreadedWebsocketManager.start_trade_socket`` with a
  callback, at its default ``max_queue_size``;
- ``python-binance-twm-queue``: the same with ``max_queue_size`` larger than the burst;
- ``binance-sdk-spot``: Binance's own SDK, ``websocket_streams.create_connection()`` then
  ``connection.trade(symbol=...)`` and ``stream.on("message", ...)`` (it subscribes after
  connecting and hands each trade over as a pydantic model).

python-binance's queue: its reader puts every message on an ``asyncio.Queue`` and, once 100 wait
there, raises ``BinanceWebsocketQueueOverflow`` inside its read loop, which logs it and ends; the
user's code is then handed ``{"e": "error", "type": "ReadLoopClosed", ...}`` and nothing more
(the messages still queued are dropped). Under this flood the threaded manager overflows within
its first few hundred messages, at its default ``max_queue_size``, in every run; the asyncio
manager, read directly with ``await recv()``, kept up here. The table says how many messages got
through and what python-binance logged and handed over, as it happened.

Each peer is pointed at 127.0.0.1 through its own settings (python-binance: ``STREAM_URL`` and, for
the REST ping its threaded manager makes first, ``API_URL``; unicorn: ``websocket_base_uri``;
binance-sdk-spot: ``stream_url``), and trusts the certificate through its own TLS setting where it
has one (an ``ssl.SSLContext``), else through ``SSL_CERT_FILE``, which every child also gets. The
script prints one table (messages per second, CPU seconds per 100k messages, ratio to the best
row, and the same ratio computed from CPU per message, which time spent waiting for a busy core
does not blur), notes for peers that were skipped (not installed) or stopped early, and always
exits 0: it is a benchmark, not a test. ``--png`` draws the table as a horizontal bar chart
(matplotlib, Agg), ``--json`` writes every run's raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import queue
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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

ROOT = Path(__file__).resolve().parent.parent
SYMBOL = "BTCUSDT"
STREAM = "btcusdt@trade"
READY_TIMEOUT = 60.0  # seconds a child may take to import, connect and subscribe


# -- the clients -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Client:
    """One row of the table: ``key`` selects it (``--only``), ``distributions`` are what it needs
    installed (their versions go in the notes), ``env`` is added to the child's environment."""

    key: str
    label: str
    delivers: str  # what the user's callback receives
    distributions: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


CLIENTS = (
    Client("rxbinance-speed", "rxbinance trades(), speed", "dict", ("rxbinance", "orjson")),
    Client("rxbinance", "rxbinance trades()", "dict", ("rxbinance",), {"RXBINANCE_JSON": "stdlib"}),
    Client("floor", "websocket-client recv() floor", "dict", ("websocket-client",)),
    Client("websockets", "websockets recv()", "dict", ("websockets",)),
    Client("picows", "picows on_ws_frame", "dict", ("picows",)),
    Client(
        "unicorn-websockets",
        "unicorn-binance-websocket-api (websockets)",
        "dict",
        ("unicorn-binance-websocket-api", "websockets"),
    ),
    Client(
        "unicorn-picows",
        "unicorn-binance-websocket-api (picows)",
        "dict",
        ("unicorn-binance-websocket-api", "picows"),
    ),
    Client(
        "python-binance-bsm",
        "python-binance BinanceSocketManager",
        "dict",
        ("python-binance", "websockets"),
    ),
    Client(
        "python-binance-twm",
        "python-binance ThreadedWebsocketManager",
        "dict",
        ("python-binance", "websockets"),
    ),
    Client(
        "python-binance-twm-queue",
        "python-binance ThreadedWebsocketManager, big queue",
        "dict",
        ("python-binance", "websockets"),
    ),
    Client("binance-sdk-spot", "binance-sdk-spot", "pydantic model", ("binance-sdk-spot",)),
)


# -- the child side: one client, one burst -----------------------------------------------------


def _say(line: str) -> None:
    # os.write, not print: the report must leave before os._exit, whatever buffering stdout has.
    os.write(1, (line + "\n").encode())


def _report_and_exit(result: dict[str, Any]) -> None:
    _say("RESULT " + json.dumps(result))
    os._exit(0)


def make_meter(n: int) -> Callable[..., None]:
    """The per-message callback every client shares: counts; notes the clocks at message 1 and
    message ``n``, then reports the span (``n - 1`` messages) and ends the process."""
    count = 0
    start = (0.0, 0.0)
    perf_counter, process_time = time.perf_counter, time.process_time

    def on_message(*_: object) -> None:
        nonlocal count, start
        count += 1
        if count == 1:
            start = (perf_counter(), process_time())
        elif count == n:
            wall, cpu = perf_counter() - start[0], process_time() - start[1]
            _report_and_exit({"messages": n - 1, "wall": wall, "cpu": cpu})

    def received() -> int:
        return count

    on_message.received = received  # type: ignore[attr-defined]
    return on_message


class _Logged(logging.Handler):
    """Keeps the error records of a peer's logger: python-binance logs the exception that
    stopped its reader, and hands the user only its consequence."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(record.getMessage())


_PYTHON_BINANCE_LOG = _Logged()


def _watch_python_binance() -> None:
    logger = logging.getLogger("binance")
    logger.addHandler(_PYTHON_BINANCE_LOG)
    logger.setLevel(logging.ERROR)
    logger.propagate = False


def _stopped(meter: Callable[..., None], message: dict[str, Any]) -> None:
    """python-binance handed over an error instead of a trade (its stream has stopped): report
    what the user got, what python-binance logged, and how many trades came through."""
    received = meter.received()  # type: ignore[attr-defined]
    got = {key: message.get(key) for key in ("e", "type", "m")}
    logged = list(dict.fromkeys(_PYTHON_BINANCE_LOG.errors))
    _report_and_exit({"stopped": json.dumps(got), "logged": logged, "received": received})


def _ready() -> None:
    _say("READY")


def _forever() -> None:
    threading.Event().wait()


def child_rxbinance(url: str, n: int, ctx: ssl.SSLContext) -> None:
    sys.path.insert(0, str(ROOT))  # the working tree, whatever the install
    from rxbinance import BinanceStreams

    parser, jsonlib = _rxbinance_json()
    _say(f"NOTE json {parser}")
    _say(f"NOTE jsonlib {jsonlib}")
    meter = make_meter(n)
    # A long retry delay: the server's close frame after the burst must not reconnect first.
    streams = BinanceStreams(ws_url=url, ssl_context=ctx, retry_delay=30.0)
    streams.trades(SYMBOL).subscribe(on_next=meter)
    _ready()
    _forever()


def _rxbinance_json() -> tuple[str, str]:
    """Which JSON module rxbinance parses with, and whether this tree can choose at all."""
    try:
        jsonlib = importlib.import_module("rxbinance.protocol.jsonlib")
    except ImportError:
        return "json", "absent"  # before rxbinance.protocol.jsonlib: always the standard one
    for name in ("BACKEND", "NAME", "backend", "name"):
        value = getattr(jsonlib, name, None)
        if isinstance(value, str):
            return ("orjson" if "orjson" in value else "json"), "present"
    loads = getattr(jsonlib, "loads", None)
    module = getattr(loads, "__module__", None) or type(loads).__module__
    return ("orjson" if "orjson" in str(module) else "json"), "present"


def child_floor(url: str, n: int, ctx: ssl.SSLContext) -> None:
    import websocket

    _say("NOTE json json")
    meter = make_meter(n)
    ws = websocket.create_connection(
        f"{url}/ws/{STREAM}", sslopt={"context": ctx}, skip_utf8_validation=True
    )
    _ready()
    recv, loads = ws.recv, json.loads
    while True:
        meter(loads(recv()))


def child_websockets(url: str, n: int, ctx: ssl.SSLContext) -> None:
    from websockets.asyncio.client import connect

    _say("NOTE json json")

    async def main() -> None:
        meter = make_meter(n)
        loads = json.loads
        async with connect(f"{url}/ws/{STREAM}", ssl=ctx) as ws:
            _ready()
            recv = ws.recv
            while True:
                meter(loads(await recv()))

    asyncio.run(main())


def child_picows(url: str, n: int, ctx: ssl.SSLContext) -> None:
    from picows import WSListener, WSMsgType, ws_connect

    _say("NOTE json json")
    meter = make_meter(n)
    loads = json.loads

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                meter(loads(frame.get_payload_as_bytes()))

    async def main() -> None:
        transport, _ = await ws_connect(Listener, f"{url}/ws/{STREAM}", ssl_context=ctx)
        _ready()
        await transport.wait_disconnected()

    asyncio.run(main())


def child_unicorn(url: str, n: int, ctx: ssl.SSLContext, library: str) -> None:
    # unicorn has no TLS setting of its own for a verifying context: SSL_CERT_FILE (set by the
    # parent) makes its libraries' default context trust the benchmark's certificate.
    from unicorn_binance_websocket_api import BinanceWebSocketApiManager

    _say("NOTE json orjson")  # unicorn parses with orjson, a dependency of it
    meter = make_meter(n)
    manager = BinanceWebSocketApiManager(
        exchange="binance.com",
        websocket_base_uri=f"{url}/",
        output_default="dict",
        process_stream_data=meter,
        websocket_library=library,
    )
    manager.create_stream(channels=["trade"], markets=[SYMBOL.lower()])
    _ready()
    _forever()


def _python_binance_urls(url: str) -> None:
    """Point python-binance at the burst server: its URLs are class attributes, formatted with
    the top-level domain when a client is made (a URL without braces passes unchanged)."""
    from binance import AsyncClient
    from binance.ws import reconnecting_websocket
    from binance.ws.streams import BinanceSocketManager

    # python-binance parses with orjson whenever it can import it.
    _say(f"NOTE json {'orjson' if reconnecting_websocket.orjson else 'json'}")

    https = url.replace("wss://", "https://").replace("ws://", "http://").rsplit("/", 1)[0]
    AsyncClient.API_URL = f"{https}/api"  # the REST ping and time AsyncClient.create makes
    BinanceSocketManager.STREAM_URL = f"{url}/"


def child_python_binance_bsm(url: str, n: int, ctx: ssl.SSLContext) -> None:
    from binance import AsyncClient, BinanceSocketManager

    _python_binance_urls(url)
    _watch_python_binance()

    async def main() -> None:
        meter = make_meter(n)
        # AsyncClient() rather than AsyncClient.create(): the socket manager needs no REST call.
        client = AsyncClient()
        manager = BinanceSocketManager(client)
        manager.ws_kwargs = {"ssl": ctx}  # passed to websockets' connect()
        async with manager.trade_socket(SYMBOL) as socket:
            _ready()
            recv = socket.recv
            while True:
                message = await recv()
                if message.get("e") == "error":
                    _stopped(meter, message)
                meter(message)

    asyncio.run(main())


def child_python_binance_twm(
    url: str, n: int, ctx: ssl.SSLContext, max_queue_size: int | None = None
) -> None:
    # The threaded manager makes its own socket manager and client in its own thread: its TLS
    # (websockets for the stream, aiohttp for the REST ping) trusts the certificate through
    # SSL_CERT_FILE, which the parent sets.
    from binance import ThreadedWebsocketManager

    _python_binance_urls(url)
    _watch_python_binance()
    meter = make_meter(n)

    def on_message(message: dict[str, Any]) -> None:
        if message.get("e") == "error":
            _stopped(meter, message)
        meter(message)

    manager = (
        ThreadedWebsocketManager()
        if max_queue_size is None
        else ThreadedWebsocketManager(max_queue_size=max_queue_size)
    )
    manager.start()
    manager.start_trade_socket(callback=on_message, symbol=SYMBOL)
    _ready()
    _forever()


def child_binance_sdk_spot(url: str, n: int, ctx: ssl.SSLContext) -> None:
    from binance_common.configuration import ConfigurationWebSocketStreams
    from binance_sdk_spot.spot import Spot

    _say("NOTE json json")  # then pydantic validates each payload, re-serialized

    async def main() -> None:
        meter = make_meter(n)
        client = Spot(
            config_ws_streams=ConfigurationWebSocketStreams(stream_url=url, https_agent=ctx)
        )
        connection = await client.websocket_streams.create_connection()
        stream = await connection.trade(symbol=SYMBOL.lower())
        stream.on("message", meter)
        _ready()
        await asyncio.Event().wait()

    asyncio.run(main())


CHILDREN: dict[str, Callable[[str, int, ssl.SSLContext], None]] = {
    "rxbinance-speed": child_rxbinance,
    "rxbinance": child_rxbinance,
    "floor": child_floor,
    "websockets": child_websockets,
    "picows": child_picows,
    "unicorn-websockets": lambda url, n, ctx: child_unicorn(url, n, ctx, "websockets"),
    "unicorn-picows": lambda url, n, ctx: child_unicorn(url, n, ctx, "picows"),
    "python-binance-bsm": child_python_binance_bsm,
    "python-binance-twm": child_python_binance_twm,
    # A queue that holds the whole burst: what the threaded manager delivers when it does not stop.
    "python-binance-twm-queue": lambda url, n, ctx: child_python_binance_twm(url, n, ctx, n + 1),
    "binance-sdk-spot": child_binance_sdk_spot,
}


def child_main(key: str, url: str, n: int, cafile: str) -> None:
    """Run one client in this process; what it prints on stdout is the protocol:
    ``SKIP <why>``, ``NOTE <k> <v>``, ``READY``, then ``RESULT <json>``."""
    logging.basicConfig(level=logging.CRITICAL)  # the peers' logs are not the benchmark's
    ctx = client_context(Path(cafile))
    if key == "rxbinance-speed":
        try:
            import orjson  # noqa: F401
        except ImportError as exc:
            _say(f"SKIP {exc} (pip install 'rxbinance[speed]')")
            return
    try:
        CHILDREN[key](url, n, ctx)
    except ImportError as exc:
        _say(f"SKIP {exc} (pip install -r benchmarks/requirements-peers.txt)")
    except BaseException as exc:
        _report_and_exit({"error": repr(exc)})


# -- the parent side: server, runs, table ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one child run came to: a measured ``run``, a stream that ``stopped`` early (after
    ``received`` messages), a ``skip`` or an ``error`` (exactly one), plus the child's notes."""

    run: Run | None = None
    stopped: str | None = None  # the error message the user's code was handed
    logged: tuple[str, ...] = ()  # what the peer logged at ERROR before it
    received: int | None = None
    skip: str | None = None
    error: str | None = None
    notes: dict[str, str] = field(default_factory=dict)


def _lines(stream: Any, into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put(None)


def run_child(client: Client, server: BurstServer, n: int, cert: Path, stderr_dir: Path) -> Outcome:
    """One burst for ``client`` in a fresh subprocess; releases the burst on its ``READY``."""
    url, go = server.run_url()
    env = {**os.environ, "SSL_CERT_FILE": str(cert), **client.env}
    if "RXBINANCE_JSON" not in client.env:
        env.pop("RXBINANCE_JSON", None)
    stderr_path = stderr_dir / f"{client.key}.stderr"
    command = [sys.executable, __file__, "--child", client.key, "--url", url]
    command += ["--messages", str(n), "--cafile", str(cert)]
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
            text=True, env=env,
        )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(
        target=_lines, args=(proc.stdout, lines), name=f"peers-{client.key}", daemon=True
    ).start()
    notes: dict[str, str] = {}
    # Ten times slower than the slowest stack here is stuck.
    deadline = time.monotonic() + READY_TIMEOUT + n / 2_000
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return Outcome(error=f"no result within {deadline:.0f} s", notes=notes)
            if line is None:
                tail = stderr_path.read_text().strip().splitlines()[-3:]
                return Outcome(error=f"exited {proc.wait()}: {' | '.join(tail)}", notes=notes)
            word, _, rest = line.partition(" ")
            if word == "READY":
                go()
            elif word == "NOTE":
                name, _, value = rest.partition(" ")
                notes[name] = value
            elif word == "SKIP":
                return Outcome(skip=rest, notes=notes)
            elif word == "RESULT":
                result = json.loads(rest)
                if "error" in result:
                    return Outcome(error=result["error"], notes=notes)
                if "stopped" in result:
                    return Outcome(
                        stopped=result["stopped"],
                        logged=tuple(result.get("logged", ())),
                        received=result["received"],
                        notes=notes,
                    )
                return Outcome(
                    run=Run(result["messages"], result["wall"], result["cpu"]), notes=notes
                )
            # Anything else is a peer printing on stdout: not ours, ignored.
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass(slots=True)
class Tally:
    """Everything measured for one client over the repeats."""

    client: Client
    runs: list[Run] = field(default_factory=list)
    stops: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skip: str | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> Run | None:
        return max(self.runs, key=lambda run: run.rate, default=None)


def measure(
    clients: list[Client], server: BurstServer, n: int, cert: Path, repeats: int, tmp: Path
) -> dict[str, Tally]:
    tallies = {client.key: Tally(client) for client in clients}
    for attempt in range(repeats):
        # Rotate the order: each client runs first in some repeat, last in another.
        shift = attempt % len(clients)
        for client in clients[shift:] + clients[:shift]:
            tally = tallies[client.key]
            if tally.skip is not None:
                continue
            outcome = run_child(client, server, n, cert, tmp)
            tally.notes.update(outcome.notes)
            prefix = f"  run {attempt + 1}  {client.label:<42}"
            if outcome.skip is not None:
                tally.skip = outcome.skip
                print(f"{prefix} skipped: {outcome.skip}", flush=True)
            elif outcome.error is not None:
                tally.errors.append(outcome.error)
                print(f"{prefix} failed: {outcome.error}", flush=True)
            elif outcome.stopped is not None:
                tally.stops.append(outcome)
                print(f"{prefix} stopped after {outcome.received:,} messages: "
                      f"{_stop_story(outcome)}", flush=True)  # fmt: skip
            elif outcome.run is not None:
                tally.runs.append(outcome.run)
                print(f"{prefix} {outcome.run.rate:>9,.0f} msgs/s  "
                      f"{outcome.run.cpu_per_100k:6.3f} CPU s/100k", flush=True)  # fmt: skip
    return tallies


def table_cells(tallies: dict[str, Tally], transport: str, n: int
                ) -> tuple[list[list[str]], list[str]]:  # fmt: skip
    """The table (measured rows by messages per second, then the rest) and its notes."""
    measured = sorted(
        (t for t in tallies.values() if t.best is not None),
        key=lambda t: t.best.rate if t.best else 0.0,
        reverse=True,
    )
    top = measured[0].best.rate if measured and measured[0].best else None
    cells = [
        ["client", "transport", "delivers", "msgs/s", "CPU s / 100k msgs", "vs best",
         "vs best, by CPU"]
    ]  # fmt: skip
    least_cpu = min((t.best.cpu_per_100k for t in measured if t.best), default=None)
    notes: list[str] = []
    for tally in measured:
        best = tally.best
        assert best is not None
        assert top is not None
        cells.append([tally.client.label, transport, _delivers(tally), f"{best.rate:,.0f}",
                      f"{best.cpu_per_100k:.2f}", f"{best.rate / top:.2f}",
                      f"{least_cpu / best.cpu_per_100k:.2f}" if least_cpu else "-"])  # fmt: skip
    for tally in tallies.values():
        label = tally.client.label
        if tally.best is None and tally.stops:
            story = _stop_story(tally.stops[-1])
            counts = ", ".join(f"{o.received:,}" for o in tally.stops if o.received is not None)
            what = "overflow" if "Overflow" in story else "stopped"
            cells.append([label, transport, _delivers(tally), what, "-", "-", "-"])
            notes.append(f"{label}: its stream stopped in every run, after {counts} of "
                         f"{n:,} messages reached the callback: {story}")  # fmt: skip
        elif tally.best is None and tally.skip is not None:
            cells.append([label, "-", tally.client.delivers, "skipped", "-", "-", "-"])
            notes.append(f"{label}: skipped: {tally.skip}")
        elif tally.best is None:
            cells.append([label, transport, _delivers(tally), "failed", "-", "-", "-"])
            notes.append(f"{label}: every run failed: {tally.errors[-1]}")
        elif tally.errors or tally.stops:
            notes.append(f"{label}: {len(tally.errors) + len(tally.stops)} of its runs "
                         "failed or stopped early (the best of the others is shown)")  # fmt: skip
    return cells, notes


def _delivers(tally: Tally) -> str:
    """What the callback gets, and (in brackets) the JSON module that made it."""
    parser = tally.notes.get("json")
    return f"{tally.client.delivers} ({parser})" if parser else tally.client.delivers


def _stop_story(outcome: Outcome) -> str:
    logged = "; ".join(outcome.logged) or "nothing"
    return f"it logged {logged!r}, then handed over {outcome.stopped} and nothing more"


def json_notes(tallies: dict[str, Tally]) -> list[str]:
    notes = []
    speed, plain = tallies.get("rxbinance-speed"), tallies.get("rxbinance")
    if speed and plain and speed.best and plain.best:
        if "absent" in (speed.notes.get("jsonlib"), plain.notes.get("jsonlib")):
            notes.append("rxbinance: this tree has no rxbinance.protocol.jsonlib yet, so it "
                         "parses with the standard json module whether or not orjson is "
                         "installed: its two rows measure the same thing")  # fmt: skip
        elif speed.notes.get("json") == plain.notes.get("json"):
            notes.append(f"rxbinance parsed with {speed.notes.get('json')} in both rows: they "
                         "measure the same thing")  # fmt: skip
    if "python-binance-twm-queue" in tallies:
        notes.append("python-binance ThreadedWebsocketManager, big queue: "
                     "ThreadedWebsocketManager(max_queue_size=messages + 1), a queue that holds "
                     "the whole burst (the default, 100, overflows)")  # fmt: skip
    notes.append(
        "(json) / (orjson): the JSON module that parsed each message; python-binance uses "
        "orjson whenever it is importable, unicorn-binance-websocket-api always"
    )
    return notes


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(clients: list[Client], n: int, repeats: int, tls: str) -> str:
    versions = sorted({d for c in clients for d in c.distributions} | {"orjson"})
    found = ", ".join(f"{d} {_installed(d)}" for d in versions if _installed(d))
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True
    ).stdout.strip()
    if commit:
        found = found.replace("rxbinance ", f"rxbinance (tree at {commit}) ", 1)
    return (
        f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}, {tls}, {os.cpu_count()} "
        f"CPUs; {n:,} trade messages per burst, best of {repeats}; {found}"
    )


def draw(path: Path, cells: list[list[str]], title: str) -> None:
    """A horizontal bar chart of the measured rows, fastest on top; the rows without figures
    (stopped, skipped, failed) are named under it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = [r for r in cells[1:] if r[3].replace(",", "").isdigit()]
    story = {"overflow": "queue overflow, its stream stopped", "stopped": "its stream stopped"}
    others = [f"{r[0]}: {story.get(r[3], r[3])}" for r in cells[1:] if r not in rows]
    labels = [f"{r[0]} [{r[2]}]" for r in rows][::-1]
    rates = [float(r[3].replace(",", "")) for r in rows][::-1]
    colors = ["#d62728" if label.startswith("rxbinance") else "#7f7f7f" for label in labels]
    figure, axes = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.8 + 0.2 * len(others)))
    bars = axes.barh(labels, rates, color=colors)
    for bar, row in zip(bars, rows[::-1], strict=True):
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                  f" {row[3]}/s ({row[5]}x)", va="center", fontsize=8)  # fmt: skip
    axes.set_xlabel("trade messages per second (higher is better)")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    axes.set_xlim(0, max(rates, default=1) * 1.3)
    axes.set_title(title, fontsize=9)
    axes.tick_params(axis="y", labelsize=8)
    if others:
        figure.text(0.01, 0.01, "No bar: " + "; ".join(others), fontsize=7.5, va="bottom")
    figure.tight_layout(rect=(0, 0.03 * bool(others) + 0.15 * len(others) / len(cells), 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def select(only: str | None) -> list[Client]:
    """``--only``: exact keys, or a prefix before ``-`` ("rxbinance" picks both its rows)."""
    if not only:
        return list(CLIENTS)
    wanted = [word.strip() for word in only.split(",") if word.strip()]
    chosen = [c for c in CLIENTS if any(c.key == w or c.key.startswith(w + "-") for w in wanted)]
    unknown = [
        w for w in wanted if not any(c.key == w or c.key.startswith(w + "-") for c in CLIENTS)
    ]
    if unknown:
        keys = ", ".join(c.key for c in CLIENTS)
        raise ValueError(f"--only: unknown client {', '.join(unknown)}; known: {keys}")
    return chosen


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rxbinance-peers-") as tmp:
        yield Path(tmp)


def _tls_version(ctx: ssl.SSLContext, port: int) -> str:
    import socket

    # A bare TLS handshake (no upgrade, so no burst) to learn what the two ends negotiate.
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        return f"{sock.version()} {(sock.cipher() or ('?',))[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, help="per burst (200000; 20000 with --quick)")
    parser.add_argument(
        "--repeats", type=int, help="runs per client; best kept (3; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a short run, to try it out")
    parser.add_argument("--only", help="comma-separated client keys (see the docstring)")
    parser.add_argument("--png", type=Path, help="write the bar chart here (matplotlib)")
    parser.add_argument("--json", type=Path, help="write every run's raw figures here")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--rst", action="store_true", help="also print an RST table (README)")
    style.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cafile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.messages if args.messages is not None else (20_000 if args.quick else 200_000)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if args.child:
        child_main(args.child, args.url, n, args.cafile)
        return 0
    if n < 2 or repeats < 1:
        parser.error("--messages must be >= 2 and --repeats >= 1")
    try:
        clients = select(args.only)
    except ValueError as exc:
        parser.error(str(exc))

    with _workdir() as tmp:
        cert, key = make_certificate(tmp)
        # No close frame after a burst: each child ends its connection when it has counted.
        with burst_server(n, cert, key, keep_open=True) as server:
            tls = _tls_version(client_context(cert), server.port)
            load = os.getloadavg()[0]
            print(f"wss:// server on port {server.port}", flush=True)
            tallies = measure(clients, server, n, cert, repeats, tmp)

    about = f"{environment(clients, n, repeats, tls)}; load average {load:.2f} before, " \
            f"{os.getloadavg()[0]:.2f} after"  # fmt: skip
    cells, notes = table_cells(tallies, "wss://", n)
    notes += json_notes(tallies)
    print()
    print(about)
    print()
    print(format_plain(cells))
    if notes:
        print()
        print("\n".join(f"- {note}" for note in notes))
    if args.rst:
        print()
        print(format_rst(cells))
    elif args.markdown:
        print()
        print(format_markdown(cells))
    if args.png:
        title = (f"Binance trade stream clients on one loopback TLS flood of {n:,} messages\n"
                 f"best of {repeats} runs each, {os.cpu_count()} CPUs, Python "
                 f"{platform.python_version()}; red: rxbinance")  # fmt: skip
        draw(args.png, cells, title)
        print(f"\nchart written to {args.png}")
    if args.json:
        raw = {
            "environment": about,
            "messages": n,
            "repeats": repeats,
            "clients": {
                key: {
                    "label": t.client.label,
                    "delivers": t.client.delivers,
                    "runs": [
                        {**asdict(r), "rate": r.rate, "cpu_per_100k": r.cpu_per_100k}
                        for r in t.runs
                    ],
                    "best": asdict(t.best) if t.best else None,
                    "stopped": [
                        {"received": o.received, "handed": o.stopped, "logged": o.logged}
                        for o in t.stops
                    ],
                    "errors": t.errors,
                    "skipped": t.skip,
                    "notes": t.notes,
                }
                for key, t in tallies.items()
            },
            "notes": notes,
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
        print(f"raw figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
