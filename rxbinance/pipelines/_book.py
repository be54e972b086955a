"""The local order book behind :func:`rxbinance.order_book`: a persistent sorted book and the
immutable :class:`OrderBook` views it hands out.

Why persistent: every diff event produces a new book that subscribers may keep (a list of books,
a book handed to another thread), so a view must never change after it was emitted. Copying a
1,000-level book per event would cost far more than applying the event. Instead each side is a
list of small sorted chunks (about 64 levels each): applying an event copies the outer list (a
few dozen pointers) and only the chunks it touches, and every list that an earlier view can see
is left untouched. A view is then four references, taken in O(1), and readers need no lock.
"""

from __future__ import annotations

import html
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from rxbinance.models import Level
from rxbinance.protocol.book import LocalBook

__all__ = ["PRICE_CACHE_SIZE", "Level", "OrderBook", "PersistentBook"]

PRICE_CACHE_SIZE = 4096
"""Most price strings a PersistentBook remembers the Decimal of before it starts afresh: about
twice the prices of a 1,000-level book, under 1 MB, and refilled at the cost of one Decimal
per price when prices have drifted away."""

_CHUNK = 64  # chunk size after a load or a split; a chunk splits above 2 * _CHUNK levels
_SMALL = _CHUNK // 4  # a chunk shrunk below this is merged into a neighbour


class _Side:
    """One side of the book, prices ascending, as parallel chunked lists.

    ``prices[i]`` and ``qtys[i]`` are chunk i (ascending prices, their quantities); ``maxes[i]``
    is the last price of chunk i, so one bisect finds the chunk of any price. Lists reachable from
    a published snapshot are never mutated: ``apply`` copies what it changes.
    """

    __slots__ = ("maxes", "prices", "qtys", "size")

    def __init__(self) -> None:
        self.prices: list[list[Decimal]] = []
        self.qtys: list[list[Decimal]] = []
        self.maxes: list[Decimal] = []
        self.size = 0

    def load(self, levels: Iterable[Level]) -> None:
        book = {price: qty for price, qty in levels if qty}
        ordered = sorted(book)
        self.prices = [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]
        self.qtys = [[book[p] for p in chunk] for chunk in self.prices]
        self.maxes = [chunk[-1] for chunk in self.prices]
        self.size = len(ordered)


_State = tuple[list[list[Decimal]], list[list[Decimal]], list[Decimal], int]
"""A side's (prices, qtys, maxes, size), as ``_applied`` computes it."""


