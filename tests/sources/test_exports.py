"""The localStorage exports loader (SPEC 1.2): every bad input kind, every format.

Each test writes a few small export files to ``tmp_path`` and asserts exactly which
records are kept, set aside as foreign, or quarantined (with line and reason).
No database is needed.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.errors import ConfigError
from reconcile.model import LOCAL_EXTRA_COLUMNS, PROGRESS_COLUMNS, QUARANTINE_COLUMNS
from reconcile.sources import _readers, exports
from reconcile.sources._coerce import (
    NAT,
    FieldError,
    Progress,
    coerce_progress,
    common_progress,
    decode_common,
    epoch_ns_column,
    to_epoch_ns,
)
from reconcile.sources.exports import (
    FOREIGN_COLUMNS,
    ExportsLoad,
    ExportStats,
    iter_export_files,
    load_exports,
)

CORPUS = Path(__file__).parents[3] / "shared" / "corpora" / "JSONTestSuite" / "test_parsing"

# --------------------------------------------------------------------------- helpers


def progress(tutorial: Any = "intro-to-rag", user: Any = "u-42", **fields: Any) -> dict[str, Any]:
    """A well-formed progress value; ``fields`` override or (with None) drop fields."""
    value: dict[str, Any] = {
        "tutorialId": tutorial,
        "userId": user,
        "completedChapters": ["ch-1", "ch-2"],
        "chaptersCompleted": 2,
        "totalChapters": 5,
        "completionPercentage": 40,
        "quizScores": {"quiz-1": 80},
        "totalWatchTime": 600,
        "certificateEarned": False,
        "startedAt": "2026-01-02T03:04:05Z",
        "lastAccessedAt": 1768000000000,
    }
    value.update(fields)
    return {k: v for k, v in value.items() if v is not None}


def key(tutorial: str = "intro-to-rag", user: str = "u-42") -> str:
    return f"tutorial_progress_{tutorial}_{user}"


def export(user: Any = "u-42", storage: Any = None, **extra: Any) -> dict[str, Any]:
    """An envelope; ``storage`` values that are dicts are JSON-encoded like the browser does."""
    if storage is None:
        storage = {key(user=user): progress(user=user)}
    if isinstance(storage, dict):
        storage = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in storage.items()}
    return {"userId": user, "exportedAt": "2026-01-20T08:00:00Z", "localStorage": storage, **extra}


def line(obj: Any) -> bytes:
    return orjson.dumps(obj)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    if path.suffix == ".gz":
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def ndjson(path: Path, *items: Any) -> Path:
    """One item a line; bytes are written as they are, anything else as JSON."""
    return write(path, b"\n".join(i if isinstance(i, bytes) else line(i) for i in items) + b"\n")


def only_record(load: ExportsLoad) -> pd.Series:
    assert load.quarantine.empty, load.quarantine["reason"].tolist()
    assert len(load.records) == 1
    return load.records.iloc[0]


def only_rejection(load: ExportsLoad) -> pd.Series:
    assert len(load.quarantine) == 1, load.quarantine["reason"].tolist()
    return load.quarantine.iloc[0]


def load_value(tmp_path: Path, value: Any) -> ExportsLoad:
    """Load one export whose only progress key holds ``value`` (raw: not re-encoded)."""
    env = export(storage={})
    env["localStorage"] = {key(): value}
    return load_exports([ndjson(tmp_path / "e.ndjson", env)])


def load_progress(tmp_path: Path, **fields: Any) -> ExportsLoad:
    return load_value(tmp_path, json.dumps(progress(**fields)))


def lines_of(load: ExportsLoad) -> list[int]:
    return load.records["source_line"].tolist()


def ids_of(rejection: pd.Series) -> tuple[str | None, str | None]:
    """``(user_id, tutorial_id)`` of a quarantine row, NA as None."""
    user, tutorial = (None if pd.isna(v) else v for v in rejection[["user_id", "tutorial_id"]])
    return user, tutorial


# --------------------------------------------------------------------------- API and types


EXPECTED_DTYPES = {
    "user_id": "object",
    "tutorial_id": "object",
    "completed_chapters": "object",
    "chapters_completed": "Int64",
    "total_chapters": "Int64",
    "completion_percentage": "float64",
    "quiz_scores": "object",
    "total_watch_time": "Int64",
    "certificate_earned": "bool",
    "started_at": "datetime64[ns, UTC]",
    "completed_at": "datetime64[ns, UTC]",
    "last_accessed_at": "datetime64[ns, UTC]",
    "source_file": "object",
    "source_line": "Int64",
    "storage_key": "object",
    "export_user_id": "object",
    "exported_at": "datetime64[ns, UTC]",
}


@pytest.mark.parametrize("full", [False, True], ids=["empty", "full"])
def test_frames_have_every_column_and_dtype(tmp_path: Path, full: bool) -> None:
    if full:
        other = key("t", "u-1")
        storage = {key(): progress(), other: progress("t", "u-1"), key("x"): "{"}
        ndjson(tmp_path / "e.ndjson", export(storage=storage))
    load = load_exports([tmp_path])
    assert Progress._fields == PROGRESS_COLUMNS[2:]  # typed values line up with the columns
    assert list(load.records.columns) == [*PROGRESS_COLUMNS, *LOCAL_EXTRA_COLUMNS]
    assert list(load.foreign.columns) == list(FOREIGN_COLUMNS)
    assert list(load.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert {c: str(t) for c, t in load.records.dtypes.items()} == EXPECTED_DTYPES
    assert {c: str(t) for c, t in load.foreign.dtypes.items()} == {
        c: EXPECTED_DTYPES[c] for c in FOREIGN_COLUMNS
    }
    assert str(load.quarantine["source_line"].dtype) == "Int64"
    assert (len(load.records), len(load.foreign), len(load.quarantine)) == (
        (1, 1, 1) if full else (0, 0, 0)
    )


def test_a_valid_record_is_typed_into_the_canonical_columns(tmp_path: Path) -> None:
    value = progress(completedChapters=["ch-2", "ch-1", "ch-2"], completedAt="2026-01-03T00:00:00")
    env = export(storage={key(): value, "theme": "dark", "lang": "en"}, userAgent="Firefox")
    path = ndjson(tmp_path / "e.ndjson", env)
    load = load_exports([path])
    row = only_record(load)
    assert row["user_id"] == "u-42" and row["tutorial_id"] == "intro-to-rag"
    assert row["completed_chapters"] == ("ch-1", "ch-2")
    assert (row["chapters_completed"], row["total_chapters"], row["total_watch_time"]) == (
        2,
        5,
        600,
    )
    assert row["completion_percentage"] == 40.0
    assert row["quiz_scores"] == {"quiz-1": 80.0}
    assert not row["certificate_earned"]
    assert row["started_at"] == pd.Timestamp("2026-01-02T03:04:05Z")
    assert row["completed_at"] == pd.Timestamp("2026-01-03T00:00:00Z")  # naive means UTC
    assert row["last_accessed_at"] == pd.Timestamp(1768000000000, unit="ms", tz="UTC")
    assert row["source_file"] == str(path) and row["source_line"] == 1
    assert row["storage_key"] == key() and row["export_user_id"] == "u-42"
    assert row["exported_at"] == pd.Timestamp("2026-01-20T08:00:00Z")
    assert load.stats == ExportStats(
        files=1, exports=1, progress_records=1, ignored_keys=2, foreign_records=0
    )


# --------------------------------------------------------------------------- broken JSON


def test_broken_json_array_file_keeps_the_exports_before_the_garbage(tmp_path: Path) -> None:
    good = [line(export(user=f"u-{i}")).decode() for i in range(3)]
    text = "[\n" + good[0] + ",\n" + good[1] + ',\n{"userId": "u-x", oops\n' + good[2] + "]"
    load = load_exports([write(tmp_path / "a.json", text)])
    assert load.records["user_id"].tolist() == ["u-0", "u-1"]
    assert lines_of(load) == [2, 3]
    rejection = only_rejection(load)
    assert rejection["source_line"] == 4
    assert rejection["reason"].startswith("broken JSON (")
    assert rejection["reason"].endswith("the file is quarantined from here on")


def test_an_element_orjson_rejects_is_quarantined_alone(tmp_path: Path) -> None:
    text = "[" + line(export(user="a")).decode() + ",\n[NaN],\n" + line(export(user="b")).decode()
    load = load_exports([write(tmp_path / "a.json", text + "\n")])  # also: array never closed
    assert load.records["user_id"].tolist() == ["a", "b"]
    reasons = load.quarantine.set_index("source_line")["reason"].to_dict()
    assert reasons[2].startswith("export is not valid JSON")
    assert reasons[4] == "the file ends before the array is closed"


def test_a_broken_single_export_file_is_quarantined_as_a_whole(tmp_path: Path) -> None:
    load = load_exports([write(tmp_path / "a.json", '{"userId": "u-42", "localStorage": {')])
    rejection = only_rejection(load)
    assert rejection["source_line"] == 1
    assert rejection["reason"].startswith("broken JSON")
    assert load.stats.exports == 0


def test_a_valid_export_followed_by_garbage_is_kept(tmp_path: Path) -> None:
    load = load_exports([write(tmp_path / "a.json", line(export()) + b"\n\n#garbage")])
    assert lines_of(load) == [1]
    rejection = only_rejection(load)
    assert rejection["source_line"] == 3 and rejection["reason"].startswith("broken JSON")


def test_a_broken_line_costs_only_that_line(tmp_path: Path) -> None:
    path = ndjson(
        tmp_path / "e.ndjson", export(), b'{"userId": "u-42", "localStorage": {', export()
    )
    load = load_exports([path])
    assert lines_of(load) == [1, 3]
    rejection = only_rejection(load)
    assert rejection["source_line"] == 2 and rejection["reason"].startswith(
        "line is not valid JSON"
    )
    assert pd.isna(rejection["storage_key"]) and pd.isna(rejection["user_id"])


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    load = load_exports([ndjson(tmp_path / "e.jsonl", b"", export(), b"   \r", export())])
    assert lines_of(load) == [2, 4]
    assert load.quarantine.empty


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"tutorialId": "intro-to-rag", "totalChapters": 5', "value is not valid JSON"),
        ("not json at all", "value is not valid JSON"),
        ("", "value is not valid JSON"),
        ("null", "value is null"),
        (None, "value is null"),
        ("[1, 2]", "value is a JSON list, not an object"),
        ("42", "value is a JSON int, not an object"),
        (42, "value is a JSON int, not an object"),
        ('{"totalChapters": NaN}', "value is not valid JSON"),
    ],
)
def test_broken_json_in_a_value_quarantines_the_record(
    tmp_path: Path, value: Any, reason: str
) -> None:
    env = export(storage={key(): progress(), key("other"): value})
    load = load_exports([ndjson(tmp_path / "e.ndjson", env)])
    assert load.records["tutorial_id"].tolist() == ["intro-to-rag"]
    rejection = only_rejection(load)
    assert rejection["reason"].startswith(reason)
    assert rejection["storage_key"] == key("other")
    # the key still resolves through the envelope's userId
    assert (rejection["user_id"], rejection["tutorial_id"]) == ("u-42", "other")
    assert rejection["source_line"] == 1
    assert load.stats.progress_records == 2


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_double_and_triple_encoded_values_are_decoded(tmp_path: Path, levels: int) -> None:
    value: Any = progress()
    for _ in range(levels):
        value = json.dumps(value)
    assert only_record(load_value(tmp_path, value))["total_chapters"] == 5


def test_a_value_encoded_four_times_is_quarantined(tmp_path: Path) -> None:
    value: Any = progress()
    for _ in range(4):
        value = json.dumps(value)
    reason = only_rejection(load_value(tmp_path, value))["reason"]
    assert reason.startswith("value is a JSON string encoded more than 3 times")


def test_a_value_that_is_already_an_object_is_accepted(tmp_path: Path) -> None:
    assert only_record(load_value(tmp_path, progress()))["chapters_completed"] == 2


def test_numbers_and_booleans_as_strings_are_coerced(tmp_path: Path) -> None:
    load = load_progress(
        tmp_path,
        chaptersCompleted="2",
        totalChapters=" 5 ",
        completionPercentage="12.5",
        quizScores={"q": "75.5", "r": 3},
        totalWatchTime="600.0",
        certificateEarned="true",
        startedAt="1768000000000",
        lastAccessedAt=1768000000000.0,
        completedChapters=[1, "2", 3],
    )
    row = only_record(load)
    assert (row["chapters_completed"], row["total_chapters"], row["total_watch_time"]) == (
        2,
        5,
        600,
    )
    assert row["completion_percentage"] == 12.5
    assert row["quiz_scores"] == {"q": 75.5, "r": 3.0}
    assert bool(row["certificate_earned"]) is True
    assert (
        row["started_at"]
        == row["last_accessed_at"]
        == pd.Timestamp(1768000000000, unit="ms", tz="UTC")
    )
    assert row["completed_chapters"] == ("1", "2", "3")


@pytest.mark.parametrize(
    ("raw", "expected"), [(1, True), (0, False), ("FALSE", False), ("1", True), (True, True)]
)
def test_booleans_may_be_numbers_or_words(tmp_path: Path, raw: Any, expected: bool) -> None:
    row = only_record(load_progress(tmp_path, certificateEarned=raw))
    assert bool(row["certificate_earned"]) is expected


# --------------------------------------------------------------------------- bad fields


@pytest.mark.parametrize(
    ("field", "raw", "reason"),
    [
        ("totalChapters", "NaN", "totalChapters is not a number: 'NaN'"),
        ("totalChapters", "Infinity", "totalChapters is not a number: 'Infinity'"),
        ("totalChapters", "five", "totalChapters is not a number: 'five'"),
        ("totalChapters", 5.5, "totalChapters is not an integer: 5.5"),
        ("totalChapters", True, "totalChapters is a boolean, not a number: True"),
        ("totalChapters", 2**31, "totalChapters is outside the INTEGER range: 2147483648"),
        ("totalChapters", 10**30, "totalChapters is outside the INTEGER range: 1e+30"),
        ("totalChapters", [5], "totalChapters is not a number: [5]"),
        ("chaptersCompleted", "1e100", "chaptersCompleted is outside the INTEGER range: '1e100'"),
        ("chaptersCompleted", "9" * 5000, "chaptersCompleted is too large: '999"),
        ("totalWatchTime", -(2**31) - 1, "totalWatchTime is outside the INTEGER range"),
        ("completionPercentage", "nan", "completionPercentage is not a number: 'nan'"),
        ("completionPercentage", "1e999", "completionPercentage is too large: '1e999'"),
        ("completionPercentage", False, "completionPercentage is a boolean, not a number"),
        ("quizScores", [80], "quizScores is not an object: [80]"),
        ("quizScores", {"q": None}, "quizScores['q'] is not a number: None"),
        ("quizScores", {"q": "high"}, "quizScores['q'] is not a number: 'high'"),
        ("quizScores", {"q": True}, "quizScores['q'] is a boolean, not a number: True"),
        ("completedChapters", "ch-1,ch-2", "completedChapters is not a list: 'ch-1,ch-2'"),
        ("completedChapters", ["a", None], "completedChapters[1] is not a chapter id: None"),
        ("completedChapters", ["a", 1.5], "completedChapters[1] is not a chapter id: 1.5"),
        ("certificateEarned", "yes", "certificateEarned is not a boolean: 'yes'"),
        ("certificateEarned", 2, "certificateEarned is not a boolean: 2"),
        ("startedAt", "yesterday", "startedAt is not an ISO-8601 timestamp or epoch"),
        ("startedAt", "2026-13-45T00:00:00Z", "startedAt is not an ISO-8601 timestamp"),
        ("completedAt", 10**17, "completedAt is outside the supported time range"),
        ("completedAt", "-1e20", "completedAt is outside the supported time range"),
        ("lastAccessedAt", True, "lastAccessedAt is not an ISO-8601 timestamp"),
        ("lastAccessedAt", {"t": 1}, "lastAccessedAt is not an ISO-8601 timestamp"),
    ],
)
def test_an_uncoercible_field_quarantines_only_its_record(
    tmp_path: Path, field: str, raw: Any, reason: str
) -> None:
    storage = {key(): progress(), key("bad"): progress("bad", **{field: raw})}
    load = load_exports([ndjson(tmp_path / "e.ndjson", export(storage=storage))])
    assert load.records["tutorial_id"].tolist() == ["intro-to-rag"]
    rejection = only_rejection(load)
    assert rejection["reason"].startswith(reason), rejection["reason"]
    assert len(rejection["reason"]) < 200  # the bad value is cut to 80 characters
    assert (rejection["user_id"], rejection["tutorial_id"]) == ("u-42", "bad")
    assert rejection["storage_key"] == key("bad") and rejection["source_line"] == 1


def test_deeply_nested_and_huge_bad_values_are_shown_briefly(tmp_path: Path) -> None:
    # values as objects, not strings: the line parser allows 1024 levels, repr() only ~1000
    deep = "[" * 1000 + "]" * 1000
    huge = json.dumps(progress("b", startedAt=[0] * 10**5))
    raw = (
        '{"userId": "u-42", "localStorage": {'
        f'"{key("a")}": {{"tutorialId": "a", "totalChapters": 1, "quizScores": {deep}}}, '
        f'"{key("b")}": {huge}}}}}'
    )
    load = load_exports([write(tmp_path / "e.ndjson", raw)])
    assert load.records.empty
    reasons = load.quarantine["reason"].tolist()
    assert reasons[0] == "quizScores is not an object: [[[[...]]]]"
    assert reasons[1].startswith("startedAt is not an ISO-8601") and len(reasons[1]) < 200


def test_huge_number_literal_in_a_value_is_broken_json(tmp_path: Path) -> None:
    value = '{"tutorialId": "intro-to-rag", "totalChapters": 1e999}'
    assert only_rejection(load_value(tmp_path, value))["reason"].startswith(
        "value is not valid JSON (number is infinity"
    )


def test_negative_and_out_of_range_values_are_kept_for_the_schema(tmp_path: Path) -> None:
    row = only_record(
        load_progress(
            tmp_path,
            chaptersCompleted=-3,
            totalChapters=-1,
            completionPercentage=250.5,
            totalWatchTime=-60,
            quizScores={"q": -5, "r": 1e300},
            startedAt="2100-01-01T00:00:00Z",
            completedAt=-86400000,
        )
    )
    assert (row["chapters_completed"], row["total_chapters"], row["total_watch_time"]) == (
        -3,
        -1,
        -60,
    )
    assert row["completion_percentage"] == 250.5
    assert row["quiz_scores"] == {"q": -5.0, "r": 1e300}
    assert row["started_at"].year == 2100
    assert row["completed_at"] == pd.Timestamp("1969-12-31T00:00:00Z")


# --------------------------------------------------------------------------- missing fields


def test_null_fields_take_their_defaults(tmp_path: Path) -> None:
    value = {"tutorialId": "intro-to-rag", "userId": "u-42", "totalChapters": 4}
    optional = ["completedChapters", "chaptersCompleted", "completionPercentage", "quizScores"]
    optional += ["totalWatchTime", "certificateEarned", "startedAt", "completedAt"]
    value |= dict.fromkeys([*optional, "lastAccessedAt"])
    row = only_record(load_value(tmp_path, json.dumps(value)))
    assert row["completed_chapters"] is None
    assert (row["chapters_completed"], row["total_watch_time"]) == (0, 0)
    assert row["completion_percentage"] == 0.0 and row["quiz_scores"] == {}
    assert not row["certificate_earned"]
    assert pd.isna(row["started_at"]) and pd.isna(row["completed_at"])
    assert pd.isna(row["last_accessed_at"])


@pytest.mark.parametrize(
    ("fields", "chapters", "count", "percent"),
    [
        ({"completedChapters": ["a", "b", "c"]}, ("a", "b", "c"), 3, 42.86),  # count from list
        ({"chaptersCompleted": 3}, None, 3, 42.86),  # older build: count only
        ({"completedChapters": [], "chaptersCompleted": 3}, None, 3, 42.86),  # count-only
        ({"completedChapters": []}, (), 0, 0.0),  # known to be empty
        ({"completedChapters": list("abcdefghij")}, tuple("abcdefghij"), 10, 100.0),  # capped
        ({"completedChapters": ["a"], "totalChapters": 0}, ("a",), 1, 0.0),
    ],
)
def test_missing_fields_are_derived(
    tmp_path: Path, fields: dict[str, Any], chapters: Any, count: int, percent: float
) -> None:
    value = {"tutorialId": "intro-to-rag", "userId": "u-42", "totalChapters": 7, **fields}
    row = only_record(load_value(tmp_path, json.dumps(value)))
    assert row["completed_chapters"] == chapters
    assert row["chapters_completed"] == count
    assert row["completion_percentage"] == percent
    assert row["quiz_scores"] == {} and row["total_watch_time"] == 0
    assert not row["certificate_earned"]


@pytest.mark.parametrize("total", [None, "absent"])
def test_total_chapters_is_required(tmp_path: Path, total: Any) -> None:
    value = progress()
    value["totalChapters"] = total
    if total == "absent":
        del value["totalChapters"]
    assert only_rejection(load_value(tmp_path, json.dumps(value)))["reason"] == (
        "totalChapters is missing"
    )


# --------------------------------------------------------------------------- ids


def test_ids_with_underscores_and_dashes_resolve_through_the_value(tmp_path: Path) -> None:
    tutorial, user = "intro_to-rag__v2_", "u_42-x_"
    storage = {key(tutorial, user): progress(tutorial, user)}
    row = only_record(load_exports([ndjson(tmp_path / "e.ndjson", export(user, storage))]))
    assert (row["tutorial_id"], row["user_id"]) == (tutorial, user)


def test_ids_resolve_through_the_envelope_when_the_value_has_none(tmp_path: Path) -> None:
    value = progress("x", "y")
    del value["tutorialId"], value["userId"]
    storage = {key("a_b-c", "u_1"): value}
    row = only_record(load_exports([ndjson(tmp_path / "e.ndjson", export("u_1", storage))]))
    assert (row["tutorial_id"], row["user_id"]) == ("a_b-c", "u_1")


def test_ids_resolve_through_the_value_user_when_the_tutorial_disagrees(tmp_path: Path) -> None:
    # key ends with the value's userId (not the envelope's): foreign, tutorial = the rest
    storage = {key("t_1", "u_9"): progress("other", "u_9")}
    load = load_exports([ndjson(tmp_path / "e.ndjson", export("u-42", storage))])
    assert load.records.empty and load.quarantine.empty
    assert load.foreign[["user_id", "tutorial_id"]].values.tolist() == [["u_9", "t_1"]]


@pytest.mark.parametrize(
    ("storage_key", "value", "reason", "ids"),
    [
        (
            key("t1"),
            progress("t2"),
            "tutorialId in value disagrees with key: 't2' != 't1'",
            ("u-42", "t1"),
        ),
        (
            key("t1"),
            progress("t1", "u-7"),
            "userId in value disagrees with key and envelope: 'u-7' != 'u-42'",
            ("u-42", "t1"),
        ),
        (
            key("t1"),
            progress("t1", 42),
            "userId in value disagrees with key and envelope: 42 != 'u-42'",
            ("u-42", "t1"),
        ),
        (
            key("t1"),
            progress(7),
            "tutorialId in value disagrees with key: 7 != 't1'",
            ("u-42", "t1"),
        ),
        (
            "tutorial_progress_t1-u-42",
            progress("t2"),
            "key does not match the ids in its value or envelope",
            (None, None),
        ),
        (
            "tutorial_progress_",
            progress(),
            "key does not match the ids in its value or envelope",
            (None, None),
        ),
        ("tutorial_progress__u-42", progress(None), "key has an empty tutorial id", (None, None)),
        (
            key("t\x00"),
            progress("t\x00"),
            "tutorial id contains a NUL character",
            ("u-42", "t\x00"),
        ),
    ],
)
def test_ids_that_disagree_between_key_value_and_envelope(
    tmp_path: Path, storage_key: str, value: dict[str, Any], reason: str, ids: tuple[Any, Any]
) -> None:
    storage = {key("ok"): progress("ok"), storage_key: value}
    load = load_exports([ndjson(tmp_path / "e.ndjson", export(storage=storage))])
    assert load.records["tutorial_id"].tolist() == ["ok"] and load.foreign.empty
    rejection = only_rejection(load)
    assert rejection["reason"].startswith(reason), rejection["reason"]
    assert ids_of(rejection) == ids
    assert rejection["storage_key"] == storage_key


WEIRD_IDS = [
    "élève-ü-日本語-🎓",
    'O\'Brien "quoted"',
    "back\\slash\\\\",
    "<script>alert('x')</script>",
    "'; DROP TABLE tutorial_progress; --",
    "a_b_c",
    " leading and trailing ",
    "tab\tnew\nline",
    "\u202eright-to-left\u200b",
    "$1 %s {0} ${x}",
]


@pytest.mark.parametrize("weird", WEIRD_IDS)
@pytest.mark.parametrize("suffix", [".ndjson.gz", ".json"])
def test_any_text_in_ids_round_trips_exactly(tmp_path: Path, weird: str, suffix: str) -> None:
    tutorial, user = f"t-{weird}", f"u-{weird}"
    value = progress(tutorial, user, completedChapters=[weird], quizScores={weird: 1})
    env = export(
        user,
        {key(tutorial, user): value, key(tutorial, f"v-{weird}"): progress(tutorial, f"v-{weird}")},
    )
    path = tmp_path / f"e{suffix}"
    if suffix == ".json":
        write(path, orjson.dumps([env], option=orjson.OPT_INDENT_2))
    else:
        ndjson(path, env)
    load = load_exports([path])
    row = only_record(load)
    assert (row["user_id"], row["tutorial_id"]) == (user, tutorial)
    assert row["export_user_id"] == user and row["storage_key"] == key(tutorial, user)
    assert row["completed_chapters"] == (weird,) and row["quiz_scores"] == {weird: 1.0}
    assert load.foreign[["user_id", "tutorial_id"]].values.tolist() == [[f"v-{weird}", tutorial]]


def test_nul_characters_in_stored_text_are_quarantined(tmp_path: Path) -> None:
    storage = {
        key("a"): progress("a", completedChapters=["x\x00"]),
        key("b"): progress("b", quizScores={"q\x00": 1}),
    }
    load = load_exports([ndjson(tmp_path / "e.ndjson", export(storage=storage), export("u\x00"))])
    assert load.records.empty
    reasons = load.quarantine["reason"].tolist()
    assert reasons[0].startswith("completedChapters[0] contains a NUL character")
    assert reasons[1].startswith("quizScores key contains a NUL character")
    assert reasons[2].startswith("export userId contains a NUL character")


# --------------------------------------------------------------------------- foreign users


def test_a_key_of_another_user_is_set_aside_as_foreign(tmp_path: Path) -> None:
    storage = {
        key(): progress(),
        key("t_1", "u-7"): progress("t_1", "u-7"),
        key("t_2", "u-8"): progress("t_2", "u-8", totalChapters="garbage"),  # never quarantined
    }
    path = ndjson(tmp_path / "e.ndjson", export(storage=storage))
    load = load_exports([path])
    assert only_record(load)["tutorial_id"] == "intro-to-rag"
    foreign = load.foreign.to_dict("records")
    assert [(f["user_id"], f["tutorial_id"]) for f in foreign] == [("u-7", "t_1"), ("u-8", "t_2")]
    assert foreign[0]["export_user_id"] == "u-42" and foreign[0]["source_line"] == 1
    assert foreign[0]["storage_key"] == key("t_1", "u-7") and foreign[0]["source_file"] == str(path)
    assert load.stats.foreign_records == 2 and load.stats.progress_records == 3


def test_a_forged_value_claiming_the_envelope_user_is_still_foreign(tmp_path: Path) -> None:
    storage = {key("t1", "victim"): progress("t1", "u-42")}
    load = load_exports([ndjson(tmp_path / "e.ndjson", export(storage=storage))])
    assert load.records.empty and load.quarantine.empty
    assert load.foreign[["user_id", "tutorial_id"]].values.tolist() == [["victim", "t1"]]


# --------------------------------------------------------------------------- envelopes


@pytest.mark.parametrize(
    ("item", "reason", "user"),
    [
        ([1, 2], "export is a JSON list, not an object", None),
        ("text", "export is a JSON str, not an object", None),
        ({"localStorage": {}}, "export has no userId", None),
        ({"userId": None, "localStorage": {}}, "export has no userId", None),
        ({"userId": 42, "localStorage": {}}, "export userId is not a non-empty string: 42", None),
        ({"userId": "", "localStorage": {}}, "export userId is not a non-empty string: ''", None),
        ({"userId": "u-1"}, "export localStorage is not an object: None", "u-1"),
        (
            {"userId": "u-1", "localStorage": "{}"},
            "export localStorage is not an object: '{}'",
            "u-1",
        ),
    ],
)
def test_a_bad_envelope_is_quarantined_with_its_line(
    tmp_path: Path, item: Any, reason: str, user: str | None
) -> None:
    load = load_exports([ndjson(tmp_path / "e.ndjson", export(), item, export())])
    assert lines_of(load) == [1, 3]
    rejection = only_rejection(load)
    assert (rejection["source_line"], rejection["reason"]) == (2, reason)
    assert ids_of(rejection) == (user, None)
    assert load.stats.exports == 2


@pytest.mark.parametrize(
    ("exported_at", "expected"),
    [
        ("2026-01-20T09:00:00+01:00", pd.Timestamp("2026-01-20T08:00:00Z")),
        (1768896000000, pd.Timestamp(1768896000000, unit="ms", tz="UTC")),
        ("last tuesday", pd.NaT),
        (True, pd.NaT),
        (None, pd.NaT),
    ],
)
def test_exported_at_is_parsed_or_unknown_never_a_rejection(
    tmp_path: Path, exported_at: Any, expected: Any
) -> None:
    env = export()
    env["exportedAt"] = exported_at
    row = only_record(load_exports([ndjson(tmp_path / "e.ndjson", env)]))
    assert row["exported_at"] == expected or (expected is pd.NaT and pd.isna(row["exported_at"]))


def test_duplicate_exports_of_one_user_are_all_kept(tmp_path: Path) -> None:
    env = export()
    ndjson(tmp_path / "a.ndjson", env, env)
    write(tmp_path / "b.json", line(env))
    load = load_exports([tmp_path])
    assert load.records[["source_file", "source_line"]].values.tolist() == [
        [str(tmp_path / "a.ndjson"), 1],
        [str(tmp_path / "a.ndjson"), 2],
        [str(tmp_path / "b.json"), 1],
    ]
    assert set(load.records["user_id"]) == {"u-42"} and load.stats.exports == 3


# --------------------------------------------------------------------------- formats and files


def test_every_format_and_directories_recursively(tmp_path: Path) -> None:
    envs = [export(f"u{i}", {key("t", f"u{i}"): progress("t", f"u{i}")}) for i in range(9)]
    write(tmp_path / "one.json", line(envs[0]))
    write(tmp_path / "array.json", orjson.dumps(envs[1:3]))
    ndjson(tmp_path / "sub" / "lines.ndjson", envs[3])
    ndjson(tmp_path / "sub" / "deeper" / "lines.jsonl", envs[4])
    write(tmp_path / "sub" / "one.json.gz", line(envs[5]))
    ndjson(tmp_path / "z" / "lines.ndjson.gz", envs[6])
    ndjson(tmp_path / "z" / "lines.jsonl.gz", envs[7])
    ndjson(tmp_path / "z" / "UPPER.NDJSON", envs[8])
    for skipped in ("notes.txt", "data.csv", "x.json.bak", "lines.ndjson.zip", "README"):
        write(tmp_path / "sub" / skipped, line(export("skipped")))
    load = load_exports([tmp_path])
    assert sorted(load.records["user_id"]) == [f"u{i}" for i in range(9)]
    in_array = load.records[load.records["source_file"] == str(tmp_path / "array.json")]
    assert in_array["source_line"].tolist() == [1, 1]  # a parsed array: the line of its "["
    assert load.quarantine.empty
    assert load.stats.files == 8 and load.stats.exports == 9


def test_iter_export_files_sorts_and_reads_each_file_once(tmp_path: Path) -> None:
    b = ndjson(tmp_path / "b" / "x.ndjson", export())
    a = write(tmp_path / "a.json", line(export()))
    write(tmp_path / "b" / "skip.txt", "x")
    files = iter_export_files([tmp_path / "b", tmp_path, b])
    assert files == [a, b]
    assert load_exports([tmp_path, b]).stats.exports == 2


def test_a_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--exports: path not found: .*nope"):
        load_exports([tmp_path / "nope"])
    with pytest.raises(ConfigError):
        iter_export_files([tmp_path, tmp_path / "nope.json"])


def test_an_explicitly_named_file_of_unknown_type_is_quarantined(tmp_path: Path) -> None:
    path = write(tmp_path / "exports.txt", line(export()))
    rejection = only_rejection(load_exports([path]))
    assert rejection["source_file"] == str(path) and pd.isna(rejection["source_line"])
    assert rejection["reason"].startswith("not an export file")


@pytest.mark.parametrize("name", ["e.json", "e.json.gz"])
def test_an_empty_json_file_is_quarantined(tmp_path: Path, name: str) -> None:
    rejection = only_rejection(load_exports([write(tmp_path / name, " \n")]))
    assert rejection["reason"] == "the file is empty" and pd.isna(rejection["source_line"])


def test_an_empty_ndjson_file_holds_nothing(tmp_path: Path) -> None:
    load = load_exports([write(tmp_path / "e.ndjson", b"")])
    assert load.records.empty and load.quarantine.empty and load.stats.files == 1


def test_a_top_level_scalar_json_file_is_quarantined(tmp_path: Path) -> None:
    rejection = only_rejection(load_exports([write(tmp_path / "e.json", "42")]))
    assert rejection["reason"] == "the file holds a JSON int, not an export or array"


def test_invalid_utf8_in_a_line_costs_only_that_line(tmp_path: Path) -> None:
    bad = line(export()).replace(b"u-42", b"u-\xff\xfe", 1)
    load = load_exports([ndjson(tmp_path / "e.ndjson", export(), bad, export())])
    assert lines_of(load) == [1, 3]
    rejection = only_rejection(load)
    assert rejection["source_line"] == 2
    assert rejection["reason"] == "line is not valid UTF-8 (byte 0xff at column 14)"


def test_invalid_utf8_in_a_json_file_keeps_the_exports_before_it(tmp_path: Path) -> None:
    good = [line(export(f"u{i}")) for i in range(3)]
    bad = good[2].replace(b"u2", b"u\xc3(", 1)
    load = load_exports(
        [write(tmp_path / "e.json", b"[" + good[0] + b",\n" + good[1] + b",\n" + bad + b"]")]
    )
    assert load.records["user_id"].tolist() == ["u0", "u1"]
    rejection = only_rejection(load)
    assert rejection["source_line"] == 3
    assert rejection["reason"].startswith("the file is not valid UTF-8 (byte 0xc3 at offset")
    assert rejection["reason"].endswith("the file is quarantined from here on")


@pytest.mark.parametrize("name", ["e.json", "e.ndjson", "e.jsonl.gz", "e.json.gz"])
def test_a_utf8_bom_is_tolerated(tmp_path: Path, name: str) -> None:
    row = only_record(
        load_exports([write(tmp_path / name, b"\xef\xbb\xbf" + line(export()) + b"\n")])
    )
    assert row["source_line"] == 1


def test_a_truncated_gzip_keeps_the_lines_read_before(tmp_path: Path) -> None:
    envs = [
        export(f"user-{i}", {key("t", f"user-{i}"): progress("t", f"user-{i}")})
        for i in range(3000)
    ]
    data = gzip.compress(b"\n".join(map(line, envs)) + b"\n")
    path = tmp_path / "e.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    load = load_exports([path])
    kept = len(load.records)
    assert 0 < kept < 3000
    assert lines_of(load) == list(range(1, kept + 1))
    rejection = only_rejection(load)
    assert rejection["source_line"] == kept + 1
    assert rejection["reason"].startswith("the file could not be read (Compressed file ended")
    assert rejection["reason"].endswith("lines from here on are lost")


def test_a_truncated_gzip_json_array_keeps_the_elements_read_before(tmp_path: Path) -> None:
    envs = [
        export(f"user-{i}", {key("t", f"user-{i}"): progress("t", f"user-{i}")})
        for i in range(3000)
    ]
    data = gzip.compress(b"[" + b",\n".join(map(line, envs)) + b"]")
    path = tmp_path / "e.json.gz"
    path.write_bytes(data[: len(data) // 2])
    load = load_exports([path])
    kept = len(load.records)
    assert 0 < kept < 3000 and lines_of(load) == list(range(1, kept + 1))
    rejection = only_rejection(load)
    assert rejection["source_line"] == kept + 1
    assert rejection["reason"].startswith("the file could not be read (Compressed file ended")


@pytest.mark.parametrize("name", ["e.ndjson.gz", "e.json.gz"])
def test_a_file_that_is_not_gzip_at_all_is_quarantined(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(line(export()))
    rejection = only_rejection(load_exports([path]))
    assert pd.isna(rejection["source_line"])
    assert rejection["reason"].startswith("the file could not be read (Not a gzipped file")


def test_an_unreadable_file_is_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ndjson(tmp_path / "a.ndjson", export())
    locked = ndjson(tmp_path / "b.ndjson", export())
    opener = _readers._open

    def deny(path: Path, gz: bool) -> Any:  # chmod 000 does not stop root, so simulate it
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return opener(path, gz)

    monkeypatch.setattr(_readers, "_open", deny)
    load = load_exports([tmp_path])
    assert load.records["source_file"].tolist() == [str(tmp_path / "a.ndjson")]
    rejection = only_rejection(load)
    assert rejection["source_file"] == str(locked) and pd.isna(rejection["source_line"])
    assert rejection["reason"] == "the file could not be read (Permission denied)"


def test_a_corrupt_file_does_not_cost_the_other_files(tmp_path: Path) -> None:
    ndjson(tmp_path / "a.ndjson", export("a", {key("t", "a"): progress("t", "a")}))
    write(tmp_path / "b.json.gz", b"\x1f\x8b\x08\x00garbage")
    write(tmp_path / "c.json", b"\x00\x01\x02")
    ndjson(tmp_path / "d.ndjson", export("d", {key("t", "d"): progress("t", "d")}))
    load = load_exports([tmp_path])
    assert load.records["user_id"].tolist() == ["a", "d"]
    assert load.quarantine["source_file"].tolist() == [
        str(tmp_path / "b.json.gz"),
        str(tmp_path / "c.json"),
    ]


# --------------------------------------------------------------------------- JSONTestSuite corpus


def _corpus() -> list[Any]:
    if not CORPUS.is_dir():
        reason = f"JSONTestSuite corpus not found at {CORPUS} (clone the repo beside shared/)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=p.name) for p in sorted(CORPUS.iterdir()) if p.is_file()]


GOOD_ENV = line(export())
GOOD_VALUE = json.dumps(progress())


@pytest.mark.parametrize("sample", _corpus())
def test_corpus_file_as_a_json_export_file(tmp_path: Path, sample: Path) -> None:
    data = sample.read_bytes()
    write(tmp_path / "good.json", GOOD_ENV)
    write(tmp_path / "sample.json", data)
    write(tmp_path / "array.json", b"[" + GOOD_ENV + b",\n" + data + b"]")
    load = load_exports([tmp_path])
    files = load.records["source_file"].tolist()
    assert files.count(str(tmp_path / "good.json")) == 1
    assert files.count(str(tmp_path / "array.json")) == 1
    assert set(load.quarantine["source_file"]) <= {
        str(tmp_path / "sample.json"),
        str(tmp_path / "array.json"),
    }
    if sample.name.startswith("n_"):
        assert str(tmp_path / "sample.json") in set(load.quarantine["source_file"])


@pytest.mark.parametrize("sample", _corpus())
def test_corpus_file_as_an_ndjson_line(tmp_path: Path, sample: Path) -> None:
    data = sample.read_bytes()
    after = 2 + data.count(b"\n")
    load = load_exports([write(tmp_path / "e.ndjson", GOOD_ENV + b"\n" + data + b"\n" + GOOD_ENV)])
    assert lines_of(load) == [1, after + 1]
    assert load.quarantine["source_line"].between(2, after).all()


@pytest.mark.parametrize("sample", _corpus())
def test_corpus_file_as_a_local_storage_value(tmp_path: Path, sample: Path) -> None:
    text = sample.read_bytes().decode("utf-8", errors="replace")
    env = export(storage={key(): GOOD_VALUE, key("x"): text})
    load = load_exports([ndjson(tmp_path / "e.ndjson", env)])
    assert load.records["tutorial_id"].tolist() == ["intro-to-rag"]
    assert only_rejection(load)["storage_key"] == key("x")


# --------------------------------------------------------------------------- property tests

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson can write
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "tutorialId",
    "userId",
    "completedChapters",
    "chaptersCompleted",
    "totalChapters",
    "completionPercentage",
    "quizScores",
    "totalWatchTime",
    "certificateEarned",
    "startedAt",
    "completedAt",
    "lastAccessedAt",
]


def _load_files(files: Iterable[tuple[str, bytes]]) -> ExportsLoad:
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files:
            (Path(folder) / name).write_bytes(data)
        return load_exports([Path(folder)])


@FUZZ
@given(garbage=st.binary(max_size=300), name=st.sampled_from(["x.json", "x.ndjson", "x.json.gz"]))
def test_fuzz_arbitrary_bytes_as_a_file_and_as_a_line(garbage: bytes, name: str) -> None:
    lines = GOOD_ENV + b"\n" + garbage + b"\n" + GOOD_ENV
    load = _load_files([("good.json", GOOD_ENV), (name, garbage), ("lines.ndjson", lines)])
    records = load.records[["source_file", "source_line"]]
    sources = [(Path(f).name, n) for f, n in records.itertuples(index=False)]
    assert ("good.json", 1) in sources
    assert ("lines.ndjson", 1) in sources and ("lines.ndjson", 3 + garbage.count(b"\n")) in sources


@FUZZ
@given(value=JSON_VALUES, encode=st.booleans())
def test_fuzz_arbitrary_json_as_a_value(value: Any, encode: bool) -> None:
    raw = orjson.dumps(value).decode() if encode else value
    env = {"userId": "u-42", "localStorage": {key(): GOOD_VALUE, key("x"): raw}}
    load = _load_files([("e.ndjson", line(env))])
    assert key() in load.records["storage_key"].tolist()
    placed = [
        f["storage_key"].tolist().count(key("x"))
        for f in (load.records, load.foreign, load.quarantine)
    ]
    assert sum(placed) == 1 and load.stats.progress_records == 2


@FUZZ
@given(item=JSON_VALUES, as_array=st.booleans())
def test_fuzz_arbitrary_json_as_a_line_and_an_array_element(item: Any, as_array: bool) -> None:
    good = orjson.loads(GOOD_ENV)
    if as_array:
        load = _load_files(
            [("e.json", orjson.dumps([good, item, good], option=orjson.OPT_INDENT_2))]
        )
    else:
        load = _load_files([("e.ndjson", b"\n".join([GOOD_ENV, line(item), GOOD_ENV]))])
    assert load.records["storage_key"].tolist().count(key()) >= 2


@FUZZ
@given(field=st.sampled_from(FIELDS), raw=JSON_VALUES)
def test_fuzz_any_field_value_is_kept_or_quarantined_with_a_named_reason(
    field: str, raw: Any
) -> None:
    value = progress("x")
    value[field] = raw
    storage = {key(): GOOD_VALUE, key("x"): json.dumps(value)}
    load = _load_files([("e.ndjson", line({"userId": "u-42", "localStorage": storage}))])
    assert key() in load.records["storage_key"].tolist()
    rejected = load.quarantine[load.quarantine["storage_key"] == key("x")]
    kept = load.records[load.records["storage_key"] == key("x")]
    assert len(rejected) + len(kept) + len(load.foreign) == 1
    if len(rejected):
        reason = rejected["reason"].iloc[0]
        assert reason.startswith(field), reason


# --------------------------------------------------------------------------- fast paths
# The loader types the common, well-typed record on a fast path and parses timestamp texts
# in bulk, a chunk of records at a time. None of it may change a result: these tests hold
# each against the per-record path (coerce_progress, to_epoch_ns) it stands in for, and
# the whole load against itself read in one chunk.

STAMP_FIELDS = ("startedAt", "completedAt", "lastAccessedAt")
DATES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
STAMP_TEXTS = st.one_of(
    DATES.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"),
    DATES.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    DATES.map(lambda d: d.replace(tzinfo=UTC).isoformat()),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z", fullmatch=True
    ),
    st.from_regex(r"[0-9 .:TZz+-]{18,26}", fullmatch=True),
    st.integers(-(2**63), 2**63).map(str),
    TEXT,
)
STAMPS = st.none() | st.integers(-(10**14), 10**14) | STAMP_TEXTS
INT32ISH = st.integers(-(2**31) - 2, 2**31 + 1)
#: Each field well typed, if not always in range: what the fast path must type exactly.
TYPED_FIELDS = {
    "totalChapters": INT32ISH,
    "completedChapters": st.none() | st.lists(TEXT | st.integers(), max_size=6),
    "chaptersCompleted": st.none() | INT32ISH,
    "completionPercentage": st.none() | st.integers() | st.floats(allow_nan=False),
    "quizScores": st.none()
    | st.dictionaries(TEXT, st.integers(-(2**60), 2**60) | st.floats(allow_nan=False), max_size=3),
    "totalWatchTime": st.none() | INT32ISH,
    "certificateEarned": st.none() | st.booleans(),
    **dict.fromkeys(STAMP_FIELDS, STAMPS),
}
#: At most one field of any JSON value: what the fast path must leave to the full path.
ODD_FIELD = st.none() | st.tuples(st.sampled_from(FIELDS[2:]), JSON_VALUES)


def full_path(text: str) -> tuple[Any, ...] | str:
    """What the per-record path makes of a value: its typed fields, or the reason."""
    try:
        return tuple(coerce_progress(orjson.loads(text)))
    except FieldError as exc:
        return str(exc)


def fast_path(text: str) -> tuple[Any, ...] | str | None:
    """The same through decode_common, common_progress and to_epoch_ns; None: not taken."""
    value = decode_common(text)
    typed = None if value is None else common_progress(value)
    if typed is None:
        return None
    pairs = zip(STAMP_FIELDS, typed[7:], strict=True)
    try:
        stamps = [to_epoch_ns(f, v) if isinstance(v, str) else v for f, v in pairs]
    except FieldError as exc:
        return str(exc)
    return (*typed[:7], *stamps)


def typed_shape(typed: tuple[Any, ...] | str) -> Any:
    """Values with their types, dict values included, so that 1 and 1.0 differ."""
    if isinstance(typed, str):
        return typed
    return [
        (v, type(v), [(k, type(x)) for k, x in v.items()] if isinstance(v, dict) else None)
        for v in typed
    ]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({}, optional=TYPED_FIELDS),
    odd=ODD_FIELD,
    nul=st.integers(0, 7).map(lambda n: n == 0),
)
def test_fuzz_the_common_path_types_a_value_as_the_full_path(
    fields: dict[str, Any], odd: tuple[str, Any] | None, nul: bool
) -> None:
    value = {**progress(), **fields, **dict([odd] if odd else [])}
    if nul:
        value["completedChapters"] = ["ch\x00-1"]
    text = json.dumps(value)
    fast = fast_path(text)
    if fast is not None:
        assert typed_shape(fast) == typed_shape(full_path(text))
    else:
        assert nul or fields or odd  # the typical value does take the fast path


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.678Z",
        "2024-02-29T23:59:59.999Z",  # a leap day
        "2023-02-29T00:00:00Z",  # not one
        "1900-02-29T00:00:00Z",  # nor this
        "2000-02-29T00:00:00Z",  # but this
        "2026-04-31T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-13-10T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-02T24:00:00Z",
        "2026-01-02T23:60:00Z",
        "2026-01-02T23:59:60Z",  # a leap second: fromisoformat refuses it
        "0000-01-01T00:00:00Z",
        "1677-09-21T00:12:43.145Z",  # the first instant datetime64[ns] holds
        "1677-09-21T00:12:43.144Z",
        "2262-04-11T23:47:16.854Z",  # the last
        "2262-04-11T23:47:16.855Z",
        "9999-12-31T23:59:59.999Z",
        "2026-01-02t03:04:05Z",
        "2026-01-02T03:04:05z",
        "2026-01-02 03:04:05Z",
        "2026-01-02T03:04:05.6789Z",
        "2026-01-02T03:04:05.1234567Z",
        "2026-01-02T03:04:05+01:00",
        "2026-01-02T03:04:05",
        "2026-01-02",
        " 2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05Z ",
        "٢٠٢٦-01-02T03:04:05Z",  # Arabic-Indic digits
        "2026-01-02T03:04:05Ｚ",
        "2026-01-02T03:04:05\x00",
        "1768000000000",
        "-1e20",
        "",
    ],
)
def test_bulk_timestamps_parse_as_to_epoch_ns(text: str) -> None:
    assert_bulk_like_to_epoch_ns([text, None, 1_700_000_000_000_000_000])


@FUZZ
@given(values=st.lists(st.none() | st.integers(-(2**62), 2**62) | STAMP_TEXTS, max_size=30))
def test_fuzz_bulk_timestamps_parse_as_to_epoch_ns(values: list[Any]) -> None:
    assert_bulk_like_to_epoch_ns(values)


def assert_bulk_like_to_epoch_ns(values: list[Any]) -> None:
    """epoch_ns_column: None as NaT, integers (ns) as they are, texts as to_epoch_ns."""
    ns, failed = epoch_ns_column(tuple(values))
    for index, value in enumerate(values):
        if isinstance(value, str):
            try:
                expected: int | str = to_epoch_ns("startedAt", value)  # type: ignore[assignment]
            except FieldError:
                expected = "rejected"
        else:
            expected = NAT if value is None else value
        assert ("rejected" if index in failed else int(ns[index])) == expected, value


def corpus(folder: Path) -> list[Path]:
    """Files holding every path a record can take, records and rejects interleaved."""

    def bad_stamp(tutorial: str) -> dict[str, Any]:
        return progress(tutorial, startedAt="2026-02-30T00:00:00Z")  # the shape, not a day

    busy = {
        key("a"): progress("a"),
        key("b"): "{broken",
        key("c"): bad_stamp("c"),
        key("d", "u-7"): progress("d", "u-7"),
        key("e"): progress("e", totalChapters="5", lastAccessedAt="2026-01-05T00:00:00+01:00"),
        key("f"): progress("f", completedAt="yesterday", startedAt="later"),
        key("g"): progress("g", completedChapters=[], chaptersCompleted=3),
        "theme": "dark",
    }
    ndjson(
        folder / "a.ndjson",
        export(),
        export(storage=busy),
        b'{"userId": "u-42", oops',
        export(storage={key("h"): bad_stamp("h"), key("i"): progress("i")}),
        export(user="u-9"),
    )
    ndjson(folder / "b.ndjson.gz", *(export(user=f"u-{n}") for n in range(5)), export(storage=busy))
    write(folder / "c.json", json.dumps([export(storage=busy), export(), {"userId": 5}]))
    write(folder / "d.json", "[" + json.dumps(export(storage=busy)) + ", {oops")
    write(folder / "e.jsonl", "")
    ndjson(folder / "f.ndjson", export(storage={key("z"): bad_stamp("z")}), export())
    return sorted(folder.iterdir())


def assert_same_load(one: ExportsLoad, other: ExportsLoad) -> None:
    assert one.stats == other.stats
    for name in ("records", "foreign", "quarantine"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(other, name))


def test_a_bad_timestamp_text_is_quarantined_in_reading_order(tmp_path: Path) -> None:
    load = load_exports(corpus(tmp_path)[:1])
    stamp = "startedAt is not an ISO-8601 timestamp or epoch milliseconds: "
    rows = load.quarantine[["source_line", "storage_key", "reason"]].itertuples(index=False)
    assert [(n, k, r.split(" (")[0]) for n, k, r in rows] == [
        (2, key("b"), "value is not valid JSON"),
        (2, key("c"), stamp + "'2026-02-30T00:00:00Z'"),
        (2, key("f"), stamp + "'later'"),
        (3, None, "line is not valid JSON"),
        (4, key("h"), stamp + "'2026-02-30T00:00:00Z'"),
    ]
    assert load.records["tutorial_id"].tolist() == [
        "intro-to-rag",
        "a",
        "e",
        "g",
        "i",
        "intro-to-rag",
    ]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_chunk_boundaries_do_not_change_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    files = corpus(tmp_path)
    whole = load_exports(files)
    monkeypatch.setattr(exports._Records, "CHUNK", chunk)
    assert_same_load(load_exports(files), whole)
    assert (len(whole.records), len(whole.foreign), len(whole.quarantine)) == (22, 4, 17)
