"""How much the local side brought tonight: export files, exports and progress records.

An exports folder with no files, or files with no progress record, would otherwise read as
"100 % migrated, 0 at risk": nothing local, so nothing lost. That is a count anomaly (the
collector stopped uploading, a mount is empty, a path is wrong), so each measure is a check:

* it may not be below a fixed floor (``[checks]`` in the config; default 1: an empty
  local side is always an anomaly);
* it may not drop by more than ``max_local_drop_fraction`` (default 50 %) below the last
  *good* night that recorded it (``<out>/history.jsonl``).

Why 50 % and not the backend's 10 %: the backend table only grows, while the local side is
whatever the collector uploaded since the last run, which varies with weekdays, holidays
and releases; halving is the mark of a broken upload, a 15 % dip is a quiet Sunday.

The checks are night-over-night checks (suite :data:`SUITE`): a failed one keeps the
night from becoming the baseline, as the backend count checks do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from reconcile.config import Config
from reconcile.model import CRITICAL, CheckResult
from reconcile.validate.nights import NO_HISTORY, History

SUITE: Final = "local_volume"


@dataclass(frozen=True)
class _Measure:
    metric: str  # its key in history.jsonl
    check: str  # its check's name
    what: str  # how details name it
    floor: str  # the Config field holding its floor


MEASURES: Final[tuple[_Measure, ...]] = (
    _Measure("local_files", "local.files_min", "export files", "min_export_files"),
    _Measure("local_exports", "local.exports_min", "exports", "min_exports"),
    _Measure("local_records", "local.records_min", "local progress records", "min_local_records"),
)


def local_volume(*, files: int, exports: int, records: int) -> dict[str, int]:
    """The night's local measures under the names ``history.jsonl`` keeps them."""
    return {"local_files": files, "local_exports": exports, "local_records": records}


def local_volume_checks(
    history: History, *, files: int, exports: int, records: int, config: Config
) -> list[CheckResult]:
    """One check per measure: at least its floor, and no sharp drop since the last good night.

    ``files`` are the export files read, ``exports`` the envelopes accepted and ``records``
    every progress key in them (valid, quarantined and foreign alike).
    """
    measured = local_volume(files=files, exports=exports, records=records)
    return [
        _check(m, measured[m.metric], getattr(config, m.floor), history, config) for m in MEASURES
    ]


def _check(
    measure: _Measure, value: int, floor: int, history: History, config: Config
) -> CheckResult:
    bound, why = floor, [f"floor {floor}"]
    last = _last_good(history, measure.metric)
    if last is None:
        why.append(f"{NO_HISTORY}: no good night recorded it")
    else:
        run_id, before = last
        drop = config.max_local_drop_fraction
        least = max(0, math.ceil((1 - drop) * before - 1e-9))
        bound = max(bound, least)
        why.append(
            f"last good night {run_id} had {before}, a drop of at most {drop:.0%} allows {least}"
        )
    success = value >= bound
    details = f"{value} {measure.what}, expected at least {bound} ({'; '.join(why)})"
    return CheckResult(measure.check, success, 0 if success else 1, SUITE, details, CRITICAL)


def _last_good(history: History, metric: str) -> tuple[str, int] | None:
    """(run id, value) of the newest good night that recorded ``metric``."""
    for night in reversed(history.good_nights):
        value: Any = night.get(metric)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(night.get("run_id", "(unknown run)")), value
    return None
