"""Local volume checks, on plain numbers: floors, the drop since the last good night, config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconcile.config import Config, load_config
from reconcile.errors import ConfigError
from reconcile.model import CheckResult
from reconcile.outputs.history_store import load_history, record_night
from reconcile.validate.nights import History
from reconcile.validate.volume import SUITE, local_volume, local_volume_checks
from tests.validate.test_records import NOW, backend_frame, clean_records

NAMES = ("local.files_min", "local.exports_min", "local.records_min")
DEFAULTS = Config()


def checks(
    files: int, exports: int, records: int, *nights: dict[str, Any], config: Config = DEFAULTS
) -> dict[str, CheckResult]:
    history = History(nights=tuple(nights))
    found = local_volume_checks(
        history, files=files, exports=exports, records=records, config=config
    )
    assert [c.name for c in found] == list(NAMES) and {c.suite for c in found} == {SUITE}
    return {c.name: c for c in found}


def night(run_id: str, files: int, exports: int, records: int, *, good: bool = True) -> dict:
    return {
        "run_id": run_id,
        "good": good,
        **local_volume(files=files, exports=exports, records=records),
    }


def failed(found: dict[str, CheckResult]) -> set[str]:
    return {name for name, check in found.items() if not check.success}


def test_an_empty_local_side_fails_every_floor_even_on_the_first_night() -> None:
    found = checks(0, 0, 0)
    assert failed(found) == set(NAMES)
    assert all(c.unexpected_count == 1 for c in found.values())
    assert found["local.files_min"].details == (
        "0 export files, expected at least 1 (floor 1; no history yet: no good night recorded it)"
    )


def test_files_without_progress_records_fail_only_the_records_floor() -> None:
    found = checks(3, 5, 0)
    assert failed(found) == {"local.records_min"}
    assert found["local.records_min"].details.startswith("0 local progress records")
    assert found["local.files_min"].unexpected_count == 0


def test_a_drop_beyond_the_allowed_fraction_fails_against_the_last_good_night() -> None:
    before = night("n1", 10, 500, 1000)
    found = checks(10, 500, 300, before)
    assert failed(found) == {"local.records_min"}
    assert found["local.records_min"].details == (
        "300 local progress records, expected at least 500 (floor 1; last good night n1 "
        "had 1000, a drop of at most 50% allows 500)"
    )
    assert not failed(checks(10, 500, 500, before))  # exactly half: allowed
    assert failed(checks(10, 500, 499, before)) == {"local.records_min"}
    assert not failed(checks(10, 500, 5000, before))  # growth is never an anomaly


def test_failed_nights_are_not_the_reference() -> None:
    history = (night("n1", 10, 500, 1000), night("n2", 1, 1, 10, good=False))
    found = checks(10, 500, 400, *history)
    assert failed(found) == {"local.records_min"}  # 400 < 50% of n1's 1000, not of n2's 10
    assert "last good night n1" in found["local.records_min"].details


def test_good_nights_from_before_the_measures_were_kept_are_skipped() -> None:
    old = {"run_id": "n0", "good": True, "backend_rows": 5}
    found = checks(1, 1, 1, night("n1", 4, 4, 100), old)
    assert failed(found) == {"local.files_min", "local.exports_min", "local.records_min"}
    assert "last good night n1" in found["local.files_min"].details
    assert "no history yet" in checks(1, 1, 1, old)["local.files_min"].details


def test_floors_and_drop_are_configurable() -> None:
    off = Config(min_export_files=0, min_exports=0, min_local_records=0)
    assert not failed(checks(0, 0, 0, config=off))
    strict = replace(off, min_local_records=2000, max_local_drop_fraction=0.1)
    found = checks(10, 500, 950, night("n1", 10, 500, 1000), config=strict)
    assert failed(found) == {"local.records_min"}
    assert "expected at least 2000" in found["local.records_min"].details
    no_drop_rule = Config(max_local_drop_fraction=1.0)
    assert not failed(checks(1, 1, 1, night("n1", 10, 500, 1000), config=no_drop_rule))


def test_the_checks_section_of_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "reconcile.toml"
    path.write_text(
        "[checks]\nmin_export_files = 0\nmin_exports = 2\nmin_local_records = 10\n"
        "max_local_drop_fraction = 0.25\n"
    )
    config = load_config(path)
    assert (config.min_export_files, config.min_exports, config.min_local_records) == (0, 2, 10)
    assert config.max_local_drop_fraction == 0.25
    assert load_config(None).max_local_drop_fraction == 0.5
    path.write_text("[checks]\nmax_local_drop_fraction = 1\n")
    assert load_config(path).max_local_drop_fraction == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_local_drop_fraction = 1.5", "checks.max_local_drop_fraction must be a fraction"),
        ("max_local_drop_fraction = -0.1", "checks.max_local_drop_fraction must be a fraction"),
        ("max_local_drop_fraction = nan", "checks.max_local_drop_fraction must be a fraction"),
        ("max_local_drop_fraction = true", "checks.max_local_drop_fraction must be a fraction"),
        ('max_local_drop_fraction = "half"', "checks.max_local_drop_fraction must be a fraction"),
        ("min_local_records = -1", "checks.min_local_records must be a non-negative integer"),
        ("min_exports = 1.5", "checks.min_exports must be a non-negative integer"),
        ("min_files = 1", "unknown setting checks.min_files"),
    ],
)
def test_bad_checks_settings_are_configuration_errors(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "reconcile.toml"
    path.write_text(f"[checks]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_measures_survive_the_history_file(tmp_path: Path) -> None:
    metrics = local_volume(files=3, exports=40, records=120)
    record_night(tmp_path, "n1", metrics, backend_frame(clean_records()), good=True, now=NOW)
    (saved,) = load_history(tmp_path).nights
    assert {k: saved[k] for k in metrics} == metrics
    found = checks(3, 40, 50, saved)
    assert failed(found) == {"local.records_min"}  # 50 < 50% of the recorded 120
