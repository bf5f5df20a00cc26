"""Great Expectations: the data-quality checks analysts own, suites in ``expectations/*.json``.

A suite file is GX 1.x JSON (``{"name", "expectations": [{"type", "kwargs", "meta",
"notes"}]}``). A suite whose name starts with ``backend`` validates the backend rows, one
starting with ``local`` the valid local records. Besides the canonical columns, suites may
reference these derived columns (computed only when referenced):

* backend ``tutorial_total_chapters_variants``: distinct ``total_chapters`` among the rows
  of the row's tutorial (1 when the tutorial is consistent);
* backend ``created_in_last_day``: 1 when ``created_at`` is in the 24 hours before the run
  (count them with ``expect_table_row_count_to_be_between`` and a ``row_condition``
  ``created_in_last_day == 1``: GX's column sum scans a million values in Python);
* local ``keys_per_user``: distinct tutorials of the record's user.

and these ``$PARAMETER`` names, filled at run time: ``max_watch_time_seconds`` (config)
and the count anomaly bounds of :func:`reconcile.validate.nights.count_anomaly_bounds`.

Each expectation becomes one :class:`~reconcile.model.CheckResult` named
``<suite>.<expectation type>[.<column(s)>]``, or its ``meta.name`` when set. The history
checks (:func:`reconcile.validate.nights.regression_checks`) are separate: the pipeline adds them.

Severity: an expectation's GX ``severity`` (``critical`` or ``warning``), else its
``meta.severity``, else ``warning`` (GX's own default is ``critical``; ours is the milder).

GX is imported on first use (about 2-6 s), so commands that never check stay quick.

The nightly run keeps a file-backed GX project in the output folder (``<out>/gx/``, see
:data:`GX_DIR`): the suites (copied from ``expectations/`` every night, the JSON files stay
the source), one Checkpoint per frame (:data:`CHECKPOINTS`: GX hands one dataframe to every
validation definition of a Checkpoint) run under the run id, the validation results of every
night, and one Data Docs site that accumulates them (``gx/uncommitted/data_docs/local_site/``),
rewritten to open offline after each build. The run folder keeps its own copy of the night's
pages (``<run>/data-docs/``), so it stays readable alone. Without a project folder (tests,
one-off calls) the context is ephemeral and only the run's copy is built.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from reconcile.config import Config
from reconcile.errors import ConfigError
from reconcile.model import KEY, SEVERITIES, WARNING, CheckResult
from reconcile.validate.data_docs import (
    TABLE_LEVEL,
    Page,
    add_link,
    escape_results,
    is_offline,
    make_offline,
)
from reconcile.validate.nights import (
    History,
    count_anomaly_bounds,
    new_rows,
    parameter_names,
)

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

#: Which frame a suite validates, by the start of its name.
FRAMES: Final[tuple[str, ...]] = ("backend", "local")
#: Derived columns a suite may reference, per frame.
DERIVED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "backend": ("tutorial_total_chapters_variants", "created_in_last_day"),
    "local": ("keys_per_user",),
}
#: ``$PARAMETER`` names filled at run time.
PARAMETERS: Final[frozenset[str]] = frozenset({"max_watch_time_seconds", *parameter_names()})
#: The file-backed GX project, inside the output folder.
GX_DIR: Final = "gx"
#: The accumulated Data Docs site of the project (GX's default site of a file context).
SITE: Final = "local_site"
SITE_DIR: Final = Path("uncommitted", "data_docs", SITE)
#: One Checkpoint per frame, over every suite of that frame.
CHECKPOINTS: Final[dict[str, str]] = {"backend": "reconcile_backend", "local": "reconcile_local"}
#: The data source and batch definition the Checkpoints' validation definitions read.
DATA_SOURCE: Final = "reconcile"
BATCH: Final = "night"
#: ``<gx>/uncommitted/<PENDING>/<run id>``: a night whose run folder is not written yet.
PENDING: Final = "reconcile-pending"
UNREADABLE: Final = "reconcile-unreadable"
#: Failing rows quoted in a check's details (GX counts all of them).
EXAMPLES: Final = 5

_COLUMN_KWARGS: Final = ("column", "column_A", "column_B", "column_list")
_GX_LOGGER: Final = "great_expectations"
#: The project's folders of JSON files, each file read back by GX.
_STORES: Final = (
    "expectations",
    "validation_definitions",
    "checkpoints",
    "uncommitted/validations",
)


@dataclass(frozen=True)
class ChecksOutcome:
    """The checks of one run, in suite order, and where their Data Docs were built."""

    checks: list[CheckResult]
    #: This run's own Data Docs (``<docs_dir>/index.html``), None without them.
    docs_index: Path | None
    #: Check name -> its suite's validation page, relative to the folder holding the Data
    #: Docs folder (the run folder), with the ``#section`` of its column (or of the
    #: table-level expectations). Empty without Data Docs.
    docs_pages: dict[str, str] = field(default_factory=dict)
    #: The index of the site accumulating every night (file-backed project only).
    site_index: Path | None = None


# ---------------------------------------------------------------------------------------
# Loading the suites


def load_suites(expectations_dir: Path) -> dict[str, dict[str, Any]]:
    """Read and check every ``*.json`` suite in ``expectations_dir``: ``{name: suite}``.

    Raises :class:`ConfigError` naming the file and the expectation for unreadable JSON,
    an unknown expectation type (GX would drop it silently), bad kwargs, an unknown
    ``$PARAMETER``, a suite name that says no frame, or two checks with the same name.
    """
    folder = Path(expectations_dir)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise ConfigError(f"expectations: no *.json suite in {folder}")
    _quiet_gx()
    suites: dict[str, dict[str, Any]] = {}
    for path in files:
        suite = _load_suite(path)
        if suite["name"] in suites:
            raise ConfigError(f"expectations: suite name {suite['name']!r} used twice ({path})")
        suites[suite["name"]] = suite
    return suites


def _load_suite(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"expectations: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ConfigError(f"expectations: {path} is not a GX 1.x suite (no 'expectations' list)")
    if "expectation_suite_name" in data:
        raise ConfigError(f"expectations: {path} uses the GX 0.x key 'expectation_suite_name'")
    name = data.setdefault("name", path.stem)
    if not isinstance(name, str) or not name.startswith(FRAMES):
        raise ConfigError(
            f"expectations: {path}: suite name {name!r} must start with 'backend' or 'local'"
        )
    seen: dict[str, int] = {}
    for number, expectation in enumerate(data["expectations"], 1):
        where = f"expectations: {path}: expectation #{number}"
        _check_expectation(where, expectation)
        expectation["severity"] = _severity(where, expectation)
        check = check_name(name, expectation)
        if check in seen:
            raise ConfigError(
                f"{where} has the same check name {check!r} as #{seen[check]}; "
                'give one a unique "meta": {"name": ...}'
            )
        seen[check] = number
    suite = _gx_suite(path, data)
    if len(suite.expectations) != len(data["expectations"]):
        raise ConfigError(
            f"expectations: {path}: GX kept {len(suite.expectations)} of "
            f"{len(data['expectations'])} expectations; check their types"
        )
    return data


def _check_expectation(where: str, expectation: Any) -> None:
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    if not isinstance(expectation, dict):
        raise ConfigError(f"{where} is not an object")
    if "expectation_type" in expectation:
        raise ConfigError(f"{where} uses the GX 0.x key 'expectation_type'; GX 1.x wants 'type'")
    kind = expectation.get("type")
    if not isinstance(kind, str):
        raise ConfigError(f"{where} has no 'type'")
    try:
        implementation = get_expectation_impl(kind)
    except ExpectationNotFoundError:
        raise ConfigError(f"{where} has unknown expectation type {kind!r}") from None
    kwargs = expectation.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{where} ({kind}): 'kwargs' is not an object")
    try:
        implementation(**kwargs)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"{where} ({kind}): bad kwargs: {_first_error(exc)}") from None
    unknown = sorted(set(_parameters(kwargs)) - PARAMETERS)
    if unknown:
        raise ConfigError(
            f"{where} ({kind}): unknown $PARAMETER {', '.join(unknown)} "
            f"(known: {', '.join(sorted(PARAMETERS))})"
        )


def _severity(where: str, expectation: dict[str, Any]) -> str:
    """``severity``, else ``meta.severity``, else warning; one of :data:`SEVERITIES`."""
    meta = expectation.get("meta") or {}
    value = expectation.get("severity", meta.get("severity") if isinstance(meta, dict) else None)
    value = WARNING if value is None else value
    if value not in SEVERITIES:
        raise ConfigError(f"{where}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return str(value)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc).splitlines()[0]


def _parameters(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "$PARAMETER" in value:
            yield str(value["$PARAMETER"])
        else:
            for item in value.values():
                yield from _parameters(item)
    elif isinstance(value, list):
        for item in value:
            yield from _parameters(item)


def _gx_suite(path: Path, data: dict[str, Any]) -> Any:
    import great_expectations as gx

    try:
        return gx.ExpectationSuite(**data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"expectations: {path}: not a GX 1.x suite: {_first_error(exc)}"
        ) from None


def night_over_night_checks(suites: dict[str, dict[str, Any]]) -> frozenset[str]:
    """Names of the checks whose bounds come from earlier nights (count anomalies)."""
    return frozenset(
        check_name(name, expectation)
        for name, suite in suites.items()
        for expectation in suite["expectations"]
        if set(_parameters(expectation.get("kwargs"))) - {"max_watch_time_seconds"}
    )


def check_name(suite: str, expectation: dict[str, Any]) -> str:
    """``meta.name``, else ``<suite>.<type>[.<column(s)>]``: stable across runs."""
    named = (expectation.get("meta") or {}).get("name")
    if named:
        return str(named)
    kwargs = expectation.get("kwargs") or {}
    columns = [
        c
        for key in _COLUMN_KWARGS
        for c in (kwargs.get(key) if key == "column_list" else [kwargs.get(key)]) or []
        if c
    ]
    tail = f".{','.join(map(str, columns))}" if columns else ""
    return f"{suite}.{expectation['type']}{tail}"


# ---------------------------------------------------------------------------------------
# Running them


def run_checks(
    backend: pd.DataFrame,
    local: pd.DataFrame,
    *,
    config: Config,
    history: History,
    now: datetime,
    docs_dir: Path | None,
    suites: dict[str, dict[str, Any]] | None = None,
    project: Path | None = None,
    run_id: str | None = None,
) -> ChecksOutcome:
    """Validate ``backend`` and the valid ``local`` records against every suite.

    ``suites`` are :func:`load_suites`' result (the run loads them once, before it reads
    anything, to fail fast); without them they are read from ``config.expectations_dir``.
    Count bounds come from ``history``; with ``docs_dir``, this run's Data Docs are built
    there. With ``project`` (the output folder) the Checkpoints of ``<project>/gx/`` run
    under ``run_id``, store their results and update the accumulated site; call
    :func:`commit_night` once the run folder is written (the next run removes a night that
    was never committed). A check GX cannot run (e.g. a column no frame has) is a failed
    check, not an error.
    """
    if suites is None:
        suites = load_suites(config.expectations_dir)
    bounds = count_anomaly_bounds(history)
    run_name = run_id or f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    root = Path(project).absolute() / GX_DIR if project is not None else None
    if root is not None:
        _recover(root)
        context: AbstractDataContext = _file_context(root.parent)
        (root / "uncommitted" / PENDING).mkdir(parents=True, exist_ok=True)
        (root / "uncommitted" / PENDING / run_name).touch()
    else:
        context = _ephemeral_context()
    by_suite: dict[str, Any] = {}
    identifier = _run_identifier(run_name, now)
    for side, (checkpoint, ids) in prepare_checkpoints(context, suites).items():
        frame = _gx_frame(backend if side == "backend" else local, suites, side, now)
        run = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=_parameters_of(config, bounds),
            run_id=identifier,
        )
        for key, result in run.run_results.items():
            name = key.expectation_suite_identifier.name
            by_suite[name] = (ids[name], result, key)
    results: list[CheckResult] = []
    for name, data in suites.items():
        ids, result, _ = by_suite[name]
        results.extend(_check_results(name, data, (ids, result), bounds["history_note"]))
    keys = [key for _, _, key in by_suite.values()]
    site_index = _refresh_site(context, root, suites) if root is not None else None
    docs_index, docs_pages = (
        _run_docs(context, Path(docs_dir), suites, run_name, keys) if docs_dir else (None, {})
    )
    if docs_index is not None and site_index is not None:
        add_link(
            docs_index,
            Path(os.path.relpath(site_index, docs_index.parent)).as_posix(),
            "Every night of this output folder: the accumulated Data Docs",
        )
    failed = sum(not r.success for r in results)
    log.info("expectations: %d checks, %d failed", len(results), failed)
    return ChecksOutcome(
        checks=results, docs_index=docs_index, docs_pages=docs_pages, site_index=site_index
    )


def commit_night(project: Path, run_id: str) -> None:
    """The night's run folder is written: its results in ``<project>/gx/`` are kept."""
    (Path(project) / GX_DIR / "uncommitted" / PENDING / run_id).unlink(missing_ok=True)


