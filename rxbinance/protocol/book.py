"""Local order book synchronisation as a pure state machine (protocol reference section 5).

No I/O, no threads, no clock: the caller feeds diff events (``on_event``) and REST snapshots
(``on_snapshot``) and each call returns a ``SyncAction`` saying what to do next. The socket and Rx
layers own the fetching, the timing and the emitting; this module owns only the rules, so every
branch of them is tested table-driven and in memory.

Lifecycle of a ``BookSync``::

    waiting_for_event --first event--> waiting_for_snapshot --usable snapshot--> synced
          ^                                   ^    |  (too old: FETCH_SNAPSHOT again)    |
          |                                   |    +--------------------------------------+
        reset()                               +---- gap / crossed book: RESYNC -----------+

Spot (5.1) and USD-M futures (5.2) differ only in how a snapshot is lined up with the buffered
events and how continuity is checked; both are implemented here, chosen by ``futures=``.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, Protocol

__all__ = [
    "BookSync",
    "BookSyncStatistics",
    "DiffEvent",
    "DiffFields",
    "LocalBook",
    "SyncAction",
    "SyncState",
    "read_diff",
]

Level = tuple[Decimal, Decimal]

SyncState = Literal["waiting_for_event", "waiting_for_snapshot", "synced"]
"""``BookSync.state``: no event seen yet / events buffered, snapshot awaited / book valid."""


class SyncAction(enum.Enum):
    """What the caller should do after feeding ``BookSync`` an event or a snapshot."""

    NOTHING = "nothing"
    """Nothing to do: the event was buffered or was older than the book, or the snapshot was
    ignored (it came in while the book was synced)."""
    FETCH_SNAPSHOT = "fetch_snapshot"
    """Fetch a REST snapshot now and pass it to ``on_snapshot``: returned for the first event
    after a start or ``reset()``, and for a snapshot too old for the buffered events."""
    UPDATED = "updated"
    """The book is synced and changed (or its update id advanced): emit it."""
    RESYNC = "resync"
    """The book was inconsistent and has been discarded (a gap in the update ids, a snapshot
    that does not line up with the events, or a crossed book); ``reason`` says which. Events
    keep being buffered: fetch a new snapshot and pass it to ``on_snapshot``."""


class DiffEvent(Protocol):
    """What ``BookSync`` reads from a diff depth event (``rxbinance.models.DepthUpdate`` fits)."""

    @property
    def symbol(self) -> str: ...
    @property
    def first_update_id(self) -> int: ...  # U
    @property
    def final_update_id(self) -> int: ...  # u
    @property
    def prev_final_update_id(self) -> int | None: ...  # pu: futures only
    @property
    def bids(self) -> Sequence[Level]: ...
    @property
    def asks(self) -> Sequence[Level]: ...


# --------------------------------------------------------------------------------------------
# Reading a diff event without a model

DiffFields = tuple[str, int, int, int, "int | None", list[Any], list[Any]]
"""What ``read_diff`` reads: (``s``, ``E``, ``U``, ``u``, ``pu`` or None, ``b``, ``a``), the
levels as they came (lists, not yet parsed)."""


def read_diff(message: dict[str, Any]) -> DiffFields | None:
    """The fields of a plain ``depthUpdate`` payload, or None when it is anything else.

    The order book's hot path: the values ``DepthUpdate.from_dict`` gives, without making the
    model, for the form Binance sends (``E``, ``U``, ``u``, ``pu``, ``T`` integers, ``s`` a
    string, ``b`` and ``a`` lists). The levels are returned as they are, to be parsed where
    they are applied (``PersistentBook.apply_json`` parses them as the model does). For None,
    the caller takes the model's path, which parses the rarer forms (``E`` as a string of
    digits, levels in a tuple) the same way or raises the ParseError naming the fault.
    """
    try:
        symbol = message["s"]
        event_time = message["E"]
        first = message["U"]
        final = message["u"]
        bids = message["b"]
        asks = message["a"]
        kind = message["e"]
    except (LookupError, TypeError):
        return None
    # ``__class__ is int`` refuses bool, as the model does; pu and T are optional.
    if (
        kind != "depthUpdate"
        or symbol.__class__ is not str
        or event_time.__class__ is not int
        or first.__class__ is not int
        or final.__class__ is not int
        or bids.__class__ is not list
        or asks.__class__ is not list
    ):
        return None
    prev_final = message.get("pu")
    if prev_final is not None and prev_final.__class__ is not int:
        return None
    transaction_time = message.get("T")
    if transaction_time is not None and transaction_time.__class__ is not int:
        return None
    return symbol, event_time, first, final, prev_final, bids, asks


# --------------------------------------------------------------------------------------------
# LocalBook


class LocalBook:
    """One symbol's book: price -> quantity per side, with prices kept sorted.

    Each side is a dict (price -> quantity) plus an ascending list of its prices. Updating the
    quantity of an existing level, by far the most common change, touches only the dict; a new
    or removed level also costs one binary search and a list insert or delete (a memmove of at
    most a few thousand pointers). That keeps the best bid/ask O(1) and the top N O(N) at any
    moment, which the crossed-book check after every event needs; a heap would make removals
    lazy but the top N a sort. Prices are ``Decimal``: equal values with different spellings
    (``"0.35"``, ``"0.35000000"``) are one level, and a Decimal caches its hash after the first
    lookup.
    """

    __slots__ = ("_ask_prices", "_asks", "_bid_prices", "_bids")

    def __init__(self) -> None:
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._bid_prices: list[Decimal] = []  # ascending: best bid last
        self._ask_prices: list[Decimal] = []  # ascending: best ask first

    @property
    def bids(self) -> Mapping[Decimal, Decimal]:
        """Read-only live view of the bid side: price -> quantity, in no particular order."""
        return MappingProxyType(self._bids)

    @property
    def asks(self) -> Mapping[Decimal, Decimal]:
        """Read-only live view of the ask side: price -> quantity, in no particular order."""
        return MappingProxyType(self._asks)

    def best_bid(self) -> Level | None:
        """The highest bid as ``(price, quantity)``, or None when there are no bids."""
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return price, self._bids[price]

    def best_ask(self) -> Level | None:
        """The lowest ask as ``(price, quantity)``, or None when there are no asks."""
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return price, self._asks[price]

    def top_bids(self, n: int) -> list[Level]:
        """The ``n`` highest bids, best (highest price) first."""
        if n <= 0:
            return []
        bids = self._bids
        return [(p, bids[p]) for p in reversed(self._bid_prices[-n:])]

    def top_asks(self, n: int) -> list[Level]:
        """The ``n`` lowest asks, best (lowest price) first."""
        if n <= 0:
            return []
        asks = self._asks
        return [(p, asks[p]) for p in self._ask_prices[:n]]

    @property
    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (never the case on Binance)."""
        return bool(self._bid_prices and self._ask_prices) and (
            self._bid_prices[-1] >= self._ask_prices[0]
        )

    def clear(self) -> None:
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book (a snapshot). Levels with quantity 0 are skipped."""
        self._bids = {price: qty for price, qty in bids if qty}
        self._asks = {price: qty for price, qty in asks if qty}
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply diff levels: each quantity is the level's new absolute quantity; quantity 0
        removes the level (removing a level that is not there is normal and does nothing)."""
        _apply_side(self._bids, self._bid_prices, bids)
        _apply_side(self._asks, self._ask_prices, asks)

    def __repr__(self) -> str:
        return (
            f"<LocalBook {len(self._bids)} bids, {len(self._asks)} asks, "
            f"best {self.best_bid()} / {self.best_ask()}>"
        )


