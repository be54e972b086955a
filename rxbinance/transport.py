"""The transport seam: one WebSocket, read by one named daemon thread.

This is the only module that owns sockets and threads for streams. It knows nothing of
ReactiveX: :class:`StreamSocket` calls plain callbacks, and the reactive layer
(:mod:`rxbinance._reactive`) turns them into Observables. websocket-client's exceptions are mapped
here to :mod:`rxbinance.errors` and chained.

websocket-client does what it does well: URL handling, proxies, TLS set-up, the opening
handshake, and sending (its send lock serialises our pongs and close frames with any other
sender). After the handshake we read the socket ourselves: one ``recv_into`` fills a 256 KiB
buffer (:data:`READ_CHUNK`) and :class:`~rxbinance.protocol.wsframes.FrameReader` cuts it into
frames in place, where websocket-client makes three or four system calls and a frame object per
frame (most of the cost of a Binance message). A text frame's payload goes to the JSON decoder
as a view of that buffer (:mod:`rxbinance.protocol.jsonlib`: orjson with the ``speed`` extra,
else the standard library). We answer pings with a pong echoing the payload (Binance requires
the echo), answer a close frame with one echoing its code, and report binary frames as
malformed. The socket's timeout doubles as the stall detector: every read that completes a
frame, of data or a ping, re-arms it (bytes of an unfinished frame do not). Why not
``WebSocketApp.run_forever``: its dispatcher adds a ``select`` per frame, and its built-in
reconnect hides failures from the caller (reactivex-notes 15).

The same socket serves the WebSocket API's user data (``rxbinance._reactive.user_data``) through
four optional hooks, none of which touches the market-stream hot path: ``prepare`` (run on the
reader thread before connecting, returns the URL: a USD-M listenKey is created there),
``handshake`` (run after connecting with a ``request`` function that sends one JSON request and
reads frames until its reply), ``classify`` (which frames are data, ``serverShutdown`` or
replies) and ``on_control`` (unsolicited replies, e.g. a 401 when a key is revoked). A hook ends
the connection by raising: a :class:`~rxbinance.errors.ConnectionFailure` is retried by the
reactive layer, any other :class:`~rxbinance.errors.RxBinanceError` (a
:class:`~rxbinance.errors.BinanceAPIError`: bad key, bad signature) is final.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import websocket

from rxbinance.errors import (
    ConnectError,
    ConnectionDropped,
    ConnectionFailure,
    HandshakeError,
    InternalError,
    RxBinanceError,
    ServerShutdown,
    StallError,
)
from rxbinance.events import (
    Connected,
    Connecting,
    ConnectionEvent,
    Disconnected,
    MalformedFrame,
    ShutdownAnnounced,
)
from rxbinance.protocol import jsonlib
from rxbinance.protocol.frames import FrameKind, expected_event
from rxbinance.protocol.frames import classify as classify_frame
from rxbinance.protocol.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameReader,
    close_status,
)

__all__ = [
    "Controllable",
    "Metered",
    "Redirectable",
    "Request",
    "SocketFactory",
    "SocketLike",
    "StreamSocket",
]

#: Sends one WebSocket API request (a dict with an ``id``) and returns its reply (the decoded
#: frame with the same ``id``). Raises ConnectionFailure if the connection fails or no reply
#: comes in time. Given to a ``handshake`` hook; reader thread only.
Request = Callable[[dict[str, Any]], dict[str, Any]]

log = logging.getLogger("rxbinance.transport")

#: Bytes asked of the kernel per read once connected: the frame reader's buffer. (Over TLS one
#: read brings at most one record, 16 KiB.)
READ_CHUNK = 256 * 1024

#: A received frame: its opcode and its payload, a view valid until the next read.
_Frame = tuple[int, memoryview]


class SocketLike(Protocol):
    """What the reactive layer needs of one connection (the transport seam's product).

    :class:`StreamSocket` is the real one; :class:`rxbinance.testing.ScriptedSocket` is a
    scripted one for tests. ``start()`` begins connecting without blocking, ``close()`` ends the
    connection without blocking (from any thread, idempotent), ``join()`` waits for its thread
    (a no-op for sockets without one), and ``messages`` counts the data messages delivered so
    far (a connection that delivered any resets the retry count).
    """

    @property
    def messages(self) -> int: ...

    def start(self) -> None: ...
    def close(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


@runtime_checkable
class Redirectable(Protocol):
    """A socket whose data can be redirected while it runs (``on_message`` is settable): what
    a make-before-break rollover needs of the old and the new connection."""

    on_message: Callable[[Any], None]


@runtime_checkable
class Metered(Protocol):
    """A socket that reports the data messages it receives to ``meter`` (settable; None: not
    measured) as ``meter(count, sample)``: ``count`` messages received together (one read),
    ``sample`` one of them; on its reader thread: what stream statistics read."""

    meter: Callable[[int, Any], None] | None


@runtime_checkable
class Controllable(Protocol):
    """A socket that sends control messages (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS) and
    hands their replies to ``on_control`` (settable; reader thread): what pooled streams need."""

    on_control: Callable[[dict[str, Any]], None] | None

    def send(self, text: str) -> None: ...


class SocketFactory(Protocol):
    """Builds an unstarted socket for ``url`` that reports through three callbacks:
    ``on_message(obj)`` for each decoded data message, ``on_event(event)`` for
    :mod:`rxbinance.events` connection events, and ``on_closed(failure)`` exactly once at the
    end (None when ``close()`` ended it, else the :class:`~rxbinance.errors.RxBinanceError`
    that did). ``key`` is the stream key (``btcusdt@trade``), for names and events.

    ``BinanceStreams(transport=factory)`` opens every market-stream socket through it.
    """

    def __call__(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
    ) -> SocketLike: ...


class StreamSocket:
    """One connection to ``url``: connect, read, decode, hand over; never reconnects by itself.

    Callbacks all run on the reader thread (named ``rxbinance:<key>``):

    - ``on_message(obj)`` for every decoded market-data frame (a dict or a list);
    - ``on_event(event)`` for connection events (connecting, connected, malformed frame,
      disconnected);
    - ``on_closed(failure)`` exactly once at the end: ``None`` when :meth:`close` ended it, else
      the :class:`~rxbinance.errors.ConnectionFailure` that did (refused, handshake error, drop,
      stall, ``serverShutdown``), or the :class:`~rxbinance.errors.RxBinanceError` a hook raised
      (Binance refused the user data subscription).

    A frame that breaks RFC 6455 (a masked or reserved-bit frame, an unknown opcode, a message
    over 64 MiB...) fails the connection: rxbinance sends a close frame with the code RFC 6455
    asks for (1002, 1007 or 1009) and reports a
    :class:`~rxbinance.errors.ConnectionDropped` with that code, chained to the
    :class:`~rxbinance.protocol.wsframes.FrameError`.

    An exception raised by ``on_message`` is logged and the socket carries on: a subscriber's bug
    must not cost every other subscriber its data. Only a ``ConnectionFailure`` raised there ends
    the connection (the user data layer's way to resubscribe after ``eventStreamTerminated``).

    The WebSocket API hooks (``prepare``, ``handshake``, ``classify``, ``on_control``) are
    described in the module docstring; ``request_timeout`` bounds the wait for one reply.
    """

    def __init__(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
        stall_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        classify: Callable[[Any], FrameKind] = classify_frame,
        prepare: Callable[[], str] | None = None,
        handshake: Callable[[Request], None] | None = None,
        on_control: Callable[[dict[str, Any]], None] | None = None,
        request_timeout: float = 10.0,
        end_on_shutdown: bool = True,
    ) -> None:
        self.url = url
        self.key = key
        self._on_message = on_message
        self._on_event = on_event
        self._on_closed = on_closed
        self._stall_timeout = stall_timeout
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._classify = classify
        self._prepare = prepare
        self._handshake = handshake
        #: Where control replies go (settable; see :class:`Controllable`).
        self.on_control = on_control
        self._request_timeout = request_timeout
        # serverShutdown: end at once (True), or announce it and read on until Binance closes
        # (False: the reactive layer opens the replacement first, make-before-break).
        self._end_on_shutdown = end_on_shutdown
        self._announced = False
        self._closing = threading.Event()
        self._failure: ConnectionFailure | None = None  # set by fail()
        self._lock = threading.Lock()  # guards _ws between the reader and close()
        self._ws: websocket.WebSocket | None = None
        # Reader thread only: the connection's frame reader, and frames read past the reply a
        # WebSocket API request waited for (the read loop handles them first).
        self._frames = FrameReader(buffer_size=READ_CHUNK)
        self._backlog: list[_Frame] = []
        self._thread = threading.Thread(target=self._run, name=f"rxbinance:{key}", daemon=True)
        self.messages = 0  # data frames handed to on_message: read by statistics, written here
        #: Told of the data messages of each read (see :class:`Metered`).
        self.meter: Callable[[int, Any], None] | None = None
        # The event type this stream's payloads carry (None: unknown, nothing checked); per
        # stream name for combined sockets, whose key joins several names with '/'.
        self._wrapped = "stream?streams=" in url  # combined: {"stream": name, "data": payload}
        self._expect = None if self._wrapped else expected_event(key)
        self._expect_wrapped: dict[str, str | None] = {}

    def start(self) -> None:
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def close(self) -> None:
        """Close the socket politely (close frame 1000) without waiting: safe from any thread,
        the reader thread included, and idempotent. ``on_closed(None)`` follows on the reader."""
        if self._closing.is_set():
            return
        self._closing.set()
        with self._lock:
            ws = self._ws
        if ws is None:
            return  # still connecting: the reader sees _closing once connect returns
        with contextlib.suppress(Exception):  # already gone: nothing to be polite to
            ws.send_close(websocket.STATUS_NORMAL)
        # Wake the reader blocked in recv(); the close frame is already in the kernel's buffer.
        # (ws.abort() would do nothing here: send_close() already marked it disconnected.)
        sock = ws.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def send(self, text: str) -> None:
        """Send one text frame (a control message) from any thread, under websocket-client's
        send lock. Raises :class:`~rxbinance.errors.ConnectionFailure` when not connected."""
        with self._lock:
            ws = self._ws
        if ws is None or self._closing.is_set():
            raise ConnectionDropped("not connected", code=1006, url=self.url, stream=self.key)
        try:
            ws.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            raise self._lost(exc) from exc

    def fail(self, failure: ConnectionFailure) -> None:
        """End the connection from any thread as if it had failed with ``failure``, which
        ``on_closed`` then reports (so the reactive layer reconnects). Never waits; a no-op
        once :meth:`close` was called."""
        if self._closing.is_set():
            return
        self._failure = failure
        with self._lock:
            ws = self._ws
        if ws is None:
            return  # still connecting: _connect checks _failure once connected
        with contextlib.suppress(Exception):
            ws.send_close(websocket.STATUS_NORMAL)
        sock = ws.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join(timeout)

    # -- reader thread -------------------------------------------------------------------

    def _run(self) -> None:
        failure: RxBinanceError | None = None
        try:
            if self._closing.is_set():
                raise ConnectionDropped("closed before connecting", code=1000, url=self.url)
            if self._prepare is not None:
                self.url = self._prepare()
            ws = self._connect()
            if self._handshake is not None:
                self._handshake(lambda payload: self._request(ws, payload))
            self._read_forever(ws)
        except RxBinanceError as exc:  # ConnectionFailure (retried) or an API refusal (final)
            failure = exc
            if self._announced and isinstance(exc, ConnectionFailure):
                # Binance closed it after announcing so: the shutdown, not a failure.
                failure = ServerShutdown(f"closed after serverShutdown: {exc}", url=self.url)
        except Exception as exc:  # a bug of ours must still end in on_closed, and not be retried
            log.exception("reader of %s crashed", self.key)
            failure = InternalError(f"the reader of {self.key} crashed: {exc!r}", stream=self.key)
            failure.__cause__ = exc
        finally:
            with self._lock:
                opened, self._ws = self._ws, None
            if opened is not None:
                opened.shutdown()  # type: ignore[no-untyped-call]
        if self._failure is not None:
            failure = self._failure  # fail() broke it on purpose: report its reason
        if self._closing.is_set():
            failure = None  # whatever broke, it broke because we closed it
        else:
            reason = str(failure) if failure else "closed"
            code = failure.code if isinstance(failure, ConnectionDropped) else None
            if not isinstance(failure, ConnectionFailure):
                log.warning("%s: %s", self.key, reason)
            self._emit_event(Disconnected(self.key, time.time(), reason=reason, code=code))
        self._on_closed(failure)

    def _connect(self) -> websocket.WebSocket:
        self._emit_event(Connecting(self.key, time.time(), url=self.url))
        options: dict[str, Any] = {
            "timeout": self._connect_timeout,
            # Binance sends valid UTF-8 JSON; json.loads rejects anything else anyway, so
            # websocket-client's pure-Python UTF-8 validation is a cost with no benefit.
            "skip_utf8_validation": True,
            # close() may send the close frame from another thread than the reader's pongs.
            "enable_multithread": True,
        }
        if self._ssl_context is not None:
            options["sslopt"] = {"context": self._ssl_context}
        try:
            ws = websocket.create_connection(self.url, **options)
        except websocket.WebSocketBadStatusException as exc:
            reason = _refusal_reason(exc.resp_body)
            raise HandshakeError(
                f"handshake with {self.url} refused: HTTP {exc.status_code}"
                + (f": {reason}" if reason else ""),
                status=exc.status_code,
                reason=reason,
                url=self.url,
                stream=self.key,
            ) from exc
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectError(
                f"cannot connect to {self.url}: {exc}", url=self.url, stream=self.key
            ) from exc
        ws.settimeout(self._stall_timeout)  # the stall timer: every whole frame re-arms it
        with self._lock:
            self._ws = ws
        if self._closing.is_set():  # close() ran while we were connecting
            raise ConnectionDropped("closed while connecting", code=1000, url=self.url)
        if self._failure is not None:  # fail() ran while we were connecting
            raise self._failure
        self._emit_event(Connected(self.key, time.time(), url=self.url))
        return ws

    def _read_forever(self, ws: websocket.WebSocket) -> None:
        deliver = self._deliver
        classify = self._classify
        wrapped, expect = self._wrapped, self._expect
        # The hot path: a payload of a single stream whose ``e`` is the stream's event type is
        # data (not serverShutdown, not a reply) under the default classifier: delivered with
        # no other check.
        fast = expect if classify is classify_frame and not wrapped else None
        # Only the all-market streams (``!miniTicker@arr``...) carry lists of objects.
        arrays = not wrapped and "@arr" in self.key
        # Looked up per connection, not at import, so a test can run both decoders.
        # Invalid JSON and invalid UTF-8 both raise ValueError: the malformed-frame path.
        loads = jsonlib.loads
        read = self._read
        frames, self._backlog = self._backlog, []
        message: Any = None
        while True:
            before = self.messages
            for opcode, payload in frames:
                if opcode != OP_TEXT:
                    self._other_frame(ws, opcode, payload)
                    continue
                try:
                    message = loads(payload)
                except ValueError as exc:
                    self._malformed(payload, f"invalid JSON: {exc}")
                    continue
                if fast is not None and type(message) is dict and message.get("e") == fast:
                    # _deliver, inlined: a Python call less per message.
                    self.messages += 1
                    try:
                        self._on_message(message)
                    except ConnectionFailure:
                        raise
                    except Exception:
                        log.exception("message handler of %s raised; socket carries on", self.key)
                    continue
                kind = classify(message)
                if kind is FrameKind.DATA:
                    if type(message) is dict:
                        if wrapped:
                            if not self._of_wrapped_stream(message, payload):
                                continue
                        elif expect is not None and message.get("e", expect) != expect:
                            self._wrong_kind(payload, message["e"], expect)
                            continue
                    elif not (
                        type(message) is list
                        and arrays
                        and (not message or type(message[0]) is dict)
                    ):
                        # A number, a string, null, or a list where objects come: valid
                        # JSON, but no payload of this stream.
                        self._malformed(payload, f"not a payload of this stream: {message!r:.40}")
                        continue
                    deliver(message)
                else:
                    self._not_data(kind, message)
            received = self.messages - before
            if received and self.meter is not None:
                self.meter(received, message)  # once per read, not per message
            frames = read(ws)

    def _read(self, ws: websocket.WebSocket) -> list[_Frame]:
        """The next frames: read from the socket until some are complete. Invalidates the
        payloads of the frames returned before."""
        reader = self._frames
        sock = ws.sock
        try:
            # First what is already buffered: normally nothing, but the frames a FrameError
            # followed were handed out alone, and the error comes now, before any read.
            frames = reader.frames()
            if frames:
                return frames
            if sock is None:
                raise self._lost(OSError("socket already closed"))
            # The stall timer runs until a whole frame arrives: a read that brings only part
            # of one shortens the next read's timeout instead of re-arming it, so a peer
            # trickling bytes cannot keep a dead stream alive.
            timeout = sock.gettimeout()
            deadline = None if timeout is None else time.monotonic() + timeout
            shortened = False
            try:
                while not frames:
                    try:
                        n = sock.recv_into(reader.get_buffer())
                    except TimeoutError as exc:  # socket.timeout and ssl's "read timed out"
                        raise self._stalled() from exc
                    except OSError as exc:
                        raise self._lost(exc) from exc
                    if not n:
                        # EOF: the peer, or close()/fail() shutting the socket down to wake us.
                        raise self._lost(EOFError("the server closed the TCP connection"))
                    reader.buffer_updated(n)
                    frames = reader.frames()
                    if not frames and deadline is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise self._stalled()
                        sock.settimeout(remaining)
                        shortened = True
            finally:
                if shortened:
                    with contextlib.suppress(OSError):
                        sock.settimeout(timeout)
        except FrameError as exc:
            # Fail the connection (RFC 6455 7.1.7): say why in a close frame, then drop it.
            with contextlib.suppress(Exception):
                ws.send_close(exc.code, str(exc)[:120].encode())
            raise ConnectionDropped(
                f"protocol error, closed with {exc.code}: {exc}",
                code=exc.code,
                reason=str(exc),
                url=self.url,
                stream=self.key,
            ) from exc
        return frames

    def _other_frame(self, ws: websocket.WebSocket, opcode: int, payload: memoryview) -> None:
        """Any frame but text: answer a ping, end on a close frame, report a binary one."""
        if opcode == OP_PING:
            # Binance wants its payload echoed, soon. ws.send takes websocket-client's send
            # lock, so this pong never interleaves with a close() from another thread.
            try:
                ws.send(bytes(payload), websocket.ABNF.OPCODE_PONG)
            except (OSError, websocket.WebSocketException) as exc:
                raise self._lost(exc) from exc
        elif opcode == OP_CLOSE:
            # Answer with the server's code (RFC 6455 5.5.1; none if it sent none), then end.
            with contextlib.suppress(Exception):  # it may be gone already: nothing to answer
                ws.send(bytes(payload[:2]), websocket.ABNF.OPCODE_CLOSE)
            raise self._server_closed(payload)
        elif opcode == OP_BINARY:
            self._malformed(payload, "unexpected binary frame")
        # A pong (we send no pings): nothing to do; its read re-armed the stall timer.

    def _request(self, ws: websocket.WebSocket, payload: dict[str, Any]) -> dict[str, Any]:
        """Send ``payload`` and read frames until the reply with its ``id`` (see :data:`Request`).

        Frames that arrive meanwhile are handled as in the read loop: data is delivered,
        ``serverShutdown`` and close frames end the connection, other replies go to
        ``on_control``; frames read after the reply are left for the read loop. Not on the hot
        path: used once per connection by the handshake hook.
        """
        request_id = payload.get("id")
        method = payload.get("method", "request")
        try:
            ws.send(json.dumps(payload, separators=(",", ":")))
        except (OSError, websocket.WebSocketException) as exc:
            raise self._lost(exc) from exc
        loads = jsonlib.loads
        deadline = time.monotonic() + self._request_timeout
        frames, self._backlog = self._backlog, []
        try:
            while True:
                for index, (opcode, data) in enumerate(frames):
                    if opcode != OP_TEXT:
                        self._other_frame(ws, opcode, data)
                        continue
                    try:
                        message = loads(data)
                    except ValueError as exc:
                        self._malformed(data, f"invalid JSON: {exc}")
                        continue
                    kind = self._classify(message)
                    if kind is FrameKind.CONTROL_REPLY and message.get("id") == request_id:
                        self._backlog = frames[index + 1 :]
                        return dict(message)
                    if kind is FrameKind.DATA:
                        self._deliver(message)
                    else:
                        self._not_data(kind, message)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionFailure(
                        f"no reply to {method} within {self._request_timeout} s",
                        url=self.url,
                        stream=self.key,
                    )
                ws.settimeout(min(self._stall_timeout, remaining))
                try:
                    frames = self._read(ws)
                except StallError:
                    if time.monotonic() < deadline:
                        raise
                    frames = []  # the reply deadline passed: reported above
        finally:
            ws.settimeout(self._stall_timeout)

    # Valid JSON of another kind than the stream's (``{"e": "junk"}`` on an aggTrade socket)
    # is reported as malformed and skipped: subscribers and typed pipelines must never receive
    # it as data. A bare payload costs one dict lookup (inlined in the read loop).

    def _of_wrapped_stream(self, message: dict[str, Any], data: memoryview) -> bool:
        inner = message.get("data")
        stream = message.get("stream")
        if type(inner) is not dict or "e" not in inner or not isinstance(stream, str):
            return True  # no event type to judge (spot bookTicker, partial depth)
        try:
            expect = self._expect_wrapped[stream]
        except KeyError:
            expect = self._expect_wrapped[stream] = expected_event(stream)
        if expect is None or inner["e"] == expect:
            return True
        self._wrong_kind(data, inner["e"], expect)
        return False

    def _wrong_kind(self, data: memoryview, event: Any, expect: str) -> None:
        self._malformed(data, f"event type {event!r} on a stream of {expect!r} events")

    def _deliver(self, message: Any) -> None:
        """Hand one data message over; a handler's bug is logged, not fatal, except a
        ConnectionFailure, which is how the handler asks for a new connection."""
        self.messages += 1
        try:
            self._on_message(message)
        except ConnectionFailure:
            raise
        except Exception:
            log.exception("message handler of %s raised; socket carries on", self.key)

    def _not_data(self, kind: FrameKind, message: Any) -> None:
        """``serverShutdown`` ends the connection (or is announced, see ``end_on_shutdown``);
        a control reply is reported."""
        if kind is FrameKind.SERVER_SHUTDOWN:
            if self._end_on_shutdown:
                raise ServerShutdown(
                    "server announced serverShutdown", url=self.url, stream=self.key
                )
            if not self._announced:
                self._announced = True
                self._emit_event(ShutdownAnnounced(self.key, time.time()))
            return
        self._control_reply(message)

    @property
    def on_message(self) -> Callable[[Any], None]:
        """Where data messages go; may be replaced from any thread (a rollover redirects
        them), taking effect from the next message."""
        return self._on_message

    @on_message.setter
    def on_message(self, handler: Callable[[Any], None]) -> None:
        self._on_message = handler

    def _stalled(self) -> StallError:
        return StallError(
            f"no data and no ping for {self._stall_timeout} s",
            timeout=self._stall_timeout,
            url=self.url,
            stream=self.key,
        )

    def _lost(self, exc: BaseException) -> ConnectionDropped:
        # EOF without a close frame is what an abrupt drop looks like: 1006 by RFC 6455.
        return ConnectionDropped(
            f"connection lost: {exc or type(exc).__name__}",
            code=1006,
            url=self.url,
            stream=self.key,
        )

    def _server_closed(self, payload: memoryview) -> ConnectionDropped:
        code, reason = close_status(payload)
        return ConnectionDropped(
            f"server closed the connection: {code} {reason}".rstrip(),
            code=code,
            reason=reason,
            url=self.url,
            stream=self.key,
        )

    def _malformed(self, data: memoryview, error: str) -> None:
        excerpt = bytes(data[:80]).decode("utf-8", "replace")
        log.warning("%s: dropped a malformed frame (%s): %r", self.key, error, excerpt)
        self._emit_event(MalformedFrame(self.key, time.time(), excerpt=excerpt, error=error))

    def _control_reply(self, message: dict[str, Any]) -> None:
        if self.on_control is not None:
            self.on_control(message)  # may raise to end the connection
            return
        if "error" in message:
            log.warning("%s: control request %r failed: %r", self.key, message.get("id"), message)
        else:
            log.debug("%s: control reply %r", self.key, message)

    def _emit_event(self, event: ConnectionEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("connection event handler raised")


def _refusal_reason(body: bytes | None) -> str:
    """Binance's ``msg`` from a refused handshake's JSON body (``{"code":0,"msg":"Service
    unavailable from a restricted location..."}``), else "": it says why, which a status
    alone does not."""
    if not body:
        return ""
    try:
        decoded = json.loads(body)
    except ValueError:
        return ""
    msg = decoded.get("msg") if isinstance(decoded, dict) else None
    return msg[:300] if isinstance(msg, str) else ""
