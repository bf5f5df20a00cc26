"""Configuration: defaults < TOML file < environment < flags; checked at start; passwords masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from reconcile.config import Config, resolve_settings
from reconcile.errors import ConfigError
from tests import small_fixture

PASSWORD = "Zq9-hunter2-xK"
QUERY_PASSWORD = "Pw7-query-s3cret"


def clean_env() -> dict[str, str]:
    """This process's environment without any setting of the job's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "DATABASE_"))}


def reconcile(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """``python -m reconcile ARGS`` in ``cwd`` with only ``env`` of the job's settings."""
    return subprocess.run(
        [sys.executable, "-m", "reconcile", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**clean_env(), **(env or {})},
    )


def test_defaults_then_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / "reconcile.toml").write_text(
        '[backend]\nschema = "from_file"\ntable = "t_file"\n'
        '[run]\nout = "nightly"\nfail_on = "critical"\n',
        encoding="utf-8",
    )
    env = {"RECONCILE_BACKEND_TABLE": "t_env", "RECONCILE_RUN_FAIL_ON": "at_risk>5"}
    settings = resolve_settings(
        env={**env, "DATABASE_URL": "postgresql://env@h/db"},
        cwd=tmp_path,
        flags={"run.fail_on": ("--fail-on", "never")},
    )

    assert settings.config.schema == "from_file"  # file over default
    assert settings.config.table == "t_env"  # environment over file
    assert settings.config.fail_on == "never"  # flag over environment
    assert settings.config.min_exports == Config().min_exports
    assert settings.out == tmp_path / "nightly"  # relative to the file
    assert settings.database_url == "postgresql://env@h/db"
    assert settings.origins["backend.schema"] == str(tmp_path / "reconcile.toml")
    assert settings.origins["backend.table"] == "env RECONCILE_BACKEND_TABLE"
    assert settings.origins["run.fail_on"] == "flag --fail-on"
    assert settings.origins["database.url"] == "env DATABASE_URL"
    assert settings.origins["checks.min_exports"] == "default"


def test_an_explicit_config_replaces_the_working_folder_file(tmp_path: Path) -> None:
    (tmp_path / "reconcile.toml").write_text('[backend]\nschema = "cwd"\n', encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text('[backend]\ntable = "other"\n', encoding="utf-8")
    settings = resolve_settings(other, env={}, cwd=tmp_path)

    assert (settings.config.schema, settings.config.table) == ("public", "other")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[backend]\nshema = 'x'\n", {}, "unknown setting backend.shema"),
        ("[checks]\nmin_exports = -1\n", {}, "checks.min_exports must be a non-negative"),
        ("[run]\nfail_on = 'sometimes'\n", {}, "run.fail_on: 'sometimes' is not a rule"),
        ("[run]\nlog_format = 'xml'\n", {}, "run.log_format must be one of text, json"),
        ("[backend\n", {}, "cannot read"),
        ("", {"RECONCILE_CHECKS_MIN_EXPORTS": "many"}, "env RECONCILE_CHECKS_MIN_EXPORTS"),
        ("", {"RECONCILE_BACKEND_TABEL": "x"}, "env RECONCILE_BACKEND_TABEL: unknown setting"),
    ],
)
def test_a_bad_value_names_the_key_and_where_it_came_from(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="^.*" + message.replace("[", r"\[")) as caught:
        resolve_settings(path, env=env, cwd=tmp_path)
    if not env:
        assert str(path) in str(caught.value)


def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "reconcile.toml").write_text("[checks]\nmin_exports = 'x'\n", encoding="utf-8")
    done = reconcile("run", "--database-url", "postgresql://u@h/db", "--exports", ".", cwd=tmp_path)

    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "reconcile.toml" in done.stderr and "checks.min_exports" in done.stderr
    assert "Traceback" not in done.stderr


def test_reconcile_config_prints_each_value_and_its_origin_passwords_masked(
    tmp_path: Path,
) -> None:
    (tmp_path / "reconcile.toml").write_text('[backend]\nschema = "s"\n', encoding="utf-8")
    url = f"postgresql://me:{PASSWORD}@db.example/app?password={QUERY_PASSWORD}&sslmode=require"
    done = reconcile(
        "config", cwd=tmp_path, env={"DATABASE_URL": url, "RECONCILE_CHECKS_MIN_EXPORTS": "3"}
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f'schema = "s"  # {tmp_path / "reconcile.toml"}' in lines
    assert "min_exports = 3  # env RECONCILE_CHECKS_MIN_EXPORTS" in lines
    assert 'table = "tutorial_progress"  # default' in lines
    url_line = next(line for line in lines if line.startswith("url = "))
    assert "me:***@db.example" in url_line and "password=***" in url_line
    assert url_line.endswith("# env DATABASE_URL")
    assert PASSWORD not in done.stdout + done.stderr
    assert QUERY_PASSWORD not in done.stdout + done.stderr


def _with_password(url: str, *, userinfo: str | None, query: str | None) -> str:
    parsed = make_url(url)
    if userinfo is not None:
        parsed = parsed.set(password=userinfo)
    if query is not None:
        parsed = parsed.update_query_dict({"password": query})
    return parsed.render_as_string(hide_password=False)


def _all_text(*folders: Path) -> str:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                found.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(found)


def test_passwords_reach_no_file_log_or_output_of_a_run(database_url: str, tmp_path: Path) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    # The embedded server trusts its Unix socket: any password is accepted, so the run
    # completes and writes every output (report, summary, history, Data Docs).
    url = _with_password(database_url, userinfo=PASSWORD, query=QUERY_PASSWORD)
    out = tmp_path / "out"
    done = reconcile(
        "-vv",
        "run",
        "--exports",
        str(exports),
        "--out",
        str(out),
        cwd=tmp_path,
        env={"DATABASE_URL": url},
    )
    assert done.returncode == 1, done.stderr  # completed: the fixture is actionable
    json_log = reconcile(
        "--log-format", "json", "run", "--database-url", url, "--exports", str(exports),
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert json_log.returncode == 1, json_log.stderr
    # and a URL that fails (no such database) says so without the password either
    failing = _with_password(
        database_url.rsplit("/", 1)[0] + "/no_such_db", userinfo=PASSWORD, query=QUERY_PASSWORD
    )
    failed = reconcile(
        "run", "--database-url", failing, "--exports", str(exports), "--out", str(out),
        cwd=tmp_path, env={"RECONCILE_BACKEND_RETRY_SECONDS": "0"},
    )  # fmt: skip
    assert failed.returncode == 3, failed.stderr

    everything = "\n".join(
        [_all_text(out), *(d.stdout + d.stderr for d in (done, json_log, failed))]
    )
    assert len(list(out.glob("2*/summary.json"))) == 2
    assert PASSWORD not in everything and QUERY_PASSWORD not in everything
    assert "***" in (next(out.glob("2*/summary.json"))).read_text()
