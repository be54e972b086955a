"""Connection events: what happens to each socket, apart from the data it carries.

``BinanceStreams.events`` emits these. Each names the ``stream`` key it concerns (a stream name
such as ``btcusdt@trade``, or ``a/b`` for a combined socket) and the ``time`` it happened
(``time.time()`` seconds). They are frozen, slotted dataclasses: match on the class.

The local order book (:func:`rxbinance.order_book`) reports its own state here too:
``BookResyncing`` when its book stops being valid (it emits nothing until ``BookSynced``), and
``BookSnapshotFailed`` when a REST snapshot could not be fetched. Their ``stream`` is the book's
diff depth stream (``btcusdt@depth@100ms``).

:class:`Gap` is the one event that is also *data*: a sequenced stream (``agg_trades``,
``trades``, ``klines``) delivers it in-band, at the place of the hole, when what a reconnect or
a stall missed could not be repaired from REST; it is emitted here as well.

:class:`Overflow` comes from bounded delivery
(:func:`rxbinance.operators.observe_on_bounded`), not from a socket: a consumer fell behind and
items of ``stream`` were dropped (or the subscription failed). It reaches the events only when
the operator is given them as its ``on_overflow``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BookResyncing",
    "BookSnapshotFailed",
    "BookSynced",
    "Connected",
    "Connecting",
    "ConnectionEvent",
    "Disconnected",
    "Gap",
    "GaveUp",
    "MalformedFrame",
    "Overflow",
    "Reconnecting",
    "Rejected",
    "RolledOver",
    "ShutdownAnnounced",
    "Silent",
    "SubscriptionsCorrected",
]


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    stream: str
    time: float


@dataclass(frozen=True, slots=True)
class Connecting(ConnectionEvent):
    """A connection attempt to ``url`` starts."""

    url: str


@dataclass(frozen=True, slots=True)
class Connected(ConnectionEvent):
    """The WebSocket handshake with ``url`` succeeded."""

    url: str


@dataclass(frozen=True, slots=True)
class Disconnected(ConnectionEvent):
    """The connection ended (or the attempt failed); ``reason`` says why, ``code`` is the close
    code when the server sent one (1006: dropped without a close frame), else None."""

    reason: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Reconnecting(ConnectionEvent):
    """Attempt number ``attempt`` (1-based count of consecutive failures so far; 0 for the
    uncounted reconnect after ``serverShutdown``) will start in ``delay`` seconds."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class GaveUp(ConnectionEvent):
    """``attempts`` consecutive reconnects failed: subscribers got the error dict and completed."""

    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected(ConnectionEvent):
    """Binance refused what the stream needs, for a reason retrying cannot fix (the user data
    subscription with an unknown API key, a bad signature, a timestamp outside recvWindow, a
    rate limit): no reconnect; subscribers got ``on_error`` with the exception (a
    :class:`~rxbinance.errors.BinanceAPIError`), whose text is ``reason``."""

    reason: str


@dataclass(frozen=True, slots=True)
class MalformedFrame(ConnectionEvent):
    """A frame that is not valid JSON (or is binary) was dropped; ``excerpt`` shows its start."""

    excerpt: str
    error: str


@dataclass(frozen=True, slots=True)
class BookResyncing(ConnectionEvent):
    """The local order book of ``symbol`` is (re)building from a REST snapshot and emits
    nothing until :class:`BookSynced`. ``reason``: ``"start"``, ``"reconnect"``,
    ``"disconnected"``, or what the sequencer found (``"gap: event U=... after update id
    ..."``, ``"crossed book ..."``, a malformed event)."""

    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookSynced(ConnectionEvent):
    """The local order book of ``symbol`` is valid again, at ``update_id``; ``snapshots`` REST
    snapshots were fetched for this sync."""

    symbol: str
    update_id: int
    snapshots: int


@dataclass(frozen=True, slots=True)
class BookSnapshotFailed(ConnectionEvent):
    """A REST depth snapshot for ``symbol`` failed or was unusable (``error``); the next
    attempt starts in about ``retry_in`` seconds (rate limits pause every book)."""

    symbol: str
    error: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class Gap(ConnectionEvent):
    """Messages of ``stream`` that were missed and could not be repaired: ``first`` to ``last``
    inclusive, as aggregate trade ids (``a``), trade ids (``t``) or candle open times in epoch
    ms (klines: every closed candle opening in ``[first, last]``).

    ``reason`` says why REST could not fill it: ``"beyond REST retention"``, ``"REST refused:
    ..."``, ``"REST weight budget spent"``, ``"backfill off"``, ``"stream ended"``...
    Delivered in-band by the sequenced streams, where the hole is (the messages before it came
    before, the ones after it come after), and on :attr:`BinanceStreams.events`.
    """

    first: int
    last: int
    reason: str


@dataclass(frozen=True, slots=True)
class SubscriptionsCorrected(ConnectionEvent):
    """Binance's ``LIST_SUBSCRIPTIONS`` on the pooled connection ``stream`` disagreed with what
    it was asked to carry: the ``missing`` streams were subscribed again and the ``extra`` ones
    unsubscribed (``BinanceStreams(pool=True)``)."""

    missing: tuple[str, ...]
    extra: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Silent(ConnectionEvent):
    """The connection of ``stream`` is up but has delivered no data for ``seconds`` (the
    streams' ``silence_timeout``): a wrong route, a delisted or halted symbol, a market at
    rest. Reported once per quiet spell; data flowing again ends it."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ShutdownAnnounced(ConnectionEvent):
    """Binance sent ``serverShutdown`` on the connection of ``stream``: it will close it soon.
    The streams open the replacement at once, while this one still delivers
    (:class:`RolledOver` follows)."""


@dataclass(frozen=True, slots=True)
class RolledOver(ConnectionEvent):
    """The connection of ``stream`` was replaced make-before-break: the new one delivered,
    then the old one was closed, with the overlap de-duplicated. ``reason``: ``"age"`` (the
    streams' ``rollover_after``, ahead of Binance's 24 h limit) or ``"serverShutdown"``;
    ``dropped``: messages of the new connection already delivered by the old one. Not a
    failure: nothing is counted against ``max_retries``."""

    reason: str
    dropped: int


@dataclass(frozen=True, slots=True)
class Overflow(ConnectionEvent):
    """A bounded delivery of ``stream`` overflowed: an item arrived while ``maxsize`` items
    were already waiting for a consumer too slow for the stream. ``policy`` is what was done
    (``"error"``: the subscription fails with
    :class:`~rxbinance.errors.QueueOverflow`; ``"drop_oldest"``, ``"latest"``: waiting items
    were dropped); ``dropped`` counts the items this subscription has dropped so far, these
    included. Reported at the first drop after the consumer last caught up (found nothing
    waiting), so once per spell of falling behind, not once per dropped item."""

    maxsize: int
    policy: str
    dropped: int
