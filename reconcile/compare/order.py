"""SPEC 2's partial order of progress, column-wise: which side holds more, and in what words.

Every key here has a merged local record and a valid backend row. Most keys agree, so each
comparison first finds the equal ones column-wise (chapter tuples, quiz dicts, numbers) and
works out sets only for the keys that differ; the ``differences`` text is assembled from
per-column parts, only where a part is not empty. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reconcile.model import PERCENT_DECIMALS, PROGRESS_FIELDS, TIMESTAMP_COLUMNS, Status

#: The progress fields the order reads (timestamps and certificates never move a status).
COMPARED: tuple[str, ...] = tuple(
    f for f in PROGRESS_FIELDS if f not in (*TIMESTAMP_COLUMNS, "certificate_earned")
)

Texts = np.ndarray  # object array of str, "" where there is nothing to say


@dataclass(frozen=True)
class Verdicts:
    """Per key (same positions as the frames compared): status, reason and differences.

    Object arrays of plain ``str``.
    """

    status: np.ndarray
    reason: np.ndarray
    differences: np.ndarray


def compare_sides(local: pd.DataFrame, backend: pd.DataFrame) -> Verdicts:
    """Place each merged local record against the backend row at the same position.

    Both frames hold the :data:`COMPARED` fields without a side prefix.
    """
    n = len(local)
    chapters = _chapters(local, backend)
    quizzes = _quizzes(
        local["quiz_scores"].to_numpy(dtype=object), backend["quiz_scores"].to_numpy(dtype=object)
    )
    watch = _more(_ints(local["total_watch_time"]), _ints(backend["total_watch_time"]), "watch")
    parts = [
        *(_prefixed("local has ", side[0]) for side in (chapters, quizzes, watch)),
        *(_prefixed("backend has ", side[1]) for side in (chapters, quizzes, watch)),
    ]
    local_more = _any_text(parts[:3])
    backend_more = _any_text(parts[3:])
    differences = join_texts(parts)

    status = np.full(n, Status.IN_SYNC.value, dtype=object)
    reason = np.full(n, "both sides hold the same progress", dtype=object)
    for mask, verdict, why in (
        (backend_more, Status.BACKEND_AHEAD, "backend holds more progress"),
        (local_more, Status.LOCAL_AHEAD, "local holds progress the backend lacks"),
        (local_more & backend_more, Status.DIVERGED, "each side holds progress the other lacks"),
    ):
        status[mask] = verdict.value
        reason[mask] = why

    local_total, backend_total = _ints(local["total_chapters"]), _ints(backend["total_chapters"])
    totals = local_total != backend_total
    if totals.any():
        why = (
            "total_chapters differs: local "
            + _decimal(local_total[totals])
            + ", backend "
            + _decimal(backend_total[totals])
        )
        status[totals] = Status.CONFLICT.value
        reason[totals] = why
        differences[totals] = join_texts([why, *(p[totals] for p in parts)])

    same = ~(local_more | backend_more | totals)
    _percentages(local, backend, same, status, reason, differences)
    return Verdicts(status, reason, differences)


def _percentages(
    local: pd.DataFrame,
    backend: pd.DataFrame,
    same: np.ndarray,
    status: np.ndarray,
    reason: np.ndarray,
    differences: np.ndarray,
) -> None:
    """Same progress: ``completion_percentage`` must agree to 2 decimals, else a conflict."""
    lp = local["completion_percentage"].to_numpy(dtype="float64")
    bp = backend["completion_percentage"].to_numpy(dtype="float64")
    for i in np.flatnonzero(same & ~(lp == bp)):  # equal floats round equal: only the rest
        left = round(float(lp[i]), PERCENT_DECIMALS)
        right = round(float(bp[i]), PERCENT_DECIMALS)
        if left != right:
            why = f"completion_percentage differs ({left} vs {right}) with the same progress"
            status[i], reason[i], differences[i] = Status.CONFLICT.value, why, why


def _chapters(local: pd.DataFrame, backend: pd.DataFrame) -> tuple[Texts, Texts]:
    """Chapter ids the other side lacks; a higher count where a side has no list."""
    lc = local["completed_chapters"].to_numpy(dtype=object)
    bc = backend["completed_chapters"].to_numpy(dtype=object)
    lists = pd.notna(lc) & pd.notna(bc)
    equal = np.zeros(len(lc), dtype=bool)
    equal[lists] = np.asarray(lc[lists] == bc[lists], dtype=bool)
    mine, theirs = _blank(len(lc)), _blank(len(lc))
    said: dict[tuple[object, object], tuple[str, str]] = {}  # the same pairs recur a lot
    for i in np.flatnonzero(lists & ~equal):
        pair = (lc[i], bc[i])
        if pair not in said:
            a, b = set(pair[0]), set(pair[1])
            said[pair] = (_lacking(sorted(a - b)), _lacking(sorted(b - a)))
        mine[i], theirs[i] = said[pair]
    counts = np.flatnonzero(~lists)
    if len(counts):
        ln = _ints(local["chapters_completed"].iloc[counts])
        bn = _ints(backend["chapters_completed"].iloc[counts])
        mine[counts], theirs[counts] = _more(ln, bn, "count")
    return mine, theirs


def _quizzes(local: np.ndarray, backend: np.ndarray) -> tuple[Texts, Texts]:
    """Quizzes a side scored higher on, or that the other lacks."""
    mine, theirs = _blank(len(local)), _blank(len(local))
    for i in np.flatnonzero(~np.asarray(local == backend, dtype=bool)):
        for own, other, sink in ((local[i], backend[i], mine), (backend[i], local[i], theirs)):
            better = [q for q, s in own.items() if q not in other or s > other[q]]
            if better:
                sink[i] = f"better or extra quiz score(s): {sample(sorted(better))}"
    return mine, theirs


_MORE = {
    "watch": ("more watch time (", " s vs ", " s)"),
    "count": ("a higher chapter count (", " vs ", ")"),
}


def _more(left: np.ndarray, right: np.ndarray, what: str) -> tuple[Texts, Texts]:
    """Texts for the side whose number is larger, e.g. ``more watch time (90 s vs 60 s)``."""
    start, middle, end = _MORE[what]
    out = []
    for bigger, smaller in ((left, right), (right, left)):
        texts = _blank(len(left))
        ahead = bigger > smaller
        if ahead.any():
            texts[ahead] = start + _decimal(bigger[ahead]) + middle + _decimal(smaller[ahead]) + end
        out.append(texts)
    return out[0], out[1]


def _lacking(only: list[str]) -> str:
    return f"{len(only)} chapter(s) the other lacks: {sample(only)}" if only else ""


def sample(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items, quoted, and how many more."""
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def join_texts(parts: Sequence[Texts | str]) -> Texts:
    """Element-wise ``"; ".join`` of the non-empty parts."""
    out: np.ndarray | None = None
    for part in parts:
        if out is None:
            out = np.array(part, dtype=object, copy=True)
            continue
        empty_out, empty_part = out == "", np.asarray(part == "", dtype=bool)
        both = ~empty_out & ~empty_part
        joined = np.where(empty_out, part, out)
        if both.any():
            joined[both] = out[both] + "; " + np.broadcast_to(part, out.shape)[both]
        out = joined.astype(object)
    assert out is not None, "nothing to join"
    return out


def _prefixed(prefix: str, texts: Texts) -> Texts:
    out = texts.copy()
    said = texts != ""
    out[said] = prefix + texts[said]
    return out


def _any_text(parts: Sequence[Texts]) -> np.ndarray:
    said = np.zeros(len(parts[0]), dtype=bool)
    for part in parts:
        said |= part != ""
    return said


def _blank(n: int) -> Texts:
    return np.full(n, "", dtype=object)


def _ints(values: pd.Series) -> np.ndarray:
    """Integers of a column with no unknown value (like ``int()`` of each)."""
    return np.asarray(values.to_numpy(dtype=np.int64))


def _decimal(values: np.ndarray) -> Texts:
    """``str()`` of each integer."""
    return values.astype(str).astype(object)
