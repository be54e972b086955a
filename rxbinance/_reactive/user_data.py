"""User data connections: spot over the WebSocket API, USD-M futures over a listenKey.

Both plug into :class:`~rxbinance._reactive.shared.SharedConnection` as socket factories, so a
user data stream is shared, ref-counted and healed exactly like a market stream (same retry
count, same give-up dict); only what happens on each connection differs.

**Spot** (binance-protocol.md 6.2, 6.3). Each connection to the WebSocket API sends
``userDataStream.subscribe.signature`` with a fresh timestamp and checks the reply before any
event is delivered, so a reconnect always subscribes again. Events arrive wrapped as
``{"subscriptionId": n, "event": {...}}`` and are delivered unwrapped. A refusal (401/-2015
unknown key, -1022 bad signature, -1021 timestamp, any other 4xx) raises
:class:`~rxbinance.errors.BinanceAPIError`, which ends the stream with ``on_error`` instead of
reconnecting in a loop; a 5xx or a missing reply is a connection failure and is retried.
``eventStreamTerminated`` is delivered, then the connection is replaced at once to subscribe
again: a trading engine wants its order updates back, not a silent socket.

**USD-M** (binance-protocol.md 8.5). Each connection first creates (or, if one is active,
extends: Binance returns the same key) a listenKey over REST, on the reader thread, then
connects to ``/private/ws?listenKey=...&events=...``. A keepalive thread PUTs the key every
``keepalive`` seconds while the connection lives. ``listenKeyExpired`` (whose ``E`` is a
string) is delivered, then the connection is replaced at once with a new key; a keepalive
answered ``-1125`` (the key is gone) does the same. Disposing the stream DELETEs the key,
unless a newer connection of the same account holds it: the key belongs to the account, not
to a connection, so its lifecycle is kept by one :class:`ListenKeyHolder` per account.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rxbinance.errors import (
    BinanceAPIError,
    ConnectError,
    ConnectionFailure,
    RateLimitError,
    RequestError,
    RxBinanceError,
)
from rxbinance.events import ConnectionEvent
from rxbinance.protocol.endpoints import private_url
from rxbinance.protocol.frames import FrameKind
from rxbinance.protocol.signing import Signer, ws_signature_payload
from rxbinance.transport import Request, StreamSocket

__all__ = [
    "SUBSCRIBE_METHOD",
    "USER_DATA_KEY",
    "ListenKeyClient",
    "ListenKeyHolder",
    "SpotUserSession",
    "SubscriptionEnded",
    "UsdmUserSocket",
    "classify_ws_api",
    "reply_error",
    "subscribe_request",
]

log = logging.getLogger("rxbinance.user_data")

#: The registry key (and connection-event ``stream``) of a BinanceStreams' user data stream.
USER_DATA_KEY = "userData"
SUBSCRIBE_METHOD = "userDataStream.subscribe.signature"

#: Binance's "This listenKey does not exist." (binance-protocol.md 8.5).
_UNKNOWN_LISTEN_KEY = -1125


class SubscriptionEnded(ConnectionFailure):
    """Binance ended the user data subscription (``eventStreamTerminated``,
    ``listenKeyExpired``, a vanished listenKey): replace the connection at once (not counted
    as a failure) to subscribe again."""

    reconnect_now = True


# -------------------------------------------------------------------------------------------
# The WebSocket API's frames and replies: pure functions.


def classify_ws_api(message: Any) -> FrameKind:
    """Sort a decoded WebSocket API frame: ``{"event": ...}`` is data (``serverShutdown``
    excepted), ``{"id", "status", ...}`` a reply; anything else is data too."""
    if type(message) is not dict:
        return FrameKind.DATA
    event = message.get("event")
    if event is not None:
        if type(event) is dict and event.get("e") == "serverShutdown":
            return FrameKind.SERVER_SHUTDOWN
        return FrameKind.DATA
    if "status" in message and "id" in message:
        return FrameKind.CONTROL_REPLY
    return FrameKind.DATA


def subscribe_request(
    api_key: str,
    signer: Signer,
    *,
    timestamp_ms: int,
    request_id: str,
    recv_window: int | None = None,
) -> dict[str, Any]:
    """The ``userDataStream.subscribe.signature`` request (binance-protocol.md 6.2).

    The signature covers the params minus ``signature``, sorted, raw:
    ``apiKey=...&[recvWindow=...&]timestamp=...``.
    """
    params: dict[str, Any] = {"apiKey": api_key, "timestamp": timestamp_ms}
    if recv_window is not None:
        params["recvWindow"] = recv_window
    params["signature"] = signer.sign(ws_signature_payload(params))
    return {"id": request_id, "method": SUBSCRIBE_METHOD, "params": params}


def reply_error(
    reply: dict[str, Any], *, method: str = "", url: str = "", stream: str = ""
) -> RxBinanceError | None:
    """None for a successful WebSocket API reply (status 200), else the exception it means.

    4xx is :class:`~rxbinance.errors.BinanceAPIError` (429 and 418:
    :class:`~rxbinance.errors.RateLimitError` with ``retry_after`` from ``error.data``): final,
    retrying the same request cannot help. 5xx (outcome unknown) and a reply without a status
    are :class:`~rxbinance.errors.ConnectionFailure`: retried on a new connection.
    """
    status = reply.get("status")
    if status == 200:
        return None
    error = reply.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    msg = str(error.get("msg", "no message"))
    if not isinstance(status, int) or isinstance(status, bool) or status >= 500:
        return ConnectionFailure(
            f"{method or 'request'} failed with status {status!r} (code {code}: {msg})",
            url=url,
            stream=stream,
        )
    if status in (429, 418):
        retry_after: float | None = None
        data = error.get("data")
        if isinstance(data, dict):
            until, now = data.get("retryAfter"), data.get("serverTime")
            if isinstance(until, int) and isinstance(now, int):
                retry_after = max(0.0, (until - now) / 1000.0)
        return RateLimitError(
            status,
            code,
            msg,
            retry_after=retry_after,
            banned=status == 418,
            method=method,
            url=url,
        )
    return BinanceAPIError(status, code, msg, method=method, url=url)


# -------------------------------------------------------------------------------------------
# Spot: one session per WebSocket API connection.


class SpotUserSession:
    """The user data side of one spot WebSocket API connection: its hooks for
    :class:`~rxbinance.transport.StreamSocket`.

    ``deliver`` receives each event dict, unwrapped, on the reader thread.
    """

    def __init__(
        self,
        api_key: str,
        signer: Signer,
        deliver: Callable[[Any], None],
        *,
        url: str,
        key: str = USER_DATA_KEY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self._signer = signer
        self._deliver = deliver
        self._url = url
        self._key = key
        self._clock = clock
        self.subscription_id: int | None = None

    def handshake(self, request: Request) -> None:
        """Subscribe with a fresh timestamp; raise what a refusal means (see
        :func:`reply_error`)."""
        payload = subscribe_request(
            self._api_key,
            self._signer,
            timestamp_ms=int(self._clock() * 1000),
            request_id=str(uuid.uuid4()),
        )
        reply = request(payload)
        error = reply_error(reply, method=SUBSCRIBE_METHOD, url=self._url, stream=self._key)
        if error is not None:
            raise error
        result = reply.get("result")
        subscription = result.get("subscriptionId") if isinstance(result, dict) else None
        self.subscription_id = subscription if isinstance(subscription, int) else None
        log.debug("%s: subscribed, subscriptionId %r", self._key, self.subscription_id)

    def on_frame(self, message: Any) -> None:
        """Deliver the event of a ``{"subscriptionId", "event"}`` frame; after
        ``eventStreamTerminated``, raise :class:`SubscriptionEnded` to subscribe again."""
        event = message.get("event") if type(message) is dict else None
        if type(event) is not dict:
            log.debug("%s: ignored a frame that is not an event: %.200r", self._key, message)
            return
        self._deliver(event)
        if event.get("e") == "eventStreamTerminated":
            raise SubscriptionEnded(
                "Binance ended the user data subscription (eventStreamTerminated)",
                url=self._url,
                stream=self._key,
            )

    def on_control(self, reply: dict[str, Any]) -> None:
        """A reply nobody waits for. An unsolicited error (``"id": null``, e.g. 401/-2015 when
        the key is revoked) ends the stream; anything else is logged."""
        error = reply_error(reply, method=SUBSCRIBE_METHOD, url=self._url, stream=self._key)
        if error is not None and reply.get("id") is None:
            raise error
        log.debug("%s: unexpected reply %.200r", self._key, reply)


# -------------------------------------------------------------------------------------------
# USD-M: a listenKey per account, held by its connections, each kept alive by its own thread.


class ListenKeyClient(Protocol):
    """The listen key calls of :class:`rxbinance.rest.Client` on a USD-M market."""

    def create_listen_key(self) -> str: ...
    def keepalive_listen_key(self, listen_key: str) -> None: ...
    def close_listen_key(self, listen_key: str) -> None: ...


class ListenKeyHolder:
    """Who holds one account's USD-M listenKey: DELETE it only when nobody else does.

    Binance keeps one listenKey per account: a POST while a key is active returns that same
    key, extended (binance-protocol.md 8.5). So when a stream is disposed and subscribed again
    at once, the new connection's POST may return the very key the old connection is about to
    DELETE; the old connection's deferred DELETE would then close the new connection's key
    (no ``listenKeyExpired`` follows, the stream just goes silent). The key's lifecycle
    therefore belongs to the account, here: one holder shared by every connection of one
    account (one :class:`~rxbinance.streams.BinanceStreams`), which counts the connections
    that hold the key or are creating it.

    - :meth:`acquire` (a connection's reader thread) counts the connection, then POSTs.
    - :meth:`release` (its keepalive thread, once the connection is over) uncounts it and,
      when ``close`` is true (the user closed that connection) and no other connection holds
      or is creating the key, DELETEs it. A connection that failed passes ``close=False``:
      its retry reuses the key.
    - The POST and the decide-and-DELETE run under one lock, one at a time per account, so a
      DELETE never lands after a newer connection's POST: the newer connection was either
      counted before the decision (no DELETE) or POSTs after the DELETE (a fresh key).

    A connection may thus wait on its reader thread for another one's DELETE (at most one
    REST call); :meth:`~UsdmUserSocket.close` itself never waits. A key left by a connection
    that failed for good (give-up) is not DELETEd, as before: it expires after 60 minutes.
    Two BinanceStreams on the same API key have a holder each and do not see each other.

    The REST client is passed to each call, so a holder can be built before the client
    exists (BinanceStreams creates its REST client on first use).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _holders
        # One POST or decide-and-DELETE at a time; REST calls run under it (never _lock).
        self._rest_lock = threading.Lock()
        self._holders = 0  # connections that hold the key or are creating it

    @property
    def holders(self) -> int:
        """How many connections hold the key or are creating it now."""
        with self._lock:
            return self._holders

    def acquire(self, rest: ListenKeyClient) -> str:
        """Count a connection as a holder, then create (or extend) the key and return it.

        Waits while a DELETE decided before this call is in flight. If the POST raises, the
        connection is not counted and the exception propagates.
        """
        with self._lock:
            # Counted before the POST: a release deciding from now on sees this connection.
            self._holders += 1
        try:
            with self._rest_lock:
                return rest.create_listen_key()
        except BaseException:
            with self._lock:
                self._holders -= 1
            raise

    def release(self, rest: ListenKeyClient, listen_key: str, *, close: bool) -> bool:
        """Uncount a connection that acquired ``listen_key``; DELETE the key when ``close`` and
        no other connection holds or is creating it. True if it was DELETEd.

        Raises what ``rest.close_listen_key`` raises; the connection is uncounted anyway.
        """
        with self._rest_lock:  # no POST between the decision and the DELETE
            with self._lock:
                self._holders -= 1
                last = self._holders == 0
            if not (close and last):
                return False
            rest.close_listen_key(listen_key)
            return True


