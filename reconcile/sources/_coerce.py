"""Type one localStorage progress value into the canonical columns.

Pure functions for :mod:`reconcile.sources.exports`. They only reject what cannot be
typed into the columns (or into PostgreSQL ``INTEGER`` / ``TEXT``); range checks
(negative counts, percentages over 100, future timestamps) belong to the schema.
"""

from __future__ import annotations

import math
import re
import reprlib
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pandas as pd

from reconcile.model import PERCENT_DECIMALS

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: Bounds of ``datetime64[ns]`` (NaT is the int64 minimum).
NS_MIN: int = pd.Timestamp.min.value
NS_MAX: int = pd.Timestamp.max.value
#: Levels of JSON string encoding unwrapped in a value (1 = ``JSON.stringify`` once).
MAX_ENCODING_LEVELS = 3

_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_REAL = (int, float)
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxother = 3, 80


class FieldError(ValueError):
    """A value that cannot be typed; ``str(error)`` is the quarantine reason."""


class Progress(NamedTuple):
    """One typed progress value, without its key (timestamps as epoch ns or None)."""

    completed_chapters: tuple[str, ...] | None
    chapters_completed: int
    total_chapters: int
    completion_percentage: float
    quiz_scores: dict[str, float]
    total_watch_time: int
    certificate_earned: bool
    started_at: int | None
    completed_at: int | None
    last_accessed_at: int | None


def show(value: object) -> str:
    """``repr`` of a bad value, cut to 80 characters for a reason text.

    Containers go through :mod:`reprlib`: a value nested 1,000 deep would make ``repr``
    raise ``RecursionError``, and a huge list would cost its whole length.
    """
    try:
        text = repr(value) if isinstance(value, str) else _REPR.repr(value)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(field: str, what: str, value: object) -> FieldError:
    return FieldError(f"{field} {what}: {show(value)}")


def decode_value(raw: object) -> dict[str, Any]:
    """The progress object behind a localStorage value (a JSON string, maybe re-encoded)."""
    value = raw
    for _ in range(MAX_ENCODING_LEVELS):
        if not isinstance(value, str):
            break
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise FieldError(f"value is not valid JSON ({exc}): {show(value)}") from None
    if isinstance(value, dict):
        return value
    if value is None:
        raise FieldError("value is null")
    if isinstance(value, str):
        raise FieldError(f"value is a JSON string encoded more than 3 times: {show(raw)}")
    raise FieldError(f"value is a JSON {type(value).__name__}, not an object: {show(value)}")


def to_float(field: str, value: object) -> float:
    """A finite float from a JSON number or numeric string."""
    if type(value) is float and math.isfinite(value):
        return value
    if type(value) is int and abs(value) < 2**53:
        return float(value)
    if isinstance(value, bool):
        raise _bad(field, "is a boolean, not a number", value)
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER_TEXT.fullmatch(text):
            raise _bad(field, "is not a number", value)
        value = text
    elif not isinstance(value, _REAL):
        raise _bad(field, "is not a number", value)
    try:
        number = float(value)
    except OverflowError:
        raise _bad(field, "is too large", value) from None
    if not math.isfinite(number):  # a numeric string beyond float range reads as inf
        raise _bad(field, "is too large" if isinstance(value, str) else "is not finite", value)
    return number


def to_int(field: str, value: object) -> int:
    """An integer in PostgreSQL's INTEGER range; ``5.0`` and ``"5"`` are fine."""
    if type(value) is int:
        number = value
    # Longer digit strings go through float: out of range anyway, and int() caps digits.
    elif isinstance(value, str) and len(value) <= 16 and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        real = to_float(field, value)
        if not real.is_integer():
            raise _bad(field, "is not an integer", value)
        number = int(real)
    if not INT32_MIN <= number <= INT32_MAX:
        raise _bad(field, "is outside the INTEGER range", value)
    return number


