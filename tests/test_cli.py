"""The command line as cron and people use it: help, exit codes, apply, the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner

from reconcile.cli import cli, main
from reconcile.db import libpq_url
from reconcile.errors import ReconcileError
from tests import small_fixture

README = Path(__file__).parents[1] / "README.md"


def _commands(group: click.Group) -> list[click.Command]:
    return list(group.commands.values())


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: c.name)
def test_every_command_and_option_has_help(command: click.Command) -> None:
    assert command.help and command.help.strip()
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{command.name} {param.opts} lacks help"


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: c.name)
def test_every_command_is_documented_in_the_readme(command: click.Command) -> None:
    assert f"reconcile {command.name}" in README.read_text()


def test_readme_gives_the_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks[0].strip() == "python3 -m pip install -e . && reconcile demo"
    assert blocks[1].strip() == "python3 -m pip install -e '.[dev]' -q && python3 -m pytest -q"
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "python3 -m pip install -e '.[dev]' -q && python3 -m pytest -q" in ci


def test_help_exits_0() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "run" in result.output and "apply" in result.output


def test_apply_dry_run_then_apply_through_the_cli(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    out = tmp_path / "out"
    assert (
        main(["run", "--database-url", database_url, "--exports", str(exports), "--out", str(out)])
        == 1
    )
    run_dir = Path(capsys.readouterr().out.strip())

    def rows() -> int:
        with psycopg.connect(libpq_url(database_url)) as conn:
            return conn.execute("SELECT count(*) FROM tutorial_progress").fetchone()[0]

    before = rows()
    assert main(["apply", str(run_dir), "--database-url", database_url, "--dry-run"]) == 0
    assert "would" in capsys.readouterr().out.lower()
    assert rows() == before
    assert main(["apply", str(run_dir), "--database-url", database_url]) == 0
    assert "inserted" in capsys.readouterr().out
    assert rows() == before + 2  # u-missing and the hostile id

    assert main(["apply", str(tmp_path / "nowhere"), "--database-url", database_url]) == 2
    assert "reconcile: error:" in capsys.readouterr().err
    assert main(["apply", str(run_dir), "--database-url", "postgresql://x:pw@127.0.0.1:1/db"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("reconcile: error:") and "pw@" not in err


def _run_args(tmp_path: Path, url: str) -> list[str]:
    exports = tmp_path / "exports"
    if not exports.exists():
        small_fixture.write_exports(exports)
    out = ["--exports", str(exports), "--out", str(tmp_path / "o"), *_no_retry(tmp_path)]
    return ["run", "--database-url", url, *out]


def _no_retry(tmp_path: Path) -> list[str]:
    """A config that gives an unreachable database one attempt (the default retries 60 s)."""
    config = tmp_path / "no-retry.toml"
    config.write_text("[backend]\nretry_seconds = 0\n", encoding="utf-8")
    return ["--config", str(config)]


def _last_line(err: str) -> str:
    return err.rstrip("\n").splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--database-url", "postgresql://u:pw@127.0.0.1:1/db"], 3, "cannot connect"),
        (["--database-url", "postgresql://u@127.0.0.1::1/db"], 2, "--database-url"),
        (["--database-url", "postgresql://u@h/db", "--exports", "/no/such/path"], 2, "--exports"),
    ],
    ids=["unreachable", "bad-port", "missing-exports"],
)
def test_debug_changes_no_exit_code(
    args: list[str],
    code: int,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = _run_args(tmp_path, "postgresql://unused@h/db")[:1] + args
    if "--exports" not in args:
        run += ["--exports", str(tmp_path / "exports")]
    run += ["--out", str(tmp_path / "o"), *_no_retry(tmp_path)]
    assert main(run) == code
    plain = capsys.readouterr().err
    assert plain.count("\n") == 1 and message in plain and "Traceback" not in plain

    assert main(["--debug", *run]) == code
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert _last_line(err) == plain.strip()


@pytest.mark.parametrize(
    "error", [ReconcileError, *ReconcileError.__subclasses__()], ids=lambda e: e.__name__
)
def test_debug_keeps_the_code_of_every_reconcile_error(
    error: type[ReconcileError],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(**_: object) -> None:
        raise error("what to fix")

    monkeypatch.setattr("reconcile.pipeline.run_job", fail)
    args = _run_args(tmp_path, "postgresql://u@h/db")
    for flags in ([], ["--debug"]):
        assert main([*flags, *args]) == int(error.exit_code)
        err = capsys.readouterr().err
        assert _last_line(err) == "reconcile: error: what to fix"
        assert ("Traceback" in err) == bool(flags)


def test_debug_keeps_exit_70_for_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bug(**_: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("reconcile.pipeline.run_job", bug)
    args = _run_args(tmp_path, "postgresql://u@h/db")
    assert main(args) == 70
    assert capsys.readouterr().err == (
        "reconcile: error: internal error: ZeroDivisionError: a bug (rerun with --debug)\n"
    )
    assert main(["--debug", *args]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert _last_line(err) == "reconcile: error: internal error: ZeroDivisionError: a bug"


@pytest.mark.parametrize("args", [["run", "--no-such-flag"], ["run"], ["no-such-command"]])
def test_debug_keeps_exit_2_for_usage_errors(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for flags in ([], ["--debug"]):
        assert main([*flags, *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("reconcile: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1::1/db",
        "postgresql://u@127.0.0.1:99999/db",
        "postgresql://u@127.0.0.1:abc/db",
    ],
)
def test_a_malformed_port_is_a_configuration_error(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_run_args(tmp_path, url)) == 2
    err = capsys.readouterr().err
    assert err.startswith("reconcile: error: --database-url: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_apply_with_a_malformed_port_is_a_configuration_error(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_fixture.write_backend(database_url)
    assert main(_run_args(tmp_path, database_url)) == 1
    run_dir = capsys.readouterr().out.strip()
    for url in ("postgresql://u@127.0.0.1::1/db", "postgresql://u@127.0.0.1:99999/db"):
        assert main(["apply", run_dir, "--database-url", url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("reconcile: error: --database-url: ") and err.count("\n") == 1


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_query_password_never_reaches_stdout_or_stderr(debug: list[str], tmp_path: Path) -> None:
    url = "postgresql://u@127.0.0.1:1/db?password=s3cr3t-xyz"
    done = subprocess.run(
        [sys.executable, "-m", "reconcile", *debug, *_run_args(tmp_path, url)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3
    assert _last_line(done.stderr).startswith("reconcile: error: cannot connect to ")
    assert "password=***" in done.stderr and "s3cr3t" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:1/db?user=u&password=s3cr3t-xyz",
        "postgresql://u@127.0.0.1:1/db?sslpassword=s3cr3t-xyz&password=s3cr3t%2Dxyz",
        "postgresql://u:s3cr3t-xyz@127.0.0.1:1/db?%70assword=s3cr3t-xyz",
        "postgresql://u@127.0.0.1:1/db?password=s3cr3t-xyz&no_such=1",
        "host=127.0.0.1 port=1 user=u password=s3cr3t-xyz dbname=db",
    ],
)
def test_no_form_of_a_password_reaches_stderr(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in ([], ["--debug"]):
        assert main([*flags, *_run_args(tmp_path, url)]) in (2, 3)
        out, err = capsys.readouterr()
        assert _last_line(err).startswith("reconcile: error: ")
        assert "s3cr3t" not in out + err
