"""Depth snapshot sizes and their request weights, per product (binance-protocol.md 7, 8.4).

The one place the REST client, the order book pipeline and the command line learn what a depth
snapshot may hold and what it costs; FakeBinance keeps its own copy as an independent oracle.
"""

from __future__ import annotations

from rxbinance.errors import InvalidInputError
from rxbinance.protocol.endpoints import Product

__all__ = [
    "FUTURES_DEPTH_LIMITS",
    "SPOT_MAX_DEPTH_LIMIT",
    "check_depth_limit",
    "depth_weight",
    "max_depth_limit",
]

#: The snapshot sizes USD-M futures accepts; spot takes any size from 1 to 5000.
FUTURES_DEPTH_LIMITS: tuple[int, ...] = (5, 10, 20, 50, 100, 500, 1000)
SPOT_MAX_DEPTH_LIMIT = 5000

# (up to this limit, weight): GET /api/v3/depth and GET /fapi/v1/depth.
_SPOT_DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_FUTURES_DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))


def max_depth_limit(product: Product) -> int:
    """The largest snapshot ``product`` serves: 5000 levels on spot, 1000 on USD-M."""
    return FUTURES_DEPTH_LIMITS[-1] if product == "usdm" else SPOT_MAX_DEPTH_LIMIT


def check_depth_limit(limit: object, product: Product) -> int:
    """``limit`` if ``product`` serves snapshots of that size, else InvalidInputError naming
    the allowed sizes."""
    if product == "usdm":
        ok = not isinstance(limit, bool) and limit in FUTURES_DEPTH_LIMITS
        allowed = ", ".join(map(str, FUTURES_DEPTH_LIMITS)) + " on USD-M futures"
    else:
        ok = (
            isinstance(limit, int)
            and not isinstance(limit, bool)
            and 1 <= limit <= SPOT_MAX_DEPTH_LIMIT
        )
        allowed = f"1 to {SPOT_MAX_DEPTH_LIMIT} on spot"
    if not ok:
        raise InvalidInputError(f"invalid depth snapshot limit {limit!r}: allowed are {allowed}")
    assert isinstance(limit, int)
    return limit


def depth_weight(limit: int, product: Product) -> int:
    """Request weight of a depth snapshot of ``limit`` levels on ``product``."""
    for upto, weight in _FUTURES_DEPTH_WEIGHTS if product == "usdm" else _SPOT_DEPTH_WEIGHTS:
        if limit <= upto:
            return weight
    raise InvalidInputError(f"depth limit {limit} is above the maximum")
