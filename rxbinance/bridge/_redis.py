"""The Redis boundary: URL checks, client construction, and redis-py's exceptions mapped to ours.

redis-py's own retry is switched off (``Retry(NoBackoff(), 0)``): the publisher and the
consumer each own one reconnect loop, with the project's one backoff
(:class:`~rxbinance._reactive.reconnect.ReconnectPolicy`), and know what to resend or resume.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from rxbinance.errors import BridgeError, InvalidInputError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - exercised by users without the extra
    redis = None  # type: ignore[assignment]

__all__ = [
    "BridgeError",
    "check_url",
    "connect",
    "is_connection_error",
    "require_redis",
    "safe_url",
    "unreachable",
]

_SCHEMES = ("redis", "rediss", "unix")


def require_redis() -> None:
    """Raise ImportError with the one line to run when redis-py is not installed."""
    if redis is None:
        raise ImportError("rxbinance.bridge needs redis-py: pip install 'rxbinance[redis]'")


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: what logs and errors may show. Works on
    text only, so it also masks URLs too broken to parse."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{tail}"


def check_url(url: object) -> str:
    """Validate a Redis URL before anything opens; InvalidInputError names what is allowed."""
    if not isinstance(url, str) or not url:
        raise InvalidInputError(f"redis_url must be a URL string, got {url!r}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInputError(f"bad Redis URL {safe_url(url)!r}") from None
    if parts.scheme not in _SCHEMES:
        allowed = ", ".join(f"{s}://" for s in _SCHEMES)
        raise InvalidInputError(f"bad Redis URL {safe_url(url)!r}: expected {allowed}")
    if parts.scheme != "unix" and not parts.hostname:
        raise InvalidInputError(f"bad Redis URL {safe_url(url)!r}: no host")
    return url


def connect(url: str, *, timeout: float = 5.0) -> Any:
    """A redis-py client for ``url`` (bytes in, bytes out; no retry of its own)."""
    require_redis()
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=min(timeout, 2.0),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


def is_connection_error(exc: BaseException) -> bool:
    """Redis went away or is not there (worth retrying), as opposed to a refused command."""
    return redis is not None and isinstance(
        exc, (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)
    )


def unreachable(url: str, exc: BaseException) -> BridgeError:
    return BridgeError(
        f"Redis unreachable at {safe_url(url)}: {exc}", url=safe_url(url), unreachable=True
    )
