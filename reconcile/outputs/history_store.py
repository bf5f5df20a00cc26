"""The run history, kept in files beside the run folders in ``<out>/``.

* ``history.jsonl``: one line per run (good or not): volume metrics of the backend
  (:func:`reconcile.validate.nights.volume_metrics`) and of the local side, counts per
  status, unexpected counts per check, ``migration_success_rate``, ``at_risk``.
* ``history-snapshot.parquet``: the last *good* night's progress per backend key
  (:func:`reconcile.validate.nights.progress_digest`). A night that is not good never
  replaces it.

Both are written atomically (:mod:`reconcile.outputs.files`); files, so every folder in
``<out>`` is a run.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reconcile.model import CheckResult
from reconcile.outputs.files import write_atomic, write_atomic_with
from reconcile.validate.nights import STRING, History, progress_digest, volume_metrics

log = logging.getLogger(__name__)

#: Files beside the run folders in ``<out>/`` (files, so ``<out>``'s folders are all runs).
METRICS_FILE: Final = "history.jsonl"
SNAPSHOT_FILE: Final = "history-snapshot.parquet"

_SNAPSHOT_SCHEMA: Final = pa.schema(
    [
        ("user_id", pa.string()),
        ("tutorial_id", pa.string()),
        ("chapters", pa.string()),
        ("chapters_completed", pa.int64()),
        ("total_watch_time", pa.int64()),
        ("quiz_scores", pa.string()),
    ]
)


# ---------------------------------------------------------------------------------------
# Reading and writing


def load_history(out_dir: Path) -> History:
    """Read the history files in ``out_dir``; none there is an empty history.

    A damaged line of ``history.jsonl`` is skipped and a damaged snapshot ignored, each
    with a warning: yesterday's bookkeeping never stops tonight's run.
    """
    folder = Path(out_dir)
    nights: list[dict[str, Any]] = []
    warnings: list[str] = []
    metrics = folder / METRICS_FILE
    if metrics.exists():
        for number, line in enumerate(metrics.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                night = json.loads(line)
                if not isinstance(night, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                warnings.append(f"{metrics}:{number}: unreadable history line skipped ({exc})")
                continue
            nights.append(night)
    snapshot, run_id = None, None
    path = folder / SNAPSHOT_FILE
    if path.exists():
        try:
            snapshot, run_id = _read_snapshot(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            warnings.append(f"{path}: unreadable snapshot ignored ({exc})")
    for warning in warnings:
        log.warning("%s", warning)
    return History(
        nights=tuple(nights),
        snapshot=snapshot,
        snapshot_run_id=run_id,
        warnings=tuple(warnings),
    )


def record_night(
    out_dir: Path,
    run_id: str,
    metrics: dict[str, Any],
    backend: pd.DataFrame,
    *,
    good: bool,
    now: datetime | None = None,
) -> None:
    """Append this run's metrics; when ``good``, make its backend the comparison snapshot.

    ``metrics`` is the run's summary (counts per status, ``migration_success_rate``,
    ``at_risk``, ``checks`` as a list of ``{"name", "unexpected_count", ...}`` or a dict);
    the backend's volume metrics are computed here from ``backend`` (``now`` should be the
    run's clock, as given to the checks; default: the current time).
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    night = {
        **{k: v for k, v in metrics.items() if k != "checks"},
        "run_id": run_id,
        "recorded_at": datetime.now(UTC).isoformat(),
        "good": bool(good),
        **volume_metrics(backend, now),
        "checks": _check_counts(metrics.get("checks")),
    }
    line = json.dumps(_plain(night), ensure_ascii=False, allow_nan=False)
    metrics_path = folder / METRICS_FILE
    previous = metrics_path.read_bytes() if metrics_path.exists() else b""
    if previous and not previous.endswith(b"\n"):
        previous += b"\n"
    write_atomic(metrics_path, previous + line.encode("utf-8") + b"\n")
    if good:
        _write_snapshot(folder / SNAPSHOT_FILE, backend, run_id)
    log.info("history: recorded run %s (good=%s) in %s", run_id, good, folder)


def _check_counts(checks: Any) -> dict[str, int]:
    """``{name: unexpected_count}`` from a dict, CheckResults or summary-style dicts."""
    if isinstance(checks, dict):
        return {str(k): int(v) for k, v in checks.items()}
    out: dict[str, int] = {}
    for check in checks or ():
        if isinstance(check, CheckResult):
            out[check.name] = check.unexpected_count
        elif isinstance(check, dict) and "name" in check:
            out[str(check["name"])] = int(check.get("unexpected_count") or 0)
    return out


def _plain(value: Any) -> Any:
    """``value`` as strict JSON data: NaN becomes null, numpy scalars and times plain."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _write_snapshot(path: Path, backend: pd.DataFrame, run_id: str) -> None:
    """The last good night's :func:`progress_digest` as Parquet (zstd), atomically."""
    table = pa.Table.from_pandas(
        progress_digest(backend), schema=_SNAPSHOT_SCHEMA, preserve_index=False
    ).replace_schema_metadata({"run_id": run_id})
    write_atomic_with(path, lambda temp: pq.write_table(table, temp, compression="zstd"))


def _read_snapshot(path: Path) -> tuple[pd.DataFrame, str | None]:
    table = pq.read_table(path)
    if not table.schema.remove_metadata().equals(_SNAPSHOT_SCHEMA):
        raise ValueError(f"unexpected columns {table.column_names}")
    run_id = (table.schema.metadata or {}).get(b"run_id", b"").decode() or None
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.string(): STRING}.get)
    return frame, run_id