class UsdmUserSocket:
    """One USD-M user data connection: listenKey, ``/private`` socket, keepalive thread.

    A :class:`~rxbinance._reactive.shared.SocketLike`. Threads: the reader
    (``rxbinance:<key>``) acquires the key from ``holder`` and reads; the keepalive thread
    (``rxbinance:<key>-keepalive``) PUTs the key every ``keepalive`` seconds and, once the
    connection is over, releases it (after :meth:`close`: DELETE, unless a newer connection
    holds it; see :class:`ListenKeyHolder`). Neither :meth:`close` nor the socket's failures
    block on REST.

    ``holder`` is shared by the connections of one account; None gives this connection a
    holder of its own, so its :meth:`close` always DELETEs the key (do that only when no other
    connection of the account can run at the same time).
    """

    def __init__(
        self,
        *,
        rest: ListenKeyClient,
        ws_url: str,
        events: Sequence[str],
        keepalive: float,
        key: str,
        on_message: Callable[[Any], None],
        on_event: Callable[[ConnectionEvent], None],
        on_closed: Callable[[RxBinanceError | None], None],
        stall_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        holder: ListenKeyHolder | None = None,
    ) -> None:
        self._rest = rest
        self._holder = holder if holder is not None else ListenKeyHolder()
        self._ws_url = ws_url
        self._events = tuple(events)
        self._keepalive = keepalive
        self._key = key
        self._deliver = on_message
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._stop = threading.Event()  # ends the keepalive thread
        self._closing = False  # close() was called: DELETE the key
        self._listen_key: str | None = None
        self._keeper: threading.Thread | None = None
        self._socket = StreamSocket(
            f"{ws_url.rstrip('/')}/private/ws",
            key=key,
            on_message=self._on_frame,
            on_event=on_event,
            on_closed=self._socket_closed,
            stall_timeout=stall_timeout,
            connect_timeout=connect_timeout,
            ssl_context=ssl_context,
            prepare=self._prepare,
        )

    # -- SocketLike

    @property
    def messages(self) -> int:
        return self._socket.messages

    @property
    def thread(self) -> threading.Thread:
        return self._socket.thread

    @property
    def listen_key(self) -> str | None:
        """The listenKey of this connection, once created."""
        return self._listen_key

    def start(self) -> None:
        self._socket.start()

    def close(self) -> None:
        """Close the socket and stop the keepalive, which then releases the key (DELETE
        unless a newer connection holds it). Never blocks."""
        with self._lock:
            self._closing = True
        self._stop.set()
        self._socket.close()

    def join(self, timeout: float | None = None) -> None:
        self._socket.join(timeout)  # the reader outlives the keepalive thread

    # -- reader thread

    def _prepare(self) -> str:
        """Acquire (create or extend) the listenKey and start its keepalive, which releases
        it; return the socket URL."""
        try:
            listen_key = self._holder.acquire(self._rest)
        except RequestError as exc:
            raise ConnectError(
                f"cannot create a listenKey: {exc}", url=self._ws_url, stream=self._key
            ) from exc
        except BinanceAPIError as exc:
            if exc.status >= 500:
                raise ConnectError(
                    f"cannot create a listenKey: {exc}", url=self._ws_url, stream=self._key
                ) from exc
            raise  # bad API key, rate limit...: final
        keeper = threading.Thread(
            target=self._keep_alive, name=f"rxbinance:{self._key}-keepalive", daemon=True
        )
        with self._lock:
            self._listen_key = listen_key
            self._keeper = keeper
        # Started even if close() already ran: the thread then releases the key at once.
        keeper.start()
        return private_url(self._ws_url, listen_key, self._events)

    def _on_frame(self, message: Any) -> None:
        self._deliver(message)
        if type(message) is dict and message.get("e") == "listenKeyExpired":
            raise SubscriptionEnded(
                "the listenKey expired (listenKeyExpired): renewing it",
                url=self._ws_url,
                stream=self._key,
            )

    def _socket_closed(self, failure: RxBinanceError | None) -> None:
        self._stop.set()  # a failed connection's key is kept alive by the next one, not this
        # Outlive the keepalive thread (a PUT in flight, then the release: after close() a
        # DELETE, which may first wait for another connection's POST), so that "the reader
        # thread is alive" means "this connection is alive, its key not yet released" for
        # whoever joins or prunes sockets by their thread.
        keeper = self._keeper
        if keeper is not None:
            keeper.join()
        self._on_closed(failure)

    # -- keepalive thread

    def _keep_alive(self) -> None:
        listen_key = self._listen_key
        assert listen_key is not None
        gone = False  # Binance said the key no longer exists: nothing to DELETE
        try:
            gone = self._extend_until_stopped(listen_key)
        finally:
            # Always released, exactly once per acquire, whatever ended the loop.
            with self._lock:
                close = self._closing and not gone
            try:
                self._holder.release(self._rest, listen_key, close=close)
            except RxBinanceError as exc:
                log.warning("%s: closing the listenKey failed: %s", self._key, exc)

    def _extend_until_stopped(self, listen_key: str) -> bool:
        """PUT the key every ``keepalive`` seconds until stopped; True if Binance answered
        that the key no longer exists (the connection is then failed, to renew it)."""
        while not self._stop.wait(self._keepalive):
            try:
                self._rest.keepalive_listen_key(listen_key)
            except BinanceAPIError as exc:
                if exc.code == _UNKNOWN_LISTEN_KEY:
                    log.info("%s: the listenKey is gone (%s); reconnecting", self._key, exc)
                    self._socket.fail(
                        SubscriptionEnded(
                            f"the listenKey no longer exists: {exc}",
                            url=self._ws_url,
                            stream=self._key,
                        )
                    )
                    return True
                log.warning("%s: listenKey keepalive failed: %s", self._key, exc)
            except RxBinanceError as exc:  # network: the next keepalive may get through
                log.warning("%s: listenKey keepalive failed: %s", self._key, exc)
        return False
