"""Operators for Binance streams, in RxPY style: functions that return operators.

.. code-block:: python

    import rxbinance.operators as rbo

    combined = streams.multiplex(["btcusdt@trade", "btcusdt@depth5"])
    combined.pipe(rbo.select_stream("btcusdt@depth5")).subscribe(print)   # bare payloads
    combined.pipe(rbo.demultiplex()).subscribe(lambda g: g.subscribe(print))  # one per stream

    tagged = rbo.merge_tagged({"btc": streams.trades("BTCUSDT"), "eth": streams.trades("ETHUSDT")})
    # emits {"stream": "btc", "data": {...}}: the same shape as multiplex, so the same operators
    # split it again.

A message without a ``"stream"`` key on a combined stream is the give-up dict
(``{'e': 'error', 'm': 'Max reconnect retries reached'}``): every operator here forwards it to
every consumer, so nobody misses that its data has stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.observable.groupedobservable import GroupedObservable
from reactivex.subject import Subject

__all__ = ["demultiplex", "merge_tagged", "select_stream", "tag"]

Message = dict[str, Any]


def _is_wrapped(message: Any) -> bool:
    return type(message) is dict and "stream" in message and "data" in message


def select_stream(name: str) -> Callable[[Observable[Message]], Observable[Any]]:
    """Keep the payloads of stream ``name`` from a combined stream, unwrapped.

    ``{"stream": name, "data": payload}`` becomes ``payload``; other streams' messages are
    dropped; the give-up dict passes through unchanged.
    """

    def keep(message: Message) -> bool:
        return not _is_wrapped(message) or message["stream"] == name

    def unwrap(message: Message) -> Any:
        return message["data"] if _is_wrapped(message) else message

    def operator(source: Observable[Message]) -> Observable[Any]:
        return source.pipe(ops.filter(keep), ops.map(unwrap))

    return operator


def demultiplex() -> Callable[[Observable[Message]], Observable[GroupedObservable[str, Any]]]:
    """Split a combined stream into one Observable per stream name, in order of first sight.

    Emits a ``GroupedObservable`` (``.key`` is the stream name) the first time a stream is seen;
    it carries that stream's bare payloads. The give-up dict goes to every group; completion and
    errors end every group, then the outer Observable. Groups are hot: subscribe to a group in the
    callback that receives it, or you miss its first payload.
    """

    def operator(source: Observable[Message]) -> Observable[GroupedObservable[str, Any]]:
        def subscribe(
            observer: abc.ObserverBase[GroupedObservable[str, Any]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            groups: dict[str, Subject[Any]] = {}
            lock = threading.Lock()

            def group(name: str) -> Subject[Any]:
                with lock:
                    subject = groups.get(name)
                    if subject is not None:
                        return subject
                    subject = groups[name] = Subject()
                observer.on_next(GroupedObservable(name, subject))
                return subject

            def on_next(message: Message) -> None:
                if _is_wrapped(message):
                    group(message["stream"]).on_next(message["data"])
                else:
                    for subject in list(groups.values()):
                        subject.on_next(message)

            def on_error(error: Exception) -> None:
                for subject in list(groups.values()):
                    subject.on_error(error)
                observer.on_error(error)

            def on_completed() -> None:
                for subject in list(groups.values()):
                    subject.on_completed()
                observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


def tag(name: str) -> Callable[[Observable[Any]], Observable[Message]]:
    """Wrap each payload as ``{"stream": name, "data": payload}``, the combined-stream shape.

    The give-up dict is passed through unwrapped, as on a combined socket.
    """

    def wrap(payload: Any) -> Message:
        if type(payload) is dict and payload.get("e") == "error" and "m" in payload:
            return payload
        return {"stream": name, "data": payload}

    return ops.map(wrap)


def merge_tagged(streams: Mapping[str, Observable[Any]]) -> Observable[Message]:
    """Merge several keyed streams into one tagged stream.

    ``merge_tagged({"btc": a, "eth": b})`` emits ``{"stream": "btc", "data": ...}`` and
    ``{"stream": "eth", "data": ...}`` as they arrive, serialized (one at a time, even though
    the sources are read by different threads), and completes when every source has completed.
    """
    if not streams:
        raise ValueError("merge_tagged needs at least one stream")
    tagged = [source.pipe(tag(name)) for name, source in streams.items()]

    def subscribe(
        observer: abc.ObserverBase[Message], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # merge() serializes emissions of sources on different threads (reactivex-notes 12)
        # but a lock of our own makes that guarantee explicit and independent of the version.
        lock = threading.Lock()

        def on_next(message: Message) -> None:
            with lock:
                observer.on_next(message)

        subscription = reactivex.merge(*tagged).subscribe(
            on_next, observer.on_error, observer.on_completed, scheduler=scheduler
        )
        return subscription

    return reactivex.create(subscribe)
