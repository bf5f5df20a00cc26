"""Read a run's artifacts back: the public API for notebooks and scripts.

The same objects every output renders, typed: :func:`load_run` opens a run folder (or the
newest run of an output folder) as a :class:`RunArtifacts`, :func:`load_history` the output
folder's nights, :func:`user_nights` one user across every night. Nothing here writes.

>>> import reconcile
>>> run = reconcile.load_run("reports")  # an output folder: its newest run
>>> run  # doctest: +ELLIPSIS
RunArtifacts(run_id='...', keys=..., at_risk=..., quarantined=..., ..., path='reports/...')
>>> at_risk = run.at_risk()
>>> sorted(set(at_risk["status"]))
['diverged', 'local_ahead', 'missing_in_backend']
>>> reconcile.load_history("reports")[["run_id", "baseline"]].shape[1]
2

A folder that holds no run raises :class:`RunNotFoundError` (a ``FileNotFoundError``)
whose one-line message names what was looked for:

>>> reconcile.load_run("no-such-folder")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
reconcile.outputs.artifacts.RunNotFoundError: no folder "no-such-folder": pass a run folder ...
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow.parquet as pq

from reconcile.errors import ReconcileError
from reconcile.model import AT_RISK, DIFF, FOREIGN, KEY, QUARANTINE, SUMMARY, Status
from reconcile.outputs.csv_safe import read_csv
from reconcile.outputs.dashboard import MIGRATED_BAR
from reconcile.outputs.diff_file import read_diff
from reconcile.outputs.result import foreign_frame
from reconcile.quoting import show

if TYPE_CHECKING:
    from reconcile.outputs.cards import UserCard


_RUN_ID: Final = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")
_STATUSES: Final[tuple[str, ...]] = tuple(s.value for s in Status)
_AT_RISK: Final[list[str]] = [s.value for s in Status if s in AT_RISK]
_TO_REVIEW: Final[list[str]] = [Status.CONFLICT.value, Status.INVALID_BACKEND.value]
#: Counts of ``summary.json`` / ``history.jsonl`` beside the statuses.
_OTHER_COUNTS: Final = ("backend_rows", "local_records", "quarantined", "users_with_local_data")
#: Quarantine columns that are NA (not "") when the rejection is above record level.
_UNRESOLVED: Final = ("key", "user_id", "tutorial_id")


class RunNotFoundError(ReconcileError, FileNotFoundError):
    """No (complete) run where one was asked for.

    ``str(error)`` is one line naming what was looked for. A ``FileNotFoundError``, so
    ``except OSError`` catches it too; the command line prints it as
    ``reconcile: error: ...`` (exit 2, like every :class:`~reconcile.errors.ReconcileError`).
    """


@dataclass(frozen=True, repr=False)
class RunArtifacts:
    """One run folder as frames: what the report showed, ready for analysis.

    Attributes (all read-only):

    ``path``
        the run folder.
    ``summary``
        ``summary.json`` as parsed: a nested document (counts, rates, checks, source,
        the migration guide's ``dashboard``), kept as a ``dict``; :attr:`counts` and
        :attr:`checks` are its tables.
    ``diff``
        ``diff.parquet`` as :func:`~reconcile.outputs.diff_file.read_diff` reads it, one
        row per key in the columns of :data:`~reconcile.model.DIFF_COLUMNS` (the
        published contract: :class:`reconcile.outputs.contract.DiffFrame`). Dtypes:
        ids, ``status``, ``action``, ``reason``, ``differences``, ``failed_checks``
        ``str``; ``certificate_claim`` ``bool``; ``local_records``,
        ``quarantined_records``, ``foreign_records`` ``int64``; ``backend_id`` and each
        side's ``chapters_completed``, ``total_chapters``, ``total_watch_time`` ``Int64``
        (nullable); ``*_completion_percentage`` ``float64``; ``*_certificate_earned``
        ``boolean`` (nullable); ``*_started_at``, ``*_completed_at``,
        ``*_last_accessed_at`` ``datetime64[ns, UTC]``; ``*_completed_chapters`` Python
        ``tuple[str, ...]`` (``None`` for a count-only record or a missing side);
        ``*_quiz_scores`` Python ``dict[str, float]`` (``None`` for a missing side;
        :meth:`quiz_scores` is the tidy long form).
    ``quarantine``
        ``quarantine.csv``: ``file``, ``reason`` ``str``; ``line`` ``Int64`` (NA when a
        whole file was rejected); ``key``, ``user_id``, ``tutorial_id`` ``str``, NA when
        the rejection is above record level. Exact text: the CSV's formula guard undone.
    ``foreign``
        ``foreign.csv``: records whose key names another user, and where they were found
        (``user_id``, ``tutorial_id``, ``file``, ``key``, ``export_user_id`` ``str``,
        ``line`` ``Int64``).
    ``checks``
        one row per data-quality check: ``name``, ``suite``, ``severity``, ``details``
        ``str``; ``success`` ``bool``; ``unexpected_count`` ``int64``.

    >>> run = load_run("reports")
    >>> run.diff["backend_id"].dtype, run.quarantine["line"].dtype
    (Int64Dtype(), Int64Dtype())
    >>> list(run.checks.columns)
    ['name', 'suite', 'severity', 'success', 'unexpected_count', 'details']
    """

    path: Path
    summary: dict[str, Any]
    diff: pd.DataFrame
    quarantine: pd.DataFrame
    foreign: pd.DataFrame
    checks: pd.DataFrame

    def __repr__(self) -> str:
        failed = int((~self.checks["success"]).sum())
        return (
            f"RunArtifacts(run_id={self.run_id!r}, keys={len(self.diff)}, "
            f"at_risk={self.summary.get('at_risk')}, quarantined={len(self.quarantine)}, "
            f"failed_checks={failed}, path={str(self.path)!r})"
        )

    @property
    def run_id(self) -> str:
        return str(self.summary["run_id"])

    @property
    def started_at(self) -> pd.Timestamp:
        """When the run started (UTC)."""
        return pd.Timestamp(self.summary["started_at"])

    @property
    def counts(self) -> pd.Series:
        """Keys per status (every status, in precedence order), then the run's other counts.

        >>> load_run("reports").counts.index[0]
        'foreign_user'
        """
        return pd.Series(self.summary["counts"], name=self.run_id, dtype="int64")

    @property
    def status_counts(self) -> pd.Series:
        """Keys per status only, every status in precedence order (``int64``)."""
        counts = self.summary["counts"]
        return pd.Series(
            [int(counts.get(s, 0)) for s in _STATUSES], index=list(_STATUSES), name="keys"
        )

    @property
    def migration_success_rate(self) -> float:
        """Share of users with local data whose progress the backend holds (bar: 90 %)."""
        return float(self.summary["migration_success_rate"])

    @property
    def failed_checks(self) -> pd.DataFrame:
        """The checks that failed, most unexpected values first."""
        failed = self.checks[~self.checks["success"]]
        return failed.sort_values("unexpected_count", ascending=False, kind="stable")

    def at_risk(self) -> pd.DataFrame:
        """The keys at risk of data loss (``missing_in_backend``, ``local_ahead``,
        ``diverged``): rows of :attr:`diff`, sorted by user and tutorial.

        >>> run = load_run("reports")
        >>> len(run.at_risk()) == run.summary["at_risk"]
        True
        """
        rows = self.diff[self.diff["status"].isin(_AT_RISK)]
        return rows.sort_values(list(KEY), kind="stable")

    def by_tutorial(self) -> pd.DataFrame:
        """One row per tutorial, most keys at risk first.

        Columns: ``tutorial_id`` ``str``; ``keys``, ``users``, one column per status (in
        precedence order), ``at_risk``, ``to_review`` (``conflict`` + ``invalid_backend``)
        ``int64``; ``at_risk_share`` ``float64`` (at risk / keys).

        >>> table = load_run("reports").by_tutorial()
        >>> list(table.columns[:3]), table["at_risk"].is_monotonic_decreasing
        (['tutorial_id', 'keys', 'users'], True)
        """
        diff = self.diff
        status = pd.Categorical(diff["status"], categories=_STATUSES)
        counts = pd.crosstab(diff["tutorial_id"], status, dropna=False)
        counts = counts.reindex(columns=list(_STATUSES), fill_value=0).astype("int64")
        counts.columns = pd.Index(list(_STATUSES))
        table = pd.DataFrame(
            {
                "keys": counts.sum(axis=1),
                "users": diff.groupby("tutorial_id")["user_id"].nunique(),
            }
        )
        table = table.join(counts)
        table["at_risk"] = counts[_AT_RISK].sum(axis=1)
        table["to_review"] = counts[_TO_REVIEW].sum(axis=1)
        table["at_risk_share"] = table["at_risk"] / table["keys"]
        table = table.rename_axis("tutorial_id").reset_index()
        table["tutorial_id"] = table["tutorial_id"].astype("str")
        return table.sort_values(
            ["at_risk", "tutorial_id"], ascending=[False, True], kind="stable"
        ).reset_index(drop=True)

    def tutorial(self, tutorial_id: str) -> pd.DataFrame:
        """The keys of one tutorial: rows of :attr:`diff` plus three columns for drilling down.

        ``at_risk`` (``bool``); ``chapters_completed`` (``Int64``: the most chapters
        either side completed, where the key stands); ``last_access_day``
        (``datetime64[ns, UTC]`` at midnight: the day of the later ``last_accessed_at``
        of the two sides, NaT when neither knows). Empty when the run has no such tutorial.

        >>> run = load_run("reports")
        >>> some = run.diff["tutorial_id"].iloc[0]
        >>> (run.tutorial(some)["tutorial_id"] == some).all()
        np.True_
        """
        rows = self.diff[self.diff["tutorial_id"] == tutorial_id].copy()
        rows["at_risk"] = rows["status"].isin(_AT_RISK)
        sides = rows[["local_chapters_completed", "backend_chapters_completed"]]
        rows["chapters_completed"] = sides.max(axis=1, skipna=True).astype("Int64")
        last = rows[["local_last_accessed_at", "backend_last_accessed_at"]].max(axis=1)
        rows["last_access_day"] = pd.to_datetime(last, utc=True).dt.floor("D")
        return rows.sort_values(list(KEY), kind="stable")

    def quiz_scores(self, tutorial_id: str | None = None) -> pd.DataFrame:
        """Quiz scores in tidy long form: one row per (key, side, quiz).

        Columns ``user_id``, ``tutorial_id``, ``side`` (``"local"`` or ``"backend"``),
        ``quiz_id`` ``str``; ``score`` ``float64``. Only the keys of ``tutorial_id`` when
        given.

        >>> long = load_run("reports").quiz_scores()
        >>> list(long.columns), str(long["score"].dtype)
        (['user_id', 'tutorial_id', 'side', 'quiz_id', 'score'], 'float64')
        """
        diff = self.diff
        if tutorial_id is not None:
            diff = diff[diff["tutorial_id"] == tutorial_id]
        users, tutorials = diff["user_id"].tolist(), diff["tutorial_id"].tolist()
        rows: list[tuple[str, str, str, str, float]] = []
        for side in ("local", "backend"):
            scores = diff[f"{side}_quiz_scores"].tolist()
            for user, tutorial, quiz in zip(users, tutorials, scores, strict=True):
                if quiz:
                    rows.extend((user, tutorial, side, q, float(s)) for q, s in quiz.items())
        frame = pd.DataFrame(rows, columns=["user_id", "tutorial_id", "side", "quiz_id", "score"])
        for column in ("user_id", "tutorial_id", "side", "quiz_id"):
            frame[column] = frame[column].astype("str")
        frame["score"] = frame["score"].astype("float64")
        return frame

    def user(self, user_id: str) -> pd.DataFrame:
        """Everything this run knows about one user: one row per tutorial, both sides, the
        row ``repair.sql`` will leave (``will_*``), what ``review.sql`` asks, the user's
        quarantined records and where foreign records were found.

        The rows of the user card (:func:`reconcile.outputs.cards.card_table`, the model
        behind the report's cards and ``reconcile user``); its columns and plain Python
        types are documented there. Empty (same columns) when the id is not in the run.

        >>> run = load_run("reports")
        >>> someone = run.at_risk()["user_id"].iloc[0]
        >>> card = run.user(someone)
        >>> bool(card["at_risk"].any()), "will_chapters" in card
        (True, True)
        """
        from reconcile.outputs.cards import card_table

        own = self.diff[(self.diff["user_id"] == user_id).to_numpy()]
        return card_table(own, self.quarantine, self.foreign, users=[user_id])

    def card(self, user_id: str) -> UserCard | None:
        """The user card (:class:`~reconcile.outputs.cards.UserCard`: the one-line state,
        the tutorials, quarantined records, records held for others), ``None`` when the id
        is nowhere in the run."""
        from reconcile.outputs.cards import user_card

        return user_card(self, user_id)


def working_path(path: str | Path) -> Path:
    """``path`` with a relative path taken from the folder Jupyter or papermill was started in.

    A notebook's kernel runs in the notebook's folder, but ``reports`` typed by an analyst
    means the folder they started Jupyter (or papermill) in: the shell's ``$PWD``, which
    the kernel inherits. Absolute paths, and kernels without ``$PWD``, are unchanged.

    >>> import os
    >>> working_path("/srv/reports")
    PosixPath('/srv/reports')
    >>> working_path("reports") == Path(os.environ.get("PWD", "."), "reports")
    True
    """
    given = Path(path).expanduser()
    if given.is_absolute():
        return given
    return Path(os.environ.get("PWD") or os.getcwd()) / given


def list_runs(out: str | Path) -> list[Path]:
    """Completed run folders in ``out`` (each holds ``summary.json``), oldest first.

    Run ids sort by time. A folder that does not exist has none.
    """
    folder = Path(out)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and _RUN_ID.match(p.name) and (p / SUMMARY).is_file()
    )


def latest_run(out: str | Path) -> Path:
    """The newest completed run folder in ``out``; :class:`RunNotFoundError` if none."""
    runs = list_runs(out)
    if not runs:
        raise RunNotFoundError(_no_run(Path(out)))
    return runs[-1]


def _no_run(folder: Path) -> str:
    if not folder.is_dir():
        return (
            f"no folder {show(str(folder))}: pass a run folder (with {SUMMARY}) or an "
            "output folder holding run folders"
        )
    return (
        f"no run in {show(str(folder))}: looked for {SUMMARY} there and for run folders "
        "(named like 20260120T080000Z-1a2b) inside it"
    )


def _run_folder(path: Path) -> Path:
    """``path`` when it is a run folder, else the newest run folder inside it."""
    if (path / SUMMARY).is_file():
        return path
    return latest_run(path)


def load_run(path: str | Path) -> RunArtifacts:
    """Load a run: ``path`` is a run folder, or an output folder meaning its newest run.

    Raises :class:`RunNotFoundError` (one line naming what was looked for) when there is
    no run there, or the run folder lacks ``diff.parquet`` or ``quarantine.csv``.

    >>> load_run("reports").path.parent.name
    'reports'
    >>> load_run(latest_run("reports")).run_id == load_run("reports").run_id
    True
    """
    folder = _run_folder(Path(path))
    for name in (DIFF, QUARANTINE):
        if not (folder / name).is_file():
            raise RunNotFoundError(f"{show(str(folder))} is not a complete run: no {name}")
    summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    quarantine = read_csv(folder / QUARANTINE)  # as text, exact: the formula guard undone
    quarantine["line"] = _lines(quarantine["line"])
    for column in _UNRESOLVED:
        quarantine[column] = quarantine[column].astype("str").replace("", pd.NA)
    foreign_path = folder / FOREIGN  # runs before foreign.csv existed have none
    foreign = foreign_frame(read_csv(foreign_path) if foreign_path.exists() else [])
    if len(foreign):
        foreign["line"] = _lines(foreign["line"].astype("str"))
    return RunArtifacts(
        path=folder,
        summary=summary,
        diff=read_diff(folder / DIFF),
        quarantine=quarantine,
        foreign=foreign,
        checks=_checks(summary.get("checks") or []),
    )


def _lines(text: pd.Series) -> pd.Series:
    """Line numbers written as text ("" when unknown) as ``Int64``."""
    return pd.to_numeric(text.replace("", pd.NA), errors="raise").astype("Int64")


def _checks(checks: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "name": pd.Series([c["name"] for c in checks], dtype="str"),
            "suite": pd.Series([c.get("suite", "") for c in checks], dtype="str"),
            "severity": pd.Series([c.get("severity", "warning") for c in checks], dtype="str"),
            "success": pd.Series([bool(c["success"]) for c in checks], dtype="bool"),
            "unexpected_count": pd.Series(
                [int(c.get("unexpected_count") or 0) for c in checks], dtype="int64"
            ),
            "details": pd.Series([c.get("details", "") for c in checks], dtype="str"),
        }
    )
    return frame


# --- across nights ----------------------------------------------------------------------

#: Columns of :func:`load_history`, in order.
HISTORY_COLUMNS: Final[tuple[str, ...]] = (
    "run_id",
    "started_at",
    "baseline",
    "failed_checks",
    *_STATUSES,
    "keys",
    *_OTHER_COUNTS,
    "distinct_users",
    "migration_success_rate",
    "meets_bar",
    "at_risk",
)


def load_history(out: str | Path) -> pd.DataFrame:
    """One row per recorded night of the output folder ``out``, oldest first.

    From ``history.jsonl`` (every run, good or not). Columns (:data:`HISTORY_COLUMNS`):

    ``run_id`` ``str``; ``started_at`` ``datetime64[ns, UTC]``;
    ``baseline`` ``bool``: later nights are compared with this one (``history.jsonl``'s
    ``good``): no night-over-night check failed (backend row or user counts, local
    volume, progress regression, vanished rows). Range anomalies (a 150 % row) do *not*
    take it away, so a baseline night may still have failed checks;
    ``failed_checks`` ``Int64``: checks that failed that night, any suite (from the run
    folder's ``summary.json``; where that folder is gone, the checks with unexpected
    values recorded in the history; NA when neither says);
    one ``Int64`` column per status (keys), ``keys`` (their sum), ``backend_rows``,
    ``local_records``, ``quarantined``, ``users_with_local_data``, ``distinct_users``;
    ``migration_success_rate`` ``float64``; ``meets_bar`` ``boolean``: the rate reaches
    :data:`MIGRATED_BAR` (90 %); ``at_risk`` ``Int64``. A value a night did not record is
    NA. No history yet: an empty frame with these columns.

    >>> history = load_history("reports")
    >>> list(history.columns[:4])
    ['run_id', 'started_at', 'baseline', 'failed_checks']
    >>> str(history["baseline"].dtype), str(history["at_risk"].dtype)
    ('bool', 'Int64')
    """
    from reconcile.outputs.history_store import load_history as read_nights

    folder = Path(out)
    nights = read_nights(folder).nights
    counts = [n.get("counts") or {} for n in nights]
    frame = pd.DataFrame(
        {
            "run_id": pd.Series([str(n.get("run_id", "")) for n in nights], dtype="str"),
            "started_at": pd.to_datetime(
                pd.Series([n.get("started_at") for n in nights], dtype=object),
                utc=True,
                format="ISO8601",
            ).astype("datetime64[ns, UTC]"),
            "baseline": pd.Series([n.get("good") is True for n in nights], dtype="bool"),
            "failed_checks": pd.array([_failed(folder, n) for n in nights], dtype="Int64"),
        }
    )
    for name in _STATUSES:
        frame[name] = pd.array([c.get(name) for c in counts], dtype="Int64")
    frame["keys"] = frame[list(_STATUSES)].sum(axis=1, min_count=1).astype("Int64")
    for name in _OTHER_COUNTS:
        values = [c.get(name, n.get(name)) for c, n in zip(counts, nights, strict=True)]
        frame[name] = pd.array(values, dtype="Int64")
    frame["distinct_users"] = pd.array([n.get("distinct_users") for n in nights], dtype="Int64")
    rate = pd.Series([n.get("migration_success_rate") for n in nights], dtype="float64")
    frame["migration_success_rate"] = rate
    frame["meets_bar"] = pd.array(
        [None if pd.isna(r) else bool(r >= MIGRATED_BAR) for r in rate], dtype="boolean"
    )
    frame["at_risk"] = pd.array([n.get("at_risk") for n in nights], dtype="Int64")
    return frame[list(HISTORY_COLUMNS)]


def _failed(out: Path, night: dict[str, Any]) -> int | None:
    """Checks that failed on ``night``: its summary.json's word, else the history's counts."""
    run_id = str(night.get("run_id", ""))
    summary = out / run_id / SUMMARY
    if _RUN_ID.match(run_id) and summary.is_file():
        try:
            checks = json.loads(summary.read_text(encoding="utf-8")).get("checks") or []
            return sum(1 for c in checks if not c.get("success", True))
        except (OSError, ValueError):
            pass  # a damaged summary: fall back on the history line
    recorded = night.get("checks")
    if not isinstance(recorded, dict):
        return None
    return sum(1 for v in recorded.values() if isinstance(v, int | float) and v > 0)


#: Columns of :func:`user_nights` read from each night's ``diff.parquet``.
_NIGHT_COLUMNS: Final = (
    "tutorial_id",
    "status",
    "action",
    "local_chapters_completed",
    "backend_chapters_completed",
    "local_completion_percentage",
    "backend_completion_percentage",
    "local_total_watch_time",
    "backend_total_watch_time",
    "local_last_accessed_at",
    "backend_last_accessed_at",
)


def user_nights(out: str | Path, user_id: str) -> pd.DataFrame:
    """One user across every night of the output folder ``out``: one row per (night, key).

    Columns: ``run_id`` then :data:`_NIGHT_COLUMNS` in the diff's dtypes, oldest night
    first. Each night's ``diff.parquet`` is read for this user only (a row filter), so
    a month of million-key nights stays cheap. Empty when the user is in none.

    >>> run = load_run("reports")
    >>> someone = run.diff["user_id"].iloc[0]
    >>> nights = user_nights("reports", someone)
    >>> nights["run_id"].nunique() == len(list_runs("reports"))
    True
    """
    frames = []
    for folder in list_runs(out):
        if not (folder / DIFF).is_file():
            continue
        table = pq.read_table(
            folder / DIFF,
            columns=["user_id", *_NIGHT_COLUMNS],
            filters=[("user_id", "==", user_id)],
        )
        frame = table.to_pandas().drop(columns="user_id")
        frame.insert(0, "run_id", folder.name)
        frames.append(frame)
    if not frames:
        empty = pd.DataFrame({"run_id": pd.Series([], dtype="str")})
        for column in _NIGHT_COLUMNS:
            empty[column] = pd.Series([], dtype=object)
        return empty
    nights = pd.concat(frames, ignore_index=True)
    nights["run_id"] = nights["run_id"].astype("str")
    return nights.sort_values(["run_id", "tutorial_id"], kind="stable").reset_index(drop=True)
