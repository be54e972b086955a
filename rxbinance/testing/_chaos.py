"""A chaos run: rxbinance's streams against FakeBinance under a seeded storm of faults, counted
against the market's true history (issue 11, section 5).

:func:`run_chaos` subscribes, for each of ``symbols`` simulated symbols, to ``agg_trades``,
``trades``, ``klines(.., "1s")``, the raw diff depth stream (``@depth@100ms``) and
:func:`rxbinance.order_book` on one :class:`~rxbinance.BinanceStreams` (``fake.streams()``,
REST included, fast retries), lets the market tick, and injects a seeded random mix of every
fault :class:`FakeBinance` has for ``duration`` seconds:

- ``drop``: :meth:`~FakeBinance.drop_connections` without a close frame (1006) or with close
  code 1000, 1001, 1008 or 1011;
- ``refuse``: :meth:`~FakeBinance.refuse_connections` with HTTP 503, 429 or 500 for a while
  (451, which no retry fixes, only with ``fatal=True``: its streams end, see ``ended``);
- ``stall``: :meth:`~FakeBinance.stall` shorter than ``stall_timeout`` (data lost, no event)
  and longer (the client's stall detector reconnects);
- ``shutdown``: :meth:`~FakeBinance.server_shutdown` with close code 1001 or 1000;
- ``depth_gap``: :meth:`~FakeBinance.inject_gap` on a random symbol (1-5 updates);
- ``malformed``: :meth:`~FakeBinance.send_malformed` (text that is not JSON);
- ``junk``: :meth:`~FakeBinance.publish` of valid JSON of the wrong kind (an unknown event, a
  ticker, a SUBSCRIBE reply, a list, a number, ``null``, a string) to a random stream;
- ``rest429`` / ``rest418``: :meth:`~FakeBinance.rest_fault` for 1-5 REST requests;
- rollovers: ``FakeBinance(max_connection_age=...)`` closes each connection (1001) at that age.

Then it stops injecting, waits up to ``settle_timeout`` seconds for every stream to deliver
data newer than the end of the storm, closes the streams (timing ``close()``) and counts,
against the market's retained history (:meth:`Market.agg_trade_history`,
:meth:`Market.trade_history`, :meth:`Market.rest_klines`, :meth:`Market.true_book`):

- per sequenced stream kind (``aggTrade``, ``trade``, ``kline`` closed candles, ``depth``
  diff events), summed over symbols: ids (candle open times, update ids) in the true history
  between the first and the last one a subscriber saw (or a Gap named) that it never received
  (``lost``), grouped in ``holes`` (maximal runs of consecutive lost ids); items received more
  than once (``duplicated``); items older than one received before (``out_of_order``); items
  whose content differs from the truth (``wrong``: price, quantity, time, side; OHLCV);
- ``Gap`` values received in-band (instances of ``rxbinance.events.Gap`` when that class
  exists), whether each one's ``[first, last]`` is exactly a hole (``exact_gaps``), and the
  holes that got exactly one Gap, with exactly their bounds (``reported_holes``); the Gaps on
  ``streams.events`` are counted apart (``event_gaps``);
- order books emitted, and those whose levels differ from :meth:`FakeBinance.true_book` at
  their ``update_id`` (the fake's book is kept shallower than the snapshot ``limit``, so the
  whole book is compared);
- subscriptions that ended (error or completion) before ``close()``; items in-band that are
  neither data of their stream (with its ids) nor Gap (``foreign``: junk let through, the
  give-up dict); threads named ``rxbinance...`` still alive after ``close()``, and the
  seconds ``close()`` took.

The run is seeded (market and fault schedule), not deterministic: thread timing decides what
each fault hits. Every wait is bounded; the harness itself starts no thread.
"""

from __future__ import annotations

import heapq
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import rxbinance.events
from rxbinance.errors import InvalidInputError
from rxbinance.pipelines import OrderBook, order_book

from ._market import Market

if TYPE_CHECKING:
    from ._server import FakeBinance

__all__ = ["ChaosReport", "SequenceTally", "run_chaos"]

#: Symbols of the run, in order; beyond these, ``SYM<n>USDT`` (the market simulates any name).
_SYMBOLS: Final = (
    "BTCUSDT", "ETHUSDT", "BNBBTC", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "TRXUSDT",
    "DOTUSDT", "LTCUSDT", "LINKUSDT", "AVAXUSDT", "ATOMUSDT", "XLMUSDT", "ETCUSDT", "BCHUSDT",
    "NEARUSDT", "FILUSDT", "APTUSDT", "ARBUSDT",
)  # fmt: skip

