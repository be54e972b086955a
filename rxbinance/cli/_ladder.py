"""The order book ladder of ``rxbinance book``, and the terminal screen that redraws it.

:func:`ladder` is pure (an OrderBook in, lines out). :class:`Screen` owns the in-place redraw:
it moves the cursor back up over the block it drew last and overwrites it, so the ladder stays
put instead of scrolling. That only works while the block fits the terminal (a block taller
than the window scrolls its top away, where the cursor cannot go back to), so the screen clips
every block to the window and :func:`levels_that_fit` tells the book how deep to draw.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from rxbinance.cli._format import Precision, basis_points
from rxbinance.pipelines import OrderBook

__all__ = ["LADDER_FRAME", "Screen", "ladder", "levels_that_fit"]

#: Lines of a ladder besides its levels: the title, the column header and the spread line.
LADDER_FRAME = 3
_DEFAULT_SIZE = os.terminal_size((80, 24))


def _decimals(values: Sequence[Decimal]) -> int:
    """The fewest decimals that show every value exactly (at most Binance's 8)."""
    places = 0
    for value in values:
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < 0:
            places = max(places, -exponent)
    return min(places, 8)


def _fmt(value: Decimal, places: int) -> str:
    return f"{value:,.{places}f}"


def levels_that_fit(depth: int, rows: int, extra: int) -> int:
    """How many levels a side (at most ``depth``, at least 1) a ladder may show so that it
    and ``extra`` more lines fit ``rows`` terminal rows, one row kept for the cursor."""
    return max(1, min(depth, (rows - 1 - extra - LADDER_FRAME) // 2))


def ladder(book: OrderBook, depth: int, precision: Precision | None = None) -> list[str]:
    """The top ``depth`` levels a side as a ladder: asks above (highest first), the spread
    line, bids below (highest first); a title with the symbol and update id above.

    Prices and quantities have the decimals of ``precision`` (the symbol's tick and step
    sizes), or the fewest that show the levels on screen exactly; never fewer than a value
    needs. The spread is given in basis points with two significant digits at least."""
    asks = book.asks(depth)
    bids = book.bids(depth)
    levels = asks + bids
    price_places = _decimals([price for price, _ in levels])
    qty_places = _decimals([qty for _, qty in levels])
    if precision is not None:
        price_places = max(price_places, precision.price)
        qty_places = max(qty_places, precision.quantity)
    prices = [_fmt(price, price_places) for price, _ in levels]
    qtys = [_fmt(qty, qty_places) for _, qty in levels]
    pw = max([len(p) for p in prices] + [len("price")])
    qw = max([len(q) for q in qtys] + [len("quantity")])

    when = ""
    if book.event_time is not None:
        moment = datetime.fromtimestamp(book.event_time / 1000, UTC)
        when = moment.strftime("  %H:%M:%S.") + f"{book.event_time % 1000:03d} UTC"
    lines = [f"{book.symbol}  update id {book.update_id}{when}"]
    lines.append(f"      {'price':>{pw}}  {'quantity':>{qw}}")
    for i in range(len(asks) - 1, -1, -1):  # the highest ask on top, the best ask last
        lines.append(f"ask   {prices[i]:>{pw}}  {qtys[i]:>{qw}}")
    spread, mid = book.spread, book.mid
    if spread is not None and mid is not None:
        places = max(price_places, 1)
        lines.append(
            f"      spread {_fmt(spread, price_places)} ({basis_points(spread, mid)})  "
            f"mid {_fmt(mid, places + 1).rstrip('0').rstrip('.')}"
        )
    else:
        lines.append("      spread -  (one side of the book is empty)")
    for i in range(len(asks), len(levels)):
        lines.append(f"bid   {prices[i]:>{pw}}  {qtys[i]:>{qw}}")
    return lines


class Screen:
    """Draws blocks of lines on a terminal, each over the previous one.

    ANSI only: the cursor goes up over the last block (``ESC [ n F``), each line is cleared
    (``ESC [ 2K``) and rewritten, and anything below is erased (``ESC [ J``) when the new block
    is shorter. The cursor is hidden while drawing and shown again by :meth:`close`.

    A block is clipped to the window, measured at every draw (so a resize is followed): at
    most ``rows - 1`` lines (the last row holds the cursor) of at most ``columns - 1``
    characters (a line that wraps would take two rows the cursor-up does not count).
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._height = 0
        self._out.write("\x1b[?25l")  # hide the cursor: it would flicker over the ladder

    def size(self) -> os.terminal_size:
        """The window's size (columns, lines); 80 x 24 when it cannot be read (or a pseudo
        terminal reports 0 x 0, as one whose size nobody set does)."""
        try:
            size = os.get_terminal_size(self._out.fileno())
        except (OSError, ValueError):
            return _DEFAULT_SIZE
        return size if size.columns > 0 and size.lines > 0 else _DEFAULT_SIZE

    def draw(self, lines: list[str]) -> None:
        columns, rows = self.size()
        width = max(1, columns - 1)
        lines = [
            line if len(line) <= width else line[: width - 1] + "…"
            for line in lines[: max(1, rows - 1)]
        ]
        parts = []
        if self._height:
            parts.append(f"\x1b[{self._height}F")
        for line in lines:
            parts.append(f"\x1b[2K{line}\n")
        parts.append("\x1b[J")
        self._out.write("".join(parts))
        self._out.flush()
        self._height = len(lines)

    def close(self) -> None:
        self._out.write("\x1b[?25h")
        self._out.flush()
