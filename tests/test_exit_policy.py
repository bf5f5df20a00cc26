"""--fail-on: what makes a completed run exit 1, and summary.json naming the rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconcile.cli import main
from reconcile.errors import ConfigError
from reconcile.model import CRITICAL, CheckResult
from reconcile.outputs.exit_policy import parse_policy
from tests import small_fixture
from tests.outputs.test_result import result

BAD = CheckResult("gx.range", False, 3)  # a warning by default
LOSS = CheckResult("history.regression", False, 2, severity=CRITICAL)


@pytest.mark.parametrize(
    ("fail_on", "statuses", "checks", "code", "rule"),
    [
        ("actionable", ["in_sync"], (), 0, None),
        ("actionable", ["in_sync", "conflict"], (), 1, "actionable>0"),
        ("actionable", ["in_sync"], (BAD,), 1, "failed_checks>0"),
        ("critical", ["in_sync", "conflict", "invalid_backend"], (BAD,), 0, None),
        ("critical", ["local_ahead"], (), 1, "at_risk>0"),
        ("critical", ["in_sync"], (BAD, LOSS), 1, "failed_critical_checks>0"),
        ("never", ["missing_in_backend"], (LOSS,), 0, None),
        ("at_risk>2", ["diverged", "diverged"], (), 0, None),
        ("at_risk>2", ["diverged"] * 3, (), 1, "at_risk>2"),
        ("missing_in_backend>0", ["diverged"], (LOSS,), 0, None),
        (" failed_checks >= 1 ", ["in_sync"], (BAD,), 1, "failed_checks>=1"),
        ("critical,conflict>=1", ["conflict"], (), 1, "conflict>=1"),
        ("backend_rows<10", ["in_sync"], (), 1, "backend_rows<10"),  # 5 backend rows
    ],
)
def test_each_policy_gives_its_exit_code_and_names_the_rule(
    fail_on: str, statuses: list[str], checks: tuple[CheckResult, ...], code: int, rule: str | None
) -> None:
    run = result(statuses, checks, fail_on=fail_on)

    assert run.exit_code == code and run.summary["exit_code"] == code
    assert run.summary["exit_policy"]["fail_on"] == fail_on.strip()
    assert run.summary["exit_policy"]["rule"] == rule


def test_findings_are_counted_per_severity() -> None:
    run = result(["missing_in_backend", "conflict", "invalid_backend", "in_sync"], (BAD, LOSS))

    assert run.summary["exit_policy"]["findings"] == {"critical": 2, "warning": 3}
    severities = {c["name"]: c["severity"] for c in run.summary["checks"]}
    assert severities == {"gx.range": "warning", "history.regression": "critical"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sometimes",
        "at_risk>",
        "at_risk > -1",
        "__import__('os')>0",
        "at_risk>1 or 1",
        "nobody>0",
        "at_risk=>1",
        "at_risk>1e3",
    ],
)
def test_anything_but_the_grammar_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--fail-on"):
        parse_policy(text)


def test_an_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        CheckResult("x", False, 1, severity="fatal")


@pytest.fixture
def fixture_db(database_url: str, tmp_path: Path) -> tuple[str, Path]:
    small_fixture.write_backend(database_url)
    return database_url, small_fixture.write_exports(tmp_path / "exports")


def test_fail_on_through_the_cli_and_the_config_file(
    fixture_db: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, exports = fixture_db
    base = ["run", "--database-url", url, "--exports", str(exports)]

    def night(name: str, *more: str) -> dict:
        out = tmp_path / name
        code = main([*base, "--out", str(out), *more])
        run_dir = Path(capsys.readouterr().out.strip())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["exit_code"] == code
        return summary

    default = night("default")  # the small fixture has every status: actionable and at risk
    assert default["exit_code"] == 1 and default["exit_policy"]["rule"] == "actionable>0"
    assert night("never", "--fail-on", "never")["exit_code"] == 0
    high = night("high", "--fail-on", "at_risk>1000")
    assert high["exit_code"] == 0 and high["exit_policy"]["rule"] is None
    config = tmp_path / "reconcile.toml"
    config.write_text('[run]\nfail_on = "missing_in_backend>0"\n', encoding="utf-8")
    from_file = night("file", "--config", str(config))
    assert from_file["exit_policy"] == {
        **from_file["exit_policy"],
        "fail_on": "missing_in_backend>0",
        "rule": "missing_in_backend>0",
    }
    # the flag wins over the file
    assert night("flag", "--config", str(config), "--fail-on", "never")["exit_code"] == 0


def test_a_bad_fail_on_is_exit_2_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--database-url", "postgresql://u@127.0.0.1:1/db", "--exports", str(tmp_path)]
    assert main([*args, "--out", str(tmp_path / "o"), "--fail-on", "at_risk>>1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "flag --fail-on" in err and "at_risk>>1" in err
    assert not (tmp_path / "o").exists()
