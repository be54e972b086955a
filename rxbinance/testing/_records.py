"""Immutable observation records of FakeBinance: what the server saw and did.

FakeBinance keeps mutable bookkeeping internally and hands tests frozen snapshots of it
(``fake.attempts``, ``fake.connections``, ``fake.rest_requests``), so a test can hold on to a
record without it changing under its feet, and compare records with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl

__all__ = [
    "CloseCause",
    "ConnectionAttempt",
    "ConnectionKind",
    "ConnectionRecord",
    "ControlLogEntry",
    "RestRequest",
]

#: Which endpoint a WebSocket connection talks to: the market streams (``/ws``, ``/stream``)
#: or the WebSocket API (``/ws-api/v3``).
ConnectionKind = Literal["stream", "ws-api"]

#: Why a connection ended, as far as the server knows:
#:
#: - ``"client"``: the client sent a close frame first, or its TCP connection went away;
#: - ``"drop"``: :meth:`FakeBinance.drop_connections`;
#: - ``"server_shutdown"``: :meth:`FakeBinance.server_shutdown`;
#: - ``"stop"``: :meth:`FakeBinance.stop`;
#: - ``"rate_limit"``: more incoming frames per second than allowed (close 1008);
#: - ``"pong_timeout"``: no pong matching the server's ping within ``pong_timeout``;
#: - ``"max_age"``: the connection reached ``max_connection_age``;
#: - ``"slow_consumer"``: the client did not read and the send buffer outgrew its bound.
CloseCause = Literal[
    "client",
    "drop",
    "server_shutdown",
    "stop",
    "rate_limit",
    "pong_timeout",
    "max_age",
    "slow_consumer",
]


@dataclass(frozen=True, slots=True)
class ConnectionAttempt:
    """One WebSocket opening handshake the server answered.

    Attributes:
        path: The request target exactly as the client sent it (path and query string).
        time: Wall-clock time (``time.time()``) when the server answered.
        accepted: True when the handshake succeeded (HTTP 101).
        status: The HTTP status of the answer: 101, or 400 (invalid stream name, bad
            ``timeUnit``, too many streams), 404 (unknown path), 429 (over the per-IP
            ``max_connection_attempts``), 503 (refused by
            :meth:`FakeBinance.refuse_connections`).
        body: The body of a rejection (Binance-style JSON ``{"code":..,"msg":..}``), else "".
        connection_id: The id of the :class:`ConnectionRecord` an accepted attempt opened.
    """

    path: str
    time: float
    accepted: bool
    status: int
    body: str = ""
    connection_id: int | None = None


class ControlLogEntry(NamedTuple):
    """One control message a market-stream connection received, as the server read it.

    A named tuple rather than a dataclass so that it also unpacks as the plain
    ``(time, method, params, id)`` tuple tests write:
    ``for sent_at, method, params, request_id in record.control_log: ...``.

    Attributes:
        time: Wall-clock time (``time.time()``, like ``opened_at``) the server read it.
        method: ``"SUBSCRIBE"``, ``"UNSUBSCRIBE"``, ``"LIST_SUBSCRIPTIONS"``,
            ``"SET_PROPERTY"`` or ``"GET_PROPERTY"``.
        params: The ``params`` as sent (a list of stream names for (UN)SUBSCRIBE), None when
            absent. Logged whether the request succeeded or got an error reply.
        id: The request's ``id`` as sent (None when absent).
    """

    time: float
    method: str
    params: Any
    id: Any


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A snapshot of one WebSocket connection (open or closed).

    Attributes:
        id: 1, 2, 3... in the order connections opened.
        kind: ``"stream"`` (market streams) or ``"ws-api"``.
        path: The request target as sent (path and query string).
        streams: The streams the connection is subscribed to right now (URL streams first,
            then SUBSCRIBE order; unsubscribed ones removed). Always empty for ``"ws-api"``.
        combined: The ``combined`` property: True on ``/stream``, False on ``/ws``;
            SET_PROPERTY can flip it.
        microseconds: True when the URL asked for ``timeUnit=MICROSECOND``.
        opened_at: Wall-clock time the handshake completed.
        closed_at: Wall-clock time the TCP connection ended, None while open.
        close_code: The close code of the closing handshake: the code the server sent when it
            started the close, else the code the client sent; 1006 when the connection ended
            without any close frame (e.g. ``drop_connections()`` or a client that vanished).
            None while open.
        close_reason: The reason text that went with ``close_code`` ("" for 1006).
        close_cause: Why it ended (:data:`CloseCause`), None while open.
        frames_sent: Text and binary frames the server wrote to this connection: market
            data, published payloads, control replies, malformed frames, events.
        pings_sent: Ping frames the server sent.
        pongs_received: Pong frames received, solicited or not.
        control_messages: Every text or binary message the client sent, in order, as parsed
            JSON; a message that is not valid JSON is kept as the raw ``str`` (or ``bytes``).
        control_log: Market streams only: each message naming one of the five control
            methods, in arrival order, with the time it was read (:class:`ControlLogEntry`),
            so a test can check pacing (no more than N in any second) and batching (streams
            per SUBSCRIBE). Messages that are not JSON objects or name no known method are
            only in ``control_messages``. Always empty for ``"ws-api"``.
    """

    id: int
    kind: ConnectionKind
    path: str
    streams: tuple[str, ...]
    combined: bool
    microseconds: bool
    opened_at: float
    closed_at: float | None
    close_code: int | None
    close_reason: str | None
    close_cause: CloseCause | None
    frames_sent: int
    pings_sent: int
    pongs_received: int
    control_messages: tuple[Any, ...]
    control_log: tuple[ControlLogEntry, ...] = ()

    @property
    def is_open(self) -> bool:
        """True while the connection had not closed when the snapshot was taken."""
        return self.closed_at is None


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One HTTP request the REST server answered.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        path: The path without the query string, e.g. ``"/api/v3/depth"``.
        query: The raw query string ("" when absent).
        status: The HTTP status answered.
        weight: The request weight charged to the current minute (0 when rejected before
            being charged, e.g. by ``rest_fault`` or the weight limit itself).
        time: Wall-clock time the request was answered.
    """

    method: str
    path: str
    query: str
    status: int
    weight: int
    time: float

    @property
    def params(self) -> dict[str, str]:
        """The query string decoded into a dict (last value wins on duplicates)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))
