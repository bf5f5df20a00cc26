"""Run configuration: defaults, overridden by an optional TOML file.

Example ``reconcile.toml``::

    [backend]
    schema = "public"
    table = "tutorial_progress"

    [validation]
    max_watch_time_seconds = 31536000
    clock_skew_seconds = 300

    [checks]
    min_export_files = 1            # fewer export files read is a failed check
    min_exports = 1                 # fewer exports accepted is a failed check
    min_local_records = 1           # fewer local progress records is a failed check
    max_local_drop_fraction = 0.5   # a larger drop below the last good night fails
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from reconcile.errors import ConfigError

#: The repository's own suites; a config file may point elsewhere.
DEFAULT_EXPECTATIONS_DIR = Path(__file__).resolve().parent / "validate" / "expectations"


@dataclass(frozen=True)
class Config:
    """Everything a run may be told besides its sources and output folder."""

    schema: str = "public"
    table: str = "tutorial_progress"
    #: Connecting to the backend: seconds per attempt, the read's ``statement_timeout``
    #: (0: none), and how long a server that is down or restarting is retried (0: once).
    connect_timeout_seconds: int = 10
    query_timeout_seconds: int = 1800
    retry_seconds: int = 60
    #: Upper bound for ``total_watch_time`` (seconds); larger values are anomalies.
    max_watch_time_seconds: int = 365 * 24 * 3600
    #: How far in the future a timestamp may be before it is an anomaly.
    clock_skew_seconds: int = 300
    #: Folder holding the Great Expectations suites (JSON).
    expectations_dir: Path = field(default=DEFAULT_EXPECTATIONS_DIR)
    #: Seconds to wait for locks / any statement when applying a repair.
    lock_timeout_seconds: int = 10
    statement_timeout_seconds: int = 600
    #: The most bytes one export file may expand to once gunzipped (and the most of a plain
    #: file held at once: a ``.json`` file, an NDJSON line); the rest is quarantined.
    max_decompressed_bytes: int = 1 << 30
    #: Floors of the local side's volume (reconcile.validate.volume); 0 turns one off.
    min_export_files: int = 1
    min_exports: int = 1
    min_local_records: int = 1
    #: How far (0..1) a local measure may drop below the last good night; 1 turns it off.
    max_local_drop_fraction: float = 0.5


_SECTIONS = {
    "backend": {
        "schema",
        "table",
        "connect_timeout_seconds",
        "query_timeout_seconds",
        "retry_seconds",
    },
    "validation": {"max_watch_time_seconds", "clock_skew_seconds", "expectations_dir"},
    "apply": {"lock_timeout_seconds", "statement_timeout_seconds"},
    "exports": {"max_decompressed_bytes"},
    "checks": {"min_export_files", "min_exports", "min_local_records", "max_local_drop_fraction"},
}


def load_config(path: Path | None) -> Config:
    """Read ``path`` (TOML) over the defaults; ``None`` gives the defaults."""
    config = Config()
    if path is None:
        return config
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc}") from None
    changes: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Config)}
    for section, values in data.items():
        allowed = _SECTIONS.get(section)
        if allowed is None or not isinstance(values, dict):
            raise ConfigError(f"--config {path}: unknown section [{section}]")
        for name, value in values.items():
            if name not in allowed:
                raise ConfigError(f"--config {path}: unknown setting {section}.{name}")
            changes[name] = _coerce(path, f"{section}.{name}", types[name], value)
    return replace(config, **changes)


def _coerce(path: Path, name: str, kind: Any, value: Any) -> Any:
    if kind in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"--config {path}: {name} must be a non-negative integer")
        return value
    if kind in ("float", float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 <= value <= 1:
            raise ConfigError(f"--config {path}: {name} must be a fraction between 0 and 1")
        return float(value)
    if kind in ("Path", Path):
        if not isinstance(value, str):
            raise ConfigError(f"--config {path}: {name} must be a path string")
        return (Path(path).parent / value).resolve()
    if not isinstance(value, str) or not value:
        raise ConfigError(f"--config {path}: {name} must be a non-empty string")
    return value