def _apply_side(
    qty: dict[Decimal, Decimal], prices: list[Decimal], levels: Iterable[Level]
) -> None:
    for price, quantity in levels:
        if quantity:  # Decimal zero (any spelling, "0.00000000" too) is falsy
            size = len(qty)
            qty[price] = quantity
            # A new key grew the dict: index the price too. One hash lookup instead of the two of
            # `price in qty` followed by the store.
            if len(qty) != size:
                insort(prices, price)
        elif qty.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]


# --------------------------------------------------------------------------------------------
# BookSync

# A buffered diff event: (U, u, pu, bids, asks), what the rules read of it. A tuple rather than
# the event itself, so that on_update needs no event object.
_Buffered = tuple[int, int, "int | None", Sequence[Level], Sequence[Level]]

_STALE = "stale"  # BookSync._admit: the book already contains the event (compared by identity)


@dataclass(frozen=True, slots=True)
class BookSyncStatistics:
    """Counters of a ``BookSync`` since it was created (``reset()`` does not clear them)."""

    state: SyncState
    update_id: int | None
    """The book's update id (None unless synced)."""
    events: int
    """Diff events received."""
    applied: int
    """Events applied to the book."""
    ignored: int
    """Events dropped as older than the book."""
    buffered: int
    """Events currently buffered, waiting for a snapshot."""
    snapshots: int
    """Snapshots received."""
    snapshots_rejected: int
    """Snapshots too old for the buffered events, or received while synced."""
    resyncs: int
    """Times the book was found inconsistent and discarded (RESYNC)."""


