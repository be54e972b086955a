"""Reconnection policy as data: how long to wait before attempt n, and what is worth retrying.

:func:`classify` is the one place that decides what a failure means; :class:`ReconnectPolicy`
is the one backoff (sockets, order book snapshots and kline backfill all use it). The
supervisor of a stream (:mod:`rxbinance._reactive.connection`) only applies the two.

=====================================================  =========================================
failure                                                what follows
=====================================================  =========================================
``serverShutdown``; Binance ended a user data          ``Retry.NOW``: reconnect at once, not
subscription (``reconnect_now``); the 24 h limit       counted as a failure (but repeated on
                                                       connections that carry no data, counted:
                                                       a server that only says goodbye ends in
                                                       the give-up after ``max_retries``)
refused or dropped connection, stall, close frame,     ``Retry.BACKOFF``: wait, retry, count it
handshake answered 429 or 5xx
handshake answered any other 4xx (451 restricted       ``Retry.FATAL``: ``on_error`` at once with
location, 404 bad path, 403)                           the HTTP status and what it means
Binance refused the request (bad key, signature),      ``Retry.FATAL``
a bug in rxbinance (:class:`InternalError`), anything
else
=====================================================  =========================================
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

from rxbinance.errors import (
    ConnectionDropped,
    ConnectionFailure,
    HandshakeError,
    InvalidInputError,
    RateLimitError,
    RequestError,
    ServerShutdown,
)
from rxbinance.protocol.frames import GIVE_UP_MESSAGE, give_up_message

__all__ = [
    "DEFAULT_RATE_LIMIT_PAUSE",
    "GIVE_UP_MESSAGE",
    "ReconnectPolicy",
    "Retry",
    "classify",
    "give_up_message",
    "is_fatal",
    "retry_after",
]

#: Close codes Binance uses when it ends a connection on purpose, so that the client reconnects
#: at once: 1001 "going away" is what the 24 h limit (and FakeBinance's max_connection_age) send.
_GOING_AWAY = 1001


class Retry(enum.Enum):
    """What to do after a failure (see the module docstring)."""

    NOW = "now"
    BACKOFF = "backoff"
    FATAL = "fatal"


def classify(failure: BaseException) -> Retry:
    """The one decision about a failed connection: retry at once, back off, or give up now."""
    if isinstance(failure, ServerShutdown) or getattr(failure, "reconnect_now", False):
        return Retry.NOW
    if isinstance(failure, ConnectionDropped) and failure.code == _GOING_AWAY:
        return Retry.NOW
    if isinstance(failure, HandshakeError):
        status = failure.status
        if status == 429 or status >= 500 or status < 400:
            return Retry.BACKOFF
        return Retry.FATAL
    if isinstance(failure, ConnectionFailure):
        return Retry.BACKOFF
    return Retry.FATAL


#: What the common handshake refusals mean, for the error a fatal one ends a stream with.
HTTP_REFUSALS = {
    400: "bad request: the URL or stream names are malformed",
    401: "unauthorized",
    403: "forbidden: the server refuses this client or IP (WAF limit?)",
    404: "not found: no such path on this endpoint (wrong URL, market or route?)",
    410: "gone: this endpoint was retired",
    418: "IP banned for breaking the request limits",
    451: "unavailable for legal reasons: Binance serves no client from this location",
}


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff with jitter, bounded by a count of consecutive failures.

    ``max_retries`` counts consecutive failed attempts after the first: with 5, a server that
    refuses everything sees 1 + 5 = 6 attempts before subscribers get the give-up message. A
    connection that delivered at least one message resets the count.

    The delay before retry ``n`` (1-based) is ``retry_delay * 2 ** (n - 1)``, stretched by a
    random factor in ``[1, 1 + jitter]`` so that many sockets dropped together do not reconnect
    in lockstep, and capped at ``max_retry_delay``: never less than ``retry_delay`` (unless the
    cap is lower), never more than ``max_retry_delay``.
    """

    max_retries: int = 5
    retry_delay: float = 1.0
    max_retry_delay: float = 30.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise InvalidInputError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise InvalidInputError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if not self.retry_delay >= 0:
            raise InvalidInputError(f"retry_delay must be >= 0, got {self.retry_delay!r}")
        if not self.max_retry_delay >= 0:
            raise InvalidInputError(f"max_retry_delay must be >= 0, got {self.max_retry_delay!r}")
        if not self.jitter >= 0:
            raise InvalidInputError(f"jitter must be >= 0, got {self.jitter!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        base = self.retry_delay * 2.0 ** min(attempt - 1, 60)
        return min(self.max_retry_delay, base * (1.0 + self.jitter * self.rng.random()))

    @staticmethod
    def is_retryable(failure: BaseException) -> bool:
        """Connection failures are retried; anything else (a bug, bad input) is not."""
        return isinstance(failure, ConnectionFailure)


# -- REST failures (snapshots, backfill) --------------------------------------------------------

#: Pause after a 429/418 that carried no ``Retry-After``: weight is counted per minute.
DEFAULT_RATE_LIMIT_PAUSE = 60.0


def retry_after(error: BaseException) -> float | None:
    """Seconds a rate-limit error (429/418) asks to wait, else None.

    :class:`~rxbinance.errors.RateLimitError` carries ``retry_after`` (None when Binance sent
    no ``Retry-After``: then :data:`DEFAULT_RATE_LIMIT_PAUSE`). Any other exception with a
    numeric ``retry_after`` attribute (another client's) is honoured the same way.
    """
    value = getattr(error, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, float(value))
    if isinstance(error, RateLimitError):
        return DEFAULT_RATE_LIMIT_PAUSE
    return None


def is_fatal(error: BaseException) -> bool:
    """True for a REST error that retrying cannot fix: Binance refused the request itself
    (HTTP 4xx other than 429/418, e.g. -1121 invalid symbol) or the arguments were invalid.

    Rate limits, 5xx (outcome unknown), timeouts and network errors
    (:class:`~rxbinance.errors.RequestError`) are worth retrying.
    """
    if isinstance(error, InvalidInputError):
        return True
    if isinstance(error, (RateLimitError, RequestError)) or retry_after(error) is not None:
        return False
    status = getattr(error, "status", None)
    if status is None:
        status = getattr(error, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (418, 429)
