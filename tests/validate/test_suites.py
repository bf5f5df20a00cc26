"""Great Expectations suites: each planted anomaly fails the check named for it.

Frames come from the builders of ``test_schemas`` (one clean record by default); the
count checks get their bounds from a :class:`History` of earlier good nights.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reconcile.config import DEFAULT_EXPECTATIONS_DIR, Config
from reconcile.errors import ConfigError
from reconcile.sources.backend import load_backend
from reconcile.validate.nights import History
from reconcile.validate.suites import ChecksOutcome, check_name, load_suites, run_checks
from tests.validate.test_records import (
    CONFIG,
    NOW,
    backend_frame,
    clean_records,
    insert_rows,
    local_frame,
    record,
)

B = "backend_progress."
L = "local_exports."
BACKEND_CHECKS = [
    B + "expect_column_values_to_be_between.completion_percentage",
    B + "expect_column_pair_values_a_to_be_greater_than_b.total_chapters,chapters_completed",
    B + "expect_column_values_to_be_between.total_watch_time",
    B + "expect_column_values_to_be_between.total_chapters",
    B + "expect_compound_columns_to_be_unique.user_id,tutorial_id",
    B + "one_total_chapters_per_tutorial",
    B + "expect_table_row_count_to_be_between",
    B + "expect_column_unique_value_count_to_be_between.user_id",
    B + "new_rows_per_day",
]
LOCAL_CHECKS = [
    L + "expect_column_values_to_be_between.completion_percentage",
    L + "expect_column_pair_values_a_to_be_greater_than_b.total_chapters,chapters_completed",
    L + "expect_column_values_to_be_between.total_watch_time",
    L + "expect_column_values_to_be_between.total_chapters",
    L + "expect_column_values_to_be_between.keys_per_user",
]


def history_of(*nights: dict[str, Any]) -> History:
    """A history of good nights with these volume metrics."""
    return History(
        nights=tuple({"run_id": f"n{i}", "good": True, **n} for i, n in enumerate(nights, 1))
    )


def run(
    backend: pd.DataFrame,
    local: pd.DataFrame | None = None,
    *,
    history: History | None = None,
    config: Config = CONFIG,
    docs_dir: Path | None = None,
) -> ChecksOutcome:
    return run_checks(
        backend,
        local if local is not None else local_frame(clean_records()),
        config=config,
        history=history or History.empty(),
        now=NOW,
        docs_dir=docs_dir,
    )


def failed(outcome: ChecksOutcome) -> dict[str, Any]:
    return {c.name: c for c in outcome.checks if not c.success}


# ---------------------------------------------------------------------------------------


def test_clean_data_passes_every_check_with_stable_names(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    outcome = run(backend_frame(clean_records()), docs_dir=tmp_path / "docs")

    assert [c.name for c in outcome.checks] == BACKEND_CHECKS + LOCAL_CHECKS
    assert failed(outcome) == {}
    assert {c.suite for c in outcome.checks} == {"backend_progress", "local_exports"}
    row_count = outcome.checks[BACKEND_CHECKS.index(B + "expect_table_row_count_to_be_between")]
    assert "no history yet" in row_count.details
    assert outcome.docs_index == (tmp_path / "docs" / "index.html").resolve()
    assert outcome.docs_index.exists()
    assert "backend_progress" in outcome.docs_index.read_text(encoding="utf-8")
    captured = capfd.readouterr()  # no progress bars, nothing printed
    assert captured.out == "" and "Calculating Metrics" not in captured.err


def test_no_docs_dir_builds_no_docs() -> None:
    assert run(backend_frame(clean_records())).docs_index is None


def test_empty_local_frame_passes() -> None:
    outcome = run(backend_frame(clean_records()), local_frame([]))
    assert failed(outcome) == {}


BACKEND_ANOMALIES = [
    ("completion", [record("x", completion_percentage=100.5)], BACKEND_CHECKS[0]),
    (
        "count_over_total",
        [record("x", chapters_completed=6, completed_chapters=None)],
        BACKEND_CHECKS[1],
    ),
    ("watch_negative", [record("x", total_watch_time=-1)], BACKEND_CHECKS[2]),
    (
        "watch_over_cap",
        [record("x", total_watch_time=CONFIG.max_watch_time_seconds + 1)],
        BACKEND_CHECKS[2],
    ),
    (
        "total_zero",
        [record("x", "t-9", total_chapters=0, chapters_completed=0, completed_chapters=())],
        BACKEND_CHECKS[3],
    ),
    ("duplicate_key", [record("u-0", "t-0")], BACKEND_CHECKS[4]),
    ("two_totals_in_tutorial", [record("x", "t-0", total_chapters=6)], BACKEND_CHECKS[5]),
]


@pytest.mark.parametrize(
    ("extra", "check"), [pytest.param(e, c, id=i) for i, e, c in BACKEND_ANOMALIES]
)
def test_backend_anomaly_fails_its_check(extra: list[dict[str, Any]], check: str) -> None:
    outcome = run(backend_frame([*clean_records(), *extra]))
    found = failed(outcome)
    assert set(found) == {check}
    assert found[check].unexpected_count >= 1
    assert found[check].suite == "backend_progress"
    assert "rows unexpected" in found[check].details
    assert "'x'" in found[check].details or "'u-0'" in found[check].details  # the key


def test_many_keys_for_one_user_fails_local_check() -> None:
    records = [record("hoarder", f"t-{i}") for i in range(501)]
    outcome = run(backend_frame(clean_records()), local_frame(records))
    assert set(failed(outcome)) == {L + "expect_column_values_to_be_between.keys_per_user"}
    assert (
        failed(outcome)[L + "expect_column_values_to_be_between.keys_per_user"].unexpected_count
        == 501
    )


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"completion_percentage": -3.0}, LOCAL_CHECKS[0]),
        ({"chapters_completed": 9, "completed_chapters": None}, LOCAL_CHECKS[1]),
        ({"total_watch_time": -10}, LOCAL_CHECKS[2]),
        ({"total_chapters": 0, "chapters_completed": 0, "completed_chapters": ()}, LOCAL_CHECKS[3]),
    ],
)
def test_local_anomaly_fails_its_check(changes: dict[str, Any], check: str) -> None:
    local = local_frame([*clean_records(), record("x", **changes)])
    assert set(failed(run(backend_frame(clean_records()), local))) == {check}


def test_watch_time_cap_comes_from_config() -> None:
    frame = backend_frame([*clean_records(), record("x", total_watch_time=5000)])
    outcome = run(frame, config=Config(max_watch_time_seconds=4999))
    assert set(failed(outcome)) == {BACKEND_CHECKS[2]}  # local records stay under 4999


def test_count_checks_use_bounds_from_history() -> None:
    records = clean_records(20)  # 20 rows, 10 users
    steady = {"backend_rows": 20, "distinct_users": 10, "new_rows_per_day": 0}
    history = history_of(steady, steady, steady)
    assert failed(run(backend_frame(records), history=history)) == {}

    shrunk = run(backend_frame(records[:16]), history=history)  # -20% rows, -20% users
    found = failed(shrunk)
    assert set(found) == {BACKEND_CHECKS[6], BACKEND_CHECKS[7]}
    assert "observed 16, expected 18..30" in found[BACKEND_CHECKS[6]].details
    assert "3 good night(s)" in found[BACKEND_CHECKS[6]].details
    assert "observed 8, expected 9..20" in found[BACKEND_CHECKS[7]].details


def test_new_rows_per_day_outside_band_fails() -> None:
    quiet = {"backend_rows": 40, "distinct_users": 20, "new_rows_per_day": 0}
    fresh = NOW - timedelta(hours=2)
    records = [*clean_records(20)] + [
        record(f"new-{i}", "t-0", created_at=fresh, updated_at=fresh, started_at=fresh)
        for i in range(20)
    ]
    outcome = run(backend_frame(records), history=history_of(quiet, quiet, quiet))
    found = failed(outcome)
    assert set(found) == {BACKEND_CHECKS[8]}
    assert "observed 20, expected 0..10" in found[BACKEND_CHECKS[8]].details


def test_missing_column_is_a_failed_check_not_a_crash(tmp_path: Path) -> None:
    suite = {
        "name": "backend_extra",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}}
        ],
    }
    (tmp_path / "backend_extra.json").write_text(json.dumps(suite), encoding="utf-8")
    outcome = run(backend_frame(clean_records()), config=Config(expectations_dir=tmp_path))
    (check,) = outcome.checks
    assert check.name == "backend_extra.expect_column_values_to_not_be_null.nope"
    assert not check.success and check.details.startswith("could not run:")
    assert "nope" in check.details


def test_rows_loaded_from_postgresql(database_url: str) -> None:
    insert_rows(database_url, [*clean_records(), record("pg", "t-0", total_chapters=4)])
    frame = load_backend(database_url, "public", "tutorial_progress").frame
    outcome = run(frame)
    assert set(failed(outcome)) == {B + "one_total_chapters_per_tutorial"}
    check = failed(outcome)[B + "one_total_chapters_per_tutorial"]
    assert check.unexpected_count == 4  # every row of tutorial t-0


# ---------------------------------------------------------------------------------------
# Loading suites


def copy_suites(tmp_path: Path) -> Path:
    folder = tmp_path / "expectations"
    shutil.copytree(DEFAULT_EXPECTATIONS_DIR, folder)
    return folder


def edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_repository_suites_load() -> None:
    suites = load_suites(DEFAULT_EXPECTATIONS_DIR)
    assert set(suites) == {"backend_progress", "local_exports"}
    names = [check_name(n, e) for n, s in suites.items() for e in s["expectations"]]
    assert names == BACKEND_CHECKS + LOCAL_CHECKS


def test_misspelled_expectation_type_names_file_and_type(tmp_path: Path) -> None:
    folder = copy_suites(tmp_path)
    path = folder / "backend_progress.json"
    edit(path, lambda d: d["expectations"][2].update(type="expect_column_values_to_be_betwen"))
    with pytest.raises(ConfigError) as error:
        load_suites(folder)
    message = str(error.value)
    assert str(path) in message and "expect_column_values_to_be_betwen" in message
    assert "#3" in message and "\n" not in message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["expectations"][0]["kwargs"].update(min_value="low"), ("#1", "min_value")),
        (lambda d: d["expectations"][0]["kwargs"].update(colum="x"), ("#1", "colum")),
        (
            lambda d: d["expectations"][6]["kwargs"].update(min_value={"$PARAMETER": "typo"}),
            ("#7", "unknown $PARAMETER typo"),
        ),
        (lambda d: d["expectations"].append(d["expectations"][0]), ("#10", "same check name")),
        (
            lambda d: d["expectations"][0].update(expectation_type=d["expectations"][0]["type"]),
            ("#1", "0.x"),
        ),
        (lambda d: d.update(name="progress"), ("must start with 'backend' or 'local'",)),
    ],
    ids=["bad_value", "bad_kwarg", "unknown_parameter", "duplicate_name", "v0_key", "bad_name"],
)
def test_bad_suites_are_config_errors(tmp_path: Path, change: Any, words: tuple[str, ...]) -> None:
    folder = copy_suites(tmp_path)
    path = folder / "backend_progress.json"
    edit(path, change)
    with pytest.raises(ConfigError) as error:
        load_suites(folder)
    assert str(path) in str(error.value)
    assert all(w in str(error.value) for w in words), str(error.value)


def test_unreadable_suite_and_empty_folder(tmp_path: Path) -> None:
    folder = copy_suites(tmp_path)
    (folder / "local_exports.json").write_text('{"name": "local_exports", ', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"local_exports\.json"):
        load_suites(folder)
    with pytest.raises(ConfigError, match=r"no \*\.json suite"):
        load_suites(tmp_path / "nowhere")


def test_severities_of_the_shipped_suites_and_of_the_history_checks(tmp_path: Path) -> None:
    """Count anomalies, regressions and the local volume are critical; ranges are warnings."""
    from reconcile.validate.nights import regression_checks
    from reconcile.validate.volume import local_volume_checks

    outcome = run(backend_frame(clean_records()))
    critical = {c.name for c in outcome.checks if c.severity == "critical"}
    assert critical == {
        B + "expect_table_row_count_to_be_between",
        B + "expect_column_unique_value_count_to_be_between.user_id",
        B + "new_rows_per_day",
    }
    assert {c.severity for c in outcome.checks} == {"critical", "warning"}
    history = [*regression_checks(History.empty(), backend_frame(clean_records()))]
    history += local_volume_checks(History.empty(), files=0, exports=0, records=0, config=CONFIG)
    assert len(history) == 5 and {c.severity for c in history} == {"critical"}
    # meta.severity works too; anything but critical or warning is a configuration error.
    suite = json.loads((DEFAULT_EXPECTATIONS_DIR / "local_exports.json").read_text())
    del suite["expectations"][0]["severity"]
    suite["expectations"][0]["meta"] = {"severity": "critical"}
    (tmp_path / "local_exports.json").write_text(json.dumps(suite))
    loaded = load_suites(tmp_path)["local_exports"]["expectations"]
    assert loaded[0]["severity"] == "critical"
    suite["expectations"][1]["severity"] = "info"
    (tmp_path / "local_exports.json").write_text(json.dumps(suite))
    with pytest.raises(ConfigError, match=r"expectation #2: severity 'info'"):
        load_suites(tmp_path)
