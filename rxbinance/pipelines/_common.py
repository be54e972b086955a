"""Helpers the pipelines and the typed operators share (no imports of either, so both can)."""

from __future__ import annotations

from typing import Any

from rxbinance.errors import ConnectionFailure

__all__ = ["give_up_error", "is_give_up"]


def is_give_up(message: Any) -> bool:
    """True for ``{'e': 'error', 'm': 'Max reconnect retries reached'}``, the message every
    subscriber of a stream receives (before completing) when its reconnects are spent."""
    return type(message) is dict and message.get("e") == "error" and "m" in message


def give_up_error(message: dict[str, Any], stream: str = "") -> ConnectionFailure:
    """The exception a typed pipeline ends with instead of passing the give-up dict on:
    ``ConnectionFailure("<stream>: <m>", stream=stream)``, or the dict's ``m`` alone when the
    stream is unknown (``""``). Every typed pipeline knows its stream and passes it."""
    where = f"{stream}: " if stream else ""
    return ConnectionFailure(f"{where}{message.get('m')}", stream=stream)
