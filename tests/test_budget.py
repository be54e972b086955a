"""WeightBudget.refund: a request that never reached Binance costs no weight."""

from __future__ import annotations

import pytest

from rxbinance._reactive.budget import WeightBudget
from rxbinance.errors import BinanceAPIError, RequestError, RequestTimeout


@pytest.mark.parametrize(
    ("error", "refunded"),
    [
        (RequestError("connection refused", sent=False), True),
        (RequestTimeout("connect timeout", sent=False), True),
        (RequestError("connection reset"), False),  # may have reached Binance
        (RequestTimeout("read timeout"), False),
        (BinanceAPIError(503, None, "busy"), False),
        (ValueError("not a request error"), False),
    ],
)
def test_refund_gives_back_only_what_never_left(error: Exception, refunded: bool) -> None:
    clock = [0.0]
    budget = WeightBudget(60, 10, clock=lambda: clock[0])
    assert budget.acquire(10, timeout=0)
    assert budget.refund(10, error) is refunded
    assert budget.spent == (0 if refunded else 10)
    # With the weight back, the next request goes at once; without, the bucket is empty.
    assert budget.acquire(10, timeout=0) is refunded
