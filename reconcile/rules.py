"""The merge of SPEC 3, declared once: one rule per progress field, and the completion formula.

Both merges read this table: the Python one (:mod:`reconcile.compare.merge`, which joins a
key's local records and predicts the repaired row) and the SQL one
(:mod:`reconcile.repair.scripts`, which merges in the database against the row as it is
when the repair runs). A test applies both to random rows on a real PostgreSQL and expects
the same row, field by field.

Every rule is a join (commutative, associative, idempotent), so applying a repair twice, or
merging browsers in any order, gives the same row, and no rule takes progress away.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Final

import numpy as np
import pandas as pd

from reconcile.model import PERCENT_DECIMALS, PROGRESS_FIELDS


class Rule(StrEnum):
    """How one field of two records of the same key combines."""

    #: Chapter ids: the union; unknown (a count-only record) where no side has a list.
    UNION = "union"
    #: ``chapters_completed``: the size of the union, never below a count-only record's count.
    COUNT = "count"
    #: The larger value; an unknown value (NULL, NaT) loses to any known one.
    MAX = "max"
    #: The smaller value; an unknown value loses to any known one.
    MIN = "min"
    #: Quiz scores: every quiz of either side, each with its higher score.
    PER_KEY_MAX = "per_key_max"
    #: ``completion_percentage``: recomputed from the merged count and ``total_chapters``.
    RECOMPUTE = "recompute"
    #: Never changed by a repair: the backend row's value (a new row: see the field).
    KEEP_BACKEND = "keep_backend"


#: SPEC 3, one line per field of :data:`reconcile.model.PROGRESS_FIELDS`.
#:
#: ``completed_at`` takes the earliest known time: completing a tutorial on any browser is
#: completing it, and the earliest is when it happened (a join like the others, so the
#: repair stays idempotent and commutative). ``total_chapters`` is the backend's (local
#: records that disagree on it make the key a ``conflict``); ``certificate_earned`` is the
#: backend's, never granted by a repair (a local claim becomes a ``review.sql`` entry), and
#: ``false`` on a row the repair inserts.
MERGE_RULES: Final[dict[str, Rule]] = {
    "completed_chapters": Rule.UNION,
    "chapters_completed": Rule.COUNT,
    "total_chapters": Rule.KEEP_BACKEND,
    "completion_percentage": Rule.RECOMPUTE,
    "quiz_scores": Rule.PER_KEY_MAX,
    "total_watch_time": Rule.MAX,
    "certificate_earned": Rule.KEEP_BACKEND,
    "started_at": Rule.MIN,
    "completed_at": Rule.MIN,
    "last_accessed_at": Rule.MAX,
}
assert tuple(MERGE_RULES) == PROGRESS_FIELDS, "one rule per progress field, in order"

#: Fields a repair may change (every field whose rule is not KEEP_BACKEND).
MERGED_FIELDS: Final[tuple[str, ...]] = tuple(
    f for f, rule in MERGE_RULES.items() if rule is not Rule.KEEP_BACKEND
)

_CENT = Decimal(1).scaleb(-PERCENT_DECIMALS)


def completion(chapters: int, total: int) -> float:
    """SPEC 3: ``min(100, round(100 * chapters / total, 2))``, 0 when total is not positive.

    Rounds half up (away from zero) like PostgreSQL's ``round(numeric, 2)``, in exact
    arithmetic: ``1/32`` is 3.13 here and in the database (Python's ``round`` gives 3.12).
    """
    if total <= 0:
        return 0.0
    if chapters >= 0:  # integer arithmetic: exact and fast
        cents = (20000 * chapters + total) // (2 * total)
        return min(100.0, cents / 100)
    exact = Decimal(100 * chapters) / Decimal(total)
    return float(exact.quantize(_CENT, rounding=ROUND_HALF_UP))


def completions(chapters: pd.Series, totals: pd.Series) -> np.ndarray:
    """:func:`completion` of each pair of two columns, vectorised; NaN where either is unknown."""
    c = chapters.astype("Int64").to_numpy(dtype="float64", na_value=np.nan)
    t = totals.astype("Int64").to_numpy(dtype="float64", na_value=np.nan)
    out = np.full(len(c), np.nan)
    known = ~np.isnan(c) & ~np.isnan(t)
    zero = known & (t <= 0)
    out[zero] = 0.0
    # integer arithmetic where it is exact in int64, as completion() does in Python ints
    fast = known & (t > 0) & (c >= 0) & (c < 2**40) & (t < 2**40)
    ci, ti = c[fast].astype(np.int64), t[fast].astype(np.int64)
    cents = (20000 * ci + ti) // (2 * ti)
    out[fast] = np.minimum(100.0, cents / 100)
    slow = np.flatnonzero(known & ~zero & ~fast)
    raw_c, raw_t = chapters.iloc[slow].tolist(), totals.iloc[slow].tolist()
    out[slow] = [completion(int(a), int(b)) for a, b in zip(raw_c, raw_t, strict=True)]
    return out
