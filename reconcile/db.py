"""Database URLs and connections (psycopg 3 under SQLAlchemy-style URLs)."""

from __future__ import annotations

import logging
import re

import psycopg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from reconcile.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

_ACCEPTED_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}


def parse_url(url: str) -> URL:
    """Parse ``postgresql://`` or ``postgresql+psycopg://`` URLs; reject anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("--database-url: not a database URL (postgresql://...)") from None
    if parsed.drivername not in _ACCEPTED_DRIVERS:
        raise ConfigError(
            f"--database-url: unsupported scheme {parsed.drivername!r}; use postgresql://"
        )
    return parsed


def redact(url: str) -> str:
    """The URL with its password replaced, safe for logs, errors and reports."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"//[^@/]*@", "//***@", url)


def libpq_url(url: str) -> str:
    """A URL libpq (psycopg) accepts: the SQLAlchemy driver suffix removed."""
    parsed = parse_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str, *, autocommit: bool = False, connect_timeout: int = 10) -> psycopg.Connection:
    """Open a psycopg connection, turning failures into a one-line :class:`SourceError`."""
    target = libpq_url(url)
    try:
        return psycopg.connect(target, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"cannot connect to {redact(url)}: {first_line}") from None
