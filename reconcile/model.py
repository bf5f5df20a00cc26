"""The project's vocabulary: statuses, actions and the canonical columns, defined once.

Loaders translate their sources into these names; everything else imports them.

A *progress frame* (backend rows or local records) has one row per record and the
columns of :data:`PROGRESS_COLUMNS`:

``user_id``, ``tutorial_id``
    ``str``; together the key of a record.
``completed_chapters``
    ``tuple[str, ...]`` of distinct chapter ids, sorted, or ``None`` when the record
    holds only a count (older client builds, or a backend row with an empty array
    and a positive count).
``chapters_completed``, ``total_chapters``, ``total_watch_time``
    ``Int64`` (nullable integers).
``completion_percentage``
    ``float64``.
``quiz_scores``
    ``dict[str, float]`` (``{}`` when none).
``certificate_earned``
    ``bool``.
``started_at``, ``completed_at``, ``last_accessed_at``
    ``datetime64[ns, UTC]`` (``NaT`` when unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Status(StrEnum):
    """One status per key; the declaration order is the precedence of SPEC section 2."""

    FOREIGN_USER = "foreign_user"
    INVALID_LOCAL = "invalid_local"
    INVALID_BACKEND = "invalid_backend"
    CONFLICT = "conflict"
    MISSING_IN_BACKEND = "missing_in_backend"
    DIVERGED = "diverged"
    LOCAL_AHEAD = "local_ahead"
    BACKEND_AHEAD = "backend_ahead"
    IN_SYNC = "in_sync"
    BACKEND_ONLY = "backend_only"


class Action(StrEnum):
    """What the run proposes for a key."""

    NONE = "none"
    INSERT = "insert"
    MERGE = "merge"
    REVIEW = "review"


ACTION_BY_STATUS: Final[dict[Status, Action]] = {
    Status.FOREIGN_USER: Action.NONE,
    Status.INVALID_LOCAL: Action.NONE,
    Status.INVALID_BACKEND: Action.REVIEW,
    Status.CONFLICT: Action.REVIEW,
    Status.MISSING_IN_BACKEND: Action.INSERT,
    Status.DIVERGED: Action.MERGE,
    Status.LOCAL_AHEAD: Action.MERGE,
    Status.BACKEND_AHEAD: Action.NONE,
    Status.IN_SYNC: Action.NONE,
    Status.BACKEND_ONLY: Action.NONE,
}

#: Keys in these statuses are "at risk of data loss" (SPEC 2).
AT_RISK: Final[frozenset[Status]] = frozenset(
    {Status.MISSING_IN_BACKEND, Status.LOCAL_AHEAD, Status.DIVERGED}
)

#: Statuses that make a run "actionable" (exit code 1): a repair or a review.
ACTIONABLE: Final[frozenset[Status]] = frozenset(
    s for s, a in ACTION_BY_STATUS.items() if a is not Action.NONE
)

KEY: Final[tuple[str, str]] = ("user_id", "tutorial_id")

TIMESTAMP_COLUMNS: Final[tuple[str, ...]] = ("started_at", "completed_at", "last_accessed_at")

PROGRESS_COLUMNS: Final[tuple[str, ...]] = (
    "user_id",
    "tutorial_id",
    "completed_chapters",
    "chapters_completed",
    "total_chapters",
    "completion_percentage",
    "quiz_scores",
    "total_watch_time",
    "certificate_earned",
    *TIMESTAMP_COLUMNS,
)

#: Extra columns of the backend frame.
BACKEND_EXTRA_COLUMNS: Final[tuple[str, ...]] = ("id", "created_at", "updated_at")

#: Extra columns of the local frame: where a record came from.
LOCAL_EXTRA_COLUMNS: Final[tuple[str, ...]] = (
    "source_file",  # str: path of the export file
    "source_line",  # Int64: 1-based line in that file where the export starts
    "storage_key",  # str: the localStorage key
    "export_user_id",  # str: the envelope's userId
    "exported_at",  # datetime64[ns, UTC]
)

#: The quarantine: every rejected file, line or record, with its reason, one row each.
#: Its columns, as ``{loader's name: the run's name}``, in order. The exports loader names
#: a record's origin as the local frame does (:data:`LOCAL_EXTRA_COLUMNS`); the run's
#: quarantine (``RunResult.quarantine``, ``quarantine.csv``, the report, ``load_run``)
#: uses SPEC 4's names. The pipeline renames once, when it builds the run's quarantine.
QUARANTINE_NAMES: Final[dict[str, str]] = {
    "source_file": "file",
    "source_line": "line",  # Int64, NA when the whole file is rejected
    "storage_key": "key",  # str or NA when the rejection is above record level
    "user_id": "user_id",  # the key's user when it could be resolved, else NA
    "tutorial_id": "tutorial_id",  # the key's tutorial when it could be resolved, else NA
    "reason": "reason",
}
#: Columns of a loader's quarantine (``ExportsLoad.quarantine``).
QUARANTINE_COLUMNS: Final[tuple[str, ...]] = tuple(QUARANTINE_NAMES)
#: Columns of the run's quarantine and of ``quarantine.csv``: file, line, key, ..., reason.
RUN_QUARANTINE_COLUMNS: Final[tuple[str, ...]] = tuple(QUARANTINE_NAMES.values())

#: The run's foreign records (``RunResult.foreign``, ``foreign.csv``): a record whose key
#: names ``user_id`` found in the export of ``export_user_id``, at ``file``, ``line``.
FOREIGN_RUN_COLUMNS: Final[tuple[str, ...]] = (
    "file",
    "line",
    "key",
    "user_id",
    "tutorial_id",
    "export_user_id",
)

#: Tables that ``repair.sql`` creates to back up what it changes: ``<prefix><run id>``.
BACKUP_PREFIX: Final = "reconcile_backup_"

#: File names inside a run folder.
SUMMARY: Final = "summary.json"
DIFF: Final = "diff.parquet"
QUARANTINE: Final = "quarantine.csv"
FOREIGN: Final = "foreign.csv"
REPAIR: Final = "repair.sql"
ROLLBACK: Final = "rollback.sql"
REVIEW: Final = "review.sql"
REPORT: Final = "index.html"

#: Unit-less rounding of completion_percentage (SPEC 2: equality tolerates 2 decimals).
PERCENT_DECIMALS: Final[int] = 2


#: How bad a failed check or a finding is. ``critical``: data loss (at-risk keys, backend
#: progress that went backward, rows that vanished, a count drop); ``warning``: anomalies
#: and review items. ``reconcile run --fail-on critical`` exits 1 on critical ones only.
CRITICAL: Final = "critical"
WARNING: Final = "warning"
SEVERITIES: Final[tuple[str, ...]] = (CRITICAL, WARNING)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One data-quality check's outcome, as it appears in ``summary.json``."""

    name: str
    success: bool
    unexpected_count: int
    suite: str = ""
    details: str = ""
    #: One of :data:`SEVERITIES`; what a failure of this check means.
    severity: str = WARNING

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")


