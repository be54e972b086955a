"""Record Binance messages to a file, and replay them as an Observable.

.. code-block:: python

    import reactivex.operators as ops
    import rxbinance

    # Recorded with: rxbinance record btcusdt@trade -o trades.jsonl.gz
    prices = rxbinance.replay("trades.jsonl.gz", speed=10).pipe(ops.map(lambda m: m["p"]))
    prices.subscribe(print)

**The file format** (version 1): JSON lines, UTF-8, gzip-compressed when the name ends in
``.gz`` (readers detect gzip by its magic bytes, not by the name). The first line is a header::

    {"rxbinance": "recording", "version": 1, "streams": ["btcusdt@trade"], "combined": false,
     "market": "spot", "url": "wss://stream.binance.com:9443/ws/btcusdt@trade",
     "started": 1767225600.0}

and every other line one message, with the local time it was received (``time.time()``
seconds), the Binance stream it came from, and its payload exactly as Binance sent it::

    {"t": 1767225600.0123, "stream": "btcusdt@trade", "data": {"e": "trade", ...}}

``combined`` says what the live Observable emitted, so that a replay emits the very same
message dicts: bare payloads for one stream (``BinanceStreams.stream``), ``{"stream", "data"}``
wrappers for several (``BinanceStreams.multiplex``).

**Crash safety.** :class:`Recorder` flushes every line as it writes it (for gzip: a
``Z_SYNC_FLUSH`` per line, so every complete line can be decompressed without the gzip
trailer), so a recorder killed at any moment loses at most the line it was writing. Readers
tolerate exactly that: a last line cut short (or a gzip stream that stops mid-block) ends the
replay normally, and is reported on the ``rxbinance.recording`` logger and in
:attr:`Recording.torn`. Anything else that is not a record (a corrupt line in the middle, a
file that is not a recording) is a :class:`RecordingError`.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.scheduler import EventLoopScheduler

from rxbinance.errors import InvalidInputError, RecordingError
from rxbinance.events import Gap

__all__ = [
    "FORMAT_VERSION",
    "Record",
    "Recorder",
    "Recording",
    "RecordingError",
    "RecordingHeader",
    "open_recording",
    "replay",
]

log = logging.getLogger("rxbinance.recording")

#: The version of the file format :class:`Recorder` writes (and the newest readers accept).
FORMAT_VERSION = 1

_MAGIC = "recording"
_GZIP_MAGIC = b"\x1f\x8b"
# A header is a few hundred bytes; a "first line" longer than this is not one (a binary file
# with no newline would otherwise be read whole just to be refused).
_MAX_HEADER_BYTES = 1 << 20
# Records emitted per scheduled action when replaying as fast as possible: large enough that
# scheduling costs nothing per message, small enough that a shared scheduler (a notebook's
# event loop) stays responsive and a dispose takes effect quickly.
_BATCH = 512
_TORN_HEADER = "ends inside its header: the recorder stopped before it recorded anything"


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """The first line of a recording.

    ``streams``: the Binance stream names recorded, ``combined``: whether the live Observable
    emitted ``{"stream", "data"}`` wrappers (several streams) or bare payloads (one stream),
    ``market`` and ``url``: where they came from, ``started``: when recording started
    (``time.time()`` seconds), ``version``: the format version.
    """

    streams: tuple[str, ...]
    combined: bool
    market: str | None = None
    url: str | None = None
    started: float | None = None
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "rxbinance": _MAGIC,
            "version": self.version,
            "streams": list(self.streams),
            "combined": self.combined,
            "market": self.market,
            "url": self.url,
            "started": self.started,
        }


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded message: local receive ``time`` (``time.time()`` seconds), the Binance
    ``stream`` name, and the payload ``data`` as Binance sent it."""

    time: float
    stream: str
    data: Any

    def message(self, combined: bool) -> Any:
        """What the live Observable emitted: the payload, or ``{"stream", "data"}`` when
        ``combined``."""
        return {"stream": self.stream, "data": self.data} if combined else self.data


# --------------------------------------------------------------------------------------------
# Writing


