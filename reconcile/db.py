"""Database URLs and connections (psycopg 3 under SQLAlchemy-style URLs)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote_plus

import psycopg
import tenacity
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from reconcile.errors import ConfigError, SourceError

if TYPE_CHECKING:
    from reconcile.config import Config

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


@dataclass(frozen=True)
class ConnectPolicy:
    """How long to wait for the server, and for how long to retry a transient failure.

    ``statement_timeout`` (seconds, 0 for none) is the session's ``statement_timeout``;
    ``retry_seconds`` (0 for a single attempt) bounds the whole retry window: attempts
    stop once it has passed and the backoff never sleeps beyond it.
    """

    connect_timeout: int = 10
    statement_timeout: int = 0
    retry_seconds: float = 0
    #: Called before each retry; what it raises ends the retrying (the run passes its
    #: check of the suites, so a bad suite is told at once, not after the retry window).
    before_retry: Callable[[], object] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, config: Config) -> ConnectPolicy:
        """The policy of a run's ``[backend]`` settings."""
        return cls(
            connect_timeout=config.connect_timeout_seconds,
            statement_timeout=config.query_timeout_seconds,
            retry_seconds=config.retry_seconds,
        )


#: SQLSTATEs of a server that is starting, stopping or restarting, or of a lost connection.
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"})
# libpq gives no SQLSTATE for a failed connection: a server's refusal is recognised by its
# (English) message; a failure without any server message (refused, no socket, timeout,
# host name not resolved) is a network failure and is retried too.
_SERVER_SAYS = re.compile(r"\b(?:FATAL|ERROR|PANIC):")
_TRANSIENT_TEXT = re.compile(
    r"the database system is (?:starting up|shutting down|in recovery mode|not yet accepting"
    r"|not accepting)|terminating connection due to administrator command|too many clients",
    re.IGNORECASE,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure to connect is worth another attempt (a server down or restarting)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    if exc.sqlstate is not None:
        return exc.sqlstate in TRANSIENT_SQLSTATES
    text = str(exc)
    return bool(_TRANSIENT_TEXT.search(text)) or not _SERVER_SAYS.search(text)


def connect(
    url: str, *, autocommit: bool = False, policy: ConnectPolicy | None = None
) -> psycopg.Connection:
    """Open a psycopg connection, turning failures into a one-line :class:`SourceError`.

    A transient failure (:func:`is_transient`) is retried with exponential backoff
    (0.5 s doubling up to 8 s) for ``policy.retry_seconds``; the error then says how long
    it tried and how many attempts it made.
    """
    policy = policy or ConnectPolicy()
    parsed = parse_url(url)
    conninfo = _render(parsed)
    options: dict[str, object] = {"connect_timeout": policy.connect_timeout}
    if policy.statement_timeout:
        given = str(conninfo_to_dict(conninfo).get("options") or "")
        setting = f"-c statement_timeout={policy.statement_timeout * 1000}"
        options["options"] = f"{given} {setting}".strip()
    secrets = _secrets(parsed)

    def warn(state: tenacity.RetryCallState) -> None:
        if policy.before_retry is not None:
            policy.before_retry()
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "database not reachable (attempt %d: %s); retrying in %.1f s",
            state.attempt_number,
            _scrub(_first_line(error), secrets) if error else "?",
            state.upcoming_sleep,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=tenacity.wait_exponential(multiplier=0.5, max=8),
        stop=tenacity.stop_before_delay(policy.retry_seconds),
        before_sleep=warn,
        reraise=True,
    )
    begin = time.monotonic()
    try:
        return retrying(psycopg.connect, conninfo, autocommit=autocommit, **options)
    except psycopg.Error as exc:
        message = _scrub(_first_line(exc), secrets)
        attempts = retrying.statistics.get("attempt_number", 1)
        tried = ""
        if attempts > 1:
            tried = f" (tried for {time.monotonic() - begin:.0f} s, {attempts} attempts)"
        raise SourceError(f"cannot connect to {redact(url)}{tried}: {message}") from None


def _render(parsed: URL) -> str:
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _first_line(exc: BaseException) -> str:
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
