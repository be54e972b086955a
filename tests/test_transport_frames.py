"""The transport's own frame reading over real loopback sockets, plain and TLS: pongs echo the
ping (also between fragments), close frames are answered with their code and reported, binary
frames are reported and skipped, frames a server must not send fail the connection with the
close code RFC 6455 asks for, and a silent TLS socket stalls.

FakeBinance speaks only valid WebSocket (it is built on the websockets library), so these tests
use a small raw server: it completes the opening handshake, then writes exactly the bytes a test
gives it and records the frames the client sends back.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rxbinance.errors import ConnectionDropped, RxBinanceError, StallError
from rxbinance.events import ConnectionEvent, Disconnected, MalformedFrame
from rxbinance.protocol.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
)
from rxbinance.transport import Request, StreamSocket
from tests.test_wsframes import frame

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class RawServer:
    """One WebSocket connection on 127.0.0.1, optionally over TLS. ``send`` writes raw bytes;
    ``received`` collects the client's frames (unmasked) as ``(opcode, payload)``."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._context = context
        self._conn: socket.socket | None = None
        self.connected = threading.Event()
        self.received: list[tuple[int, bytes]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="test:raw-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "wss" if self._context else "ws"
        return f"{scheme}://localhost:{self._listener.getsockname()[1]}/ws/btcusdt@trade"

    def send(self, data: bytes) -> None:
        assert self.connected.wait(10), "the client never connected"
        assert self._conn is not None
        self._conn.sendall(data)

    def wait_for_frame(self, opcode: int) -> bytes:
        """The payload of the first frame the client sent with ``opcode`` (waits for it)."""
        with self._cond:
            assert self._cond.wait_for(
                lambda: any(op == opcode for op, _ in self.received), timeout=10
            ), f"no frame {opcode:#x} from the client; got {self.received!r}"
            return next(p for op, p in self.received if op == opcode)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._thread.join(5)

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
        except OSError:
            return
        conn = self._context.wrap_socket(raw, server_side=True) if self._context else raw
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
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
        self._conn = conn
        self.connected.set()
        data = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                data += chunk
                data = self._parse(data)

    def _parse(self, data: bytes) -> bytes:
        # Client frames are small and always masked (RFC 6455 5.3).
        while len(data) >= 6:
            opcode, n = data[0] & 0x0F, data[1] & 0x7F
            head = 2
            if n == 126:
                (n,) = struct.unpack("!H", data[2:4])
                head = 4
            if len(data) < head + 4 + n:
                break
            key = data[head : head + 4]
            body = data[head + 4 : head + 4 + n]
            with self._cond:
                self.received.append((opcode, bytes(b ^ key[i % 4] for i, b in enumerate(body))))
                self._cond.notify_all()
            data = data[head + 4 + n :]
        return data


class Client:
    """A StreamSocket to a RawServer, recording what it reports."""

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        stall: float = 10.0,
        handshake: Callable[[Request], None] | None = None,
    ) -> None:
        self.messages: list[Any] = []
        self.events: list[ConnectionEvent] = []
        self.closed: list[RxBinanceError | None] = []
        self.done = threading.Event()
        self._got = threading.Condition()
        self.socket = StreamSocket(
            url,
            key="btcusdt@trade",
            on_message=self._on_message,
            on_event=self.events.append,
            on_closed=self._on_closed,
            ssl_context=ssl_context,
            stall_timeout=stall,
            handshake=handshake,
        )
        self.socket.start()

    def _on_message(self, message: Any) -> None:
        with self._got:
            self.messages.append(message)
            self._got.notify_all()

    def _on_closed(self, failure: RxBinanceError | None) -> None:
        self.closed.append(failure)
        self.done.set()

    def wait_messages(self, n: int) -> list[Any]:
        with self._got:
            assert self._got.wait_for(lambda: len(self.messages) >= n, timeout=10), self.messages
        return self.messages

    def failure(self) -> RxBinanceError | None:
        assert self.done.wait(10), "the socket did not end"
        self.socket.join(5)
        (failure,) = self.closed
        return failure