#: The sequenced stream kinds, in the order the summary line names them.
KINDS: Final = ("aggTrade", "trade", "kline", "depth")

#: Fields that must equal the truth for a received item to count as right.
_TRADE_FIELDS: Final = ("p", "q", "T", "m")
_AGG_FIELDS: Final = ("p", "q", "f", "l", "T", "m")

#: The default relative weights of the faults in the seeded mix (``run_chaos(mix=...)``).
#: Disruptive faults are kept rarer than the cheap ones: each drop, shutdown or long stall makes
#: every stream repair from REST at once (about 220 weight for 20 symbols: aggTrades 4, klines
#: 2, a 100-level snapshot 5 each), and a short stall makes every aggTrade stream repair. At the
#: default ``fault_interval`` (0.1 s) that is one mass repair every 2.5 s or so, which
#: rxbinance's default REST budget (3,000 weight a minute, bursts of 1,000) can pay for over a
#: run of a minute or less: a perfect client loses nothing at these defaults.
DEFAULT_MIX: Final[Mapping[str, int]] = {
    "drop": 3,
    "shutdown": 1,
    "stall_long": 1,
    "stall_short": 3,
    "refuse": 20,
    "depth_gap": 50,
    "malformed": 40,
    "junk": 50,
    "rest429": 20,
    "rest418": 12,
}

#: Valid JSON of the wrong kind for every stream here, sent by each ``junk`` fault: rxbinance
#: must skip it (a MalformedFrame event), never pass it to a subscriber.
JUNK: Final[tuple[Any, ...]] = (
    {"e": "junk", "x": 1},
    {"e": "24hrTicker", "s": "JUNK"},
    {"result": None, "id": 999_999},
    [1, 2, 3],
    "42",
    "null",
    '"a string"',
)

_CLOSE_CODES: Final = (None, 1000, 1001, 1008, 1011)


@dataclass(frozen=True, slots=True)
class SequenceTally:
    """What the subscribers of one sequenced stream kind saw, summed over symbols.

    ``ids`` are aggregate trade ids (``aggTrade``), trade ids (``trade``), open times of closed
    candles (``kline``) or book update ids (``depth``). ``repairable``: whether rxbinance could
    refill this kind's holes from the fake's REST (so every hole should be refilled), else
    every hole should be reported by exactly one Gap.
    """

    kind: str
    streams: int
    received: int
    lost: int
    holes: int
    duplicated: int
    out_of_order: int
    wrong: int
    gaps: int
    exact_gaps: int
    reported_holes: int
    repairable: bool

    @property
    def silent_holes(self) -> int:
        """Holes with no exact Gap: data missing that nobody was told about."""
        return self.holes - self.reported_holes


@dataclass(frozen=True, slots=True)
class ChaosReport:
    """The figures of one :func:`run_chaos` (see the module docstring for what each counts)."""

    seed: int
    duration: float
    symbols: int
    rest: bool
    gap_class: bool  # rxbinance.events.Gap exists
    faults: Mapping[str, int]
    rollovers: int
    tallies: Mapping[str, SequenceTally]
    books: int
    books_wrong: int
    event_gaps: int
    ended: int
    foreign: int
    junk_kinds: int  # kinds of wrong-kind JSON that reached a connection (of len(JUNK))
    unsettled: int
    rest_requests: int
    threads_left: tuple[str, ...]
    close_seconds: float
    failures: tuple[str, ...] = field(default=())  # first few problems, for messages

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())

    def line(self) -> str:
        """The one-line summary ``benchmarks/chaos.py`` prints last."""
        t = self.tallies

        def seq(name: str, kind: str) -> str:
            s = t[kind]
            share = s.lost / (s.lost + s.received - s.duplicated) if s.lost else 0.0
            return (
                f"{name} lost={s.lost} ({share:.1%}) dup={s.duplicated} ooo={s.out_of_order} "
                f"wrong={s.wrong} holes={s.holes} silent={s.silent_holes}"
            )

        gaps = sum(s.gaps for s in t.values())
        exact = sum(s.exact_gaps for s in t.values())
        k = t["kline"]
        return (
            f"chaos: seed={self.seed} duration={self.duration:g}s symbols={self.symbols} "
            f"rest={'on' if self.rest else 'refused'} faults={self.fault_count} "
            f"rollovers={self.rollovers} | {seq('aggtrades', 'aggTrade')} | "
            f"{seq('trades', 'trade')} | candles missing={k.lost} dup={k.duplicated} "
            f"wrong={k.wrong} silent={k.silent_holes} | depth holes={t['depth'].holes} "
            f"silent={t['depth'].silent_holes} | books wrong={self.books_wrong}/{self.books} | "
            f"gaps={gaps} ({exact} exact{'' if self.gap_class else ', no Gap class'}) "
            f"event_gaps={self.event_gaps} | ended={self.ended} foreign={self.foreign} "
            f"(junk kinds sent {self.junk_kinds}/{len(JUNK)}) "
            f"unsettled={self.unsettled} rest_requests={self.rest_requests} | "
            f"threads={len(self.threads_left)} close={self.close_seconds:.2f}s"
        )


