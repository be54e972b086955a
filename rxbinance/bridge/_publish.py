"""publish(): any rxbinance Observable written to Redis streams with XADD, in pipelined batches.

Two threads meet at one bounded buffer:

- the source's thread (a socket reader) calls :meth:`Publisher.on_next`: it numbers the
  message, stamps the receive time and appends it; when the buffer is full it drops the message
  instead, extending that key's open hole;
- the writer thread (``rxbinance-bridge:<key>``) takes up to ``batch`` entries from the front,
  sends them as one pipeline (one round trip), and only then removes them. When Redis is
  unreachable it keeps them, waits (the project's one backoff) and sends them again.

Resending must not repeat an entry that reached Redis before the connection broke, so every
entry carries an explicit id, ``<receive ms>-<n>`` increasing per key: a resent entry that is
already there is refused by Redis ("equal or smaller than the top item") and counted as
written. A hole (messages dropped because the buffer was full) becomes a Gap entry written
where the hole is, and a Gap on :attr:`Publisher.events`, when the first message after it fits.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxbinance._reactive.hub import Broadcast
from rxbinance._reactive.reconnect import ReconnectPolicy
from rxbinance.bridge._codec import encode_gap, encode_message
from rxbinance.bridge._names import stream_name_of
from rxbinance.bridge._redis import (
    BridgeError,
    check_url,
    connect,
    is_connection_error,
    require_redis,
    safe_url,
    unreachable,
)
from rxbinance.errors import InvalidInputError
from rxbinance.events import Gap

__all__ = ["DEFAULT_PREFIX", "PublishStatistics", "Publisher", "publish"]

log = logging.getLogger("rxbinance.bridge")

#: Default Redis key of a Binance stream: ``rxbinance:btcusdt@aggTrade``.
DEFAULT_PREFIX = "rxbinance:"

_REPEATED = "equal or smaller"  # Redis's refusal of an id not above the key's top entry


@dataclass(frozen=True, slots=True)
class PublishStatistics:
    """A snapshot of one publisher."""

    received: int  # messages the source delivered
    written: int  # entries Redis holds (Gap entries included)
    dropped: int  # messages dropped because the buffer was full (each in a Gap)
    buffered: int  # entries waiting for Redis
    reconnects: int  # times Redis was unreachable and the writer waited to send again
    connected: bool


@dataclass(slots=True)
class _Entry:
    key: str
    stream: str
    number: int
    time: float
    message: Any  # a message, or a _Hole for a Gap entry
    id: str = ""  # assigned on the first send, kept for every resend


@dataclass(slots=True)
class _Hole:
    stream: str
    first: int
    last: int
    count: int
    by_id: bool  # first/last are Binance trade ids, not message numbers
    redis_down: bool = True  # at the first drop: Redis unreachable (else only slower)


def _binance_id(message: Any) -> int | None:
    """The trade id of a trade or aggregate trade (raw or typed), else None."""
    if message.__class__ is dict:
        event = message.get("e")
        if event == "trade":
            value = message.get("t")
        elif event == "aggTrade":
            value = message.get("a")
        else:
            return None
        return value if value.__class__ is int else None
    for attribute in ("trade_id", "agg_trade_id"):
        value = getattr(message, attribute, None)
        if value.__class__ is int:
            return int(value)
    return None


class Publisher(abc.DisposableBase):
    """What :func:`publish` returns: dispose it (or use it as a context manager) to stop.

    ``dispose()`` unsubscribes from the source, then waits up to ``flush_timeout`` seconds for
    the buffered entries to reach Redis; what cannot be written by then is dropped and
    reported as a Gap. Idempotent; callable from any thread except the writer's.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        key: str | None,
        maxlen: int | None,
        buffer: int,
        batch: int,
        flush_timeout: float,
        policy: ReconnectPolicy,
    ) -> None:
        self._url = redis_url
        self._key = key
        self._maxlen = maxlen
        self._capacity = buffer
        self._batch = batch
        self._flush_timeout = flush_timeout
        self._policy = policy
        self._cond = threading.Condition()
        self._buffer: collections.deque[_Entry] = collections.deque()
        self._holes: dict[str, _Hole] = {}
        self._last_id: dict[str, tuple[int, int]] = {}  # key -> (ms, seq) of its last entry id
        self._number = 0
        self._received = self._written = self._dropped = self._reconnects = 0
        self._connected = False
        self._closing = False
        self._closed = threading.Event()
        self._stopping = threading.Event()  # dispose() began: cut a backoff wait short
        self._source: abc.DisposableBase = Disposable()
        self._closer: threading.Thread | None = None  # the dispose() a source's end started
        #: Why the writer stopped before dispose(), when Redis refused a write (not when it
        #: was unreachable: that is retried); None otherwise.
        self.error: Exception | None = None
        self._events: Broadcast[Gap] = Broadcast("rxbinance.bridge.publish events")
        self._client = connect(redis_url)
        self._conn: Any = None  # the writer's own connection, taken from the client's pool
        self._trim: tuple[bytes, ...] = () if maxlen is None else (b"MAXLEN", b"~", b"%d" % maxlen)
        # Cached parts of the XADD commands (see _send): per key, and per stream name.
        self._head_args = 2 + len(self._trim)
        self._heads: dict[str, bytes] = {}
        self._stream_fields: dict[str, bytes] = {}
        try:
            self._client.ping()
        except Exception as exc:
            if is_connection_error(exc):
                raise unreachable(redis_url, exc) from exc
            where = safe_url(redis_url)
            raise BridgeError(f"Redis at {where}: {exc}", url=where) from exc
        self._connected = True
        self._writer = threading.Thread(
            target=self._run, name=f"rxbinance-bridge:{key or 'publish'}", daemon=True
        )

    def __repr__(self) -> str:
        return f"<Publisher {safe_url(self._url)} key={self._key or DEFAULT_PREFIX + '*'}>"

    @property
    def events(self) -> Observable[Gap]:
        """A Gap for every run of messages dropped because Redis stayed away longer than the
        buffer lasted (``first``/``last``: trade ids for trade streams, else message numbers;
        see :func:`publish`). Hot, never ends before the publisher closes."""
        return self._events.observable()

    def statistics(self) -> PublishStatistics:
        with self._cond:
            return PublishStatistics(
                self._received,
                self._written,
                self._dropped,
                len(self._buffer),
                self._reconnects,
                self._connected,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every message received so far is in Redis (True), or ``timeout``
        seconds passed, or the writer stopped (False)."""
        with self._cond:
            return (
                self._cond.wait_for(lambda: not self._buffer or self._closed.is_set(), timeout)
                and not self._buffer
            )

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    # -- the source's side ------------------------------------------------------------------

    def start(self, observable: Observable[Any]) -> None:
        self._writer.start()
        self._source = observable.subscribe(self.on_next, self._on_error, self._on_completed)

    def on_next(self, message: Any) -> None:
        now = time.time()
        stream = ""
        if message.__class__ is dict and "stream" in message and "data" in message:
            stream, message = message["stream"], message["data"]  # a combined-stream wrapper
        else:
            stream = stream_name_of(message)
        key = self._key if self._key is not None else DEFAULT_PREFIX + (stream or "unnamed")
        gap: Gap | None = None
        with self._cond:
            if self._closing:
                return
            self._received += 1
            self._number += 1
            number = self._number
            if len(self._buffer) >= self._capacity:
                self._drop(key, stream, number, message)
                return
            hole = self._holes.pop(key, None)
            if hole is not None:
                # The hole closes here: its Gap entry goes where the missing messages were.
                self._buffer.append(_Entry(key, hole.stream, number, now, hole))
                gap = self._gap(hole, now)
            self._buffer.append(_Entry(key, stream, number, now, message))
            if len(self._buffer) <= 2:
                # The writer only waits on an empty buffer: wake it on the way out of that
                # (notify_all: flush() callers wait on the same condition).
                self._cond.notify_all()
        if gap is not None:
            self._events.on_next(gap)

    def _drop(self, key: str, stream: str, number: int, message: Any) -> None:
        self._dropped += 1
        ident = _binance_id(message)
        hole = self._holes.get(key)
        if hole is None:
            by_id = ident is not None
            first = ident if ident is not None else number
            self._holes[key] = _Hole(stream, first, first, 1, by_id, not self._connected)
            return
        hole.count += 1
        if hole.by_id and ident is not None:
            hole.last = ident
        else:
            hole.by_id = False  # mixed messages: fall back to message numbers
            hole.last = number

    @staticmethod
    def _gap(hole: _Hole, now: float) -> Gap:
        return Gap(hole.stream, now, hole.first, hole.last, _reason(hole))

    def _on_error(self, error: Exception) -> None:
        log.warning("publish: the source ended with %r; flushing and stopping", error)
        self._close_in_background()

    def _on_completed(self) -> None:
        self._close_in_background()

    def _close_in_background(self) -> None:
        # The source's thread must not wait for the last flush: a thread of ours does, and a
        # dispose() from elsewhere waits for that thread too (so none of ours outlives it).
        closer = threading.Thread(target=self.dispose, name="rxbinance-bridge:close", daemon=True)
        closer.start()
        self._closer = closer  # (after start: join() refuses a thread not started)

    # -- closing --------------------------------------------------------------------------

    def dispose(self) -> None:
        self._source.dispose()
        gaps: list[Gap] = []
        with self._cond:
            if self._closing:
                pass
            else:
                self._closing = True
                now = time.time()
                # Holes still open: nothing will follow them, write them at the end.
                for key, hole in self._holes.items():
                    self._buffer.append(_Entry(key, hole.stream, self._number, now, hole))
                    gaps.append(self._gap(hole, now))
                self._holes.clear()
                self._cond.notify_all()
                self._stopping.set()
        for gap in gaps:
            self._events.on_next(gap)
        if threading.current_thread() is not self._writer and self._writer.is_alive():
            self._writer.join(self._flush_timeout + 1.0)
        closer = self._closer
        if closer is not None and closer is not threading.current_thread():
            closer.join(self._flush_timeout + 1.0)

    @property
    def is_disposed(self) -> bool:
        return self._closed.is_set()

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        deadline: float | None = None
        try:
            while True:
                with self._cond:
                    while not self._buffer and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        if deadline is None:
                            deadline = time.monotonic() + self._flush_timeout
                        if not self._buffer or time.monotonic() >= deadline:
                            break
                    batch = [self._buffer[i] for i in range(min(self._batch, len(self._buffer)))]
                try:
                    self._send(batch)
                except Exception as exc:
                    if not is_connection_error(exc):
                        # Redis answered but refused (a key of another type, out of memory):
                        # resending cannot help. Stop, and report what is left as Gaps.
                        log.error("publish to %s stopped: %s", safe_url(self._url), exc)
                        self.error = exc
                        self._source.dispose()
                        with self._cond:
                            self._closing = True
                        break
                    attempt += 1
                    with self._cond:
                        self._connected = False
                        self._reconnects += 1
                    # Not on the condition: new messages notify it, and must not cut the
                    # backoff short; dispose() does (it has a flush deadline to keep).
                    self._stopping.wait(self._policy.delay(attempt))
                    continue
                attempt = 0
                with self._cond:
                    self._connected = True
                    for _ in batch:
                        self._buffer.popleft()
                    self._written += len(batch)
                    self._cond.notify_all()  # flush() waiters
            self._abandon()
        finally:
            self._drop_connection()
            self._client.close()
            self._events.on_completed()
            with self._cond:
                self._closed.set()
                self._cond.notify_all()

    def _abandon(self) -> None:
        """Closing with Redis still away: what is left becomes one Gap per key."""
        with self._cond:
            left = list(self._buffer)
            self._buffer.clear()
        holes: dict[str, _Hole] = {}
        for entry in left:
            if isinstance(entry.message, _Hole):
                continue
            ident = _binance_id(entry.message)
            hole = holes.get(entry.key)
            if hole is None:
                first = ident if ident is not None else entry.number
                holes[entry.key] = _Hole(entry.stream, first, first, 1, ident is not None)
            else:
                hole.count += 1
                if hole.by_id and ident is not None:
                    hole.last = ident
                else:
                    hole.by_id = False
                    hole.last = entry.number
        with self._cond:
            self._dropped += len(left)
        now = time.time()
        for hole in holes.values():
            self._events.on_next(Gap(hole.stream, now, hole.first, hole.last, _reason(hole, True)))

    def _next_id(self, entry: _Entry) -> str:
        ms = int(entry.time * 1000)
        last = self._last_id.get(entry.key)
        ident = (ms, 0) if last is None or ms > last[0] else (last[0], last[1] + 1)
        self._last_id[entry.key] = ident
        return f"{ident[0]}-{ident[1]}"

    def _send(self, batch: list[_Entry]) -> None:
        """One round trip: every XADD of ``batch`` packed by hand into one write, then one
        reply read per entry. redis-py's Pipeline does the same with a generic packer and
        per-command bookkeeping that cost more than Redis itself at 50,000 entries a second."""
        if self._conn is None:
            self._conn = self._client.connection_pool.get_connection()
        conn = self._conn
        parts: list[bytes] = []
        append = parts.append
        heads, streams = self._heads, self._stream_fields
        for entry in batch:
            if not entry.id:
                entry.id = self._next_id(entry)
            # The RESP command, from parts that repeat cached: "XADD <key> [MAXLEN ~ n]" per
            # key and "s <stream>" per stream; the rest formatted once per entry.
            head = heads.get(entry.key)
            if head is None:
                head = heads[entry.key] = b"".join(
                    _bulk(arg) for arg in (b"XADD", entry.key.encode(), *self._trim)
                )
            stream = streams.get(entry.stream)
            if stream is None:
                stream = streams[entry.stream] = _bulk(b"s") + _bulk(entry.stream.encode())
            if isinstance(entry.message, _Hole):
                hole = entry.message
                fields = _bulk(b"g") + _bulk(encode_gap(hole.first, hole.last, _reason(hole)))
                count = 2
            else:
                data, model = encode_message(entry.message)
                fields = b"$1\r\nd\r\n$%d\r\n%b\r\n" % (len(data), data)
                count = 2
                if model is not None:
                    fields += _bulk(b"m") + _bulk(model)
                    count = 4
            ident = entry.id.encode()
            moment = repr(entry.time).encode()
            number = b"%d" % entry.number
            append(
                b"*%d\r\n%b$%d\r\n%b\r\n%b%b$1\r\nt\r\n$%d\r\n%b\r\n$1\r\nn\r\n$%d\r\n%b\r\n"
                % (
                    self._head_args + 1 + count + 6,
                    head,
                    len(ident),
                    ident,
                    fields,
                    stream,
                    len(moment),
                    moment,
                    len(number),
                    number,
                )
            )
        try:
            conn.send_packed_command([b"".join(parts)], check_health=False)
            refusals: list[tuple[_Entry, Exception]] = []
            for entry in batch:
                try:
                    conn.read_response()
                except Exception as exc:
                    if is_connection_error(exc):
                        raise
                    refusals.append((entry, exc))
        except BaseException:
            self._drop_connection()
            raise
        for entry, refusal in refusals:
            if _REPEATED in str(refusal):
                continue  # written before the connection broke: this is the resend
            if "WRONGTYPE" in str(refusal):
                raise BridgeError(
                    f"Redis key {entry.key!r} holds another type than a stream",
                    url=safe_url(self._url),
                )
            raise refusal

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self._client.connection_pool.release(conn)


def _bulk(arg: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(arg), arg)


def _reason(hole: _Hole, closing: bool = False) -> str:
    what = "trade ids" if hole.by_id else "publisher message numbers"
    if closing:
        why = "publisher closed with Redis unreachable"
    elif hole.redis_down:
        why = "Redis unreachable"
    else:
        why = "Redis slower than the stream"
    return f"{why}: {hole.count} messages dropped, publish buffer full ({what})"


def publish(
    observable: Observable[Any],
    redis_url: str,
    *,
    key: str | None = None,
    maxlen: int | None = None,
    buffer: int = 100_000,
    batch: int = 1_000,
    flush_timeout: float = 5.0,
    retry_delay: float = 0.05,
    max_retry_delay: float = 2.0,
) -> Publisher:
    """Write every message of ``observable`` to Redis with XADD; return a :class:`Publisher`
    (a Disposable) that stops it.

    .. code-block:: python

        from rxbinance import BinanceStreams
        from rxbinance.bridge import publish

        with BinanceStreams() as streams:
            publisher = publish(streams.agg_trades("BTCUSDT"), "redis://localhost:6379")

    **Keys.** By default each message goes to ``rxbinance:<Binance stream name>``
    (``rxbinance:btcusdt@aggTrade``): combined-stream messages (``streams.multiplex``) carry
    the name; bare payloads and typed models are named from their event type and symbol
    (``trade``, ``aggTrade``, ``kline_<interval>``, ``depth``, ``bookTicker``, ``ticker``,
    ``miniTicker``, ``avgPrice``, ``markPrice``); what cannot be named (a spot partial depth,
    an ``@arr`` list) goes to ``rxbinance:unnamed``, so pass ``key=`` for those. A bare diff
    depth payload does not say its speed: ``btcusdt@depth`` and ``btcusdt@depth@100ms`` both
    go to ``rxbinance:btcusdt@depth`` unless they come through ``multiplex`` (which names
    them) or ``key=`` keeps them apart. ``key`` writes everything to that one key. Use one
    publisher per key: entry ids are the publisher's own (see the module docstring).

    **Entries** hold the message (a raw payload as JSON, or a typed model by field, tagged with
    its class so :func:`consume` rebuilds it), the Binance stream name, the local receive time
    and the publisher's message number. ``maxlen`` trims each key approximately
    (``XADD ... MAXLEN ~ maxlen``); None keeps everything.

    **Batches.** The writer thread (``rxbinance-bridge:<key>``) sends up to ``batch`` entries
    per round trip: as many as arrived while the previous batch was in flight, so a quiet
    stream is written at once and a busy one in large pipelines.

    **Redis away.** The writer resends after ``retry_delay`` seconds, doubling up to
    ``max_retry_delay``, for as long as it takes, holding up to ``buffer`` messages. Nothing is
    repeated by a resend. When the buffer is full, new messages are dropped; each run of them
    becomes a Gap (on :attr:`Publisher.events` and as an entry where the hole is, which
    consumers receive in-band) whose ``first``/``last`` are trade ids for trade and aggregate
    trade streams, else the publisher's message numbers.

    Raises ``BridgeError`` (``unreachable`` True) when Redis does not answer now, and
    ``ValueError`` for a bad URL or setting. The publisher also stops, after flushing, when
    the source completes or errors.
    """
    require_redis()
    check_url(redis_url)
    if key is not None and (not isinstance(key, str) or not key):
        raise InvalidInputError(f"key must be a non-empty string or None, got {key!r}")
    for name, value in (("maxlen", maxlen), ("buffer", buffer), ("batch", batch)):
        if value is None and name == "maxlen":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be an int >= 1, got {value!r}")
    if not flush_timeout >= 0:
        raise InvalidInputError(f"flush_timeout must be seconds >= 0, got {flush_timeout!r}")
    policy = ReconnectPolicy(
        max_retries=0, retry_delay=retry_delay, max_retry_delay=max_retry_delay
    )
    publisher = Publisher(
        redis_url,
        key=key,
        maxlen=maxlen,
        buffer=buffer,
        batch=batch,
        flush_timeout=flush_timeout,
        policy=policy,
    )
    publisher.start(observable)
    return publisher
