"""The command line as cron and people use it: help, exit codes, apply, the README."""

from __future__ import annotations

import re
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner

from reconcile.cli import cli, main
from reconcile.db import libpq_url
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
