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

from rxbinance.models import Level
from rxbinance.protocol.book import LocalBook

__all__ = ["Level", "OrderBook", "PersistentBook"]

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

    def apply(self, levels: Iterable[Level]) -> None:
        # Copy-on-write, all or nothing: the new state is built beside the old one and stored
        # at the end. The quantities' outer list is copied once per call (nearly every call
        # changes a quantity); the prices' outer list and maxes only when a level comes or
        # goes. A chunk is copied the first time this call changes it, and the ids of the
        # copies are remembered so later levels of the same call write into them directly. Id
        # reuse cannot fool this: every chunk that is not ours is kept alive by the previous
        # outer lists until the call returns.
        prices = self.prices
        maxes = self.maxes
        qtys = self.qtys[:]
        shared = True  # prices and maxes are still the published lists
        own_p: set[int] = set()
        own_q: set[int] = set()
        last_q = None  # the quantity chunk the previous level wrote to: ours
        size = self.size
        for price, qty in levels:
            i = bisect_left(maxes, price)
            if i != len(maxes):
                cp = prices[i]
                j = bisect_left(cp, price)  # j < len(cp): price <= maxes[i] == cp[-1]
                if cp[j] == price:
                    cq = qtys[i]
                    # Most levels of an event land in the chunk of the one before (the top of
                    # the book): an identity test spares the set lookup.
                    if cq is not last_q:
                        if id(cq) not in own_q:
                            cq = qtys[i] = cq[:]
                            own_q.add(id(cq))
                        last_q = cq
                    if qty:  # by far the most common case: a new quantity for a level
                        cq[j] = qty
                        continue
                    # Quantity 0: the level goes.
                    if shared:
                        prices, maxes, shared = prices[:], maxes[:], False
                    size -= 1
                    if len(cp) == 1:
                        del prices[i], qtys[i], maxes[i]
                        continue
                    if id(cp) not in own_p:
                        cp = prices[i] = cp[:]
                        own_p.add(id(cp))
                    del cp[j], cq[j]
                    if j == len(cp):
                        maxes[i] = cp[-1]
                    if len(cp) < _SMALL and len(prices) > 1:
                        _merge(prices, qtys, maxes, i, own_p, own_q)
                    continue
                if not qty:
                    continue  # removing a level that is not there is normal
            elif not qty:
                continue  # above every price of the side (or the side is empty): same
            elif not maxes:  # the first level of an empty side
                if shared:
                    prices, maxes, shared = prices[:], maxes[:], False
                prices.append([price])
                qtys.append([qty])
                maxes.append(price)
                own_p.add(id(prices[-1]))
                own_q.add(id(qtys[-1]))
                size += 1
                continue
            else:  # above every price: appended to the last chunk
                i -= 1
                cp = prices[i]
                j = len(cp)
            # A new level at cp[j].
            if shared:
                prices, maxes, shared = prices[:], maxes[:], False
            if id(cp) not in own_p:
                cp = prices[i] = cp[:]
                own_p.add(id(cp))
            cq = qtys[i]
            if id(cq) not in own_q:
                cq = qtys[i] = cq[:]
                own_q.add(id(cq))
            cp.insert(j, price)
            cq.insert(j, qty)
            if j == len(cp) - 1:
                maxes[i] = price
            size += 1
            if len(cp) > 2 * _CHUNK:
                _split(prices, qtys, maxes, i, own_p, own_q)
        self.prices = prices
        self.qtys = qtys
        self.maxes = maxes
        self.size = size


def _split(
    prices: list[list[Decimal]],
    qtys: list[list[Decimal]],
    maxes: list[Decimal],
    i: int,
    own_p: set[int],
    own_q: set[int],
) -> None:
    cp, cq = prices[i], qtys[i]
    half = len(cp) // 2
    low_p, high_p, low_q, high_q = cp[:half], cp[half:], cq[:half], cq[half:]
    prices[i : i + 1] = [low_p, high_p]
    qtys[i : i + 1] = [low_q, high_q]
    maxes[i : i + 1] = [low_p[-1], high_p[-1]]
    own_p.update((id(low_p), id(high_p)))
    own_q.update((id(low_q), id(high_q)))


def _merge(
    prices: list[list[Decimal]],
    qtys: list[list[Decimal]],
    maxes: list[Decimal],
    i: int,
    own_p: set[int],
    own_q: set[int],
) -> None:
    # Merge chunk i with a neighbour so that removals cannot leave many tiny chunks behind
    # (the outer lists, copied on every event, would grow towards one chunk per level).
    lo = i if i + 1 < len(prices) else i - 1
    merged_p = prices[lo] + prices[lo + 1]
    merged_q = qtys[lo] + qtys[lo + 1]
    prices[lo : lo + 2] = [merged_p]
    qtys[lo : lo + 2] = [merged_q]
    maxes[lo : lo + 2] = [merged_p[-1]]
    own_p.add(id(merged_p))
    own_q.add(id(merged_q))
    if len(merged_p) > 2 * _CHUNK:
        _split(prices, qtys, maxes, lo, own_p, own_q)


class PersistentBook(LocalBook):
    """A :class:`~rxbinance.protocol.book.LocalBook` whose states can be kept for free.

    Same operations and semantics as LocalBook (``BookSync`` drives it unchanged), stored as two
    chunked :class:`_Side` structures; :meth:`view` returns an immutable :class:`OrderBook` of
    the current state in O(1).
    """

    __slots__ = ("_a", "_b")

    def __init__(self) -> None:
        super().__init__()  # LocalBook's own (unused) containers: a few empty objects
        self._b = _Side()
        self._a = _Side()

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
        if bids:
            self._b.apply(bids)
        if asks:
            self._a.apply(asks)

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
