"""The Redis commands: ``publish`` (Binance streams into Redis) and ``watch --redis`` (Redis
keys out, printed like watch). Imported only when used: redis-py is an extra."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from reactivex.subject import Subject

from rxbinance.cli._connect import open_streams, validate_names
from rxbinance.cli._format import json_line
from rxbinance.cli._pump import CommandError, Pump, Status
from rxbinance.events import Gap

__all__ = ["publish_command", "watch_redis"]


def _bridge() -> Any:
    """rxbinance.bridge, or one line naming the extra to install."""
    from rxbinance.bridge._redis import require_redis

    try:
        require_redis()
    except ImportError as exc:
        raise CommandError(str(exc)) from exc
    import rxbinance.bridge as bridge

    return bridge


def _check_url(url: str) -> str:
    from rxbinance.bridge._redis import check_url

    return check_url(url)


def _safe(url: str) -> str:
    from rxbinance.bridge._redis import safe_url

    return safe_url(url)


def _check_keys(url: str, keys: list[str]) -> None:
    """Fail now, in one line, when Redis does not answer or a key holds something other
    than a stream."""
    from rxbinance.bridge._redis import connect, is_connection_error, unreachable

    client = connect(url)
    try:
        for key in keys:
            reply = client.type(key)
            kind = reply.decode() if isinstance(reply, bytes) else str(reply)
            if kind not in ("stream", "none"):
                raise CommandError(
                    f"Redis key {key!r} holds a {kind}, not a stream: "
                    "pick another key (or delete that one)"
                )
    except CommandError:
        raise
    except Exception as exc:
        if is_connection_error(exc):
            raise unreachable(url, exc) from exc
        raise CommandError(f"Redis at {_safe(url)}: {exc}") from exc
    finally:
        client.close()


def publish_command(args: argparse.Namespace, status: Status, pump: Pump) -> int:
    bridge = _bridge()
    names = list(dict.fromkeys(args.streams))
    validate_names(args.market, names)
    url = _check_url(args.redis)
    keys = [args.key] if args.key else [bridge.DEFAULT_PREFIX + name for name in names]
    _check_keys(url, keys)
    with ExitStack() as stack:
        # The pump hands each message over on the main thread: --limit N publishes exactly N.
        handoff: Subject[Any] = Subject()
        publisher = bridge.publish(handoff, url, key=args.key, maxlen=args.maxlen)
        stack.callback(publisher.dispose)
        publisher.events.subscribe(
            lambda gap: status.say(
                f"warning: lost {gap.stream} {gap.first}..{gap.last} ({gap.reason})"
            )
        )
        streams = open_streams(args, stack, status)
        stack.callback(pump.dispose)
        pump.watch_events(streams.events)
        pump.subscribe(streams.multiplex(names))  # wrappers name each message's stream
        where = ", ".join(keys) if args.key else f"{bridge.DEFAULT_PREFIX}<stream>"
        status.info(f"publishing {', '.join(names)} to {_safe(url)} as {where} (Ctrl-C to stop)")

        def handle(message: Any, received: float) -> None:
            if publisher.error is not None:
                raise CommandError(f"publishing stopped: {publisher.error}")
            handoff.on_next(message)

        pump.run(handle, lambda: None)
        stack.close()  # flush to Redis before the last line
        if publisher.error is not None:
            raise CommandError(f"publishing stopped: {publisher.error}")
        stats = publisher.statistics()
        status.info(f"published {stats.written} entries ({stats.dropped} dropped)")
    return 0


def watch_redis(args: argparse.Namespace, status: Status, pump: Pump) -> int:
    bridge = _bridge()
    if args.sim or args.ws_url or args.rest_url:
        raise CommandError(
            "--redis reads Redis keys: leave out --sim, --ws-url and --rest-url", status=2
        )
    if args.pretty:
        raise CommandError("--pretty is not available with --redis (JSON lines only)", status=2)
    keys = list(dict.fromkeys(args.streams))
    url = _check_url(args.redis)
    _check_keys(url, keys)
    combined = len(keys) > 1
    out = sys.stdout
    try:
        for key in keys:
            source = bridge.consume(
                url, key, start=args.start, group=args.group, consumer=args.consumer
            )
            if combined:
                stream = key.removeprefix(bridge.DEFAULT_PREFIX)
                source = source.pipe(_wrap(stream))
            pump.subscribe(source)
        status.info(f"reading {', '.join(keys)} from {_safe(url)} (Ctrl-C to stop)")

        def show(message: Any, received: float) -> None:
            out.write(json_line(bridge.as_json(message)) + "\n")

        pump.run(show, out.flush)
        out.flush()
    finally:
        pump.dispose()
    return 0


def _wrap(stream: str) -> Any:
    import reactivex.operators as ops

    def wrap(message: Any) -> Any:
        if isinstance(message, Gap):
            return message
        return {"stream": stream, "data": message}

    return ops.map(wrap)