class Recorder:
    """Writes a recording, one flushed line per message.

    .. code-block:: python

        with Recorder("trades.jsonl.gz", ["btcusdt@trade"]) as recorder:
            streams.trades("BTCUSDT").subscribe(lambda m: recorder.write("btcusdt@trade", m))

    The file is created (or truncated) and the header written at once. ``path`` ending in
    ``.gz`` writes gzip. ``combined`` defaults to ``len(streams) > 1``, matching what
    ``rxbinance watch``/``record`` subscribe to (one raw socket, or a multiplex socket).

    :meth:`write` is thread-safe (reader threads of several sockets may call it) and flushes
    each line to the operating system before returning: a process killed at any point loses at
    most the line being written. ``close()`` is idempotent; writing after it raises ValueError.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        streams: Iterable[str],
        *,
        combined: bool | None = None,
        market: str | None = None,
        url: str | None = None,
        started: float | None = None,
    ) -> None:
        names = tuple(streams)
        if not names:
            raise InvalidInputError("a recording needs at least one stream name")
        self.path = Path(path)
        self.header = RecordingHeader(
            streams=names,
            combined=len(names) > 1 if combined is None else combined,
            market=market,
            url=url,
            started=time.time() if started is None else started,
        )
        self.count = 0  #: messages written so far
        self._lock = threading.Lock()
        self._gzip = self.path.name.endswith(".gz")
        self._raw: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._zip: gzip.GzipFile | None = None
        try:
            if self._gzip:
                # mtime=0: the same messages give the same bytes (no timestamp in the header).
                self._zip = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
            self._write_line(self.header.to_json())
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._raw is None else f"{self.count} messages"
        return f"<Recorder {str(self.path)!r} {state}>"

    @property
    def closed(self) -> bool:
        return self._raw is None

    def write(self, stream: str, data: Any, received: float | None = None) -> None:
        """Append one message of ``stream`` received at ``received`` (default: now). A
        :class:`~rxbinance.events.Gap` is recorded as ``{"gap": {"first", "last", "reason"}}``
        in place of ``data``, and replayed as the same Gap."""
        when = time.time() if received is None else received
        line: dict[str, Any]
        if type(data) is Gap:
            hole = {"first": data.first, "last": data.last, "reason": data.reason}
            line = {"t": when, "stream": stream, "gap": hole}
        else:
            line = {"t": when, "stream": stream, "data": data}
        with self._lock:
            if self._raw is None:
                raise ValueError(f"write to a closed recording: {self.path}")
            self._write_line(line)
            self.count += 1

    def _write_line(self, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if self._zip is not None:
            self._zip.write(data)
            # Z_SYNC_FLUSH ends the deflate block on a byte boundary and passes it to the file:
            # everything written so far decompresses even if the trailer never comes.
            self._zip.flush(zlib.Z_SYNC_FLUSH)
        else:
            assert self._raw is not None
            self._raw.write(data)
            self._raw.flush()

    def close(self) -> None:
        """Finish the file (the gzip trailer) and close it."""
        with self._lock:
            raw, self._raw = self._raw, None
            zipped, self._zip = self._zip, None
        try:
            if zipped is not None:
                zipped.close()  # writes the trailer; does not close the file it was given
        finally:
            if raw is not None:
                raw.close()


# --------------------------------------------------------------------------------------------
# Reading


class Recording:
    """An open recording: its :attr:`header`, then its :class:`Record` values by iteration.

    .. code-block:: python

        with open_recording("trades.jsonl") as recording:
            print(recording.header.streams)
            for record in recording:
                print(record.time, record.stream, record.data)
            if recording.torn:
                print("the recorder was killed:", recording.torn)

    Iterating reads the file lazily, line by line; a recording can be iterated once. After the
    iteration ended, :attr:`torn` describes the torn last line that was dropped (None when the
    file ended cleanly); :attr:`records` counts the records read. A corrupt line other than the
    last raises :class:`RecordingError`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.torn: str | None = None
        self.records = 0
        self._line = 0
        self._file = _open_maybe_gzip(self.path)
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise
        self._iterator = self._read_records()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        return self._iterator

    def __repr__(self) -> str:
        return f"<Recording {str(self.path)!r} streams={list(self.header.streams)!r}>"

    def close(self) -> None:
        """Close the file. Idempotent."""
        self._file.close()

    def _error(self, what: str, line: int | None = None) -> RecordingError:
        at = self._line if line is None else line
        where = f"{self.path}, line {at}" if at else str(self.path)
        return RecordingError(f"{where}: {what}", path=str(self.path), line=at)

    def _readline(self, limit: int = -1) -> bytes:
        try:
            return self._file.readline(limit)
        except gzip.BadGzipFile as exc:
            raise self._error(f"not an rxbinance recording (corrupt gzip data: {exc})") from exc

    def _read_header(self) -> RecordingHeader:
        try:
            first = self._readline(_MAX_HEADER_BYTES)
        except (EOFError, zlib.error) as exc:
            raise self._error(_TORN_HEADER, line=0) from exc
        self._line = 1
        if not first:
            raise self._error("is empty, not an rxbinance recording", line=0)
        if not first.endswith(b"\n") and first.startswith(b'{"rxbinance"'):
            raise self._error(_TORN_HEADER, line=0)
        try:
            header = json.loads(first)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("rxbinance") != _MAGIC:
            excerpt = first[:60].decode("utf-8", "replace").rstrip()
            raise self._error(
                f"not an rxbinance recording (it starts with {excerpt!r}; "
                "record one with: rxbinance record STREAM... -o FILE)",
                line=0,
            )
        version = header.get("version")
        if type(version) is not int or version < 1:
            raise self._error(f"invalid recording header: version {version!r}")
        if version > FORMAT_VERSION:
            raise self._error(
                f"recording format version {version} is newer than this rxbinance reads "
                f"({FORMAT_VERSION}): upgrade rxbinance"
            )
        streams = header.get("streams")
        if (
            not isinstance(streams, list)
            or not streams
            or not all(isinstance(s, str) for s in streams)
        ):
            raise self._error(f"invalid recording header: streams {streams!r}")
        combined = header.get("combined", len(streams) > 1)
        started = header.get("started")
        return RecordingHeader(
            streams=tuple(streams),
            combined=bool(combined),
            market=_str_or_none(header.get("market")),
            url=_str_or_none(header.get("url")),
            started=float(started) if isinstance(started, int | float) else None,
            version=version,
        )

    def _read_records(self) -> Iterator[Record]:
        while True:
            try:
                line = self._readline()
            except (EOFError, zlib.error):
                # The gzip stream stops without its trailer, possibly inside a block: the
                # recorder was killed. Every line flushed before that was returned already.
                self._report_torn("the compressed data ends abruptly")
                return
            if not line:
                return
            self._line += 1
            record = _parse_record(line)
            if record is None:
                if not line.endswith(b"\n") and not self._file.read(1):
                    # The last line, cut short: what a killed recorder leaves behind.
                    self._report_torn(f"its last line is incomplete ({len(line)} bytes)")
                    return
                excerpt = line[:60].decode("utf-8", "replace").rstrip()
                raise self._error(f"corrupt record {excerpt!r}")
            self.records += 1
            yield record

    def _report_torn(self, what: str) -> None:
        self.torn = f"{what}, dropped after {self.records} records (was the recorder killed?)"
        log.warning("%s: %s", self.path, self.torn)


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open a recording and read its header.

    Raises ``OSError`` (``FileNotFoundError``, ``PermissionError``...) when the file cannot be
    opened, and :class:`RecordingError` when it is not an rxbinance recording.
    """
    return Recording(path)


def _open_maybe_gzip(path: Path) -> BinaryIO | gzip.GzipFile:
    raw = open(path, "rb")  # noqa: SIM115 (owned by the Recording)
    try:
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            # A GzipFile does not close a file object it was given; this wrapper does.
            return _ClosingGzip(raw)
        raw.seek(0)
        return raw
    except BaseException:
        raw.close()
        raise


class _ClosingGzip(gzip.GzipFile):
    """A GzipFile reading ``raw`` that closes ``raw`` when closed."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._owned = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._owned.close()