def checkpoint_inputs(
    project: Path,
    side: str,
    frame: pd.DataFrame,
    *,
    config: Config | None = None,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What the Checkpoint of ``side`` ("backend" or "local") takes, as the nightly run does.

    ``frame`` is a progress frame (e.g. :func:`reconcile.sources.backend.load_backend`'s);
    returned are the dataframe batch parameter (the columns the suites read, derived ones
    added) and the expectation parameters (the watch-time cap and the count bounds learned
    from ``<project>/history.jsonl``). For analysts running the Checkpoint themselves.
    """
    from reconcile.outputs.history_store import load_history

    if side not in FRAMES:
        raise ConfigError(f"checkpoint: side must be one of {', '.join(FRAMES)}, not {side!r}")
    config = config or Config()
    suites = load_suites(config.expectations_dir)
    bounds = count_anomaly_bounds(load_history(Path(project)))
    return _gx_frame(frame, suites, side, now or datetime.now(UTC)), _parameters_of(config, bounds)


def _parameters_of(config: Config, bounds: dict[str, Any]) -> dict[str, Any]:
    return {
        "max_watch_time_seconds": config.max_watch_time_seconds,
        **{k: v for k, v in bounds.items() if k in PARAMETERS},
    }


def _run_identifier(run_name: str, now: datetime) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_name, run_time=now.astimezone(UTC))


def _quiet_gx() -> None:
    """GX logs chatter at INFO; keep it to warnings unless someone set its level."""
    logger = logging.getLogger(_GX_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _ephemeral_context() -> AbstractDataContext:
    """A fresh in-memory context (about 10 ms): no state leaks from one call to the next."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    project = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=project)


def _file_context(project: Path) -> AbstractDataContext:
    """``<project>/gx/``, created on first use with progress bars and analytics off."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    created = not (project / GX_DIR / "great_expectations.yml").is_file()
    context = gx.get_context(mode="file", project_root_dir=str(project))
    if created:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.analytics_enabled = False
        context.variables.save()
    return context


def prepare_checkpoints(
    context: AbstractDataContext, suites: dict[str, dict[str, Any]]
) -> dict[str, tuple[Any, dict[str, list[str]]]]:
    """Add or update the suites, their validation definitions and one Checkpoint per frame.

    ``{frame: (checkpoint, {suite: its expectation ids in file order})}``. The JSON suites
    are the source: the context's copies are replaced by them on every run.
    """
    import great_expectations as gx

    source: Any
    try:
        source = context.data_sources.get(DATA_SOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(DATA_SOURCE)
    out: dict[str, tuple[Any, dict[str, list[str]]]] = {}
    for side in FRAMES:
        names = [name for name in suites if name.startswith(side)]
        if not names:
            continue
        try:
            asset = source.get_asset(side)
        except LookupError:
            asset = source.add_dataframe_asset(side)
        try:
            batch = asset.get_batch_definition(BATCH)
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe(BATCH)
        ids: dict[str, list[str]] = {}
        definitions = []
        for name in names:
            suite = context.suites.add_or_update(gx.ExpectationSuite(**suites[name]))
            ids[name] = [str(e.id) for e in suite.expectations]
            definitions.append(
                context.validation_definitions.add_or_update(
                    gx.ValidationDefinition(data=batch, suite=suite, name=name)
                )
            )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=CHECKPOINTS[side],
                validation_definitions=definitions,
                actions=[],
                result_format={
                    "result_format": "SUMMARY",
                    "unexpected_index_column_names": list(KEY),
                    "partial_unexpected_count": EXAMPLES,
                },
            )
        )
        out[side] = (checkpoint, ids)
    return out


def _referenced_columns(data: dict[str, Any], available: set[str]) -> set[str]:
    """Key columns, column kwargs, and ``available`` columns named in a row_condition."""
    columns: set[str] = set(KEY)
    for expectation in data["expectations"]:
        kwargs = expectation.get("kwargs") or {}
        for key in _COLUMN_KWARGS:
            value = kwargs.get(key)
            columns.update(value if isinstance(value, list) else [value] if value else [])
        columns.update(_condition_columns(kwargs.get("row_condition")) & available)
    return columns


def _condition_columns(condition: Any) -> set[str]:
    """Column names a row_condition mentions: a Condition object's JSON, or a legacy string."""
    if isinstance(condition, str):
        return set(re.findall(r"\w+", condition))
    if isinstance(condition, list):
        return {c for item in condition for c in _condition_columns(item)}
    if not isinstance(condition, dict):
        return set()
    found = {str(condition["name"])} if "name" in condition else set()
    return found | {c for value in condition.values() for c in _condition_columns(value)}


def _gx_frame(
    frame: pd.DataFrame, suites: dict[str, dict[str, Any]], side: str, now: datetime
) -> pd.DataFrame:
    """Only the columns the frame's suites read (GX hashes the whole frame), GX-friendly.

    Nullable integers become float64, time-zone-aware timestamps naive UTC
    ``datetime64[ns]`` and the key columns categoricals: GX's fast paths (about twice as
    fast on a million rows; see NOTES-gx-pandera.md). Object columns stay numpy arrays:
    pandas 3 would otherwise infer (and convert to) its Arrow-backed ``str``.
    """
    mine = [suite for name, suite in suites.items() if name.startswith(side)]
    data = {"expectations": [e for suite in mine for e in suite["expectations"]]}
    wanted = _referenced_columns(data, {*frame.columns, *DERIVED_COLUMNS[side]})
    out: dict[str, Any] = {}
    for column in sorted(wanted):
        if column in KEY:
            out[column] = _categories(frame[column])
        elif column in frame.columns:
            out[column] = _gx_column(frame[column])
        elif column == "tutorial_total_chapters_variants" and side == "backend":
            out[column] = (
                frame.groupby("tutorial_id", dropna=False)["total_chapters"]
                .transform("nunique")
                .to_numpy(dtype="int64")
            )
        elif column == "created_in_last_day" and side == "backend":
            out[column] = new_rows(frame, now).to_numpy(dtype="int64")
        elif column == "keys_per_user" and side == "local":
            out[column] = (
                frame.groupby("user_id", dropna=False)["tutorial_id"]
                .transform("nunique")
                .to_numpy(dtype="int64")
            )
        # Anything else is left out: GX reports the missing column as a failed check.
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _categories(values: pd.Series) -> pd.Categorical:
    """Ids as a categorical of Python strings: GX hashes, deduplicates and indexes it fast."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))


def _gx_column(values: pd.Series) -> Any:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(UTC).dt.tz_localize(None).astype("datetime64[ns]").to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.astype("datetime64[ns]").to_numpy()
    if isinstance(values.dtype, pd.Int64Dtype | pd.Float64Dtype):
        return values.to_numpy(dtype="float64", na_value=math.nan)
    if values.dtype == object:
        return pd.array(values.to_numpy(), dtype=object)
    return values.to_numpy()


def _refresh_site(
    context: AbstractDataContext, root: Path, suites: dict[str, dict[str, Any]]
) -> Path | None:
    """Add to the accumulated site every stored result it lacks (tonight's, an analyst's).

    Pages are built for results with no offline page yet (so a page GX rebuilt online is
    redone), the index and the suites' pages always; then the site is made offline,
    skipping pages that already are. Returns its index, None when it could not be built.
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    site = root / SITE_DIR
    try:
        store = context.validation_results_store
        todo: list[Any] = [
            key for key in store.list_keys() if not is_offline(site / "validations" / _page(key))
        ]
        escape_results(context, todo)
        suite_ids = [ExpectationSuiteIdentifier(name=name) for name in suites]
        context.build_data_docs(site_names=[SITE], resource_identifiers=[*todo, *suite_ids])
        make_offline(site, skip_offline=True)
    except Exception as exc:  # Data Docs are a courtesy: never lose the night's results
        log.warning("expectations: Data Docs not updated in %s: %s", site, exc)
        return None
    index = site / "index.html"
    return index if index.is_file() else None


def _page(key: Any) -> Path:
    """A validation result's page, relative to the site's ``validations/`` folder."""
    *folders, batch = key.to_tuple()
    return Path(*folders, f"{batch}.html")


def _run_docs(
    context: AbstractDataContext,
    docs_dir: Path,
    suites: dict[str, dict[str, Any]],
    run_name: str,
    keys: list[Any],
) -> tuple[Path | None, dict[str, str]]:
    """This run's own site in ``docs_dir``: its results only, rewritten to open offline."""
    from great_expectations.render.renderer.site_builder import SiteBuilder

    site = docs_dir.resolve()
    try:
        escape_results(context, keys)
        SiteBuilder(
            data_context=context,
            store_backend={
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(site),
            },
            site_name="run",
            site_index_builder={"class_name": "DefaultSiteIndexBuilder"},
            site_section_builders={"validations": {"run_name_filter": {"equals": run_name}}},
        ).build()
        pages = make_offline(site)
    except Exception as exc:  # Data Docs are a courtesy: never lose the night's results
        log.warning("expectations: Data Docs not built in %s: %s", docs_dir, exc)
        return None, {}
    index = site / "index.html"
    if not index.exists():
        return None, {}
    return index, _docs_pages(site, pages, suites)


def _recover(root: Path) -> None:
    """Undo what an interrupted run left in ``root`` (called under the run lock).

    A night still pending never got its run folder: its results and pages go. A JSON file
    GX could not read back (cut short by a kill) moves to ``uncommitted/reconcile-unreadable/``:
    the suites, definitions and Checkpoints are rewritten from ``expectations/`` anyway.
    """
    pending = root / "uncommitted" / PENDING
    for marker in sorted(pending.iterdir()) if pending.is_dir() else []:
        for base in (root / "uncommitted" / "validations", root / SITE_DIR / "validations"):
            for folder in base.glob(f"*/{glob.escape(marker.name)}"):
                shutil.rmtree(folder, ignore_errors=True)
        log.warning("expectations: removed the results of %s (did not finish)", marker.name)
        marker.unlink(missing_ok=True)
    for store in _STORES:
        for path in (root / store).rglob("*.json") if (root / store).is_dir() else []:
            try:
                json.loads(path.read_bytes())
            except (ValueError, OSError):
                aside = root / "uncommitted" / UNREADABLE / path.relative_to(root)
                aside.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, aside)
                log.warning("expectations: moved unreadable %s to %s", path, aside)


def _docs_pages(
    site: Path, pages: dict[Path, Page], suites: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Check name -> ``data-docs/validations/.../page.html#section-N`` (see ChecksOutcome)."""
    validations = site / "validations"
    by_suite = {
        path.relative_to(validations).parts[0]: (path, page)
        for path, page in pages.items()
        if path.is_relative_to(validations)
    }
    out: dict[str, str] = {}
    for name, data in suites.items():
        path, page = by_suite.get(name, (site / "index.html", pages.get(site / "index.html")))
        link = path.relative_to(site.parent).as_posix()
        for expectation in data["expectations"]:
            column = (expectation.get("kwargs") or {}).get("column")
            sections = page.sections if page is not None else {}
            anchor = sections.get(str(column) if column else TABLE_LEVEL, "")
            out[check_name(name, expectation)] = link + anchor
    return out


# ---------------------------------------------------------------------------------------
# Results


def _check_results(
    suite: str, data: dict[str, Any], run: tuple[list[str], Any], history_note: str
) -> list[CheckResult]:
    """One CheckResult per expectation, in file order (GX groups results by column)."""
    ids, result = run
    position = {expectation_id: i for i, expectation_id in enumerate(ids)}
    by_position: dict[int, CheckResult] = {}
    expectations = data["expectations"]
    for item in result.results:
        i = position[item.expectation_config.id]
        kwargs = expectations[i].get("kwargs")
        uses_history = bool(set(_parameters(kwargs)) - {"max_watch_time_seconds"})
        by_position[i] = _check_result(
            check_name(suite, expectations[i]), suite, item, history_note if uses_history else ""
        )
    missing = {
        i: CheckResult(check_name(suite, expectations[i]), False, 0, suite, "GX returned no result")
        for i in range(len(expectations))
        if i not in by_position
    }
    return [
        replace(check, severity=expectations[i].get("severity", WARNING))
        for i, check in [*sorted(by_position.items()), *missing.items()]
    ]


def _check_result(name: str, suite: str, item: Any, history_note: str) -> CheckResult:
    info = item.exception_info or {}
    errors = [info] if "exception_message" in info else list(info.values())
    messages = [e.get("exception_message") for e in errors if e.get("raised_exception")]
    if messages:
        return CheckResult(name, False, 0, suite, f"could not run: {messages[0]}")
    outcome = item.result or {}
    success = bool(item.success)
    if "unexpected_count" in outcome:  # a row-level (map) expectation
        count = int(outcome.get("unexpected_count") or 0)
        details = _row_details(outcome) if count else f"{outcome.get('element_count', 0)} rows ok"
        return CheckResult(name, success, count, suite, details)
    details = _aggregate_details(outcome.get("observed_value"), item.expectation_config.kwargs)
    if history_note:
        details = f"{details} ({history_note})"
    return CheckResult(name, success, 0 if success else 1, suite, details)


def _row_details(outcome: dict[str, Any]) -> str:
    count, total = int(outcome["unexpected_count"]), int(outcome.get("element_count") or 0)
    share = f" ({100 * count / total:.2f}%)" if total else ""
    examples = []
    for row in (outcome.get("partial_unexpected_index_list") or [])[:EXAMPLES]:
        key = tuple(row.get(c) for c in KEY)
        values = ", ".join(f"{k}={_plain(v)}" for k, v in row.items() if k not in KEY)
        examples.append(f"{key!r}" + (f": {values}" if values else ""))
    if not examples:
        examples = [repr(_plain(v)) for v in (outcome.get("partial_unexpected_list") or [])]
    listed = f"; e.g. {'; '.join(examples)}" if examples else ""
    return f"{count} of {total} rows unexpected{share}{listed}"


def _aggregate_details(observed: Any, kwargs: dict[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        expected = f"expected {_plain(low)}..{_plain(high)}"
    elif low is not None:
        expected = f"expected at least {_plain(low)}"
    elif high is not None:
        expected = f"expected at most {_plain(high)}"
    else:
        expected = "no bounds"
    return f"observed {_plain(observed)}, {expected}"


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, whole floats as ints: for readable details."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
