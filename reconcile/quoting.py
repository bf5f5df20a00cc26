"""Untrusted text in SQL: literals and identifiers quoted by psycopg, comments made safe.

Data never meets hand-written escaping: values become SQL literals through
``sql.Literal`` and names through ``sql.Identifier``. Text shown in ``--`` comments (ids,
reasons) is made printable first, so no line break can end a comment early.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql

from reconcile.model import BACKUP_PREFIX


def qualified_table(schema: str, table: str) -> sql.Composed:
    """``schema.table`` quoted as identifiers: safe for any configured name."""
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def backup_table_name(run_id: str) -> str:
    """``reconcile_backup_<run id as [a-z0-9_]>``, at most 63 bytes (a PostgreSQL name)."""
    clean = re.sub(r"[^a-z0-9_]", "_", run_id.lower()).strip("_")
    room = 63 - len(BACKUP_PREFIX)
    if not clean or len(clean) > room:
        digest = hashlib.sha1(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        clean = f"{clean[: room - 9]}_{digest}".strip("_")
    return BACKUP_PREFIX + clean


def printable(text: str, *, ascii_only: bool = False) -> str:
    """``text`` with each non-printable (or, if asked, non-ASCII) character as ``\\uXXXX``.

    The result holds no line break of any kind, so it cannot end a ``--`` comment, and no
    terminal control character.
    """
    return "".join(
        ch if ch.isprintable() and (ch.isascii() or not ascii_only) else _u_escape(ch)
        for ch in text
    )


def show(value: object) -> str:
    """A value for people (reports, comments): JSON-quoted, every non-printable escaped."""
    return printable(json.dumps(value, ensure_ascii=False, default=str))


def target_display(schema: str, table: str) -> str:
    """The target table as it appears in the scripts' headers (compared by ``apply``)."""
    return printable(qualified_table(schema, table).as_string(None), ascii_only=True)


def read_header(text: str) -> dict[str, str]:
    """The ``-- name: value`` fields of a script's leading comment block."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = re.match(r"^-- ([a-z][a-z ]*[a-z]): +(.*)$", line)
        if match:
            fields.setdefault(match.group(1), match.group(2).strip())
    return fields


def _u_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def literal(value: str) -> str:
    """A SQL string literal quoted by psycopg (``E''`` form whenever a backslash occurs)."""
    return sql.Literal(value).as_string(None).strip()


def ident(*names: str) -> str:
    return sql.Identifier(*names).as_string(None)


def comment_literal(value: str) -> str:
    """A SQL expression for ``value`` that is safe inside a ``--`` comment line."""
    plain = literal(value)
    if plain.isprintable():
        return plain
    # ASCII-only JSON (DEL is the one non-printable ASCII character JSON leaves raw).
    encoded = json.dumps([value], ensure_ascii=True).replace("\x7f", "\\u007f")
    return f"({literal(encoded)}::jsonb ->> 0)"


def missing(value: Any) -> bool:
    """Whether a cell of the diff frame is unknown (None, NA, NaT, NaN)."""
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts, arrays
        return False


def as_int(value: Any) -> int | None:
    """An integer cell of the diff frame as ``int``, ``None`` when unknown."""
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else int(value)
    return None if missing(value) else int(value)