def _parse_record(line: bytes) -> Record | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    t = value.get("t")
    stream = value.get("stream")
    if isinstance(t, bool) or not isinstance(t, int | float):
        return None
    if not isinstance(stream, str):
        return None
    hole = value.get("gap")
    if isinstance(hole, dict):
        try:
            gap = Gap(stream, float(t), int(hole["first"]), int(hole["last"]), str(hole["reason"]))
        except (KeyError, TypeError, ValueError):
            return None
        return Record(float(t), stream, gap)
    if "data" not in value:
        return None
    return Record(float(t), stream, value["data"])


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------
# Replaying


def replay(
    path: str | os.PathLike[str],
    speed: float | None = 1.0,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Any]:
    """A recording as an Observable of the very messages the live Observable emitted.

    .. code-block:: python

        rxbinance.replay("book.jsonl.gz", speed=None).pipe(
            ops.filter(lambda m: m["stream"] == "btcusdt@bookTicker"),
            ops.map(lambda m: m["data"]["b"]),
        ).subscribe(print)

    Emits bare payloads for a recording of one stream, ``{"stream", "data"}`` wrappers for a
    recording of several (as ``BinanceStreams.stream`` and ``multiplex`` do), then completes;
    so an operator chain written for live data runs unchanged on recorded data.

    ``speed``: ``1.0`` keeps the original timing (message *i* is emitted
    ``(t_i - t_0) / speed`` seconds after subscribing, measured on the scheduler's clock, so
    delays do not accumulate); ``10`` plays ten times faster; ``None`` or ``0`` emits
    everything as fast as possible (in batches of a few hundred messages per scheduled action).

    **Cold**: each subscription reads the file anew, lazily (a recording never has to fit in
    memory). **Threads**: messages are emitted on ``scheduler`` if given, else on the scheduler
    passed to ``subscribe``, else on a daemon thread of the subscription's own
    (``rxbinance-replay``), which ends with it; pass a
    :class:`reactivex.testing.TestScheduler` or
    :class:`~reactivex.scheduler.HistoricalScheduler` to replay in virtual time. Disposing stops
    the replay and closes the file.

    **Errors**: the file is opened and its header checked now: ``OSError`` when it cannot be
    read, :class:`RecordingError` when it is not a recording, ``ValueError`` for a bad
    ``speed``. A corrupt line later in the file ends the replay with ``on_error``
    (:class:`RecordingError`) after the messages before it; a torn last line (a killed
    recorder) ends it normally, with a warning on the ``rxbinance.recording`` logger.
    """
    rate = _check_speed(speed)
    with open_recording(path) as recording:  # fail now, on the caller's thread
        header = recording.header
    source = Path(path)

    def subscribe(
        observer: abc.ObserverBase[Any], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        target = scheduler or subscribe_scheduler
        own: EventLoopScheduler | None = None
        if target is None:
            own = EventLoopScheduler(
                thread_factory=lambda run: threading.Thread(
                    target=run, name="rxbinance-replay", daemon=True
                ),
            )
            target = own
        player = _Player(source, header.combined, rate, observer, target, own)
        player.start()
        return Disposable(player.stop)

    return reactivex.create(subscribe)


def _check_speed(speed: object) -> float:
    """0.0 for as fast as possible, else the validated speed factor."""
    if speed is None:
        return 0.0
    if (
        isinstance(speed, bool)
        or not isinstance(speed, int | float)
        or not math.isfinite(speed)
        or speed < 0
    ):
        raise InvalidInputError(
            f"invalid replay speed {speed!r}: a number >= 0 (1.0 original timing, "
            "2.0 twice as fast, None or 0 as fast as possible)"
        )
    return float(speed)


class _Player:
    """One subscription's replay: reads records under a lock, emits them outside it.

    Emitting outside the lock lets a subscriber dispose from its own ``on_next`` (``take``)
    without deadlocking, and lets a dispose from another thread close the file between two
    reads, never during one.
    """

    def __init__(
        self,
        path: Path,
        combined: bool,
        speed: float,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        own: EventLoopScheduler | None,
    ) -> None:
        self._path = path
        self._combined = combined
        self._speed = speed
        self._observer = observer
        self._scheduler = scheduler
        self._own = own
        self._lock = threading.Lock()
        self._recording: Recording | None = None
        self._records: Iterator[Record] | None = None
        self._pending: Record | None = None  # read, not yet due
        self._stopped = False
        self._timer = SerialDisposable()
        self._origin = 0.0  # t of the first record
        self._start = scheduler.now

    def start(self) -> None:
        self._timer.disposable = self._scheduler.schedule(self._run)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            recording, self._recording = self._recording, None
            self._records = None
        self._timer.dispose()
        if recording is not None:
            recording.close()
        if self._own is not None:
            self._own.dispose()

    def _next(self) -> Record | None:
        """The next record (None at the end), or raise RecordingError / OSError."""
        with self._lock:
            if self._stopped:
                return None
            if self._pending is not None:
                record, self._pending = self._pending, None
                return record
            if self._records is None:
                # Opened on the scheduler's thread, so subscribe() never blocks on I/O.
                self._recording = open_recording(self._path)
                self._records = iter(self._recording)
            return next(self._records, None)

    def _run(self, scheduler: abc.SchedulerBase, _: Any = None) -> None:
        observer = self._observer
        first = self._recording is None
        emitted = 0
        try:
            while True:
                record = self._next()
                if record is None:
                    break
                if first:
                    self._origin = record.time
                    self._start = scheduler.now
                    first = False
                if self._speed:
                    due = self._start + timedelta(
                        seconds=max(0.0, record.time - self._origin) / self._speed
                    )
                    if due > scheduler.now:
                        self._later(scheduler, record, due)
                        return
                elif emitted >= _BATCH:
                    self._later(scheduler, record, None)
                    return
                observer.on_next(record.message(self._combined))
                emitted += 1
        except (RecordingError, OSError) as exc:
            self._finish(exc)
            return
        self._finish(None)

    def _later(self, scheduler: abc.SchedulerBase, record: Record, due: datetime | None) -> None:
        """Keep ``record`` for the next action, scheduled at ``due`` (None: right away)."""
        with self._lock:
            if self._stopped:
                return
            self._pending = record
        # After a concurrent stop(), the SerialDisposable disposes this new action at once.
        if due is None:
            self._timer.disposable = scheduler.schedule(self._run)
        else:
            self._timer.disposable = scheduler.schedule_absolute(due, self._run)

    def _finish(self, error: Exception | None) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            recording, self._recording = self._recording, None
        if recording is not None:
            recording.close()
        if error is None:
            self._observer.on_completed()
        else:
            self._observer.on_error(error)
        if self._own is not None:
            self._own.dispose()
