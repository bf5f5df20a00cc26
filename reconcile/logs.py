"""The log on stderr: plain lines for a terminal, one JSON object a line for collectors.

Every record passes a filter that replaces each registered secret (a database password)
with ``***``, so a password that slips into a message never reaches the log.
Progress bars (:func:`progress`) are drawn only when stderr is a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

MASK = "***"
#: Fields a log call may add with ``extra={...}``; the JSON formatter writes them.
FIELDS = (
    "stage",
    "seconds",
    "rows",
    "files",
    "checks",
    "failed",
    "exit_code",
    "at_risk",
    "failed_checks",
    "run_dir",
)
_secrets: set[str] = set()


def add_secret(secret: str | None) -> None:
    """Mask ``secret`` in every later log record (ignored when empty or very short)."""
    if secret and len(secret) >= 3:
        _secrets.add(secret)


def scrub(text: str) -> str:
    """``text`` with every registered secret masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class _Scrub(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = scrub(record.getMessage())
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``message`` and the extra
    fields of :data:`FIELDS` the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["error"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(*, verbose: int = 0, quiet: bool = False, fmt: str = "text") -> None:
    """Send the log to stderr as ``fmt`` (``text`` or ``json``).

    Text is quiet by default (warnings and errors: cron mails nothing on a normal night);
    ``-v`` adds a line per stage and the final summary, ``-vv`` debug lines. JSON is for
    collectors, which want every stage: it logs at info level unless ``-q``.
    """
    if quiet:
        level = logging.WARNING
    elif verbose > 1:
        level = logging.DEBUG
    elif verbose == 1 or fmt == "json":
        level = logging.INFO
    else:
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Scrub())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("reconcile").setLevel(level)
    for noisy in ("great_expectations", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.captureWarnings(True)


def bars_enabled() -> bool:
    """Progress bars only on a terminal: never in a cron mail, a journal or a CI log."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(items: Iterable[T], *, desc: str, unit: str, total: int | None = None) -> Iterator[T]:
    """``items``, with a tqdm bar on stderr when it is a terminal; as they are otherwise."""
    if not bars_enabled():
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, desc=desc, unit=unit, total=total, leave=False, file=sys.stderr) as bar:
        yield from bar


class Counter:
    """A bar advanced by hand (``update(n)``), e.g. rows as they arrive; no-op off a terminal."""

    def __init__(self, *, desc: str, unit: str, total: int | None = None) -> None:
        self._bar: Any = None
        if bars_enabled():
            from tqdm import tqdm

            self._bar = tqdm(
                desc=desc, unit=unit, total=total, leave=False, file=sys.stderr, unit_scale=True
            )

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
