"""Depth snapshot sizes and weights per product: one table for REST, books and the CLI."""

from __future__ import annotations

import pytest

from rxbinance.protocol.limits import check_depth_limit, depth_weight, max_depth_limit


@pytest.mark.parametrize(
    ("limit", "product", "weight"),
    [
        (1, "spot", 5),
        (100, "spot", 5),
        (101, "spot", 25),
        (500, "spot", 25),
        (1000, "spot", 50),
        (1001, "spot", 250),
        (5000, "spot", 250),
        (5, "usdm", 2),
        (50, "usdm", 2),
        (100, "usdm", 5),
        (500, "usdm", 10),
        (1000, "usdm", 20),
    ],
)
def test_allowed_limits_and_their_weights(limit: int, product: str, weight: int) -> None:
    assert check_depth_limit(limit, product) == limit  # type: ignore[arg-type]
    assert depth_weight(limit, product) == weight  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limit", "product", "fragment"),
    [
        (0, "spot", "1 to 5000 on spot"),
        (5001, "spot", "1 to 5000 on spot"),
        (True, "spot", "1 to 5000 on spot"),
        ("100", "spot", "1 to 5000 on spot"),
        (7, "usdm", "5, 10, 20, 50, 100, 500, 1000 on USD-M futures"),
        (5000, "usdm", "5, 10, 20, 50, 100, 500, 1000 on USD-M futures"),
    ],
)
def test_refused_limits_name_what_is_allowed(limit: object, product: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid depth snapshot limit") as caught:
        check_depth_limit(limit, product)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_max_depth_limit() -> None:
    assert max_depth_limit("spot") == 5000
    assert max_depth_limit("usdm") == 1000