def _applied(side: _Side, levels: Iterable[Any], cache: dict[str, Decimal] | None) -> _State:
    """The state of ``side`` after ``levels``, built beside it: ``side`` itself is unchanged.

    With ``cache`` None the levels are ``(Decimal, Decimal)``. With a cache they are the JSON
    ``[price, quantity]`` string pairs of a diff event, parsed here on the way, in the same loop
    that applies them (a list of tuples made first and walked again costs about a fifth of
    the whole): each must be a pair of strings parsing to finite decimals, as
    ``DepthUpdate.from_dict`` requires, else ValueError, TypeError or InvalidOperation is
    raised, and since nothing is stored before the end, the book is left as it was. The cache
    maps price strings to their Decimal: a book sees the same prices over and over, and a dict
    lookup costs a third of ``Decimal(str)``.

    Copy-on-write: the quantities' outer list is copied once per call (nearly every call
    changes a quantity); the prices' outer list and maxes only when a level comes or goes. A
    chunk is copied the first time this call changes it and the ids of the copies remembered
    in ``own``, so later levels of the same call write into them directly. Id reuse cannot fool
    this: every chunk that is not ours is kept alive by the previous outer lists until the call
    returns.
    """
    prices = side.prices
    maxes = side.maxes
    qtys = side.qtys[:]
    shared = True  # prices and maxes are still the published lists
    own: set[int] = set()
    last_q = None  # the quantity chunk the previous level wrote to: ours
    size = side.size
    get = None if cache is None else cache.get
    for price, qty in levels:  # a level that is not a pair raises here (ValueError, TypeError)
        if get is not None:
            if qty.__class__ is not str:
                raise TypeError("the quantity is not a string")
            qty = Decimal(qty)  # InvalidOperation unless a number
            if not qty.is_finite():
                raise ValueError("the quantity is not finite")
            p = get(price)  # TypeError when unhashable; only strings are ever stored
            if p is None:
                if price.__class__ is not str:
                    raise TypeError("the price is not a string")
                p = Decimal(price)
                if not p.is_finite():
                    raise ValueError("the price is not finite")
                cache[price] = p  # type: ignore[index]  # (cache is not None with get)
            price = p
        i = bisect_left(maxes, price)
        if i != len(maxes):
            cp = prices[i]
            j = bisect_left(cp, price)  # j < len(cp): price <= maxes[i] == cp[-1]
            if cp[j] == price:
                cq = qtys[i]
                # Most levels of an event land in the chunk of the one before (the top of the
                # book): an identity test spares the set lookup.
                if cq is not last_q:
                    if id(cq) not in own:
                        cq = qtys[i] = cq[:]
                        own.add(id(cq))
                    last_q = cq
                if qty:  # by far the most common case: a new quantity for a level
                    cq[j] = qty
                    continue
                # Quantity 0 (any spelling: a Decimal zero is falsy): the level goes.
                if shared:
                    prices, maxes, shared = prices[:], maxes[:], False
                size -= 1
                if len(cp) == 1:
                    del prices[i], qtys[i], maxes[i]
                    continue
                if id(cp) not in own:
                    cp = prices[i] = cp[:]
                    own.add(id(cp))
                del cp[j], cq[j]
                if j == len(cp):
                    maxes[i] = cp[-1]
                if len(cp) < _SMALL and len(prices) > 1:
                    _merge(prices, qtys, maxes, i, own)
                continue
            if not qty:
                continue  # removing a level that is not there is normal
        elif not qty:
            continue  # above every price of the side (or the side is empty): the same
        elif not maxes:  # the first level of an empty side
            if shared:
                prices, maxes, shared = prices[:], maxes[:], False
            prices.append([price])
            qtys.append([qty])
            maxes.append(price)
            own.update((id(prices[-1]), id(qtys[-1])))
            size += 1
            continue
        else:  # above every price: appended to the last chunk
            i -= 1
            cp = prices[i]
            j = len(cp)
        # A new level at cp[j].
        if shared:
            prices, maxes, shared = prices[:], maxes[:], False
        if id(cp) not in own:
            cp = prices[i] = cp[:]
            own.add(id(cp))
        cq = qtys[i]
        if id(cq) not in own:
            cq = qtys[i] = cq[:]
            own.add(id(cq))
        cp.insert(j, price)
        cq.insert(j, qty)
        if j == len(cp) - 1:
            maxes[i] = price
        size += 1
        if len(cp) > 2 * _CHUNK:
            _split(prices, qtys, maxes, i, own)
    return prices, qtys, maxes, size


def _split(
    prices: list[list[Decimal]],
    qtys: list[list[Decimal]],
    maxes: list[Decimal],
    i: int,
    own: set[int],
) -> None:
    cp, cq = prices[i], qtys[i]
    half = len(cp) // 2
    low_p, high_p, low_q, high_q = cp[:half], cp[half:], cq[:half], cq[half:]
    prices[i : i + 1] = [low_p, high_p]
    qtys[i : i + 1] = [low_q, high_q]
    maxes[i : i + 1] = [low_p[-1], high_p[-1]]
    own.update((id(low_p), id(high_p), id(low_q), id(high_q)))