class _Tape:
    """Everything one subscription received, in order (appended on its delivery thread)."""

    def __init__(self, kind: str, symbol: str) -> None:
        self.kind = kind
        self.symbol = symbol
        self.items: list[Any] = []
        self.ended = False

    def on_next(self, item: Any) -> None:
        self.items.append(item)  # list.append is atomic: readers only take len() or copy

    def on_end(self, *_: object) -> None:
        self.ended = True


def run_chaos(
    *,
    seed: int = 1,
    duration: float = 20.0,
    symbols: int = 20,
    rest: bool = True,
    fault_interval: float = 0.1,
    mix: Mapping[str, int] = DEFAULT_MIX,
    tick_interval: float = 0.1,
    stall_timeout: float = 1.0,
    max_connection_age: float | None = 6.0,
    settle_timeout: float = 45.0,
    fatal: bool = False,
    log: Callable[[str], None] | None = None,
) -> ChaosReport:
    """Run one chaos session (see the module docstring) and return its figures.

    ``rest=False`` points the streams' REST at a local port that refuses every connection:
    nothing can be repaired, so every hole must come out as a Gap. ``fault_interval`` is the
    mean of the exponential pause between faults (seconds); ``mix`` the relative weight of each
    fault (``drop``, ``shutdown``, ``stall_long``, ``stall_short``, ``refuse``, ``depth_gap``,
    ``malformed``, ``junk``, ``rest429``, ``rest418``; those left out never happen, and the
    ``rest...`` ones are left out when ``rest`` is false; default :data:`DEFAULT_MIX`).
    ``max_connection_age`` is the fake's connection age limit: connections older are closed
    with 1001 (rollovers). ``fatal=True`` adds 451 to the refusals: streams refused with it end
    (``on_error``, counted in ``ended``), as no retry can fix a restricted location. ``log``, if
    given, receives a few progress lines. Raises ValueError for a setting out of range.
    """
    from ._server import FakeBinance  # the websockets extra: only when a run starts

    _check(symbols >= 1, "symbols", symbols, "an int >= 1")
    _check(duration >= 0, "duration", duration, "seconds >= 0")
    _check(fault_interval > 0, "fault_interval", fault_interval, "seconds > 0")
    _check(tick_interval > 0, "tick_interval", tick_interval, "seconds > 0")
    _check(stall_timeout > 0, "stall_timeout", stall_timeout, "seconds > 0")
    _check(settle_timeout >= 0, "settle_timeout", settle_timeout, "seconds >= 0")
    unknown = sorted(set(mix) - set(DEFAULT_MIX))
    _check(not unknown, "mix", unknown, f"fault names among {sorted(DEFAULT_MIX)}")
    _check(
        all(isinstance(w, int) and w >= 0 for w in mix.values()) and sum(mix.values()) > 0,
        "mix",
        dict(mix),
        "int weights >= 0, not all 0",
    )
    say = log or (lambda _: None)
    gap_class: type[Any] | None = getattr(rxbinance.events, "Gap", None)
    names = [_SYMBOLS[i] if i < len(_SYMBOLS) else f"SYM{i}USDT" for i in range(symbols)]
    # A shallow book (about 50 levels a side) inside a 100-level snapshot (weight 5): the whole
    # local book is comparable with the truth, and mass resyncs stay within the weight limit.
    market = Market(names, seed=seed, book_depth=50)
    # Server pings a few times per stall_timeout, so a live but quiet socket (a 1 s kline) is
    # never taken for a stalled one; the incoming limit is raised to admit the pongs.
    ping = stall_timeout / 3
    fake = FakeBinance(
        market=market,
        tick_interval=tick_interval,
        ping_interval=ping,
        pong_timeout=max(5.0, 5 * stall_timeout),
        max_connection_age=max_connection_age,
        max_incoming_per_second=max(5, int(2 / ping) + 1),
        # Every fault reconnects every socket: far more attempts than Binance would allow (the
        # limit itself is tested in tests/test_fake_pool_limits.py and test_pool.py).
        max_connection_attempts=None,
        close_timeout=0.5,
    )
    before = {t.ident for t in threading.enumerate()}
    refused_rest: socket.socket | None = None
    with fake:
        settings: dict[str, Any] = {
            "retry_delay": 0.05,
            "max_retry_delay": 0.5,
            "max_retries": 1_000_000,
            "stall_timeout": stall_timeout,
            "connect_timeout": 2.0,
            # The storm drops every connection far more often than Binance would: the budget of
            # connection attempts (tests/test_reconnect_virtual_time.py) would only slow it.
            "connection_attempts": None,
            # Roll over make-before-break ahead of the fake's age limit, as ahead of Binance's
            # 24 h: the connections that live long enough are replaced without a gap.
            "rollover_after": max_connection_age * 0.8 if max_connection_age else None,
        }
        if not rest:
            # Bound but not listening: every connection to it is refused at once, and the port
            # stays ours (no other process can start answering on it) until the run ends.
            refused_rest = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            refused_rest.bind(("127.0.0.1", 0))
            settings["rest_url"] = f"http://127.0.0.1:{refused_rest.getsockname()[1]}"
        streams = fake.streams(**settings)
        try:
            tapes: list[_Tape] = []
            books: dict[str, _Tape] = {}
            event_gaps: list[Any] = []
            if gap_class is not None:
                streams.events.subscribe(
                    lambda e: event_gaps.append(e) if isinstance(e, gap_class) else None
                )
            for symbol in names:
                for kind, source in (
                    ("aggTrade", streams.agg_trades(symbol)),
                    ("trade", streams.trades(symbol)),
                    ("kline", streams.klines(symbol, "1s")),
                    ("depth", streams.depth(symbol, speed=100)),
                    ("book", order_book(streams, symbol, limit=100, speed=100)),
                ):
                    tape = _Tape(kind, symbol)
                    source.subscribe(tape.on_next, tape.on_end, tape.on_end)
                    if kind == "book":
                        books[symbol] = tape
                    else:
                        tapes.append(tape)
            say(f"chaos: {len(tapes) + len(books)} subscriptions on {symbols} symbols")
            # Every stream (and, with REST, every book) delivers before the first fault.
            everything = tapes + (list(books.values()) if rest else [])
            _wait(fake, lambda: all(tape.items for tape in everything), 30.0)
            faults, junk_kinds = _storm(
                fake, seed, duration, fault_interval, mix, stall_timeout, names, rest, fatal
            )
            say(f"chaos: {sum(faults.values())} faults injected; settling")
            fake.accept_connections()
            fake.unstall()
            fake.clear_rest_fault()
            quiet = fake.with_market(lambda m: m.time_ms)
            waiting = tapes + (list(books.values()) if rest else [])
            _wait(fake, lambda: all(_newer(t, quiet) for t in waiting), settle_timeout)
            unsettled = sum(not _newer(t, quiet) for t in waiting)
            every = [*tapes, *books.values()]
            ended = sum(tape.ended for tape in every)  # before close(), which completes all
            started = time.perf_counter()
            streams.close()
            close_seconds = time.perf_counter() - started
            threads_left = tuple(
                t.name
                for t in threading.enumerate()
                if t.name.startswith("rxbinance") and t.ident not in before
            )
            say("chaos: counting against the true history")
            rest_requests = len(fake.rest_requests)
            repairable = {
                "aggTrade": rest,
                "trade": rest and _serves(fake.rest_url, "/api/v3/historicalTrades"),
                "kline": rest,
                "depth": False,
            }
            failures: list[str] = []
            for tape in (*tapes, *books.values()):
                for item in tape.items:
                    if _is_foreign(tape.kind, item, gap_class) and len(failures) < 20:
                        failures.append(f"{tape.symbol} {tape.kind}: foreign item {item!r}")
            tallies = {
                kind: _tally(
                    partial(_truth, fake),
                    kind,
                    [t for t in tapes if t.kind == kind],
                    gap_class,
                    repairable[kind],
                    failures,
                )
                for kind in KINDS
            }
            book_count, books_wrong = _check_books(fake, books.values(), failures)
            foreign = sum(_is_foreign(t.kind, i, gap_class) for t in every for i in t.items)
            rollovers = sum(c.close_cause == "max_age" for c in fake.connections)
        finally:
            streams.close()  # idempotent: only does something when the run failed half-way
            if refused_rest is not None:
                refused_rest.close()
    return ChaosReport(
        seed=seed,
        duration=duration,
        symbols=symbols,
        rest=rest,
        gap_class=gap_class is not None,
        faults=dict(faults),
        rollovers=rollovers,
        tallies=tallies,
        books=book_count,
        books_wrong=books_wrong,
        event_gaps=len(event_gaps),
        ended=ended,
        foreign=foreign,
        junk_kinds=junk_kinds,
        unsettled=unsettled,
        rest_requests=rest_requests,
        threads_left=threads_left,
        close_seconds=close_seconds,
        failures=tuple(failures[:20]),
    )


