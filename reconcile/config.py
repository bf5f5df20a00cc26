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

    [run]
    fail_on = "actionable"          # or "critical", "never", "at_risk>100", ... (exit_policy)
    log_format = "text"             # or "json": one JSON object a line on stderr
    out = "reports"                 # relative paths are relative to this file
    exports = ["exports/"]

    [database]
    url = "postgresql://reconcile@db/app"   # better in $DATABASE_URL: it may hold a password

:func:`resolve_settings` layers them: defaults, then the file (``--config FILE``, else
``reconcile.toml`` in the working folder when present), then the environment
(``DATABASE_URL`` and ``RECONCILE_<SECTION>_<KEY>``, e.g. ``RECONCILE_BACKEND_SCHEMA``),
then the command line's flags; later wins. Each value remembers where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

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
    #: What makes a completed run exit 1 (reconcile.outputs.exit_policy).
    fail_on: str = "actionable"
    #: ``text`` or ``json`` (one JSON object a line) for the log on stderr.
    log_format: str = "text"


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
    "run": {"fail_on", "log_format"},
}
#: Settings of a run that are not :class:`Config` fields: ``section.key`` -> kind.
_EXTRA: Final[dict[str, str]] = {
    "database.url": "url",
    "run.out": "Path",
    "run.exports": "paths",
}
_EXTRA_DEFAULTS: Final[dict[str, Any]] = {
    "database.url": None,
    "run.out": Path("reports"),
    "run.exports": (),
}
#: The file read when no ``--config`` is given, in the working folder.
DEFAULT_FILE: Final = "reconcile.toml"
ENV_PREFIX: Final = "RECONCILE_"
LOG_FORMATS: Final = ("text", "json")
DEFAULT: Final = "default"


def load_config(path: Path | None) -> Config:
    """Read ``path`` (TOML) over the defaults; ``None`` gives the defaults."""
    config = Config()
    if path is None:
        return config
    changes = {
        key.split(".")[1]: value
        for key, value in _read_file(Path(path)).items()
        if key not in _EXTRA
    }
    return replace(config, **changes)


@dataclass(frozen=True)
class Settings:
    """The effective configuration of a run and where each value came from.

    ``origins`` maps ``section.key`` to ``"default"``, the file's path, the environment
    variable's name (``env DATABASE_URL``) or the flag (``flag --out``).
    """

    config: Config
    database_url: str | None
    out: Path
    exports: tuple[Path, ...]
    origins: dict[str, str]
    file: Path | None = None

    def values(self) -> dict[str, Any]:
        """Every setting as ``section.key`` -> value, in section order (passwords in clear)."""
        extra: dict[str, Any] = {"database.url": self.database_url, "run.out": self.out}
        extra["run.exports"] = list(self.exports)
        out: dict[str, Any] = {}
        for section, names in _ordered_keys().items():
            for name in names:
                key = f"{section}.{name}"
                out[key] = extra[key] if key in extra else getattr(self.config, name)
        return out


def _ordered_keys() -> dict[str, list[str]]:
    order = [f.name for f in fields(Config)]
    keys = {s: sorted(names, key=order.index) for s, names in _SECTIONS.items()}
    for key in _EXTRA:
        section, name = key.split(".")
        keys.setdefault(section, []).append(name)
    return keys


