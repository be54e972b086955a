"""A loopback WebSocket server that answers each connection with one burst of trade frames.

Run by ``benchmarks/throughput.py`` and ``benchmarks/peers.py`` (through ``_harness.py``) as a
separate process, so it has its own GIL and its own core and cannot slow the client down by
sharing an interpreter with it::

    python benchmarks/_tls_burst_server.py --messages 200000 [--cert C --key K]

It prints ``PORT <n>`` on stdout once listening on 127.0.0.1, then serves connections one after
another until its stdin closes (the parent exited) or it is terminated. For each connection it:

1. (TLS) completes the TLS handshake, then reads the HTTP request. A plain ``GET`` (no upgrade)
   of ``.../api/v3/ping`` or ``.../api/v3/time`` gets Binance's REST answer (``{}``,
   ``{"serverTime": now}``) and the connection is closed: enough for a client that pings the REST
   API before it opens a stream (python-binance's ``AsyncClient.create``); anything else not an
   upgrade gets 404. An upgrade request is answered ``101 Switching Protocols`` with the computed
   ``Sec-WebSocket-Accept``;
2. chooses the framing from the path, as Binance does (binance-protocol.md 2): a raw stream path
   (``.../ws/<name>``) gets the bare payloads; a combined one (``.../stream?streams=<names>``)
   gets each wrapped as ``{"stream": "btcusdt@trade", "data": {...}}``; a bare ``.../stream``
   (a client that subscribes after connecting) first waits for one client text frame, the
   ``SUBSCRIBE`` request, answers it ``{"result": null, "id": <its id>}``, then sends the
   wrapped payloads;
3. when the request path starts with ``/run<id>/``, waits for the line ``go <id>`` on stdin, so
   the client decides when the burst starts (after all its subscribers are in place) and a late
   or repeated connection of a finished run is refused instead of served; other paths start at
   once;
4. sends the burst: ``--messages`` unmasked text frames, each a Binance spot ``trade`` payload
   (binance-protocol.md 4.2) with increasing trade ids and times and a varying price, all
   pre-encoded at start-up into one bytes buffer per framing and written with ``sendall`` in
   1 MiB chunks;
5. sends a close frame (1000), then reads until the client closes (EOF) or 10 s pass, and closes;
   with ``--keep-open`` it sends no close frame (Binance keeps a stream open) and waits up to
   600 s for the client to end the connection.

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
import time
from dataclasses import dataclass

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHUNK = 1 << 20
_CLOSE_FRAME = b"\x88\x02" + struct.pack("!H", 1000)
_RUN_PATH = re.compile(rb"^/run(\d+)/")
_STREAM_NAME = b"btcusdt@trade"
_GO_TIMEOUT = 60.0  # seconds a connection may wait for its "go" before it is dropped
_KEEP_OPEN_TIMEOUT = 600.0  # --keep-open: seconds to wait for the client to end after a burst


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


def combined_payload(payload: bytes) -> bytes:
    """``payload`` as a combined stream sends it: ``{"stream":"btcusdt@trade","data":...}``."""
    return b'{"stream":"' + _STREAM_NAME + b'","data":' + payload + b"}"


def build_burst(messages: int, *, combined: bool = False) -> bytes:
    if combined:
        return b"".join(text_frame(combined_payload(trade_payload(i))) for i in range(messages))
    return b"".join(text_frame(trade_payload(i)) for i in range(messages))


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the client closed before its SUBSCRIBE request")
        data += chunk
    return data


def read_client_text(conn: socket.socket) -> bytes:
    """One masked client text frame (the SUBSCRIBE request), unmasked; control frames skipped."""
    while True:
        first, second = _recv_exactly(conn, 2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", _recv_exactly(conn, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", _recv_exactly(conn, 8))
        mask = _recv_exactly(conn, 4) if second & 0x80 else b"\0\0\0\0"
        body = _recv_exactly(conn, length)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
        if first & 0x0F == 0x1:
            return payload
        if first & 0x0F == 0x8:
            raise ConnectionError("the client closed before its SUBSCRIBE request")


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


@dataclass(frozen=True, slots=True)
class _Request:
    """What the upgrade request asked for: its run (``/run<id>/``) and its framing."""

    run: int | None
    combined: bool  # wrap each payload as a combined stream does
    subscribes: bool  # a bare /stream: the client sends SUBSCRIBE before any data


def _rest_answer(conn: socket.socket, path: bytes) -> None:
    """Binance's answer to the two REST calls a stream client may make first; 404 otherwise."""
    if path.split(b"?")[0].endswith(b"/api/v3/ping"):
        status, body = b"200 OK", b"{}"
    elif path.split(b"?")[0].endswith(b"/api/v3/time"):
        status, body = b"200 OK", b'{"serverTime":%d}' % (time.time_ns() // 1_000_000)
    else:
        status, body = b"404 Not Found", b'{"code":-1,"msg":"not served here"}'
    conn.sendall(
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )


def _handshake(conn: socket.socket) -> _Request | None:
    """Answer the request: the upgrade's ``_Request``, or None for a REST call (answered)."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise _Gone
        request += chunk
        if len(request) > 65536:
            raise ConnectionError("handshake request too large")
    lines = request.split(b"\r\n")
    parts = lines[0].split(b" ")
    path = parts[1] if len(parts) == 3 else b"/"
    key = b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if not key:
        _rest_answer(conn, path)
        return None
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    match = _RUN_PATH.match(path)
    endpoint = path[match.end() :] if match else path.lstrip(b"/")
    combined = endpoint.startswith(b"stream")
    return _Request(
        run=int(match.group(1)) if match else None,
        combined=combined,
        subscribes=combined and b"streams=" not in endpoint,
    )


def _serve_one(conn: socket.socket, bursts: dict[bool, memoryview], releases: _Releases,
               served: set[int], keep_open: bool) -> None:  # fmt: skip
    conn.settimeout(10.0)
    request = _handshake(conn)
    if request is None:
        return
    if request.subscribes:
        # The client names its streams after connecting: answer as Binance does, then send.
        try:
            ask = json.loads(read_client_text(conn))
        except ValueError as exc:
            raise ConnectionError(f"expected a SUBSCRIBE request: {exc}") from exc
        reply = json.dumps({"result": None, "id": ask.get("id")}, separators=(",", ":"))
        conn.sendall(text_frame(reply.encode()))
    run = request.run
    if run is not None:
        if run in served or not releases.wait_for(run, _GO_TIMEOUT) or releases.latest != run:
            # A reconnect of a finished run, or one whose client moved on: no burst for it.
            print(f"run {run}: connection refused (stale or never released)", file=sys.stderr)
            return
        served.add(run)
    burst = bursts[request.combined]
    # Big writes: the kernel (and, for TLS, OpenSSL's 16 KiB records) split them as they need.
    for start in range(0, len(burst), _CHUNK):
        conn.sendall(burst[start : start + _CHUNK])
    # The client may already be gone: it closes as soon as it has counted the last message, so
    # the close frame can meet a reset. Nothing was lost, so nothing to report.
    with contextlib.suppress(OSError):
        if keep_open:
            # As Binance does after a burst: nothing. A client that drops what it has buffered
            # once the close frame is in (python-binance) counts every message this way; the
            # client ends the connection, and its process, when it has counted them.
            conn.settimeout(_KEEP_OPEN_TIMEOUT)
        else:
            conn.sendall(_CLOSE_FRAME)
        # Wait for the client to finish (its close frame, then EOF) so closing here never resets
        # a connection whose last frames the client has not read yet.
        while conn.recv(65536):
            pass


def serve(messages: int, certfile: str | None, keyfile: str | None, keep_open: bool = False
          ) -> None:  # fmt: skip
    bursts = {
        False: memoryview(build_burst(messages)),
        True: memoryview(build_burst(messages, combined=True)),
    }
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
                    _serve_one(conn, bursts, releases, served, keep_open)
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
    parser.add_argument(
        "--keep-open", action="store_true", help="no close frame after the burst: the client ends"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.messages, args.cert, args.key, args.keep_open)


if __name__ == "__main__":
    main()
