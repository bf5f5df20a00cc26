"""Type one localStorage progress value into the canonical columns.

Pure functions for :mod:`reconcile.sources.exports`. They only reject what cannot be
typed into the columns (or into PostgreSQL ``INTEGER`` / ``TEXT``); range checks
(negative counts, percentages over 100, future timestamps) belong to the schema.
"""

from __future__ import annotations

import math
import re
import reprlib
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import compress
from operator import attrgetter
from typing import Annotated, Any, NamedTuple

import msgspec
import numpy as np
import orjson
import pandas as pd

from reconcile.rules import completion

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: Bounds of ``datetime64[ns]`` (NaT is the int64 minimum).
NS_MIN: int = pd.Timestamp.min.value
NS_MAX: int = pd.Timestamp.max.value
NAT = np.iinfo(np.int64).min
#: Levels of JSON string encoding unwrapped in a value (1 = ``JSON.stringify`` once).
MAX_ENCODING_LEVELS = 3

_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_REAL = (int, float)
_FLOAT_EXACT = 2**53  # integers below this in magnitude are exact as floats
_MINUS_FLOAT_EXACT = -(2**53)
_FULL_PATH = object()  # "not the common case": the caller takes the full path
_isfinite = math.isfinite
_fromisoformat = datetime.fromisoformat
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
    return completion(chapters, total)


def decode_common(raw: object) -> dict[str, Any] | None:
    """The common case of :func:`decode_value`: an object JSON-encoded once; else None.

    Also None when the text could hold a NUL character: JSON writes one only as
    ``\\u0000``, so every string in an object decoded here is free of them, and
    :func:`common_progress` need not look string by string.
    """
    if type(raw) is not str or "\\u0000" in raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


def common_progress(value: dict[str, Any]) -> tuple[Any, ...] | None:
    """:func:`coerce_progress` of a well-typed value as a plain tuple, else None.

    The fast path for the common case (native JSON types, nothing to coerce) of a value
    from :func:`decode_common` (so no NUL character in its strings): a million records a
    night come through here. Anything else returns None, and the caller takes
    :func:`coerce_progress`, which alone words reasons. Timestamp texts are left as they
    are, for :func:`epoch_ns_column` to parse in bulk; with them parsed by
    :func:`to_epoch_ns`, the tuple equals ``tuple(coerce_progress(value))``, value for
    value and type for type, and where one fails ``coerce_progress`` raises that error.
    """
    get = value.get
    total = get("totalChapters")
    if type(total) is not int or not INT32_MIN <= total <= INT32_MAX:
        return None
    chapters = get("completedChapters")
    if chapters is None:
        chapter_ids = None
    elif type(chapters) is list:
        try:
            chapter_ids = tuple(sorted({*chapters}))
        except TypeError:  # unhashable ids, or ids of types that do not compare
            return None
        if chapter_ids and type(chapter_ids[0]) is not str:  # str never compares with others
            return None
    else:
        return None
    count = get("chaptersCompleted")
    if count is None:
        count = len(chapter_ids) if chapter_ids is not None else 0
    elif type(count) is not int or not INT32_MIN <= count <= INT32_MAX:
        return None
    if chapter_ids == () and count > 0:
        chapter_ids = None
    percentage = get("completionPercentage")
    if type(percentage) is int and _MINUS_FLOAT_EXACT < percentage < _FLOAT_EXACT:
        percentage = float(percentage)
    elif percentage is None:
        percentage = _percentage(None, count, total)
    elif type(percentage) is not float or not _isfinite(percentage):
        return None
    quiz = get("quizScores")
    scores: dict[str, float] = {}
    if type(quiz) is dict:
        for quiz_id, score in quiz.items():
            if type(score) is int and _MINUS_FLOAT_EXACT < score < _FLOAT_EXACT:
                score = float(score)
            elif type(score) is not float or not _isfinite(score):
                return None
            scores[quiz_id] = score
    elif quiz is not None:
        return None
    watch = get("totalWatchTime")
    if watch is None:
        watch = 0
    elif type(watch) is not int or not INT32_MIN <= watch <= INT32_MAX:
        return None
    certificate = get("certificateEarned")
    if certificate is None:
        certificate = False
    elif type(certificate) is not bool:
        return None
    started, completed, accessed = get("startedAt"), get("completedAt"), get("lastAccessedAt")
    if not (
        (started is None or type(started) is str)
        and (completed is None or type(completed) is str)
        and (accessed is None or type(accessed) is str)
    ):  # epoch milliseconds, or no timestamp at all
        started, completed, accessed = stamps = tuple(
            map(_epoch_ms_ns, (started, completed, accessed))
        )
        if _FULL_PATH in stamps:
            return None
    return (
        chapter_ids,
        count,
        total,
        percentage,
        scores,
        watch,
        certificate,
        started,
        completed,
        accessed,
    )


