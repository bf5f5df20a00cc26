"""The public read API (reconcile.load_run, load_history, ...) on a demo folder of two nights."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

import reconcile
from reconcile.model import AT_RISK, DIFF, SUMMARY, Status
from reconcile.outputs import artifacts, contract
from reconcile.outputs.cards import card_table
from reconcile.outputs.contract import DiffFrame
from reconcile.outputs.history_store import METRICS_FILE
from tests.analyst_demo import demo_out


@pytest.fixture(scope="session")
def reports(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_out(server_url, tmp_path_factory.mktemp("analyst"))


@pytest.fixture(scope="session")
def run(reports: Path) -> reconcile.RunArtifacts:
    return reconcile.load_run(reports)


def test_an_output_folder_means_its_newest_run(reports: Path, run: reconcile.RunArtifacts) -> None:
    runs = reconcile.list_runs(reports)
    assert len(runs) == 2 and run.path == runs[-1] == reconcile.latest_run(reports)
    assert reconcile.load_run(runs[0]).run_id == runs[0].name


def test_no_run_is_one_line_naming_what_was_looked_for(tmp_path: Path, reports: Path) -> None:
    hostile = tmp_path / "out\n\x1b[31m'; DROP"
    for path in (hostile, tmp_path):
        with pytest.raises(reconcile.RunNotFoundError) as caught:
            reconcile.load_run(path)
        message = str(caught.value)
        assert "\n" not in message and "\x1b" not in message
        assert "summary.json" in message
        assert isinstance(caught.value, FileNotFoundError)  # `except OSError` still works
    assert message.startswith("no run in ") and "run folders" in message
    broken = tmp_path / "20260120T080000Z-1a2b"
    shutil.copytree(reconcile.latest_run(reports), broken)
    (broken / DIFF).unlink()
    with pytest.raises(reconcile.RunNotFoundError, match=r"not a complete run: no diff\.parquet"):
        reconcile.load_run(broken)


def test_repr_is_one_short_line(run: reconcile.RunArtifacts) -> None:
    text = repr(run)
    assert "\n" not in text and len(text) < 250
    assert f"keys={len(run.diff)}" in text and f"at_risk={run.summary['at_risk']}" in text


def test_frames_hold_documented_types(run: reconcile.RunArtifacts) -> None:
    diff = run.diff
    for side in ("local", "backend"):
        chapters = diff[f"{side}_completed_chapters"].tolist()
        assert all(c is None or isinstance(c, tuple) for c in chapters)
        assert any(isinstance(c, tuple) and c for c in chapters)
        quizzes = diff[f"{side}_quiz_scores"].tolist()
        assert all(q is None or isinstance(q, dict) for q in quizzes)
        assert str(diff[f"{side}_chapters_completed"].dtype) == "Int64"
    assert str(diff["backend_id"].dtype) == "Int64"
    quarantine = run.quarantine
    assert str(quarantine["line"].dtype) == "Int64"
    assert quarantine["line"].notna().any()
    assert quarantine["user_id"].isna().any()  # whole files rejected: no user, NA not ""
    assert dict(run.checks.dtypes.astype(str)) == {
        "name": "str",
        "suite": "str",
        "severity": "str",
        "success": "bool",
        "unexpected_count": "int64",
        "details": "str",
    }
    assert len(run.checks) == len(run.summary["checks"])


def test_at_risk_and_by_tutorial_agree_with_the_summary(run: reconcile.RunArtifacts) -> None:
    at_risk = run.at_risk()
    assert len(at_risk) == run.summary["at_risk"]
    assert set(at_risk["status"]) == {s.value for s in AT_RISK}
    table = run.by_tutorial()
    assert table["keys"].sum() == len(run.diff)
    assert table["at_risk"].sum() == run.summary["at_risk"]
    for status in Status:
        assert table[status.value].sum() == run.summary["counts"][status.value]
    assert table["at_risk"].is_monotonic_decreasing


def test_user_is_the_card_model(run: reconcile.RunArtifacts) -> None:
    hostile = next(u for u in run.at_risk()["user_id"] if "'" in u or "$" in u or "<" in u)
    mine = run.user(hostile)
    expected = card_table(run.diff, run.quarantine, run.foreign, users=[hostile])
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), expected)
    assert set(mine["user_id"]) == {hostile}
    assert run.card(hostile) is not None
    nobody = run.user("nobody-at-all")
    assert nobody.empty and list(nobody.columns) == list(mine.columns)
    assert run.card("nobody-at-all") is None


def test_tutorial_and_quiz_scores(run: reconcile.RunArtifacts) -> None:
    tutorial = run.by_tutorial()["tutorial_id"].iloc[0]
    keys = run.tutorial(tutorial)
    assert len(keys) == int((run.diff["tutorial_id"] == tutorial).sum())
    furthest = keys[["local_chapters_completed", "backend_chapters_completed"]].max(axis=1)
    assert keys["chapters_completed"].astype("float64").equals(furthest.astype("float64"))
    assert keys["at_risk"].sum() == run.by_tutorial()["at_risk"].iloc[0]
    assert (keys["last_access_day"].dropna().dt.hour == 0).all()
    long = run.quiz_scores()
    per_key = sum(
        len(q or {}) for side in ("local", "backend") for q in run.diff[f"{side}_quiz_scores"]
    )
    assert len(long) == per_key > 0
    assert set(long["side"]) == {"local", "backend"}


def test_user_nights_reads_every_night(reports: Path, run: reconcile.RunArtifacts) -> None:
    hostile = next(u for u in run.diff["user_id"] if "'" in u)
    nights = reconcile.user_nights(reports, hostile)
    keys = int((run.diff["user_id"] == hostile).sum())
    assert len(nights) == 2 * keys
    assert list(nights["run_id"].unique()) == [p.name for p in reconcile.list_runs(reports)]
    assert reconcile.user_nights(reports, "nobody-at-all").empty


def test_history_flags_baselines_and_counts_failed_checks(reports: Path, tmp_path: Path) -> None:
    """Night 1 fails only range checks (a 150 % row): still a baseline. Night 2 lost a
    backend row: its regression checks failed, so it is not one, and one more key is at risk."""
    history = reconcile.load_history(reports)
    assert len(history) == 2
    first, second = history.to_dict("records")
    nights = [json.loads(line) for line in (reports / METRICS_FILE).read_text().splitlines()]
    assert history["baseline"].tolist() == [n["good"] for n in nights] == [True, False]
    for row, folder in zip((first, second), reconcile.list_runs(reports), strict=True):
        checks = reconcile.load_run(folder).checks
        assert row["failed_checks"] == int((~checks["success"]).sum())
    assert first["failed_checks"] > 0  # a baseline may have failed (range) checks
    assert second["failed_checks"] > first["failed_checks"]
    assert second["at_risk"] == first["at_risk"] + 1
    assert first["keys"] == sum(first[s.value] for s in Status)
    assert first["meets_bar"] == (first["migration_success_rate"] >= reconcile.MIGRATED_BAR)
    assert list(history.columns) == list(artifacts.HISTORY_COLUMNS)
    # A night whose run folder is gone: the history's own counts say which checks failed.
    copy = tmp_path / "reports"
    shutil.copytree(reports, copy)
    shutil.rmtree(reconcile.list_runs(copy)[0])
    recorded = sum(1 for v in nights[0]["checks"].values() if v > 0)
    assert reconcile.load_history(copy)["failed_checks"].tolist() == [
        recorded,
        second["failed_checks"],
    ]
    empty = reconcile.load_history(tmp_path / "nothing")
    assert empty.empty and list(empty.columns) == list(artifacts.HISTORY_COLUMNS)


def test_every_runs_diff_passes_the_published_contract(reports: Path) -> None:
    for folder in reconcile.list_runs(reports):
        DiffFrame.validate(reconcile.load_run(folder).diff, lazy=True)


def test_the_contract_rejects_what_it_does_not_promise(run: reconcile.RunArtifacts) -> None:
    bad = run.diff.copy()
    bad.loc[0, "action"] = "merge" if bad.loc[0, "action"] != "merge" else "insert"
    bad.at[1, "local_quiz_scores"] = "{}"  # JSON text, as the file holds it
    bad.at[2, "local_completed_chapters"] = ["c1"]  # a list, not a tuple
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        DiffFrame.validate(bad, lazy=True)
    checks = set(caught.value.failure_cases["check"].astype(str))
    assert {
        "action_follows_status",
        "quiz_scores_are_dicts",
        "chapters_are_tuples_of_str",
    } <= checks
    with pytest.raises(pa.errors.SchemaErrors):
        DiffFrame.validate(pd.read_parquet(run.path / DIFF), lazy=True)  # raw: arrays, JSON


@pytest.mark.parametrize("module", [artifacts, contract], ids=lambda m: m.__name__)
def test_docstring_examples_run(
    module: object, reports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The examples use "reports", as an analyst standing beside the output folder would."""
    monkeypatch.chdir(reports.parent)
    monkeypatch.setenv("PWD", str(reports.parent))
    assert (reports / SUMMARY).exists() is False  # an output folder, not a run
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False)  # type: ignore[arg-type]
    assert result.failed == 0
    assert result.attempted >= (15 if module is artifacts else 2)
