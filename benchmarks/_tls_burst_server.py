"""A loopback WebSocket server that answers each connection with one burst of trade frames.

Run by ``benchmarks/throughput.py`` as a separate process, so it has its own GIL and its own core
and cannot slow the client down by sharing an interpreter with it::

    python benchmarks/_tls_burst_server.py --messages 200000 [--cert C --key K]

It prints ``PORT <n>`` on stdout once listening on 127.0.0.1, then serves connections one after
another until its stdin closes (the parent exited) or it is terminated. For each connection it:

1. (TLS) completes the TLS handshake, then reads the HTTP upgrade request and answers
   ``101 Switching Protocols`` with the computed ``Sec-WebSocket-Accept``;
2. when the request path starts with ``/run<id>/``, waits for the line ``go <id>`` on stdin, so
   the client decides when the burst starts (after all its subscribers are in place) and a late
   or repeated connection of a finished run is refused instead of served; other paths start at
   once;
3. sends the burst: ``--messages`` unmasked text frames, each a Binance spot ``trade`` payload
   (binance-protocol.md 4.2) with increasing trade ids and times and a varying price, all
   pre-encoded at start-up into one bytes buffer and written with ``sendall`` in 1 MiB chunks;
4. sends a close frame (1000), then reads until the client closes (EOF) or 10 s pass, and closes.

Everything the burst costs the server is paid before the client connects, except the kernel copy
and, for TLS, the encryption: the server is never the bottleneck.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import select
import socket
import ssl
import struct
import sys

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHUNK = 1 << 20
_CLOSE_FRAME = b"\x88\x02" + struct.pack("!H", 1000)
_RUN_PATH = re.compile(rb"^GET /run(\d+)/")
_GO_TIMEOUT = 60.0  # seconds a connection may wait for its "go" before it is dropped


def trade_payload(i: int) -> bytes:
    """The ``i``-th trade of the burst, exactly the documented shape (compact JSON, as Binance)."""
    event_time = 1_700_000_000_000 + i // 4  # several trades per millisecond, as in busy markets
    price_cents = 4_300_000 + (i * 7919) % 20_000  # 43000.00..43199.99 USDT, jumping around
    qty = 1 + (i * 104_729) % 250_000_000  # 0.00000001..2.5 BTC
    message = {
        "e": "trade",
        "E": event_time,
        "s": "BTCUSDT",
        "t": 3_300_000_000 + i,
        "p": f"{price_cents // 100}.{price_cents % 100:02d}000000",
        "q": f"{qty // 100_000_000}.{qty % 100_000_000:08d}",
        "T": event_time - 1,
        "m": i % 3 == 0,
        "M": True,
    }
    return json.dumps(message, separators=(",", ":")).encode()


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (server-to-client frames are never masked, RFC 6455 5.1)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def build_burst(messages: int) -> bytes:
    return b"".join(text_frame(trade_payload(i)) for i in range(messages))


class _Gone(Exception):
    """The client left before asking for an upgrade (a TLS probe): not worth a word."""


class _Releases:
    """The ``go <id>`` lines of stdin, read without blocking the server for longer than asked."""

    def __init__(self) -> None:
        self.latest = 0  # highest run id released so far
        self.closed = False  # stdin hit EOF: the parent is gone
        self._pending = b""

    def wait_for(self, run: int, timeout: float) -> bool:
        """Read lines until run ``run`` (or a later one) is released; False on timeout or EOF."""
        while self.latest < run:
            ready, _, _ = select.select([sys.stdin.fileno()], [], [], timeout)
            if not ready:
                return False
            chunk = os.read(sys.stdin.fileno(), 4096)
            if not chunk:
                self.closed = True
                return False
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                word, _, number = line.strip().partition(b" ")
                if word == b"go" and number.isdigit():
                    self.latest = max(self.latest, int(number))
        return True


def _handshake(conn: socket.socket) -> int | None:
    """Answer the upgrade request; return the run id of its path, if any."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise _Gone
        request += chunk
        if len(request) > 65536:
            raise ConnectionError("handshake request too large")
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if not key:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        raise ConnectionError("no Sec-WebSocket-Key")
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    match = _RUN_PATH.match(request)
    return int(match.group(1)) if match else None


def _serve_one(conn: socket.socket, burst: memoryview, releases: _Releases, served: set[int]
               ) -> None:  # fmt: skip
    conn.settimeout(10.0)
    run = _handshake(conn)
    if run is not None:
        if run in served or not releases.wait_for(run, _GO_TIMEOUT) or releases.latest != run:
            # A reconnect of a finished run, or one whose client moved on: no burst for it.
            print(f"run {run}: connection refused (stale or never released)", file=sys.stderr)
            return
        served.add(run)
    # Big writes: the kernel (and, for TLS, OpenSSL's 16 KiB records) split them as they need.
    for start in range(0, len(burst), _CHUNK):
        conn.sendall(burst[start : start + _CHUNK])
    # The client may already be gone: it closes as soon as it has counted the last message, so
    # the close frame can meet a reset. Nothing was lost, so nothing to report.
    with contextlib.suppress(OSError):
        conn.sendall(_CLOSE_FRAME)
        # Wait for the client to finish (its close frame, then EOF) so closing here never resets
        # a connection whose last frames the client has not read yet.
        while conn.recv(65536):
            pass


def serve(messages: int, certfile: str | None, keyfile: str | None) -> None:
    burst = memoryview(build_burst(messages))
    context: ssl.SSLContext | None = None
    if certfile is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
    releases = _Releases()
    served: set[int] = set()
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        print(f"PORT {listener.getsockname()[1]}", flush=True)
        listener.settimeout(1.0)
        parent = os.getppid()
        while not releases.closed and os.getppid() == parent:  # stop when orphaned
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                raw.settimeout(10.0)
                conn = context.wrap_socket(raw, server_side=True) if context else raw
                with conn:
                    _serve_one(conn, burst, releases, served)
            except _Gone:
                pass
            except OSError as exc:
                # The client went away mid-burst: its run reports the failure; serve the next.
                print(f"connection ended early: {exc!r}", file=sys.stderr, flush=True)
            finally:
                raw.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--cert", help="PEM certificate: serve wss:// (else plain ws://)")
    parser.add_argument("--key", help="PEM private key of --cert")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.messages, args.cert, args.key)


if __name__ == "__main__":
    main()