def to_bool(field: str, value: object) -> bool:
    """A boolean from ``true``/``false``, ``0``/``1`` or their strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, _REAL) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    raise _bad(field, "is not a boolean", value)


def to_text(field: str, value: str) -> str:
    """A string PostgreSQL ``TEXT`` can store (no NUL character)."""
    if "\x00" in value:
        raise _bad(field, "contains a NUL character, which PostgreSQL text cannot store", value)
    return value


def to_epoch_ns(field: str, value: object) -> int | None:
    """Epoch nanoseconds (UTC) from ISO-8601 text or epoch milliseconds; None when null."""
    if value is None:
        return None
    # "YYYY-..." is ISO text for sure; other strings may be epoch milliseconds.
    if isinstance(value, str) and (value[4:5] == "-" or not _NUMBER_TEXT.fullmatch(value.strip())):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except (ValueError, OverflowError):
            raise _bad(field, "is not an ISO-8601 timestamp or epoch milliseconds", value) from None
        epoch = _EPOCH_NAIVE if parsed.tzinfo is None else _EPOCH  # naive means UTC
        ns = (parsed - epoch) // _MICROSECOND * 1_000
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _bad(field, "is not an ISO-8601 timestamp or epoch milliseconds", value)
        ms = value if isinstance(value, int) else to_float(field, value)
        if isinstance(ms, float) and ms.is_integer():
            ms = int(ms)
        ns = ms * 1_000_000 if isinstance(ms, int) else round(ms * 1_000_000)
    if not NS_MIN <= ns <= NS_MAX:
        raise _bad(field, "is outside the supported time range (1677-2262)", value)
    return ns


def _chapter_ids(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad("completedChapters", "is not a list", value)
    try:
        joined = "".join(value)  # fast path: a list of strings
    except TypeError:
        pass
    else:
        if "\x00" not in joined:
            return tuple(sorted(set(value)))
    ids: set[str] = set()
    for index, item in enumerate(value):
        field = f"completedChapters[{index}]"
        if isinstance(item, str):
            ids.add(to_text(field, item))
        elif isinstance(item, int) and not isinstance(item, bool):
            ids.add(str(item))
        else:
            raise _bad(field, "is not a chapter id", item)
    return tuple(sorted(ids))


def _quiz_scores(value: object) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad("quizScores", "is not an object", value)
    scores = list(value.values())
    if all(type(score) in _REAL for score in scores) and "\x00" not in "".join(value):
        floats = [float(score) for score in scores if type(score) is float or abs(score) < 2**53]
        if len(floats) == len(scores) and all(map(math.isfinite, floats)):  # the common case
            return dict(zip(value, floats, strict=True))
    return {
        to_text("quizScores key", quiz): to_float(f"quizScores[{quiz!r}]", score)
        for quiz, score in value.items()
    }


def _percentage(value: object, chapters: int, total: int) -> float:
    if value is not None:
        return to_float("completionPercentage", value)
    if total == 0:
        return 0.0
    return min(100.0, round(100 * chapters / total, PERCENT_DECIMALS))


def coerce_progress(value: dict[str, Any]) -> Progress:
    """Type a decoded progress object; raise :class:`FieldError` naming the bad field."""
    if value.get("totalChapters") is None:
        raise FieldError("totalChapters is missing")
    total = to_int("totalChapters", value["totalChapters"])
    chapter_ids = _chapter_ids(value.get("completedChapters"))
    count_raw = value.get("chaptersCompleted")
    if count_raw is not None:
        count = to_int("chaptersCompleted", count_raw)
    else:
        count = len(chapter_ids) if chapter_ids is not None else 0
    if chapter_ids == () and count > 0:
        chapter_ids = None  # a count-only record: the list is unknown, not empty
    watch = value.get("totalWatchTime")
    certificate = value.get("certificateEarned")
    return Progress(  # positional: this runs once a record, a million times a night
        chapter_ids,
        count,
        total,
        _percentage(value.get("completionPercentage"), count, total),
        _quiz_scores(value.get("quizScores")),
        0 if watch is None else to_int("totalWatchTime", watch),
        False if certificate is None else to_bool("certificateEarned", certificate),
        to_epoch_ns("startedAt", value.get("startedAt")),
        to_epoch_ns("completedAt", value.get("completedAt")),
        to_epoch_ns("lastAccessedAt", value.get("lastAccessedAt")),
    )
