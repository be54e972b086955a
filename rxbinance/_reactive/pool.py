"""Pooled connections: many streams on a few sockets, with live SUBSCRIBE and UNSUBSCRIBE.

``BinanceStreams(pool=True)`` shares each stream key through the hub as usual (hot, shared,
ref-counted), but the hub entry's source is a :class:`PooledStream`: the first subscriber of a
stream puts its name on a pooled connection, the last dispose takes it off (RxJS
``webSocket.multiplex`` semantics). A :class:`Pool` (one per market, one per USD-M route: streams
of ``/public`` and ``/market`` are never mixed) keeps the connections; a new one opens only when
the others hold ``capacity`` streams, and one left without streams closes after
:data:`IDLE_GRACE` seconds.

A :class:`PooledConnection` is the sink of an ordinary
:class:`~rxbinance._reactive.connection.SharedConnection` on a combined-stream URL, so reconnects,
backoff, giving up and the per-IP connection-attempt budget are the same as for one socket per
stream. What it adds:

- **Routing**: each ``{"stream": name, "data": payload}`` goes to the members of ``name``
  (the bare payload, as on a socket of its own; a repairing sink keeps sequenced streams whole).
- **Reconciliation**: the connection keeps what it is asked to carry (``wanted``) and what
  Binance has confirmed (``confirmed``), and sends the difference as batched SUBSCRIBE /
  UNSUBSCRIBE requests (at most :data:`BATCH` names each), one at a time per
  :data:`CONTROL_SPACING` seconds: at most 4 control messages a second, which leaves room under
  Binance's 5 incoming messages per second for our pongs. Subscribe/dispose churn therefore
  costs only the net change, whatever the order.
- **Replies by id**: a success updates ``confirmed``; an error reply to a batch splits it in
  halves and asks again, until the refused names stand alone: those streams' subscribers get
  ``on_error(SubscriptionRefused)`` naming the stream and Binance's code and message; the
  others carry on.
- **After a reconnect**: the URL names up to :data:`URL_STREAMS` of the streams, the rest are
  subscribed in batches; once everything is confirmed, ``LIST_SUBSCRIPTIONS`` checks the
  server's view, and a mismatch is corrected and reported
  (:class:`~rxbinance.events.SubscriptionsCorrected`). What each sequenced stream missed is
  refilled by its repairing sink, as on a socket of its own.
- **Silence**: with ``silence_timeout``, a stream that delivers nothing for that long while its
  connection is up gets its own :class:`~rxbinance.events.Silent` event, as on a socket of its
  own (one timer for the whole pool).

Threads: routing runs on the connection's reader thread (``rxbinance:pool-<n>``), control
messages are sent from the streams' timer thread, replies are handled on the reader thread.
One lock per pool guards the bookkeeping; no user code runs under it, and sinks are called
without it.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from reactivex import abc

from rxbinance._reactive.connection import SharedConnection
from rxbinance._reactive.hub import Sink
from rxbinance._reactive.meter import Meter, MeterReading
from rxbinance._reactive.repair import RepairingSink
from rxbinance.errors import RxBinanceError, SubscriptionRefused
from rxbinance.events import Connected, ConnectionEvent, Silent, SubscriptionsCorrected
from rxbinance.transport import Controllable, SocketFactory, SocketLike

__all__ = [
    "BATCH",
    "CONTROL_SPACING",
    "IDLE_GRACE",
    "URL_STREAMS",
    "Pool",
    "PooledConnection",
    "PooledStream",
]

log = logging.getLogger("rxbinance.pool")

#: Seconds between two control messages on one connection: at most 4 in any second, so our
#: pongs (one per server ping) keep the total under Binance's 5 incoming messages a second.
CONTROL_SPACING = 0.26
#: Stream names per SUBSCRIBE / UNSUBSCRIBE request.
BATCH = 200
#: Stream names in a (re)connection's URL (the rest are subscribed): keeps the URL short.
URL_STREAMS = 100
#: Seconds a connection left without streams stays open, in case a stream comes back.
IDLE_GRACE = 2.0

_request_ids = itertools.count(1)

#: Makes the SharedConnection of a pooled connection: (key, socket factory) -> connection.
ConnectionMaker = Callable[[str, SocketFactory], SharedConnection]


class PooledStream:
    """The hub source of one stream key on a pool: joins the pool at the first subscriber,
    leaves it at the last dispose. ``wrap`` puts a repairing sink in front of the hub entry."""

    def __init__(
        self, pool: Pool, name: str, *, wrap: Callable[[Sink[Any]], Sink[Any]] | None = None
    ) -> None:
        self.pool = pool
        self.name = name
        self._wrap = wrap
        self.sink: Sink[Any] | None = None
        self.meter = Meter()
        self.messages = 0  # payloads routed to this stream (reader threads)
        self.connection: PooledConnection | None = None  # set by the pool
        self.stopped = False  # set by the pool (its lock held) when the stream leaves
        # Silence (the pool's timer, its lock held): the count at the last check, since when
        # it has not changed while the connection was up, and whether this spell was reported.
        self.heard = -1
        self.quiet_since = 0.0
        self.reported = False

    def start(self, sink: Sink[Any]) -> None:
        self.sink = self._wrap(sink) if self._wrap is not None else sink
        self.pool.join(self)

    def stop(self) -> None:
        self.pool.leave(self)
        if isinstance(self.sink, RepairingSink):
            self.sink.cancel()

    # -- statistics --------------------------------------------------------------------------

    @property
    def connects(self) -> int:
        connection = self.connection
        return 0 if connection is None else connection.shared.connects

    rollovers = 0  # pooled connections reconnect instead (see the module docstring)

    def reading(self) -> MeterReading:
        return self.meter.reading()


class PooledConnection:
    """One pooled socket's streams, subscriptions and routing (see the module docstring).

    It is the :class:`~rxbinance._reactive.hub.Sink` of its SharedConnection: ``on_next``
    receives combined-stream messages, ``end`` the give-up or a fatal error."""

    def __init__(self, pool: Pool, key: str, make: ConnectionMaker) -> None:
        self.pool = pool
        self.name = key  # "pool-1": the connection's stream key in events and thread names
        self.key: Hashable = key
        self._lock = pool.lock
        #: name -> its members (copy-on-write tuples: the reader reads them without the lock).
        self.members: dict[str, tuple[PooledStream, ...]] = {}
        self.confirmed: set[str] = set()  # what Binance carries, as far as we know
        self._pending: dict[int, tuple[str, tuple[str, ...]]] = {}  # id -> (method, names)
        self._probes: list[tuple[str, ...]] = []  # batches to ask alone (splitting a refusal)
        self._socket: SocketLike | None = None  # the socket being connected or connected
        self._ready = False  # the current socket is connected: control messages may go
        self._verified = False  # LIST_SUBSCRIPTIONS asked since the current socket connected
        self._next_send = 0.0  # monotonic time the next control message may go
        self._flush_timer: abc.DisposableBase | None = None
        self._idle_timer: abc.DisposableBase | None = None
        self.closed = False
        self.shared = make(key, self._open_socket)
        self.corrections = 0  # LIST_SUBSCRIPTIONS mismatches corrected

    # -- the pool's side (lock held) ---------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def ready(self) -> bool:
        """Connected, its streams flowing (lock held)."""
        return self._ready and not self.closed

    def add(self, member: PooledStream) -> None:
        members = self.members.get(member.name, ())
        self.members[member.name] = (*members, member)
        member.connection = self
        if self._idle_timer is not None:
            self._idle_timer.dispose()
            self._idle_timer = None
        if not members:
            self._schedule_flush()

    def remove(self, member: PooledStream) -> None:
        members = tuple(m for m in self.members.get(member.name, ()) if m is not member)
        if members:
            self.members[member.name] = members
            return
        self.members.pop(member.name, None)
        self._schedule_flush()
        if not self.members and self._idle_timer is None:
            self._idle_timer = self.pool.timers.schedule_relative(IDLE_GRACE, self._idle)

    def _idle(self, _scheduler: Any = None, _state: Any = None) -> None:
        with self._lock:
            self._idle_timer = None
            if self.members or self.closed:
                return
            self.closed = True
            self.pool.forget(self)
        self.stop()

    def stop(self) -> None:
        with self._lock:
            self.closed = True
            timers = [self._flush_timer, self._idle_timer]
            self._flush_timer = self._idle_timer = None
        for timer in timers:
            if timer is not None:
                timer.dispose()
        self.shared.stop()

    # -- sockets -----------------------------------------------------------------------------

    def _open_socket(
        self,
        url: str,
        *,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
    ) -> SocketLike:
        """The SharedConnection's socket factory: the URL names the streams wanted now."""
        with self._lock:
            names = list(self.members)[:URL_STREAMS]
            self._ready = False
            self._verified = False
            self._pending.clear()
            self._probes.clear()
            self.confirmed = set()

        def event(event: ConnectionEvent) -> None:
            if isinstance(event, Connected):
                self._connected(sock, names)
            on_event(event)

        sock = self.pool.open_socket(
            self.pool.url_for(names),
            key=key,
            on_message=on_message,
            on_event=event,
            on_closed=on_closed,
        )
        if not isinstance(sock, Controllable):
            raise TypeError(f"pooled streams need sockets that send and take replies: {sock!r}")
        sock.on_control = lambda reply: self._reply(sock, reply)
        with self._lock:
            self._socket = sock
        return sock

    def _connected(self, sock: SocketLike, names: list[str]) -> None:
        with self._lock:
            if sock is not self._socket:
                return
            self.confirmed = set(names)
            self._ready = True
            self._next_send = 0.0
            self._schedule_flush()

    # -- the Sink the SharedConnection writes to ---------------------------------------------

    def on_next(self, message: Any) -> None:
        """A combined-stream message (reader thread): its payload to the stream's members."""
        try:
            members = self.members[message["stream"]]
            payload = message["data"]
        except (KeyError, TypeError):
            # Unsubscribed a moment ago, or not a combined-stream message: nobody wants it.
            return
        for member in members:
            member.messages += 1
            member.meter.record(1, payload)
            sink = member.sink
            if sink is not None:
                sink.on_next(payload)

    def post(self, value: Any, *, current: bool = False) -> None:
        self.on_next(value)

    def forget_current(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def end(self, error: Exception | None = None, *, last: Any = None) -> None:
        """The connection gave up (its retries spent) or was refused for good: every stream on
        it ends the same way, as on sockets of their own."""
        with self._lock:
            self.closed = True
            self.pool.forget(self)
            members = [m for group in self.members.values() for m in group]
            self.members = {}
        for member in members:
            if member.sink is not None:
                member.sink.end(error, last=last)

    @property
    def subscribers(self) -> int:
        return sum(m.sink.subscribers for group in self.members.values() for m in group if m.sink)

    @property
    def last(self) -> Any:
        return None

    # -- control messages --------------------------------------------------------------------

    def _schedule_flush(self, delay: float = 0.0) -> None:
        """Make sure a flush is coming (lock held)."""
        if self._flush_timer is None and not self.closed:
            self._flush_timer = self.pool.timers.schedule_relative(delay, self._flush)

    def _flush(self, _scheduler: Any = None, _state: Any = None) -> None:
        """Timer: send the next control message the difference calls for, paced."""
        with self._lock:
            self._flush_timer = None
            if self.closed or not self._ready or self._socket is None:
                return
            now = time.monotonic()
            if now < self._next_send:
                self._schedule_flush(self._next_send - now)
                return
            request = self._next_request()
            if request is None:
                return
            method, names = request
            request_id = next(_request_ids)
            self._pending[request_id] = (method, names)
            self._next_send = now + CONTROL_SPACING
            sock = self._socket
            self._schedule_flush(CONTROL_SPACING)  # there may be more to do
        message: dict[str, Any] = {"method": method, "id": request_id}
        if method != "LIST_SUBSCRIPTIONS":
            message["params"] = list(names)
        assert isinstance(sock, Controllable)
        try:
            sock.send(json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # the socket broke meanwhile: the reconnect starts over
            log.debug("%s: %s not sent: %r", self.name, method, exc)

    def _next_request(self) -> tuple[str, tuple[str, ...]] | None:
        """The next control message (lock held): probes of a refused batch first, then
        unsubscribes (they free room), then subscribes, then the check after a (re)connect."""
        if self._probes:
            return "SUBSCRIBE", self._probes.pop(0)
        asked: set[str] = set()  # in a request awaiting its reply, or in a probe to come
        for _method, names in self._pending.values():
            asked.update(names)
        for names in self._probes:
            asked.update(names)
        extra = [n for n in self.confirmed if n not in self.members and n not in asked]
        if extra:
            return "UNSUBSCRIBE", tuple(sorted(extra)[:BATCH])
        missing = [n for n in self.members if n not in self.confirmed and n not in asked]
        if missing:
            return "SUBSCRIBE", tuple(missing[:BATCH])
        if not self._verified and not self._pending:
            self._verified = True
            return "LIST_SUBSCRIPTIONS", ()
        return None

    def _reply(self, sock: SocketLike, reply: dict[str, Any]) -> None:
        """A control reply (reader thread), matched to its request by id."""
        refused: list[PooledStream] = []
        error_code: int | None = None
        error_msg = ""
        correction: SubscriptionsCorrected | None = None
        with self._lock:
            if sock is not self._socket:
                return
            request = self._pending.pop(reply.get("id"), None)  # type: ignore[arg-type]
            if request is None:
                log.warning("%s: unexpected control reply %r", self.name, reply)
                return
            method, names = request
            error = reply.get("error")
            if error is not None:
                error_code, error_msg = _error_of(error)
                if method == "SUBSCRIBE" and len(names) > 1:
                    half = len(names) // 2  # find the refused names by halves
                    self._probes += [names[:half], names[half:]]
                elif method == "SUBSCRIBE" and names:
                    name = names[0]
                    refused = list(self.members.pop(name, ()))
                    log.warning("%s: %s refused: %s %s", self.name, name, error_code, error_msg)
                else:
                    log.warning("%s: %s failed: %r", self.name, method, error)
                    if method == "UNSUBSCRIBE":
                        # Not asked again and again: LIST_SUBSCRIPTIONS after the next
                        # reconnect finds it if the server still carries it.
                        self.confirmed.difference_update(names)
            elif method == "SUBSCRIBE":
                self.confirmed.update(names)
            elif method == "UNSUBSCRIBE":
                self.confirmed.difference_update(names)
            else:
                correction = self._check(reply.get("result"))
            self._schedule_flush()
        for member in refused:
            if member.sink is not None:
                member.sink.end(SubscriptionRefused(member.name, error_code, error_msg))
        if correction is not None:
            self.pool.emit_event(correction)

    def _check(self, listed: Any) -> SubscriptionsCorrected | None:
        """LIST_SUBSCRIPTIONS answered: take the server's view (lock held) and say if it
        differed; the next flushes subscribe what is missing and unsubscribe the rest."""
        if not isinstance(listed, list):
            log.warning("%s: LIST_SUBSCRIPTIONS answered %r", self.name, listed)
            return None
        server = {name for name in listed if isinstance(name, str)}
        if server == self.confirmed:
            return None
        missing = tuple(sorted(n for n in self.members if n not in server))
        extra = tuple(sorted(n for n in server if n not in self.members))
        self.confirmed = server
        self._verified = False  # check again once corrected
        self.corrections += 1
        log.warning(
            "%s: subscriptions corrected: missing %s, extra %s",
            self.name,
            _few(missing),
            _few(extra),
        )
        return SubscriptionsCorrected(self.name, time.time(), missing=missing, extra=extra)


class Pool:
    """The pooled connections of one stream route (a market, or a USD-M route).

    ``url_for(names)`` gives a combined-stream URL naming ``names``; ``capacity`` is the most
    streams one connection carries; ``make`` builds each connection's SharedConnection.
    """

    def __init__(
        self,
        *,
        name: str,
        url_for: Callable[[list[str]], str],
        capacity: int,
        open_socket: SocketFactory,
        make: ConnectionMaker,
        timers: abc.SchedulerBase,
        emit_event: Callable[[ConnectionEvent], None],
        silence_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.url_for = url_for
        self.capacity = capacity
        self.open_socket = open_socket
        self.timers = timers
        self.emit_event = emit_event
        self._make = make
        self.lock = threading.RLock()
        self.connections: list[PooledConnection] = []
        self._numbers = itertools.count(1)
        # Per stream, as on sockets of their own: a stream whose connection is up but which
        # delivers nothing for silence_timeout gets a Silent event, once per quiet spell,
        # checked every quarter of the timeout by one timer for the whole pool.
        self._silence = silence_timeout
        self._silence_timer: abc.DisposableBase | None = None
        self._closed = False

    def join(self, member: PooledStream) -> None:
        """Put ``member``'s stream on a connection: the one carrying it already, else the
        first with room, else a new one."""
        start: PooledConnection | None = None
        with self.lock:
            if member.stopped:
                return  # its last subscriber left before it started (the hub allows that)
            connection = next(
                (c for c in self.connections if member.name in c.members), None
            ) or next((c for c in self.connections if c.size < self.capacity), None)
            if connection is None:
                key = f"{self.name}-{next(self._numbers)}"
                connection = start = PooledConnection(self, key, self._make)
                self.connections.append(connection)
            connection.add(member)
            if self._silence is not None and self._silence_timer is None and not self._closed:
                self._silence_timer = self.timers.schedule_relative(self._silence / 4, self._listen)
        if start is not None:
            start.shared.start(start)  # outside the lock: it opens a socket

    def _listen(self, _scheduler: Any = None, _state: Any = None) -> None:
        """Timer: report the streams that have been silent for ``silence_timeout`` while
        their connection was up."""
        assert self._silence is not None
        now = time.monotonic()
        silent: list[Silent] = []
        with self.lock:
            if self._closed:
                return
            for connection in self.connections:
                up = connection.ready
                for group in connection.members.values():
                    for member in group:
                        if member.messages != member.heard or not up:
                            member.heard, member.quiet_since = member.messages, now
                            member.reported = False
                        elif now - member.quiet_since >= self._silence and not member.reported:
                            member.reported = True
                            silent.append(
                                Silent(member.name, time.time(), seconds=now - member.quiet_since)
                            )
            # Rescheduled while the pool has connections; the next join() starts it again.
            self._silence_timer = (
                self.timers.schedule_relative(self._silence / 4, self._listen)
                if self.connections
                else None
            )
        for event in silent:
            self.emit_event(event)

    def leave(self, member: PooledStream) -> None:
        with self.lock:
            member.stopped = True
            connection = member.connection
            if connection is not None and not connection.closed:
                connection.remove(member)

    def forget(self, connection: PooledConnection) -> None:
        """``connection`` closed (lock held): new streams go elsewhere."""
        if connection in self.connections:
            self.connections.remove(connection)

    def close(self) -> None:
        with self.lock:
            self._closed = True
            timer, self._silence_timer = self._silence_timer, None
            connections, self.connections = self.connections, []
        if timer is not None:
            timer.dispose()
        for connection in connections:
            connection.stop()


def _few(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:5])
    return f"{len(names)} ({shown}{', ...' if len(names) > 5 else ''})"


def _error_of(error: Any) -> tuple[int | None, str]:
    if isinstance(error, dict):
        code = error.get("code")
        return (code if isinstance(code, int) else None), str(error.get("msg", ""))
    return None, str(error)