class BookSync:
    """Keeps one symbol's local order book in sync from diff events plus REST snapshots.

    Feed every diff depth event of the symbol, in arrival order, to ``on_event``; when it (or
    ``on_snapshot``) returns FETCH_SNAPSHOT or RESYNC, fetch a REST depth snapshot and pass it to
    ``on_snapshot``. UPDATED means ``book`` is valid and changed. Events are buffered for as long
    as no snapshot has been applied, so nothing is lost while a fetch is in flight.

    Spot rules (``futures=False``, reference 5.1), with L the snapshot's ``lastUpdateId``:

    - a snapshot with ``L + 1 <`` the first buffered ``U`` is too old: FETCH_SNAPSHOT again
      (Binance's text says ``L < U``; a snapshot ending right before the first event, L = U - 1,
      lines up exactly, so it is used rather than refetched);
    - otherwise book := snapshot, update id := L, and the buffered events, then the live ones,
      go through the update rule: ``u <=`` update id: ignored; ``U >`` update id + 1: gap,
      RESYNC; else apply, update id := ``u``. The first applied event therefore satisfies
      ``U <= L + 1 <= u``; an event overlapping the snapshot is accepted.

    USD-M rules (``futures=True``, reference 5.2):

    - a snapshot with ``L <`` the first buffered ``U`` is too old: FETCH_SNAPSHOT again;
    - otherwise book := snapshot; events with ``u < L`` are dropped; the first applied event
      must satisfy ``U <= L <= u`` (else RESYNC); after it, every event's ``pu`` must equal the
      previous event's ``u`` (else gap, RESYNC). Events with ``u <=`` the previous ``u`` are
      ignored as stale. Update ids are not contiguous on futures, so ``U`` is never compared
      with the previous ``u`` + 1.

    Both: quantity 0 removes a level; a book crossed after an event or a snapshot is
    inconsistent: RESYNC. On RESYNC the book is discarded and the event that revealed a gap is
    kept as the first buffered event. A snapshot received while synced is ignored (NOTHING):
    it answers a request that has been superseded; call ``reset()`` to force a fresh sync.

    A caller that applies levels to ``book`` itself (the order book pipeline parses them as it
    applies them) asks ``admits(U, u, pu)`` first: True means the rules above would apply the
    event now; it then applies the levels and calls ``applied(u)``. Any other event goes to
    ``on_event`` or ``on_update``. The rules live in one place either way.
    """

    __slots__ = (
        "_applied",
        "_awaiting_first",
        "_buffer",
        "_events",
        "_ignored",
        "_reason",
        "_resyncs",
        "_snapshots",
        "_snapshots_rejected",
        "_state",
        "_update_id",
        "book",
        "futures",
        "symbol",
    )

    def __init__(self, symbol: str, *, futures: bool = False) -> None:
        self.symbol = symbol.upper()
        """The symbol, upper case; events of another symbol are refused (ValueError)."""
        self.futures = futures
        """USD-M rules (pu chain) instead of spot rules."""
        self.book = LocalBook()
        """The local book; valid (consistent with Binance's) only while ``state == "synced"``."""
        self._state: SyncState = "waiting_for_event"
        self._buffer: list[_Buffered] = []
        self._update_id: int | None = None
        # Futures: the snapshot is applied but no event has straddled its lastUpdateId yet, so
        # the next event is checked against the snapshot, not against a previous event's u.
        self._awaiting_first = False
        self._reason: str | None = None
        self._events = self._applied = self._ignored = 0
        self._snapshots = self._snapshots_rejected = self._resyncs = 0

    @property
    def state(self) -> SyncState:
        """``"waiting_for_event"``, ``"waiting_for_snapshot"`` or ``"synced"``."""
        return self._state

    @property
    def update_id(self) -> int | None:
        """The update id the book is at (the last applied ``u``, or the snapshot's
        ``lastUpdateId``), or None when not synced."""
        return self._update_id

    @property
    def reason(self) -> str | None:
        """Why the last FETCH_SNAPSHOT (after the first) or RESYNC was returned, for logs and
        gap notifications; None before any."""
        return self._reason

    def statistics(self) -> BookSyncStatistics:
        """A snapshot of the counters."""
        return BookSyncStatistics(
            state=self._state,
            update_id=self._update_id,
            events=self._events,
            applied=self._applied,
            ignored=self._ignored,
            buffered=len(self._buffer),
            snapshots=self._snapshots,
            snapshots_rejected=self._snapshots_rejected,
            resyncs=self._resyncs,
        )

    def reset(self) -> None:
        """Forget the book and the buffer (e.g. after a reconnect): back to waiting_for_event."""
        self.book.clear()
        self._buffer.clear()
        self._state = "waiting_for_event"
        self._update_id = None
        self._awaiting_first = False

    def on_event(self, event: DiffEvent) -> SyncAction:
        """Feed one diff depth event of ``symbol``; see the class docstring for the rules.

        Returns FETCH_SNAPSHOT for the first event to buffer, NOTHING for later buffered or
        ignored events, UPDATED when applied, RESYNC on a gap or a crossed book. Raises
        ValueError for another symbol's event, or a futures event without ``pu``.
        """
        if event.symbol != self.symbol:
            raise ValueError(f"BookSync({self.symbol!r}) got an event for {event.symbol!r}")
        return self.on_update(
            event.first_update_id,
            event.final_update_id,
            event.prev_final_update_id,
            event.bids,
            event.asks,
        )

    def on_update(
        self,
        first_update_id: int,
        final_update_id: int,
        prev_final_update_id: int | None,
        bids: Sequence[Level],
        asks: Sequence[Level],
    ) -> SyncAction:
        """``on_event`` for a diff event given as its fields (``U``, ``u``, ``pu``, bids,
        asks), already known to be of ``symbol``, for callers that make no event object. Same
        rules, results and errors (ValueError for a futures event without ``pu``)."""
        if prev_final_update_id is None and self.futures:
            raise ValueError("a futures BookSync needs events with pu (prev_final_update_id)")
        self._events += 1
        if self._state == "synced":
            return self._apply(first_update_id, final_update_id, prev_final_update_id, bids, asks)
        self._buffer.append((first_update_id, final_update_id, prev_final_update_id, bids, asks))
        if self._state == "waiting_for_event":
            self._state = "waiting_for_snapshot"
            return SyncAction.FETCH_SNAPSHOT
        return SyncAction.NOTHING

    def on_snapshot(
        self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]
    ) -> SyncAction:
        """Feed a REST depth snapshot (``lastUpdateId``, bids, asks as (price, quantity)).

        Returns UPDATED when the book is now synced (snapshot plus the buffered events that
        follow it), FETCH_SNAPSHOT when the snapshot is too old for the buffered events (they
        are kept), RESYNC when the buffered events do not continue the snapshot, NOTHING when
        already synced (the snapshot is ignored). A snapshot may also come before any event:
        it is applied and the first event is checked against it.
        """
        self._snapshots += 1
        if self._state == "synced":
            self._snapshots_rejected += 1
            return SyncAction.NOTHING
        pending = self._buffer
        if pending:
            first = pending[0][0]
            # Too old: events between the snapshot and the first buffered one were missed.
            # Spot: L + 1 < U (see the class docstring); futures: L < U (reference 5.2).
            too_old = last_update_id < first if self.futures else last_update_id + 1 < first
            if too_old:
                self._snapshots_rejected += 1
                self._reason = (
                    f"snapshot too old: lastUpdateId {last_update_id}, first buffered U {first}"
                )
                return SyncAction.FETCH_SNAPSHOT
        self._buffer = []
        self.book.load(bids, asks)
        self._update_id = last_update_id
        self._awaiting_first = self.futures
        self._state = "synced"
        if self.book.crossed:
            return self._resync(f"snapshot {last_update_id} is a crossed book", pending)
        # The buffered events go through the same rule as live ones: the ones the snapshot
        # already contains are ignored, the first newer one must continue it.
        for i, event in enumerate(pending):
            if self._apply(*event) is SyncAction.RESYNC:
                self._buffer.extend(pending[i + 1 :])
                return SyncAction.RESYNC
        return SyncAction.UPDATED

    # ----------------------------------------------------------------------------------------

    def admits(
        self, first_update_id: int, final_update_id: int, prev_final_update_id: int | None
    ) -> bool:
        """True when ``on_update`` would apply this event to ``book`` now: synced, and the
        event continues the book. The caller may then apply its levels to ``book`` itself (the
        order book pipeline parses them on the way) and must call ``applied`` next; for False,
        feed the event to ``on_update`` or ``on_event`` as usual."""
        if self._state != "synced" or (prev_final_update_id is None and self.futures):
            return False
        return self._admit(first_update_id, final_update_id, prev_final_update_id) is None

    def applied(self, final_update_id: int) -> SyncAction:
        """Record that the caller applied to ``book`` the levels of the event ``admits`` just
        accepted: counts it as received and applied and moves the book to its ``u``. Returns
        UPDATED, or RESYNC when the book is now crossed, as ``on_update`` would have."""
        self._events += 1
        return self._advance(final_update_id)

    def _admit(self, first: int, final: int, prev_final: int | None) -> str | None:
        """The update rule, while synced: None to apply the event, ``_STALE`` for an event the
        book already contains, else the reason of a gap."""
        local = self._update_id
        assert local is not None  # synced
        if not self.futures:
            if final <= local:  # already in the book
                return _STALE
            if first > local + 1:
                return f"gap: event U={first} after update id {local}"
        elif self._awaiting_first:
            if final < local:  # already in the snapshot
                return _STALE
            if first > local:
                return f"event U={first}..u={final} does not straddle snapshot {local}"
        else:
            if final <= local:  # stale or duplicate
                return _STALE
            if prev_final != local:
                return f"gap: event pu={prev_final} after u={local}"
        return None

    def _apply(
        self,
        first: int,
        final: int,
        prev_final: int | None,
        bids: Sequence[Level],
        asks: Sequence[Level],
    ) -> SyncAction:
        """The update procedure for one event while synced."""
        verdict = self._admit(first, final, prev_final)
        if verdict is _STALE:
            self._ignored += 1
            return SyncAction.NOTHING
        if verdict is not None:
            return self._resync(verdict, [(first, final, prev_final, bids, asks)])
        self.book.apply(bids, asks)
        return self._advance(final)

    def _advance(self, final: int) -> SyncAction:
        """After an event's levels were applied: the book is at its ``u``."""
        self._awaiting_first = False  # (futures) the first event after the snapshot was applied
        self._update_id = final
        self._applied += 1
        if self.book.crossed:
            return self._resync(f"crossed book after event u={final}", [])
        return SyncAction.UPDATED

    def _resync(self, reason: str, keep: list[_Buffered]) -> SyncAction:
        """Discard the book; ``keep`` becomes the buffer the next snapshot is lined up with."""
        self._resyncs += 1
        self._reason = reason
        self.book.clear()
        self._buffer = list(keep)
        self._update_id = None
        self._awaiting_first = False
        self._state = "waiting_for_snapshot"
        return SyncAction.RESYNC

    def __repr__(self) -> str:
        futures = ", futures" if self.futures else ""
        return f"<BookSync {self.symbol}{futures} {self._state} update_id={self._update_id}>"
