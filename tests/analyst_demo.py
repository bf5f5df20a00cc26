"""A small demo output folder with two nights, built once per test session.

``reconcile demo``'s data (100 ordinary users plus the planted cases: every status,
hostile ids, damaged files) in a database of the session's PostgreSQL; night 1 runs on it
as it is, then a backend row of an ``in_sync`` key is deleted and night 2 runs: a night
whose regression check fails, so it is not a baseline, and one more key at risk.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

from reconcile.config import Config
from reconcile.db import libpq_url, parse_url
from reconcile.demo.run import build_dataset, load_backend_rows, write_exports
from reconcile.pipeline import run_job

USERS: Final = 100
_BUILT: dict[str, Path] = {}


def demo_out(server_url: str, folder: Path) -> Path:
    """``folder/reports``: the two nights' output folder (built on the first call only)."""
    if server_url in _BUILT:
        return _BUILT[server_url]
    name = f"analyst_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = parse_url(server_url).set(database=name).render_as_string(hide_password=False)
    config = Config()
    dataset = build_dataset(users=USERS)
    exports = folder / "exports"
    write_exports(exports, dataset)
    load_backend_rows(url, config.schema, config.table, dataset.backend)
    out = folder / "reports"
    first = run_job(database_url=url, exports=[exports], out=out, config=config)
    synced = first.diff[(first.diff["status"] == "in_sync")].iloc[0]
    table = sql.Identifier(config.schema, config.table)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE user_id = %s AND tutorial_id = %s").format(table),
            (synced["user_id"], synced["tutorial_id"]),
        )
    run_job(database_url=url, exports=[exports], out=out, config=config)
    _BUILT[server_url] = out
    return out