@pytest.fixture
def server() -> Iterator[RawServer]:
    srv = RawServer()
    yield srv
    srv.close()


@pytest.fixture
def client(server: RawServer) -> Iterator[Client]:
    c = Client(server.url)
    assert server.connected.wait(10)
    yield c
    c.socket.close()
    c.socket.join(5)


def trade(t: int) -> bytes:
    return b'{"e":"trade","s":"BTCUSDT","t":%d,"p":"43000.01"}' % t


def test_a_ping_between_fragments_is_answered_and_the_message_assembled(
    server: RawServer, client: Client
) -> None:
    server.send(
        frame(OP_TEXT, trade(1)[:10], fin=False)
        + frame(OP_PING, b"ping-payload-42")
        + frame(OP_CONTINUATION, trade(1)[10:20], fin=False)
        + frame(OP_CONTINUATION, trade(1)[20:])
        + frame(OP_TEXT, trade(2))
    )
    assert server.wait_for_frame(OP_PONG) == b"ping-payload-42"
    assert [m["t"] for m in client.wait_messages(2)] == [1, 2]


def test_a_frame_larger_than_the_buffer_between_small_ones(
    server: RawServer, client: Client
) -> None:
    big = b'{"e":"trade","t":3,"pad":"' + b"x" * 600_000 + b'"}'
    server.send(frame(OP_TEXT, trade(2)) + frame(OP_TEXT, big) + frame(OP_TEXT, trade(4)))
    got = client.wait_messages(3)
    assert [m["t"] for m in got] == [2, 3, 4]
    assert len(got[1]["pad"]) == 600_000


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (struct.pack("!H", 1008) + b"Too many requests", 1008, "Too many requests"),
        (struct.pack("!H", 1001), 1001, ""),
        (b"", 1005, ""),
    ],
)
def test_a_close_frame_is_answered_with_its_code_and_reported(
    server: RawServer, client: Client, payload: bytes, code: int, reason: str
) -> None:
    server.send(frame(OP_TEXT, trade(1)) + frame(OP_CLOSE, payload))
    assert server.wait_for_frame(OP_CLOSE) == payload[:2]  # the code echoed, or none
    failure = client.failure()
    assert isinstance(failure, ConnectionDropped)
    assert (failure.code, failure.reason) == (code, reason)
    assert [m["t"] for m in client.messages] == [1]
    (disconnected,) = [e for e in client.events if isinstance(e, Disconnected)]
    assert disconnected.code == code


def test_a_binary_frame_is_reported_not_decoded(server: RawServer, client: Client) -> None:
    server.send(frame(OP_BINARY, trade(1)) + frame(OP_TEXT, trade(2)))
    assert [m["t"] for m in client.wait_messages(1)] == [2]
    (malformed,) = [e for e in client.events if isinstance(e, MalformedFrame)]
    assert malformed.error == "unexpected binary frame"
    assert malformed.excerpt == trade(1).decode()


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (frame(OP_TEXT, trade(1), mask=b"\x01\x02\x03\x04"), 1002, "masked"),
        (bytes([0xC1, 0x02]) + b"{}", 1002, "reserved bits"),
        (bytes([0x83, 0x02]) + b"{}", 1002, "unknown data opcode"),
        (frame(OP_CONTINUATION, b"x"), 1002, "no message to continue"),
        (frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007, "UTF-8"),
        (bytes([0x81, 127]) + struct.pack("!Q", 1 << 40), 1009, "over max_size"),
    ],
)
def test_a_frame_a_server_must_not_send_fails_the_connection_with_its_code(
    server: RawServer, client: Client, data: bytes, code: int, words: str
) -> None:
    server.send(frame(OP_TEXT, trade(1)) + data)
    closing = server.wait_for_frame(OP_CLOSE)
    assert struct.unpack("!H", closing[:2]) == (code,)
    failure = client.failure()
    assert isinstance(failure, ConnectionDropped)
    assert failure.code == code
    assert words in str(failure)
    assert isinstance(failure.__cause__, FrameError)
    assert [m["t"] for m in client.messages] == [1]  # what came before it was delivered


