"""The SQL templates of ``reconcile/repair/sql/`` (package data), rendered by psycopg.

A template is plain SQL with ``{name}`` fields (``{{`` and ``}}`` for literal braces), as
:class:`psycopg.sql.SQL` reads it. Fields are filled with composables: identifiers through
``sql.Identifier``, values through ``sql.Literal``; text that is already safe (numbers,
SQL written here, comment text made printable) through ``sql.SQL``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

from psycopg import sql

#: ``completion_percentage`` from a count and a total (SPEC 3), as PostgreSQL computes it:
#: ``round(numeric, 2)`` rounds half away from zero, like :func:`reconcile.rules.completion`.
COMPLETION_SQL = (
    "CASE WHEN {total} > 0 THEN LEAST(100, round(100.0 * {count} / {total}, 2)) ELSE 0 END"
)


@functools.cache
def template(name: str) -> sql.SQL:
    """``sql/<name>.sql`` as a psycopg ``SQL`` template."""
    folder = resources.files("reconcile.repair").joinpath("sql")
    return sql.SQL(folder.joinpath(f"{name}.sql").read_text(encoding="utf-8"))


def render(name: str, values: Mapping[str, Any]) -> str:
    """The template with its fields filled; a value that is not a composable is safe text."""
    fields = {k: v if isinstance(v, sql.Composable) else sql.SQL(str(v)) for k, v in values.items()}
    return template(name).format(**fields).as_string(None)
