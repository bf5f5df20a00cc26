"""Database URLs: malformed ones are configuration errors, and no password is ever shown."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.config import Config
from reconcile.db import ConnectPolicy, connect, is_transient, libpq_url, parse_url, redact
from reconcile.errors import ConfigError, SourceError
from reconcile.pipeline import run_job
from tests import small_fixture

MARK = "S3CR3T"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1::1/db",
        "postgresql://u@127.0.0.1:99999/db",
        "postgresql://u@127.0.0.1:abc/db",
        "postgresql://u@127.0.0.1:0/db",
        "postgresql://u@127.0.0.1:-5/db",
        "postgresql://u@h1:1,h2:2/db",
        "postgresql://u@h/db?port=abc",
        "postgresql://u@h/db?host=h1,h2&port=1,70000",
        "postgresql://u@h/db?no_such_option=1",
        "postgresql://u:p@ss@h/db",
    ],
)
def test_a_malformed_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_url(url)
    message = str(caught.value)
    assert message.startswith("--database-url: ") and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@localhost:5432/db",
        "postgresql+psycopg://u@[::1]:65535/db?sslmode=require",
        "postgresql://u@/db?host=/run/postgresql",
        "postgresql://u@/db?host=h1,h2&port=5432,5433",
        "postgres://localhost/db?user=u&password=x",
    ],
)
def test_a_wellformed_url_parses(url: str) -> None:
    parse_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cr3t-xyz@h/db",
        "postgresql://u@h/db?password=s3cr3t-xyz",
        "postgresql://h/db?user=u&password=s3cr3t-xyz",
        "postgresql://u@h/db?sslmode=require&sslpassword=s3cr3t-xyz",
        "postgresql://u@h/db?%70assword=s3cr3t-xyz",
        "postgresql://u@h/db?%2570assword=s3cr3t-xyz",
        "postgresql://u@h/db?PassWord=s3cr3t-xyz",
        "postgresql://u@h/db?password=a&password=s3cr3t-xyz",
        "postgresql://u@h/db?password=s3cr3t%2Dxyz",
        "postgresql://u:pw@h::1/db?password=s3cr3t-xyz",
        "postgresql://u:s3cr3t-xyz@h:abc/db",
        "postgresql://u:p@s3cr3t-xyz@h/db",
        "host=h port=5432 user=u password=s3cr3t-xyz dbname=db",
        "host=h password = 's3cr3t-xyz with \\' quote' dbname=db",
        "dbname=db sslpassword=s3cr3t-xyz",
    ],
)
def test_redact_masks_every_password(url: str) -> None:
    shown = redact(url)
    assert "s3cr3t" not in unquote(shown).lower()
    assert "***" in shown


def test_redact_keeps_what_locates_the_database() -> None:
    assert redact("postgresql://u:pw@db.example:6543/app?sslmode=require&password=x") == (
        "postgresql://u:***@db.example:6543/app?password=***&sslmode=require"
    )


def _url_forms(secret: str) -> list[str]:
    """The ways a password can be written into a URL or a libpq conninfo string."""
    coded = quote_plus(secret)
    every_byte = "".join(f"%{b:02X}" for b in secret.encode())
    quoted = secret.replace("\\", "\\\\").replace("'", "\\'")
    return [
        f"postgresql://u:{quote(secret, safe='')}@h/db",
        f"postgresql://u@h/db?password={coded}",
        f"postgresql://u@h/db?password={every_byte}",
        f"postgresql://h/db?user=u&password={coded}&sslmode=require",
        f"postgresql://u@h/db?sslpassword={coded}",
        f"postgresql://u@h/db?%70assword={coded}",
        f"postgresql://u@h/db?PASSWORD={coded}",
        f"postgresql://u:{quote(secret, safe='')}@h::1/db?password={coded}",
        f"host=h password='{quoted}' dbname=db",
    ]


@given(st.text(min_size=0, max_size=30))
def test_redact_never_shows_a_password(tail: str) -> None:
    secret = MARK + tail
    for url in _url_forms(secret):
        shown = redact(url)
        assert MARK not in shown and MARK not in unquote(shown), (url, shown)


def test_summary_json_shows_the_url_redacted(database_url: str, tmp_path: Path) -> None:
    """summary.json's source.database goes through redact: a password given as a query
    parameter (the embedded server trusts local connections and ignores it) is masked."""
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    url = parse_url(database_url).update_query_dict({"password": "s3cr3t-xyz"})
    with_password = url.render_as_string(hide_password=False)
    result = run_job(
        database_url=with_password, exports=[exports], out=tmp_path / "out", config=Config()
    )
    text = (result.run_dir / "summary.json").read_text(encoding="utf-8")
    assert "s3cr3t-xyz" not in text
    assert json.loads(text)["source"]["database"] == redact(with_password)
    assert "password=***" in json.loads(text)["source"]["database"]


# --- connecting: timeouts and retries of a server that is down or restarting ------------


def _reconcile(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconcile", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _settings(tmp_path: Path, text: str) -> str:
    path = tmp_path / "reconcile.toml"
    path.write_text(f"[backend]\n{text}\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def stopped_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A server's data folder, holding the small fixture, and its URL; the server is stopped."""
    from reconcile.demo.embedded import start_embedded

    pgdata = tmp_path / "pgdata"
    server = start_embedded(pgdata)
    small_fixture.write_backend(server.url)
    server.stop()
    try:
        yield pgdata, server.url
    finally:
        start_embedded(pgdata).stop()  # stopped whatever the test left running


