"""The one completion formula of SPEC 3 (reconcile.rules)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from reconcile.rules import completion


def test_completion_is_capped_and_rounded() -> None:
    assert completion(1, 3) == 33.33
    assert completion(9, 4) == 100.0
    assert completion(2, 0) == 0.0


@given(st.integers(-1000, 10**6), st.integers(1, 10**6))
def test_completion_rounds_half_up_like_postgresql(chapters: int, total: int) -> None:
    exact = (Decimal(100 * chapters) / Decimal(total)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert completion(chapters, total) == min(100.0, float(exact))
