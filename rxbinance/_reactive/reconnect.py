"""Reconnection policy as data: how long to wait before attempt n, and what is worth retrying."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rxbinance.errors import ConnectionFailure, InvalidInputError

__all__ = ["GIVE_UP_MESSAGE", "ReconnectPolicy", "give_up_message"]

#: What every subscriber receives when the retries are spent, exactly as python-binance sent it.
GIVE_UP_MESSAGE = {"e": "error", "m": "Max reconnect retries reached"}


def give_up_message() -> dict[str, str]:
    """A fresh copy of :data:`GIVE_UP_MESSAGE` (subscribers may mutate what they get)."""
    return dict(GIVE_UP_MESSAGE)


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