def test_a_database_down_at_start_and_up_within_the_window_is_read(
    stopped_server: tuple[Path, str], tmp_path: Path
) -> None:
    from reconcile.demo.embedded import start_embedded

    pgdata, url = stopped_server
    exports = small_fixture.write_exports(tmp_path / "exports")
    out = tmp_path / "out"
    config = _settings(tmp_path, "retry_seconds = 60")
    args = ["run", "--database-url", url, "--exports", str(exports), "--out", str(out)]
    job = _reconcile(*args, "--config", config)
    assert job.stderr is not None
    first = job.stderr.readline()  # the job has tried and failed once
    assert "database not reachable (attempt 1" in first and "retrying in" in first, first
    time.sleep(2)
    server = start_embedded(pgdata)
    try:
        stdout, stderr = job.communicate(timeout=120)
    finally:
        server.stop()
    assert job.returncode == 1, stderr  # the fixture has keys to repair
    assert "reconcile: error" not in stderr
    assert Path(stdout.strip()).parent == out and (Path(stdout.strip()) / "summary.json").exists()


def test_a_database_down_for_good_is_exit_3_after_the_window(
    stopped_server: tuple[Path, str], tmp_path: Path
) -> None:
    _, url = stopped_server
    url = url.replace("postgres:@", f"postgres:{MARK}@")  # a password never shown
    exports = small_fixture.write_exports(tmp_path / "exports")
    config = _settings(tmp_path, "retry_seconds = 5\nconnect_timeout_seconds = 2")
    args = ["run", "--database-url", url, "--exports", str(exports), "--out", str(tmp_path)]
    begin = time.monotonic()
    job = _reconcile(*args, "--config", config)
    stdout, stderr = job.communicate(timeout=120)
    elapsed = time.monotonic() - begin
    assert job.returncode == 3 and stdout == ""
    last = stderr.rstrip("\n").splitlines()[-1]
    tried = re.search(r"\(tried for (\d+) s, (\d+) attempts\)", last)
    assert last.startswith("reconcile: error: cannot connect to ") and tried, stderr
    assert 2 <= int(tried[1]) <= 5 and int(tried[2]) >= 3  # 0.5 + 1 + 2 s of backoff
    assert elapsed < 40  # the window, plus starting Python and importing the job
    assert MARK not in stderr and "***" in last


def test_a_permanent_refusal_is_not_retried(database_url: str) -> None:
    missing = parse_url(database_url).set(database="no_such_db").render_as_string(False)
    begin = time.monotonic()
    with pytest.raises(SourceError) as caught:
        connect(missing, policy=ConnectPolicy(retry_seconds=60))
    assert time.monotonic() - begin < 10
    assert 'database "no_such_db" does not exist' in str(caught.value)
    assert "attempts" not in str(caught.value)


def test_the_connect_timeout_bounds_a_server_that_never_answers() -> None:
    with socket.socket() as silent:  # accepts the TCP connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        begin = time.monotonic()
        with pytest.raises(SourceError) as caught:
            connect(f"postgresql://u@127.0.0.1:{port}/db", policy=ConnectPolicy(connect_timeout=2))
        elapsed = time.monotonic() - begin
    assert 1.5 < elapsed < 10
    assert "timeout" in str(caught.value)


def test_the_statement_timeout_ends_a_read_that_waits(database_url: str, tmp_path: Path) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    config = Config(query_timeout_seconds=1)
    with psycopg.connect(libpq_url(database_url)) as holder:
        holder.execute("LOCK TABLE tutorial_progress IN ACCESS EXCLUSIVE MODE")
        begin = time.monotonic()
        with pytest.raises(SourceError) as caught:
            run_job(database_url=database_url, exports=[exports], out=tmp_path, config=config)
        elapsed = time.monotonic() - begin
    assert "statement timeout" in str(caught.value)
    assert elapsed < 30


def test_transient_failures_are_the_ones_of_a_server_down_or_restarting() -> None:
    def failure(text: str) -> psycopg.OperationalError:
        return psycopg.OperationalError(text)

    assert is_transient(failure('connection to server on socket "/s" failed: No such file'))
    assert is_transient(failure("connection failed: Connection refused"))
    assert is_transient(failure("failed: FATAL:  the database system is starting up"))
    assert is_transient(failure("failed: FATAL:  the database system is shutting down"))
    assert not is_transient(failure('failed: FATAL:  password authentication failed for user "u"'))
    assert not is_transient(psycopg.ProgrammingError("no"))
