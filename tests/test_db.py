"""Database URLs: malformed ones are configuration errors, and no password is ever shown."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.config import Config
from reconcile.db import parse_url, redact
from reconcile.errors import ConfigError
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