#: Progress fields compared and merged, without the key.
PROGRESS_FIELDS: Final[tuple[str, ...]] = PROGRESS_COLUMNS[2:]

#: Columns of the diff frame (``diff.parquet``): one row per key, every key of either side.
#:
#: ``local_<field>`` holds the merge of the key's valid local records (SPEC 3) and
#: ``backend_<field>`` the backend row, for every field of :data:`PROGRESS_FIELDS`
#: (missing side: NA / None). ``differences`` is a short human sentence of what differs,
#: ``reason`` why the status was chosen (for review and the report).
DIFF_COLUMNS: Final[tuple[str, ...]] = (
    "user_id",
    "tutorial_id",
    "status",  # str, a Status value
    "action",  # str, an Action value
    "reason",  # str
    "differences",  # str
    "certificate_claim",  # bool: a local certificateEarned the backend lacks (review only)
    "local_records",  # int: valid own local records merged into local_*
    "quarantined_records",  # int: own local records of this key that were quarantined
    "foreign_records",  # int: records of this key found in another user's export
    "backend_id",  # Int64: the backend row's id, NA when there is none
    "failed_checks",  # str: record-gate rules the backend row broke, joined by ";" ("" if none)
    *(f"local_{f}" for f in PROGRESS_FIELDS),
    *(f"backend_{f}" for f in PROGRESS_FIELDS),
)