def _check(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise InvalidInputError(f"run_chaos: {name}={value!r}: must be {allowed}")


def _wait(fake: FakeBinance, predicate: Callable[[], bool], timeout: float) -> bool:
    try:
        fake.wait_for(lambda _: predicate(), timeout=timeout)
    except TimeoutError:
        return False
    return True


def _is_foreign(kind: str, item: Any, gap_class: type[Any] | None) -> bool:
    """Neither data of the subscription's ``kind`` nor a Gap: junk let through, the give-up
    dict, a payload without the ids of its stream (which the counting could not place)."""
    if gap_class is not None and isinstance(item, gap_class):
        return False
    if kind == "book":
        return not isinstance(item, OrderBook)
    if not isinstance(item, dict) or item.get("e") == "error":
        return True
    if kind == "kline" and isinstance(item.get("k"), dict) and not item["k"].get("x"):
        return "t" not in item["k"]  # an open candle: not counted, but data
    return _ids(kind, item) is None


# ------------------------------------------------------------------------------------ faults


def _storm(
    fake: FakeBinance,
    seed: int,
    duration: float,
    interval: float,
    mix: Mapping[str, int],
    stall_timeout: float,
    symbols: Sequence[str],
    rest: bool,
    fatal: bool,
) -> tuple[Counter[str], int]:
    """Inject the seeded mix of faults for ``duration`` seconds; return how many of each, and
    how many kinds of junk reached at least one connection."""
    rng = random.Random(f"rxbinance.chaos:{seed}")
    mix = {name: weight for name, weight in mix.items() if rest or not name.startswith("rest")}
    kinds, weights = list(mix), list(mix.values())
    if not any(weights):
        duration = 0.0  # nothing left to inject (only REST faults, and REST refused)
    stream_names = [
        f"{s.lower()}@{suffix}"
        for s in symbols
        for suffix in ("aggTrade", "trade", "kline_1s", "depth@100ms")
    ]
    done: Counter[str] = Counter()
    delivered: set[int] = set()  # kinds of junk (indices in JUNK) that reached a connection
    # Undo actions (end of a refusal), due at a time: (due, sequence, action).
    pending: list[tuple[float, int, Callable[[], None]]] = []
    refusing = 0  # refusals in force: connections are accepted again when the last one ends
    seq = 0
    start = time.monotonic()
    due = start + rng.expovariate(1 / interval)
    stop = threading.Event()  # never set: its wait() is a sleep that says it is one

    def end_refusal() -> None:
        nonlocal refusing
        refusing -= 1
        if refusing == 0:
            fake.accept_connections()

    while True:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            heapq.heappop(pending)[2]()
        if now - start >= duration:
            break
        if now < due:
            stop.wait(min(due, pending[0][0] if pending else due, start + duration) - now)
            continue
        due += rng.expovariate(1 / interval)
        name = rng.choices(kinds, weights)[0]
        if name == "drop":
            code = rng.choice(_CLOSE_CODES)
            fake.drop_connections(code, "" if code is None else "chaos")
            name = f"drop{code or 1006}"
        elif name == "shutdown":
            code = rng.choice((1001, 1000))
            fake.server_shutdown(code)
            name = f"shutdown{code}"
        elif name == "stall_short":
            fake.stall(stall_timeout * rng.uniform(0.2, 0.6))
        elif name == "stall_long":
            fake.stall(stall_timeout * rng.uniform(1.3, 2.0))
        elif name == "refuse":
            statuses = (503, 429, 500, 451) if fatal else (503, 429, 500)
            status = rng.choice(statuses)
            fake.refuse_connections(None, status=status)
            refusing += 1
            seq += 1
            heapq.heappush(pending, (now + rng.uniform(0.2, 1.0), seq, end_refusal))
            name = f"refuse{status}"
        elif name == "depth_gap":
            fake.inject_gap(rng.choice(symbols), rng.randint(1, 5))
        elif name == "malformed":
            fake.send_malformed(rng.choice(("{not json", "]", '{"e": ')))
        elif name == "junk":
            # Every kind of junk, one after the other, on one stream; ``delivered`` counts the
            # kinds that reached a connection (none do while stalled or all are down).
            target = rng.choice(stream_names)
            for i, payload in enumerate(JUNK):
                if fake.publish(target, payload):
                    delivered.add(i)
        elif name == "rest429":
            fake.rest_fault(429, retry_after=1, times=rng.randint(1, 5))
        elif name == "rest418":
            fake.rest_fault(418, retry_after=1, times=rng.randint(1, 3))
        done[name] += 1
    while pending:
        heapq.heappop(pending)[2]()
    return done, len(delivered)


# ---------------------------------------------------------------------------------- counting


def _item_time(kind: str, item: Any) -> int | None:
    """Market time (ms) an item of ``kind`` stands for, None for anything else."""
    if isinstance(item, OrderBook):
        return item.event_time
    if not isinstance(item, dict):
        return None
    if kind == "kline":
        k = item.get("k")
        return k.get("T") if isinstance(k, dict) and k.get("x") else None
    value = item.get("T" if kind in ("aggTrade", "trade") else "E")
    return value if isinstance(value, int) else None


def _newer(tape: _Tape, quiet_ms: int) -> bool:
    """Whether ``tape`` received something stamped at or after ``quiet_ms``."""
    for item in reversed(tape.items[-50:]):
        stamp = _item_time(tape.kind, item)
        if stamp is not None and stamp >= quiet_ms:
            return True
    return False


def _ids(kind: str, item: dict[str, Any]) -> tuple[int, int] | None:
    """The id span ``(first, last)`` an item carries (a depth event covers ``U..u``)."""
    try:
        if kind == "aggTrade":
            return item["a"], item["a"]
        if kind == "trade":
            return item["t"], item["t"]
        if kind == "kline":
            k = item["k"]
            return (k["t"], k["t"]) if k.get("x") else None
        if kind == "depth":
            return item["U"], item["u"]
    except (KeyError, TypeError):
        return None
    return None


def _truth(fake: FakeBinance, kind: str, symbol: str, lo: int, hi: int) -> dict[int, Any]:
    """The true items of ``kind`` with ids in ``[lo, hi]``, by id (depth: every update id)."""
    if kind == "depth":
        return dict.fromkeys(range(lo, hi + 1))
    if kind == "aggTrade":
        rows = fake.with_market(lambda m: m.agg_trade_history(symbol))
        return {r["a"]: r for r in rows if lo <= r["a"] <= hi}
    if kind == "trade":
        rows = fake.with_market(lambda m: m.trade_history(symbol))
        return {r["t"]: r for r in rows if lo <= r["t"] <= hi}

    def closed_candles(market: Market) -> dict[int, Any]:
        candles: dict[int, Any] = {}
        start = lo
        while start <= hi:  # REST pages of 1000, as a client would fetch them
            page = market.rest_klines(symbol, "1s", start_time=start, end_time=hi, limit=1000)
            candles.update((row[0], row) for row in page if row[6] < market.time_ms)
            if len(page) < 1000:
                break
            start = page[-1][0] + 1
        return candles

    return fake.with_market(closed_candles)


def _same(kind: str, item: dict[str, Any], truth: Any) -> bool:
    """Whether a received item says what the true one does (depth: only ids are checked)."""
    if kind == "depth":
        return True
    if kind == "kline":
        k = item["k"]
        row = truth
        return bool(
            (k["o"], k["h"], k["l"], k["c"], k["v"], k["n"])
            == (row[1], row[2], row[3], row[4], row[5], row[8])
        )
    fields = _AGG_FIELDS if kind == "aggTrade" else _TRADE_FIELDS
    return all(item.get(f) == truth.get(f) for f in fields)


#: ``truth(kind, symbol, lo, hi)``: the true items of ``kind`` with ids in ``[lo, hi]``, by id.
Truth = Callable[[str, str, int, int], Mapping[int, Any]]


def _tally(
    truth_of: Truth,
    kind: str,
    tapes: Sequence[_Tape],
    gap_class: type[Any] | None,
    repairable: bool,
    failures: list[str],
) -> SequenceTally:
    received = lost = holes = duplicated = out_of_order = wrong = 0
    gaps = exact = reported = 0
    for tape in tapes:
        spans: list[tuple[int, int, dict[str, Any]]] = []
        tape_gaps: list[tuple[int, int]] = []
        for item in list(tape.items):
            if gap_class is not None and isinstance(item, gap_class):
                tape_gaps.append((int(item.first), int(item.last)))
            elif isinstance(item, dict):
                span = _ids(kind, item)
                if span is not None:
                    spans.append((span[0], span[1], item))
        gaps += len(tape_gaps)
        if not spans and not tape_gaps:
            continue
        edges = [s[0] for s in spans] + [g[0] for g in tape_gaps]
        ends = [s[1] for s in spans] + [g[1] for g in tape_gaps]
        lo, hi = min(edges), max(ends)
        truth = truth_of(kind, tape.symbol, lo, hi)
        order = sorted(truth)  # ids in the truth's order (candles: every second)
        seen: set[int] = set()
        highest: int | None = None
        for first, last, item in spans:
            received += 1
            if first in seen:
                duplicated += 1
                continue
            if highest is not None and last <= highest:
                out_of_order += 1
            highest = last if highest is None else max(highest, last)
            seen.update(range(first, last + 1) if kind == "depth" else (first,))
            # An id the truth does not have (inside [lo, hi]) was made up: wrong too.
            if first not in truth or not _same(kind, item, truth[first]):
                wrong += 1
                if len(failures) < 20:
                    failures.append(
                        f"{tape.symbol} {kind} {first}: {item!r}, truth: {truth.get(first)!r}"
                    )
        # Holes: maximal runs of true ids never received, in the truth's order.
        tape_holes: list[tuple[int, int]] = []
        run: list[int] = []
        for i in order:
            if i in seen:
                if run:
                    tape_holes.append((run[0], run[-1]))
                    run = []
            else:
                run.append(i)
        if run:
            tape_holes.append((run[0], run[-1]))
        lost += sum(1 for i in order if i not in seen)
        holes += len(tape_holes)
        bounds = Counter(tape_gaps)
        hole_set = set(tape_holes)
        exact += sum(1 for g in tape_gaps if g in hole_set)
        for hole in tape_holes:
            if bounds[hole] == 1 and sum(_overlaps(g, hole) for g in tape_gaps) == 1:
                reported += 1
            elif len(failures) < 20:
                failures.append(
                    f"{tape.symbol} {kind}: hole {hole} reported by "
                    f"{[g for g in tape_gaps if _overlaps(g, hole)]}"
                )
    return SequenceTally(
        kind=kind,
        streams=len(tapes),
        received=received,
        lost=lost,
        holes=holes,
        duplicated=duplicated,
        out_of_order=out_of_order,
        wrong=wrong,
        gaps=gaps,
        exact_gaps=exact,
        reported_holes=reported,
        repairable=repairable,
    )


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _check_books(fake: FakeBinance, tapes: Iterable[_Tape], failures: list[str]) -> tuple[int, int]:
    """(books emitted, books that differ from the true book at their update id)."""
    count = wrong = 0
    for tape in tapes:
        for book in list(tape.items):
            if not isinstance(book, OrderBook):
                continue
            count += 1
            truth = fake.true_book(book.symbol, book.update_id)
            if book.bids() != list(truth.bids) or book.asks() != list(truth.asks):
                wrong += 1
                if len(failures) < 20:
                    failures.append(f"{book.symbol} book at {book.update_id} differs")
    return count, wrong


def _serves(rest_url: str, path: str) -> bool:
    """Whether the fake's REST answers ``path`` (a route it does not have answers 404)."""
    try:
        with urllib.request.urlopen(f"{rest_url}{path}?symbol=BTCUSDT&limit=1", timeout=5):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code not in (404, 405)
    except OSError:
        return False