def _epoch_ms_ns(value: object) -> object:
    """Integer epoch ms as ns (as :func:`to_epoch_ns`), text and None as they are."""
    if value is None or type(value) is str:
        return value
    if type(value) is int and NS_MIN <= value * 1_000_000 <= NS_MAX:
        return value * 1_000_000
    return _FULL_PATH


# --------------------------------------------------------------------------- timestamps in bulk

#: The two forms of ``Date.prototype.toJSON()`` (``d`` a digit), parsed in bulk.
_JSON_DATE_FORMS = ("dddd-dd-ddTdd:dd:ddZ", "dddd-dd-ddTdd:dd:dd.dddZ")
#: Seconds from the epoch safely inside the ``datetime64[ns]`` range (1678-2261).
_SAFE_SECONDS = 9_200_000_000
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_KIND = {type(None): 0, int: 1, str: 2}  # what a timestamp column holds


def epoch_ns_column(values: Sequence[object], unit: int = 1) -> tuple[np.ndarray, list[int]]:
    """A timestamp column from :func:`common_progress`: epoch ns, and the rejected positions.

    ``values`` hold None, epoch ns (or, with ``unit=1_000_000``, epoch ms, as
    :func:`typed_columns` leaves them) and timestamp text. The result is int64 epoch ns,
    the int64 minimum (NaT) for None, and the positions of texts :func:`to_epoch_ns`
    rejects. Texts in the forms browsers write are parsed together; any other text goes
    through :func:`to_epoch_ns` itself, so the result is the same as calling it on each text.
    """
    size = len(values)
    kinds = np.fromiter(map(_KIND.__getitem__, map(type, values)), dtype=np.int8, count=size)
    out = np.full(size, NAT, dtype=np.int64)
    is_number, is_text = kinds == _KIND[int], kinds == _KIND[str]
    out[is_number] = np.fromiter(compress(values, is_number.tolist()), dtype=np.int64) * unit
    positions = np.flatnonzero(is_text)
    texts: list[str] = list(compress(values, is_text.tolist()))  # type: ignore[arg-type]
    parsed = _json_dates_ns(texts)
    failed: list[int] = []
    for index in np.flatnonzero(parsed == NAT).tolist():  # other forms: one by one
        try:
            parsed[index] = to_epoch_ns("timestamp", texts[index])
        except FieldError:
            failed.append(int(positions[index]))
    out[positions] = parsed
    return out, failed


def _json_dates_ns(texts: list[str]) -> np.ndarray:
    """Epoch ns of texts in :data:`_JSON_DATE_FORMS` (as ``fromisoformat``), NaT for others.

    Each character is checked against its form, and each field against its range
    (days against their month), so a text is parsed here only where ``fromisoformat``
    gives the same instant; anything else, NaT, is left to :func:`to_epoch_ns`.
    """
    size = len(texts)
    out = np.full(size, NAT, dtype=np.int64)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=size)
    for form in _JSON_DATE_FORMS:
        rows = np.flatnonzero(lengths == len(form))
        if not rows.size:
            continue
        chosen = texts if rows.size == size else list(map(texts.__getitem__, rows.tolist()))
        # One byte a character: anything not ASCII becomes "?", which no form accepts.
        data = "".join(chosen).encode("ascii", "replace")
        ns, ok = _form_ns(np.frombuffer(data, dtype=np.uint8).reshape(-1, len(form)), form)
        out[rows[ok]] = ns[ok]
    return out