def resolve_settings(
    path: Path | None = None,
    *,
    flags: Mapping[str, tuple[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Defaults, then the TOML file, then the environment, then ``flags``; later wins.

    ``path`` is ``--config``; without it ``reconcile.toml`` in ``cwd`` is read when it
    exists. ``flags`` maps ``section.key`` to ``(flag name, value)`` for the flags given.
    Every value is checked here: a :class:`ConfigError` names the key and where it came from.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    if path is None and (cwd / DEFAULT_FILE).is_file():
        path = cwd / DEFAULT_FILE
    values: dict[str, Any] = {f"{s}.{n}": None for s, ns in _ordered_keys().items() for n in ns}
    origins = dict.fromkeys(values, DEFAULT)
    if path is not None:
        for key, value in _read_file(Path(path)).items():
            values[key], origins[key] = value, str(path)
    for key, (origin, value) in _environment(env, cwd).items():
        values[key], origins[key] = value, origin
    for key, (flag, value) in (flags or {}).items():
        values[key] = _coerce(f"flag {flag}", key, _kind(key), value, cwd)
        origins[key] = f"flag {flag}"
    _check_run(values, origins)
    changes = {
        key.split(".")[1]: value
        for key, value in values.items()
        if key not in _EXTRA and origins[key] != DEFAULT
    }
    extra = {k: _EXTRA_DEFAULTS[k] if origins[k] == DEFAULT else values[k] for k in _EXTRA}
    return Settings(
        config=replace(Config(), **changes),
        database_url=extra["database.url"],
        out=Path(extra["run.out"]),
        exports=tuple(extra["run.exports"]),
        origins=origins,
        file=None if path is None else Path(path),
    )


def _check_run(values: dict[str, Any], origins: dict[str, str]) -> None:
    from reconcile.outputs.exit_policy import parse_policy

    if origins["run.fail_on"] != DEFAULT:
        parse_policy(values["run.fail_on"], where=f"{origins['run.fail_on']}: run.fail_on")
    if origins["run.log_format"] != DEFAULT and values["run.log_format"] not in LOG_FORMATS:
        raise ConfigError(
            f"{origins['run.log_format']}: run.log_format must be one of {', '.join(LOG_FORMATS)}"
        )


def _environment(env: Mapping[str, str], cwd: Path) -> dict[str, tuple[str, Any]]:
    """``DATABASE_URL`` and ``RECONCILE_<SECTION>_<KEY>`` (other variables are ignored)."""
    found: dict[str, tuple[str, Any]] = {}
    if env.get("DATABASE_URL"):
        found["database.url"] = ("env DATABASE_URL", env["DATABASE_URL"])
    sections = _ordered_keys()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(f"{s}_")), None)
        if section is None:
            continue  # not a setting (e.g. a test's RECONCILE_UPDATE_GOLDEN)
        key = f"{section}.{rest[len(section) + 1 :]}"
        if rest[len(section) + 1 :] not in sections[section]:
            raise ConfigError(f"env {name}: unknown setting {key}")
        found[key] = (f"env {name}", _from_text(f"env {name}", key, env[name], cwd))
    return found


def _from_text(where: str, key: str, text: str, cwd: Path) -> Any:
    """An environment variable's text as the setting's type."""
    kind = _kind(key)
    value: Any = text
    if kind in ("int", int):
        value = int(text) if text.strip().isdigit() else text
    elif kind in ("float", float):
        try:
            value = float(text)
        except ValueError:
            value = text
    elif kind == "paths":
        value = [p for p in text.split(os.pathsep) if p]
    return _coerce(where, key, kind, value, cwd)


def _kind(key: str) -> Any:
    if key in _EXTRA:
        return _EXTRA[key]
    return {f.name: f.type for f in fields(Config)}[key.split(".")[1]]


def _read_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file as ``section.key`` -> checked value."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc}") from None
    sections = _ordered_keys()
    out: dict[str, Any] = {}
    for section, values in data.items():
        allowed = sections.get(section)
        if allowed is None or not isinstance(values, dict):
            raise ConfigError(f"--config {path}: unknown section [{section}]")
        for name, value in values.items():
            if name not in allowed:
                raise ConfigError(f"--config {path}: unknown setting {section}.{name}")
            key = f"{section}.{name}"
            out[key] = _coerce(f"--config {path}", key, _kind(key), value, path.parent)
    return out


def _coerce(where: str, name: str, kind: Any, value: Any, base: Path) -> Any:
    """``value`` checked as ``kind``; a relative path is taken relative to ``base``."""
    if kind in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: {name} must be a non-negative integer")
        return value
    if kind in ("float", float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 <= value <= 1:
            raise ConfigError(f"{where}: {name} must be a fraction between 0 and 1")
        return float(value)
    if kind in ("Path", Path):
        if not isinstance(value, str | Path) or not str(value):
            raise ConfigError(f"{where}: {name} must be a path string")
        return Path(value) if where.startswith("flag") else (base / value).resolve()
    if kind == "paths":
        items = [value] if isinstance(value, str | Path) else value
        if not isinstance(items, list | tuple) or not all(
            isinstance(v, str | Path) and str(v) for v in items
        ):
            raise ConfigError(f"{where}: {name} must be a list of path strings")
        if where.startswith("flag"):
            return tuple(Path(v) for v in items)
        return tuple((base / v).absolute() for v in items)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {name} must be a non-empty string")
    return value


def show_settings(settings: Settings) -> str:
    """The settings as TOML, each value followed by where it came from; passwords masked."""
    from reconcile.db import redact

    lines: list[str] = []
    section = ""
    for key, value in settings.values().items():
        head, name = key.split(".")
        if head != section:
            lines += ["", f"[{head}]"] if lines else [f"[{head}]"]
            section = head
        if key == "database.url" and value is not None:
            value = redact(value)
        lines.append(f"{name} = {_toml(value)}  # {settings.origins[key]}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    import json

    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
