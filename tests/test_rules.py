"""The one completion formula of SPEC 3 (reconcile.rules)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from reconcile.rules import completion, completions


def test_completion_is_capped_and_rounded() -> None:
    assert completion(1, 3) == 33.33
    assert completion(9, 4) == 100.0
    assert completion(2, 0) == 0.0


@given(st.integers(-1000, 10**6), st.integers(1, 10**6))
def test_completion_rounds_half_up_like_postgresql(chapters: int, total: int) -> None:
    exact = (Decimal(100 * chapters) / Decimal(total)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert completion(chapters, total) == min(100.0, float(exact))


@given(st.lists(st.tuples(st.none() | st.integers(-50, 2**45), st.none() | st.integers(-5, 2**45))))
def test_the_column_form_is_the_same_formula(pairs: list[tuple[int | None, int | None]]) -> None:
    chapters = pd.Series([c for c, _ in pairs], dtype="Int64")
    totals = pd.Series([t for _, t in pairs], dtype="Int64")
    got = completions(chapters, totals).tolist()
    for (c, t), value in zip(pairs, got, strict=True):
        if c is None or t is None:
            assert value != value  # NaN
        else:
            assert value == completion(c, t)
