"""consume(): a Redis stream key as a hot, shared, ref-counted Observable on the project's Hub.

One :class:`RedisSource` per (URL, key, start, group, consumer) is the Hub entry's source: the
first subscriber starts it (connecting, resolving ``start`` and creating the group, on its own
thread, so a refused connection reaches it as ``on_error``), later subscribers share it, the
last dispose stops it. Its reader thread ``rxbinance-bridge:<key>`` blocks in XREAD (or
XREADGROUP) for at most ``_BLOCK_MS`` at a time, so a stop is seen within that, and delivers
each entry through the Hub (serialized, a raising subscriber contained).

Resuming: the reader remembers the id of the last entry it delivered and reads after it on
every reconnect, so a Redis restart loses and repeats nothing the server still has. In a group,
each entry is acknowledged (XACK) as soon as the subscribers' ``on_next`` returned, before the
next one is delivered, and entries another consumer left pending longer than ``claim_after``
are taken over with XAUTOCLAIM (Redis 6.2+).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from reactivex import Observable

from rxbinance._reactive.hub import Hub, Sink
from rxbinance._reactive.reconnect import ReconnectPolicy
from rxbinance.bridge._codec import decode
from rxbinance.bridge._redis import (
    BridgeError,
    check_url,
    connect,
    is_connection_error,
    require_redis,
    safe_url,
    unreachable,
)
from rxbinance.errors import InvalidInputError, ProtocolError
from rxbinance.events import Gap

__all__ = ["RedisSource", "consume"]

log = logging.getLogger("rxbinance.bridge")

_BLOCK_MS = 200  # longest XREAD wait: how soon a stopped reader notices
_COUNT = 1_000  # entries per read

#: The bridge's own hub: every consume() Observable is an entry of it.
_HUB = Hub()


@dataclass(frozen=True, slots=True)
class _Spec:
    url: str
    key: str
    start: str
    group: str | None
    consumer: str | None
    claim_after: float
    max_retries: int | None
    retry_delay: float
    max_retry_delay: float


class RedisSource:
    """The Hub :class:`~rxbinance._reactive.hub.Source` of one consumed key."""

    def __init__(self, spec: _Spec) -> None:
        self._spec = spec
        self._stop = threading.Event()
        self._client: Any = None
        self._last = "0-0"  # the last entry delivered (or the resolved start)
        self._consumer = spec.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._policy = ReconnectPolicy(
            max_retries=spec.max_retries if spec.max_retries is not None else 0,
            retry_delay=spec.retry_delay,
            max_retry_delay=spec.max_retry_delay,
        )
        self._thread: threading.Thread | None = None
        self._backlog = True  # in a group: read this consumer's own pending entries first
        self._next_claim = 0.0

    # -- Source ------------------------------------------------------------------------------

    def start(self, sink: Sink[Any]) -> None:
        if self._stop.is_set():
            return
        spec = self._spec
        self._client = connect(spec.url)
        try:
            self._prepare()
        except BridgeError:
            self._client.close()
            raise
        except Exception as exc:
            self._client.close()
            if is_connection_error(exc):
                raise unreachable(spec.url, exc) from exc
            raise self._refused(exc) from exc
        self._thread = threading.Thread(
            target=self._run, args=(sink,), name=f"rxbinance-bridge:{spec.key}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # -- connecting ----------------------------------------------------------------------------

    def _refused(self, exc: BaseException) -> BridgeError:
        text = str(exc)
        if "WRONGTYPE" in text:
            text = "holds another type than a stream"
        return BridgeError(
            f"Redis key {self._spec.key!r} at {safe_url(self._spec.url)}: {text}",
            url=safe_url(self._spec.url),
        )

    def _prepare(self) -> None:
        """Check the key and fix where reading starts (on the first connection)."""
        spec = self._spec
        kind = self._client.type(spec.key)
        if kind not in (b"stream", b"none"):
            raise self._refused(Exception("WRONGTYPE"))
        if spec.group is not None:
            self._create_group(spec.start)
            self._last = "0-0"
            return
        if spec.start == "$":
            # "$" means "after the newest entry now", fixed once: a reconnect must resume
            # after what we delivered, not after whatever is newest by then.
            newest = self._client.xrevrange(spec.key, count=1)
            self._last = newest[0][0].decode() if newest else "0-0"
        else:
            self._last = "0-0" if spec.start == "0" else spec.start

    def _create_group(self, start: str) -> None:
        try:
            self._client.xgroup_create(self._spec.key, self._spec.group, id=start, mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- the reader thread ---------------------------------------------------------------------

    def _run(self, sink: Sink[Any]) -> None:
        spec = self._spec
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    if self._client is None:
                        self._client = connect(spec.url)
                    if spec.group is None:
                        self._read(sink)
                    else:
                        self._read_group(sink)
                    attempt = 0
                except Exception as exc:
                    if self._stop.is_set():
                        return
                    if not is_connection_error(exc) and "NOGROUP" in str(exc):
                        # Redis restarted without the group: make it again over what is there.
                        self._recreate_group()
                        continue
                    if not is_connection_error(exc):
                        sink.end(self._refused(exc))
                        return
                    attempt += 1
                    if spec.max_retries is not None and attempt > spec.max_retries:
                        sink.end(unreachable(spec.url, exc))
                        return
                    log.info("redis %s: %s; retry %d", spec.key, exc, attempt)
                    self._close_client()
                    self._backlog = True
                    self._stop.wait(self._policy.delay(attempt))
        finally:
            self._close_client()

    def _recreate_group(self) -> None:
        try:
            self._create_group("0")
        except Exception as exc:
            log.info("redis %s: recreating group failed: %r", self._spec.key, exc)

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _deliver(self, sink: Sink[Any], fields: dict[bytes, bytes] | None) -> None:
        if not fields:
            return  # a pending entry trimmed away meanwhile (MAXLEN): nothing to deliver
        try:
            decoded = decode(fields)
        except ProtocolError as exc:
            log.warning("redis %s: skipped an entry: %s", self._spec.key, exc)
            return
        if isinstance(decoded.message, Gap):
            gap = decoded.message
            log.warning(
                "%s: the publisher lost %s %d..%d (%s)",
                self._spec.key,
                gap.stream,
                gap.first,
                gap.last,
                gap.reason,
            )
        sink.on_next(decoded.message)

    def _read(self, sink: Sink[Any]) -> None:
        spec = self._spec
        reply = self._client.xread({spec.key: self._last}, count=_COUNT, block=_BLOCK_MS)
        for _, entries in reply or ():
            for ident, fields in entries:
                if self._stop.is_set():
                    return
                self._deliver(sink, fields)
                self._last = ident.decode()

    def _read_group(self, sink: Sink[Any]) -> None:
        spec = self._spec
        assert spec.group is not None
        client = self._client
        # First what this consumer name already owns (a restart of the same consumer), then
        # new entries; every pass also takes over what a dead consumer left behind.
        self._claim(sink)
        if self._backlog:
            pending = client.xreadgroup(
                spec.group, self._consumer, {spec.key: self._last}, count=_COUNT
            )
            entries = pending[0][1] if pending else []
            for ident, fields in entries:
                if self._stop.is_set():
                    return
                self._deliver(sink, fields)
                client.xack(spec.key, spec.group, ident)
                self._last = ident.decode()
            if entries:
                return
            self._backlog = False
            self._last = "0-0"
        block = max(1, min(_BLOCK_MS, int(spec.claim_after * 500)))
        reply = client.xreadgroup(
            spec.group, self._consumer, {spec.key: ">"}, count=_COUNT, block=block
        )
        for _, new in reply or ():
            for ident, fields in new:
                if self._stop.is_set():
                    return
                self._deliver(sink, fields)
                client.xack(spec.key, spec.group, ident)

    def _claim(self, sink: Sink[Any]) -> None:
        spec = self._spec
        assert spec.group is not None
        now = time.monotonic()
        if now < self._next_claim:
            return
        self._next_claim = now + spec.claim_after / 2
        reply = self._client.xautoclaim(
            spec.key, spec.group, self._consumer, int(spec.claim_after * 1000), "0-0", count=_COUNT
        )
        for ident, fields in reply[1]:
            if self._stop.is_set():
                return
            self._deliver(sink, fields)
            self._client.xack(spec.key, spec.group, ident)


def consume(
    redis_url: str,
    key: str,
    start: str = "$",
    group: str | None = None,
    consumer: str | None = None,
    *,
    claim_after: float = 30.0,
    max_retries: int | None = None,
    retry_delay: float = 0.05,
    max_retry_delay: float = 2.0,
) -> Observable[Any]:
    """The entries of the Redis stream ``key`` as a hot, shared, ref-counted Observable.

    .. code-block:: python

        import rxbinance.operators as rbo
        from rxbinance.bridge import consume

        trades = consume("redis://collector:6379", "rxbinance:btcusdt@trade")
        trades.pipe(rbo.parse()).subscribe(print)  # Trade models, as from streams.trades()

    Emits what the publisher received: the Binance payload (a dict), or the typed model when
    a typed Observable was published (rebuilt equal to the original), and a
    :class:`~rxbinance.events.Gap` where the publisher had to drop messages. ``key`` is the
    Redis key (``rxbinance:btcusdt@trade`` for what :func:`publish` wrote by default).

    ``start``: ``"$"`` (default) the entries added after the first subscriber subscribed;
    ``"0"`` everything the key holds, then what follows; an entry id (``"1700000000000-0"``)
    the entries after that one.

    **Hot, shared, ref-counted** like every rxbinance stream: the first subscriber connects,
    later ones (same URL, key, start, group and consumer) share the reader, the last dispose
    stops it. Subscribers are called on the reader thread ``rxbinance-bridge:<key>``, one
    call at a time; one that raises is logged and stays subscribed.

    **Reconnects.** When Redis goes away the reader reconnects (``retry_delay`` doubling up to
    ``max_retry_delay``; after ``max_retries`` consecutive failures, None: never,
    subscribers get ``on_error(BridgeError)``) and resumes after the last entry it delivered:
    nothing the server still holds is lost or repeated. Not reaching Redis at the first
    subscription, a key holding another type, or a refused group command end the Observable
    with ``on_error(BridgeError)`` at once.

    **Groups.** With ``group`` several consumers (``consumer``: a name unique in the group;
    default ``<host>-<pid>``) share the entries: each goes to one of them. ``start`` is where
    a new group begins (an existing one keeps its position). An entry is acknowledged as soon
    as every subscriber's ``on_next`` returned for it; entries a consumer left unacknowledged
    for ``claim_after`` seconds (it died) are taken over by a live one, so none is lost. A
    consumer killed inside ``on_next`` has that entry redelivered to another: make the work
    idempotent where that matters.
    """
    require_redis()
    check_url(redis_url)
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"key must be a non-empty string, got {key!r}")
    if not isinstance(start, str) or not _is_start(start):
        raise InvalidInputError(
            f"start must be '$', '0' or an entry id like '1700000000000-0', got {start!r}"
        )
    if group is not None and (not isinstance(group, str) or not group):
        raise InvalidInputError(f"group must be a non-empty string or None, got {group!r}")
    if consumer is not None and (not isinstance(consumer, str) or not consumer):
        raise InvalidInputError(f"consumer must be a non-empty string or None, got {consumer!r}")
    if consumer is not None and group is None:
        raise InvalidInputError("consumer= names a member of a group: pass group= too")
    if isinstance(claim_after, bool) or not isinstance(claim_after, int | float):
        raise InvalidInputError(f"claim_after must be seconds > 0, got {claim_after!r}")
    if not claim_after > 0:
        raise InvalidInputError(f"claim_after must be seconds > 0, got {claim_after!r}")
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise InvalidInputError(f"max_retries must be an int >= 0 or None, got {max_retries!r}")
    spec = _Spec(
        redis_url,
        key,
        start,
        group,
        consumer,
        float(claim_after),
        max_retries,
        retry_delay,
        max_retry_delay,
    )
    return _HUB.observable(spec, lambda: RedisSource(spec), name=f"redis {key}")


def _is_start(start: str) -> bool:
    if start in ("$", "0"):
        return True
    ms, _, seq = start.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())