def _merge(
    prices: list[list[Decimal]],
    qtys: list[list[Decimal]],
    maxes: list[Decimal],
    i: int,
    own: set[int],
) -> None:
    # Merge chunk i with a neighbour so that removals cannot leave many tiny chunks behind
    # (the outer lists, copied on every event, would grow towards one chunk per level).
    lo = i if i + 1 < len(prices) else i - 1
    merged_p = prices[lo] + prices[lo + 1]
    merged_q = qtys[lo] + qtys[lo + 1]
    prices[lo : lo + 2] = [merged_p]
    qtys[lo : lo + 2] = [merged_q]
    maxes[lo : lo + 2] = [merged_p[-1]]
    own.update((id(merged_p), id(merged_q)))
    if len(merged_p) > 2 * _CHUNK:
        _split(prices, qtys, maxes, lo, own)


class PersistentBook(LocalBook):
    """A :class:`~rxbinance.protocol.book.LocalBook` whose states can be kept for free.

    Same operations and semantics as LocalBook (``BookSync`` drives it unchanged), stored as two
    chunked :class:`_Side` structures; :meth:`view` returns an immutable :class:`OrderBook` of
    the current state in O(1). :meth:`apply_json` takes a diff event's levels as decoded from
    JSON and parses them in the loop that applies them (the order book pipeline's hot path).
    Not thread-safe: its owner serialises calls (``order_book`` holds its lock).
    """

    __slots__ = ("_a", "_b", "_prices")

    def __init__(self) -> None:
        super().__init__()  # LocalBook's own (unused) containers: a few empty objects
        self._b = _Side()
        self._a = _Side()
        self._prices: dict[str, Decimal] = {}  # apply_json's price string -> Decimal cache

    @property
    def bids(self) -> Mapping[Decimal, Decimal]:
        """A read-only price -> quantity mapping of the bid side (a copy, built on each call)."""
        return MappingProxyType(_as_dict(self._b))

    @property
    def asks(self) -> Mapping[Decimal, Decimal]:
        """A read-only price -> quantity mapping of the ask side (a copy, built on each call)."""
        return MappingProxyType(_as_dict(self._a))

    def best_bid(self) -> Level | None:
        b = self._b
        return (b.prices[-1][-1], b.qtys[-1][-1]) if b.prices else None

    def best_ask(self) -> Level | None:
        a = self._a
        return (a.prices[0][0], a.qtys[0][0]) if a.prices else None

    def top_bids(self, n: int) -> list[Level]:
        b = self._b
        return _top_bids(b.prices, b.qtys, n)

    def top_asks(self, n: int) -> list[Level]:
        a = self._a
        return _top_asks(a.prices, a.qtys, n)

    @property
    def crossed(self) -> bool:
        b, a = self._b.prices, self._a.prices
        return bool(b and a) and b[-1][-1] >= a[0][0]

    def clear(self) -> None:
        self._b = _Side()
        self._a = _Side()

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        # Fresh sides: views of the previous book keep the old ones.
        self._b = _Side()
        self._a = _Side()
        self._b.load(bids)
        self._a.load(asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self._apply(bids, asks, None)

    def apply_json(self, bids: list[Any], asks: list[Any]) -> None:
        """``apply`` for the levels of a diff event as decoded from JSON (lists of
        ``[price, quantity]`` strings), parsed on the way exactly as ``DepthUpdate.from_dict``
        parses them. All or nothing: a level it would refuse raises ValueError, TypeError or
        ``decimal.InvalidOperation`` and leaves the book as it was."""
        if str in map(type, bids) or str in map(type, asks):
            # A two-character string would unpack as a pair ("12": price "1", quantity "2").
            raise TypeError("a level is a string, not a [price, quantity] array")
        cache = self._prices
        if len(cache) > PRICE_CACHE_SIZE:
            cache.clear()  # prices drift: start afresh rather than grow without end
        self._apply(bids, asks, cache)

    def _apply(
        self, bids: Iterable[Any], asks: Iterable[Any], cache: dict[str, Decimal] | None
    ) -> None:
        # Both sides are computed before either is stored: all or nothing.
        b = _applied(self._b, bids, cache) if bids else None
        a = _applied(self._a, asks, cache) if asks else None
        if b is not None:
            side = self._b
            side.prices, side.qtys, side.maxes, side.size = b
        if a is not None:
            side = self._a
            side.prices, side.qtys, side.maxes, side.size = a

    def view(self, symbol: str, update_id: int, event_time: int | None) -> OrderBook:
        """The current state as an immutable OrderBook, in O(1)."""
        b, a = self._b, self._a
        return OrderBook(
            symbol, update_id, event_time, b.prices, b.qtys, b.size, a.prices, a.qtys, a.size
        )

    def __repr__(self) -> str:
        return (
            f"<PersistentBook {self._b.size} bids, {self._a.size} asks, "
            f"best {self.best_bid()} / {self.best_ask()}>"
        )


def _as_dict(side: _Side) -> dict[Decimal, Decimal]:
    return {
        p: q
        for cp, cq in zip(side.prices, side.qtys, strict=True)
        for p, q in zip(cp, cq, strict=True)
    }


def _top_bids(prices: list[list[Decimal]], qtys: list[list[Decimal]], n: int | None) -> list[Level]:
    if n is not None and prices and 0 < n <= len(prices[-1]):  # the usual read: the top chunk
        return list(zip(prices[-1][: -n - 1 : -1], qtys[-1][: -n - 1 : -1], strict=True))
    out: list[Level] = []
    for cp, cq in zip(reversed(prices), reversed(qtys), strict=True):
        need = len(cp) if n is None else n - len(out)
        if need <= 0:
            break
        if need >= len(cp):
            out.extend(zip(reversed(cp), reversed(cq), strict=True))
        else:
            out.extend(zip(cp[: -need - 1 : -1], cq[: -need - 1 : -1], strict=True))
    return out


def _top_asks(prices: list[list[Decimal]], qtys: list[list[Decimal]], n: int | None) -> list[Level]:
    if n is not None and prices and 0 < n <= len(prices[0]):  # the usual read: the top chunk
        return list(zip(prices[0][:n], qtys[0][:n], strict=True))
    out: list[Level] = []
    for cp, cq in zip(prices, qtys, strict=True):
        need = len(cp) if n is None else n - len(out)
        if need <= 0:
            break
        if need >= len(cp):
            out.extend(zip(cp, cq, strict=True))
        else:
            out.extend(zip(cp[:need], cq[:need], strict=True))
    return out


class OrderBook:
    """An immutable snapshot of a local order book, as :func:`rxbinance.order_book` emits it.

    Every emitted OrderBook is consistent with Binance's book at ``update_id`` (the ``u`` of the
    last diff event applied, or the REST snapshot's ``lastUpdateId``) and never crossed. It
    never changes after it was emitted: keep it, hand it to another thread, compare two of
    them. Taking it costs O(1) whatever the depth; reading the top ``n`` levels costs O(n).

    Attributes:
        symbol: the symbol, upper case (``"BTCUSDT"``).
        update_id: the book's update id.
        event_time: ``E`` (epoch ms) of the latest diff event received when this book was
            emitted, or None if none carried one.
    """

    __slots__ = (
        "_ask_count",
        "_ask_prices",
        "_ask_qtys",
        "_bid_count",
        "_bid_prices",
        "_bid_qtys",
        "event_time",
        "symbol",
        "update_id",
    )

    def __init__(
        self,
        symbol: str,
        update_id: int,
        event_time: int | None,
        bid_prices: list[list[Decimal]],
        bid_qtys: list[list[Decimal]],
        bid_count: int,
        ask_prices: list[list[Decimal]],
        ask_qtys: list[list[Decimal]],
        ask_count: int,
    ) -> None:
        self.symbol = symbol
        self.update_id = update_id
        self.event_time = event_time
        self._bid_prices = bid_prices
        self._bid_qtys = bid_qtys
        self._bid_count = bid_count
        self._ask_prices = ask_prices
        self._ask_qtys = ask_qtys
        self._ask_count = ask_count

    @property
    def best_bid(self) -> Level | None:
        """The highest bid as ``(price, quantity)``, or None when there are no bids."""
        if not self._bid_prices:
            return None
        return self._bid_prices[-1][-1], self._bid_qtys[-1][-1]

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask as ``(price, quantity)``, or None when there are no asks."""
        if not self._ask_prices:
            return None
        return self._ask_prices[0][0], self._ask_qtys[0][0]

    @property
    def spread(self) -> Decimal | None:
        """Best ask price minus best bid price (always > 0), or None when a side is empty."""
        if not self._bid_prices or not self._ask_prices:
            return None
        return self._ask_prices[0][0] - self._bid_prices[-1][-1]

    @property
    def mid(self) -> Decimal | None:
        """The mean of the best bid and best ask prices, or None when a side is empty."""
        if not self._bid_prices or not self._ask_prices:
            return None
        return (self._ask_prices[0][0] + self._bid_prices[-1][-1]) / 2

    def bids(self, n: int | None = None) -> list[Level]:
        """The ``n`` highest bids (every bid when ``n`` is None), best (highest) first."""
        return _top_bids(self._bid_prices, self._bid_qtys, n)

    def asks(self, n: int | None = None) -> list[Level]:
        """The ``n`` lowest asks (every ask when ``n`` is None), best (lowest) first."""
        return _top_asks(self._ask_prices, self._ask_qtys, n)

    @property
    def bid_levels(self) -> int:
        """How many bid levels the book holds."""
        return self._bid_count

    @property
    def ask_levels(self) -> int:
        """How many ask levels the book holds."""
        return self._ask_count

    def _repr_html_(self) -> str:
        """Jupyter's rich display: a price ladder of the 10 best levels a side (asks above,
        bids below, best prices meeting in the middle), with the spread, mid, update id and
        level counts. Every value is HTML-escaped."""
        return _html_ladder(self, 10)

    def __repr__(self) -> str:
        return (
            f"<OrderBook {self.symbol} update_id={self.update_id} "
            f"bid={_show(self.best_bid)} ask={_show(self.best_ask)} "
            f"levels={self._bid_count}/{self._ask_count}>"
        )


def _show(level: Level | None) -> str:
    return "-" if level is None else f"{level[1]}@{level[0]}"


def _html_ladder(book: OrderBook, depth: int) -> str:
    def cell(value: object, style: str = "") -> str:
        return f"<td style='text-align:right;{style}'>{html.escape(str(value))}</td>"

    ask_style, bid_style = "color:#c0392b", "color:#1e8449"
    rows = [  # asks from the depth-th best down to the best, so the best prices meet mid-table
        f"<tr>{cell('')}{cell(price, ask_style)}{cell(qty)}</tr>"
        for price, qty in reversed(book.asks(depth))
    ]
    spread, mid = book.spread, book.mid
    middle = "one side is empty" if spread is None else f"spread {spread} · mid {mid}"
    rows.append(
        f"<tr><td colspan='3' style='text-align:center'><i>{html.escape(middle)}</i></td></tr>"
    )
    rows.extend(
        f"<tr>{cell(qty)}{cell(price, bid_style)}{cell('')}</tr>" for price, qty in book.bids(depth)
    )
    when = ""
    if book.event_time is not None:
        try:
            stamp = datetime.fromtimestamp(book.event_time / 1000, UTC)
            when = f" · {stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond // 1000:03d} UTC"
        except (OverflowError, ValueError, OSError):
            when = f" · event time {book.event_time}"
    title = f"{book.symbol} · update id {book.update_id}{when}"
    levels = f"{book.bid_levels} bid levels, {book.ask_levels} ask levels"
    return (
        f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
        "<thead><tr><th style='text-align:right'>bid qty</th>"
        "<th style='text-align:right'>price</th><th style='text-align:right'>ask qty</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table><small>{html.escape(levels)}</small>"
    )
