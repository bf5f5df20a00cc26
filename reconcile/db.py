"""Database URLs and connections (psycopg 3 under SQLAlchemy-style URLs)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from reconcile.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

_ACCEPTED_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}
_MASK = "***"
_PORTS = "a port is a number from 1 to 65535"
# libpq's secrets are ``password`` and ``sslpassword``; any key that looks like one is masked.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
# ``//user:password@`` up to the last ``@`` before the path, query or fragment.
_USERINFO = re.compile(r"(?P<head>//[^:@/?#\s]*):[^/?#\s]*@(?=[^@/?#\s]*(?:[/?#\s]|$))")
# ``key=value`` in a URL query (``&``-separated) or a libpq conninfo string (spaces,
# optional spaces around ``=``, single-quoted values with backslash escapes).
_PAIR = re.compile(r"(?P<key>[^\s=&?#;]+)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|[^\s&#;]*)")


def parse_url(url: str) -> URL:
    """Parse ``postgresql://`` or ``postgresql+psycopg://`` URLs; reject anything else.

    The URL is checked as libpq will read it (known parameters, every port a number from
    1 to 65535), so a malformed URL is a configuration error before any connection.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("--database-url: not a database URL (postgresql://...)") from None
    except ValueError:  # SQLAlchemy's int() of the text after the host's ':'
        raise ConfigError(f"--database-url: malformed port ({_PORTS})") from None
    if parsed.drivername not in _ACCEPTED_DRIVERS:
        raise ConfigError(
            f"--database-url: unsupported scheme {parsed.drivername!r}; use postgresql://"
        )
    if parsed.host and "@" in parsed.host:
        raise ConfigError("--database-url: write '@' in a user name or password as %40")
    try:
        options = conninfo_to_dict(_render(parsed))
    except psycopg.Error as exc:
        message = _scrub(_first_line(exc), _secrets(parsed))
        raise ConfigError(f"--database-url: {message}") from None
    for port in str(options.get("port") or "").split(","):
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigError(f"--database-url: port {port!r} is not valid ({_PORTS})")
    return parsed


def redact(url: str) -> str:
    """The URL with every password replaced, safe for logs, errors and reports.

    Masks the user-info password and every query parameter that names a secret
    (``password``, ``sslpassword``, in any case or percent-encoding); a string that is
    not a URL (a libpq ``key=value`` conninfo) has the values of such keys masked.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _redact_text(url)
    if parsed.host and "@" in parsed.host:
        return _redact_text(url)
    query = {key: (_MASK if _secret_key(key) else value) for key, value in parsed.query.items()}
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return rendered.replace(quote_plus(_MASK), _MASK)


def libpq_url(url: str) -> str:
    """A URL libpq (psycopg) accepts: the SQLAlchemy driver suffix removed."""
    return _render(parse_url(url))


def connect(url: str, *, autocommit: bool = False, connect_timeout: int = 10) -> psycopg.Connection:
    """Open a psycopg connection, turning failures into a one-line :class:`SourceError`."""
    parsed = parse_url(url)
    try:
        return psycopg.connect(
            _render(parsed), autocommit=autocommit, connect_timeout=connect_timeout
        )
    except psycopg.Error as exc:
        message = _scrub(_first_line(exc), _secrets(parsed))
        raise SourceError(f"cannot connect to {redact(url)}: {message}") from None


def _render(parsed: URL) -> str:
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _secret_key(key: str) -> bool:
    decoded = key
    for _ in range(5):  # undo repeated percent-encoding: %2570assword
        decoded, previous = unquote_plus(decoded), decoded
        if decoded == previous:
            break
    return bool(_SECRET_KEY.search(decoded))


def _secrets(parsed: URL) -> list[str]:
    found = [parsed.password or ""]
    for key, value in parsed.query.items():
        if _secret_key(key):
            found.extend([value] if isinstance(value, str) else value)
    return [s for s in found if s]


def _scrub(message: str, secrets: Iterable[str]) -> str:
    """``message`` with each secret (as written or percent-encoded) masked."""
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            message = message.replace(form, _MASK)
    return message


def _redact_text(text: str) -> str:
    text = _USERINFO.sub(lambda m: f"{m['head']}:{_MASK}@", text)

    def pair(match: re.Match[str]) -> str:
        if not _secret_key(match["key"]):
            return match[0]
        return f"{match['key']}{match['eq']}{_MASK}"

    return _PAIR.sub(pair, text)
