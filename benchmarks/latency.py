"""Send-to-callback latency of ``BinanceStreams.trades()`` at a steady message rate, over loopback.

Usage::

    python benchmarks/latency.py [--rate 20000] [--seconds 10] [--warmup 1] [--plain]

A server in a separate process (its own GIL; this script run with ``--serve``) accepts one
WebSocket connection, over TLS with a self-signed certificate made at run time (``--plain``:
``ws://``), and sends Binance spot ``trade`` messages (the shape of
``_tls_burst_server.trade_payload``, consecutive trade ids) at a steady ``--rate``: message ``i``
is due at ``start + i / rate``; the server sleeps until the next one is due and writes each due
message with its own ``sendall``, as Binance writes each event as it happens. Just before that
write it stamps the message with the sending time, ``"x"``: ``time.monotonic_ns()``, a clock
both processes share (CLOCK_MONOTONIC is system-wide on Linux).

This process is the client: one subscriber of ``BinanceStreams.trades("BTCUSDT",
backfill=False)``, which takes ``time.monotonic_ns()`` on arrival. The latency of a message is
that difference: the write, the kernel, TLS, rxbinance's reading, decoding, the trade-id
sequencing and the Rx chain up to the subscriber's callback. Messages of the first ``--warmup``
seconds are left out (connection set-up, first allocations). It prints one line: p50, p99,
p99.9 and the maximum, the rate reached, the transport and the JSON decoder in use (orjson with
the ``speed`` extra; ``RXBINANCE_JSON=stdlib`` forces the standard library).

Target (issue 12): p99 under 1 ms at 20,000 messages per second. A benchmark, not a test: it
always exits 0 when it could measure. On a machine whose cores are busy with other work, the
tail measures the scheduler as much as rxbinance: note the load average it prints.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import math
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Measure the working tree, whatever the install.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLOSE_FRAME = b"\x88\x02\x03\xe8"  # close, 1000


# -- the server (a separate process) -----------------------------------------------------------


def _prefixes(messages: int) -> list[bytes]:
    """Each trade's compact JSON (as Binance sends it) without its closing brace, ready for
    the stamp: everything but the stamp is built before the clock starts."""
    from _tls_burst_server import trade_payload

    return [trade_payload(i)[:-1] + b',"x":' for i in range(messages)]


def _upgrade(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("the client left before the upgrade")
        request += chunk
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def serve(rate: float, messages: int, certfile: str | None, keyfile: str | None) -> None:
    context: ssl.SSLContext | None = None
    if certfile is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print(f"PORT {listener.getsockname()[1]}", flush=True)
        listener.settimeout(60.0)
        raw, _ = listener.accept()
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = context.wrap_socket(raw, server_side=True) if context else raw
    with conn:
        _upgrade(conn)
        from _tls_burst_server import text_frame

        prefixes = _prefixes(messages)
        clock, sleep, send, stamp = time.perf_counter, time.sleep, conn.sendall, time.monotonic_ns
        start = clock()
        interval = 1.0 / rate
        for i, prefix in enumerate(prefixes):
            wait = start + i * interval - clock()
            if wait > 0:
                sleep(wait)
            send(text_frame(b"%s%d}" % (prefix, stamp())))
        elapsed = clock() - start
        print(f"SENT {messages} {elapsed:.6f}", flush=True)
        with contextlib.suppress(OSError):
            conn.sendall(_CLOSE_FRAME)
            conn.settimeout(10.0)
            while conn.recv(65536):  # until the client's close and EOF
                pass


# -- the client (this process) -----------------------------------------------------------------


def percentile(ordered: list[int], fraction: float) -> int:
    """The nearest-rank percentile of an ascending list."""
    rank = math.ceil(fraction * len(ordered))  # the smallest value with that share at or below
    return ordered[max(0, min(len(ordered), rank) - 1)]


def measure(rate: float, seconds: float, warmup: float, plain: bool) -> str:
    from throughput import client_context, make_certificate

    from rxbinance import BinanceStreams
    from rxbinance.events import Disconnected
    from rxbinance.protocol import jsonlib

    messages = int(rate * seconds)
    skip = int(rate * warmup)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--serve", "--rate", str(rate)]
        command += ["--messages", str(messages)]
        ctx: ssl.SSLContext | None = None
        if not plain:
            cert, key = make_certificate(Path(tmp))
            command += ["--cert", str(cert), "--key", str(key)]
            ctx = client_context(cert)
        load_before = os.getloadavg()[0]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"the server failed to start (said {line!r})")
            port = int(line.split()[1])
            latencies = [0] * messages
            count = 0
            done = threading.Event()
            drops: list[str] = []
            now = time.monotonic_ns

            def on_next(trade: Any) -> None:
                nonlocal count
                arrived = now()
                if count < messages:
                    latencies[count] = arrived - trade["x"]
                count += 1
                if count == messages:
                    done.set()

            def on_event(event: Any) -> None:
                if isinstance(event, Disconnected) and not done.is_set():
                    drops.append(event.reason)
                    done.set()

            scheme = "ws" if plain else "wss"
            url = f"{scheme}://localhost:{port}"
            with BinanceStreams(ws_url=url, ssl_context=ctx, retry_delay=30.0) as streams:
                streams.events.subscribe(on_event)
                subscription = streams.trades("BTCUSDT", backfill=False).subscribe(on_next)
                if not done.wait(seconds * 3 + 30):
                    raise RuntimeError(f"stuck after {count} of {messages} messages")
                subscription.dispose()
            if drops:
                raise RuntimeError(f"the connection dropped after {count} messages: {drops}")
            sent = proc.stdout.readline().split()
            sent_rate = int(sent[1]) / float(sent[2]) if sent and sent[0] == "SENT" else 0.0
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    ordered = sorted(latencies[skip:])
    us = [percentile(ordered, f) / 1000 for f in (0.50, 0.99, 0.999)] + [ordered[-1] / 1000]
    verdict = "PASS" if us[1] < 1000 else "MISS"
    return (
        f"{scheme}:// {len(ordered):,} msgs at {sent_rate:,.0f} msg/s "
        f"(asked {rate:,.0f}; first {warmup:g} s left out), JSON {jsonlib.BACKEND}: "
        f"p50 {us[0]:,.0f} us, p99 {us[1]:,.0f} us, p99.9 {us[2]:,.0f} us, max {us[3]:,.0f} us; "
        f"{verdict} p99 < 1 ms; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=20_000.0, help="messages/s (20000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="of sending (10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds left out (1)")
    parser.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            serve(args.rate, args.messages, args.cert, args.key)
        return 0
    if not 0 <= args.warmup < args.seconds:
        parser.error(f"--warmup must be at least 0 and below --seconds, not {args.warmup}")
    print(measure(args.rate, args.seconds, args.warmup, args.plain), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