def test_close_wakes_the_reader_and_says_goodbye(server: RawServer, client: Client) -> None:
    server.send(frame(OP_TEXT, trade(1)))
    client.wait_messages(1)
    client.socket.close()  # the reader is blocked in recv_into: close() must wake it
    assert server.wait_for_frame(OP_CLOSE) == struct.pack("!H", 1000)
    assert client.failure() is None


def test_frames_read_with_a_requests_reply_reach_the_read_loop(server: RawServer) -> None:
    # The WebSocket API handshake reads until its reply; frames that came in the same read
    # after the reply are not lost: the read loop delivers them, in order, after the hook.
    replies: list[dict[str, Any]] = []

    def handshake(request: Request) -> None:
        replies.append(request({"id": 7, "method": "session.subscribe"}))

    client = Client(server.url, handshake=handshake)
    try:
        sent = server.wait_for_frame(OP_TEXT)
        assert json.loads(sent) == {"id": 7, "method": "session.subscribe"}
        server.send(
            frame(OP_TEXT, trade(1))  # before the reply: delivered while waiting
            + frame(OP_TEXT, b'{"result":{"subscriptionId":0},"id":7}')
            + frame(OP_TEXT, trade(2))
            + frame(OP_PING, b"after")
            + frame(OP_TEXT, trade(3))
        )
        assert [m["t"] for m in client.wait_messages(3)] == [1, 2, 3]
        assert replies == [{"result": {"subscriptionId": 0}, "id": 7}]
        assert server.wait_for_frame(OP_PONG) == b"after"
    finally:
        client.socket.close()
        client.socket.join(5)


# -- TLS ---------------------------------------------------------------------------------------


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only that server's certificate)."""
    cert, key = certificate(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    return server_ctx, ssl.create_default_context(cafile=str(cert))


def test_over_tls_frames_pings_and_big_messages_arrive(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server = RawServer(tls[0])
    client = Client(server.url, ssl_context=tls[1])
    try:
        big = b'{"e":"trade","t":2,"pad":"' + b"y" * 100_000 + b'"}'  # many TLS records
        server.send(
            frame(OP_TEXT, trade(1))
            + frame(OP_PING, b"tls")
            + frame(OP_TEXT, big)
            + frame(OP_TEXT, trade(3))
        )
        assert [m["t"] for m in client.wait_messages(3)] == [1, 2, 3]
        assert server.wait_for_frame(OP_PONG) == b"tls"
    finally:
        client.socket.close()
        client.socket.join(5)
        server.close()
    assert client.closed == [None]


def test_a_silent_tls_socket_stalls(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    # Over TLS a read timeout surfaces from the ssl module, not the socket module: it must
    # still be a StallError (retried), not a drop or a crash.
    server = RawServer(tls[0])
    client = Client(server.url, ssl_context=tls[1], stall=0.3)
    try:
        failure = client.failure()
    finally:
        server.close()
    assert isinstance(failure, StallError)
    assert failure.timeout == 0.3


def test_a_peer_trickling_bytes_of_a_frame_still_stalls() -> None:
    # Bytes that never make a whole frame are not a live stream: the stall timer runs from the
    # start of the wait for a frame (before, every read re-armed it, and a peer sending a byte
    # every 50 ms kept a dead stream alive for as long as it liked).
    server = RawServer()
    client = Client(server.url, stall=0.4)
    whole = frame(OP_TEXT, trade(1) * 40)  # 2 kB: 100 s at a byte every 0.05 s
    sent = 0

    def trickle() -> None:
        nonlocal sent
        with contextlib.suppress(OSError, AssertionError):
            for i in range(len(whole)):
                if client.done.wait(0.05):
                    return
                server.send(whole[i : i + 1])
                sent += 1

    trickler = threading.Thread(target=trickle, name="test:trickle", daemon=True)
    trickler.start()
    try:
        failure = client.failure()
    finally:
        server.close()
        trickler.join(5)
    assert isinstance(failure, StallError), failure
    assert client.messages == []
    assert 0 < sent < len(whole)  # it stalled while bytes were still coming