def _form_ns(chars: np.ndarray, form: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ns of rows of ASCII codes in ``form``, and which rows are valid instants."""
    digit = np.array([c == "d" for c in form])
    literal = np.frombuffer(form.encode("ascii"), dtype=np.uint8)[~digit]
    ok = ((chars[:, digit] - ord("0")) <= 9).all(axis=1)  # uint8: below "0" wraps round
    ok &= (chars[:, ~digit] == literal).all(axis=1)
    year, month, day = _number(chars, 0, 4), _number(chars, 5, 7), _number(chars, 8, 10)
    hour, minute, second = _number(chars, 11, 13), _number(chars, 14, 16), _number(chars, 17, 19)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 1, 12)] + ((month == 2) & leap)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    ok &= (seconds > -_SAFE_SECONDS) & (seconds < _SAFE_SECONDS)
    ns = seconds * 1_000_000_000
    if len(form) > 20:
        ns += _number(chars, 20, 23) * 1_000_000
    return ns, ok


def _number(chars: np.ndarray, start: int, end: int) -> np.ndarray:
    """The decimal number in columns ``start:end`` of rows of ASCII digits."""
    number = chars[:, start].astype(np.int64) - ord("0")
    for column in range(start + 1, end):
        number = number * 10 + (chars[:, column] - ord("0"))
    return number


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's ``days_from_civil``)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


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


# --------------------------------------------------------------------------- typed in C

_Int32 = Annotated[int, msgspec.Meta(ge=INT32_MIN, le=INT32_MAX)]
_Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
#: Epoch milliseconds whose nanoseconds ``datetime64[ns]`` holds (as :func:`to_epoch_ns`).
_EpochMs = Annotated[int, msgspec.Meta(ge=-(-NS_MIN // 1_000_000), le=NS_MAX // 1_000_000)]


class TypedProgress(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    """A progress value in exactly the types of the canonical columns, checked in C.

    msgspec takes a value only when every field already has its column's type and range
    (and no field is unknown, so that nothing it skips could be JSON orjson refuses);
    anything else fails to decode here and takes :func:`decode_common` /
    :func:`coerce_progress`, which word the reasons.
    """

    tutorial_id: Annotated[str, msgspec.Meta(min_length=1)]
    total_chapters: _Int32
    user_id: str | msgspec.UnsetType = msgspec.UNSET  # null is left to the full path
    completed_chapters: list[str] | None = None
    chapters_completed: _Int32 | None = None
    completion_percentage: _Finite | None = None
    quiz_scores: dict[str, _Finite] | None = None
    total_watch_time: _Int32 | None = None
    certificate_earned: bool | None = None
    started_at: str | _EpochMs | None = None
    completed_at: str | _EpochMs | None = None
    last_accessed_at: str | _EpochMs | None = None


_TYPED = msgspec.json.Decoder(TypedProgress)
_TYPED_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
_TYPED_FIELDS = attrgetter(*Progress._fields)  # TypedProgress names its fields alike


def decode_typed(raw: object) -> TypedProgress | None:
    """The value as :class:`TypedProgress` when it is one JSON-encoded once, else None.

    Text that could hold a NUL character (JSON writes one only as ``\\u0000``) is left
    to the full path, as in :func:`decode_common`.
    """
    if type(raw) is not str or "\\u0000" in raw:
        return None
    try:
        return _TYPED.decode(raw)
    except _TYPED_ERRORS:
        return None


def typed_columns(values: Sequence[TypedProgress]) -> list[Sequence[Any]]:
    """The :class:`Progress` fields of ``values`` as columns, a column at a time.

    Each column holds what :func:`common_progress` gives for the same value, except the
    timestamps: text as it is and integers in epoch milliseconds, for
    :func:`epoch_ns_column` with ``unit=1_000_000``.
    """
    (chapters, counts, totals, percentages, quizzes, watch, certificates, *stamps) = zip(
        *map(_TYPED_FIELDS, values), strict=True
    )
    if None in chapters:
        ids: list[tuple[str, ...] | None] = [
            None if c is None else tuple(sorted({*c})) for c in chapters
        ]
    else:
        ids = list(map(tuple, map(sorted, map(set, chapters))))
    if None in counts:
        counts = tuple(
            (0 if i is None else len(i)) if n is None else n
            for n, i in zip(counts, ids, strict=True)
        )
    if () in ids:  # an empty list and a positive count: the list is unknown
        for row, (i, n) in enumerate(zip(ids, counts, strict=True)):
            if i == () and n > 0:
                ids[row] = None
    if None in percentages:
        percentages = tuple(
            completion(n, t) if p is None else p
            for p, n, t in zip(percentages, counts, totals, strict=True)
        )
    if None in quizzes:
        quizzes = tuple({} if q is None else q for q in quizzes)
    shared: dict[Any, Any] = {}  # a few distinct chapter lists over many records: one each
    ids = [shared.setdefault(i, i) for i in ids]
    if None in watch:
        watch = tuple(0 if w is None else w for w in watch)
    if None in certificates:
        certificates = tuple(c is True for c in certificates)
    return [ids, counts, totals, percentages, quizzes, watch, certificates, *stamps]
