"""The user card: what support needs to answer "my progress is gone", in plain words.

One model, three renderings: the report page (JS, from :func:`card_table` and
:func:`user_summary`), the terminal (:func:`render_text`, ``reconcile user``) and
notebooks. Everything is computed column-wise from the run's frames (``diff``,
``quarantine``, ``foreign``); only small per-key fields (chapter sets that differ, quiz
dicts, the sentence) are joined in Python, and only for the rows asked for.

:func:`card_table` has one row per key of the users who need a card (by default every user
with a key that needs attention, see :func:`attention`), all of that user's keys included.
Its columns, plain Python types (``None`` where unknown or not applicable):

``user_id``, ``tutorial_id``, ``status``, ``action``
    the key, its status (:class:`~reconcile.model.Status`) and action (``insert``,
    ``merge``, ``review``, ``none``).
``at_risk``, ``attention``
    ``bool``: the status is at risk of data loss; the key needs attention.
``words``
    ``str``: the status in plain words with this key's numbers (:func:`key_words`).
``reason``
    ``str``: why the run chose the status (the diff's ``reason``).
``local_present``, ``backend_present``
    ``bool``: a valid browser record / a server row exists.
``{side}_chapters``
    ``list[str]`` chapter ids, ``None`` for a count-only record or a missing side;
    ``side`` is ``local`` (the browser, merged over its exports) or ``backend`` (the server).
``{side}_chapters_completed``, ``{side}_total_chapters``
    ``int``.
``{side}_completion``
    ``float``, percent.
``{side}_quiz``
    ``dict[str, float]``.
``{side}_watch``, ``{side}_watch_seconds``
    ``str`` as ``h:mm:ss``; ``int`` seconds.
``{side}_certificate``
    ``bool``.
``{side}_started_at``, ``{side}_completed_at``, ``{side}_last_accessed_at``
    ``str``, ISO 8601 UTC (``2026-01-10T10:00:00Z``).
``local_only_chapters``, ``backend_only_chapters``
    ``list[str]``: chapter ids only that side has (``[]`` when none or unknown).
``quiz_better``
    ``dict[str, str]``: for each quiz whose scores differ, ``"local"`` or ``"backend"``,
    the side with the better (or the only) score.
``watch_better``
    ``"local"``, ``"backend"`` or ``""`` (equal, or a side missing).
``differs_chapters``, ``differs_total_chapters``, ``differs_completion``, ``differs_quiz``,
``differs_watch``, ``differs_certificate``, ``differs_started_at``, ``differs_completed_at``,
``differs_last_accessed_at``
    ``bool``: both sides exist and this field differs (what to highlight).
``repair``
    ``str``: what the run's scripts do for the key: ``"nothing"``, or which script does
    what (``repair.sql`` inserts / merges: the values are the ``will_*`` columns;
    ``review.sql``: the lines of ``review``).
``will_chapters``, ``will_chapters_completed``, ``will_total_chapters``, ``will_completion``,
``will_quiz``, ``will_watch``, ``will_watch_seconds``, ``will_certificate``,
``will_started_at``, ``will_completed_at``, ``will_last_accessed_at``
    insert / merge keys: the row ``repair.sql`` will leave (SPEC 3, merged against the
    server row as the run read it); types as the sides'.
``review``
    ``list[str]``: the reason and notes ``review.sql`` gives for the key (``[]`` if none).
``certificate_claim``, ``claim``
    ``bool``: the browser claims a certificate the server lacks; ``str``: what happens
    (a ``review.sql`` entry; a repair never grants one), ``""`` otherwise.
``quarantined``
    ``list[dict]`` of the user's quarantined records on this key, each ``{"file",
    "line", "key", "tutorial_id", "reason"}``; a record of the user that names no key of
    the run sits on the user's first row, so the user's quarantine is the concatenation.
``found_in``
    ``list[dict]``: where records of this key were found in another user's export,
    each ``{"export_user_id", "file", "line", "key"}`` (``foreign_user`` keys).

:func:`user_summary` has one row per user of the run: ``user_id``, ``tutorials``, one
``int`` column per status, ``at_risk``, ``to_review``, ``claims``, ``quarantined``,
``attention`` (``bool``: the user has a card in :func:`card_table`) and ``state``, the
one-line state ("2 tutorials, all in sync", "backend only: no local data received").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd

from reconcile.compare.merge import predict_repairs
from reconcile.model import AT_RISK, KEY, PROGRESS_FIELDS, Action, Status
from reconcile.repair.review import _review_entry

#: Each status in plain words for support staff; :func:`key_words` adds the key's numbers.
PLAIN_WORDS: Final[dict[str, str]] = {
    Status.IN_SYNC: "Browser and server hold the same progress",
    Status.MISSING_IN_BACKEND: (
        "The browser has progress the server never received: the migration lost it"
    ),
    Status.LOCAL_AHEAD: "The browser has progress the server never received",
    Status.BACKEND_AHEAD: (
        "The server has more than the browser: progress made after the migration, normal"
    ),
    Status.DIVERGED: "Browser and server each hold progress the other lacks",
    Status.BACKEND_ONLY: "backend only: no local data received",
    Status.CONFLICT: "Browser and server disagree in a way no merge settles: a person decides",
    Status.INVALID_LOCAL: "Every browser record of this tutorial failed validation: quarantined",
    Status.INVALID_BACKEND: "The server row fails validation: a person decides",
    Status.FOREIGN_USER: "Found only in another user's export: set aside, not this user's own",
}

#: Statuses that need nothing from support (a user with only these has no card).
QUIET: Final[frozenset[str]] = frozenset(
    {Status.IN_SYNC, Status.BACKEND_AHEAD, Status.BACKEND_ONLY}
)
NOT_IN_RUN: Final = "not in this run"
_QUARANTINE_FIELDS: Final = ("file", "line", "key", "tutorial_id", "reason")
_FOREIGN_FIELDS: Final = ("export_user_id", "file", "line", "key")
_STATUSES: Final[tuple[str, ...]] = tuple(s.value for s in Status)
_FIELDS: Final[dict[str, str]] = {  # card name: progress field
    "chapters": "completed_chapters",
    "chapters_completed": "chapters_completed",
    "total_chapters": "total_chapters",
    "completion": "completion_percentage",
    "quiz": "quiz_scores",
    "watch_seconds": "total_watch_time",
    "certificate": "certificate_earned",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "last_accessed_at": "last_accessed_at",
}
_DIFFERS: Final[dict[str, str]] = {  # highlight name: card name
    "chapters_completed": "chapters_completed",
    "total_chapters": "total_chapters",
    "completion": "completion",
    "quiz": "quiz",
    "watch": "watch_seconds",
    "certificate": "certificate",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "last_accessed_at": "last_accessed_at",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _words(
    status: str,
    local_only: int,
    backend_only: int,
    quiz_local: int,
    quiz_backend: int,
    watch_local: int | None,
    watch_backend: int | None,
    reason: str,
) -> str:
    """The sentence of :func:`key_words` from the key's numbers."""
    base = PLAIN_WORDS.get(status, status)
    ahead = watch_local is not None and watch_backend is not None and watch_local > watch_backend
    behind = watch_local is not None and watch_backend is not None and watch_local < watch_backend
    if status == Status.LOCAL_AHEAD:
        parts = [_plural(local_only, "chapter")] if local_only else []
        parts += [_plural(quiz_local, "better quiz score")] if quiz_local else []
        parts += ["more watch time"] if ahead else []
        what = " and ".join(parts) or "progress"
        return f"The browser has {what} the server never received"
    if status == Status.DIVERGED:
        return (
            f"{base}: the browser has {_plural(local_only, 'chapter')} the server never "
            f"received, the server has {_plural(backend_only, 'chapter')} the browser lacks"
        )
    if status == Status.BACKEND_AHEAD:
        parts = [_plural(backend_only, "chapter")] if backend_only else []
        parts += [_plural(quiz_backend, "better quiz score")] if quiz_backend else []
        parts += ["more watch time"] if behind else []
        what = " and ".join(parts) or "more progress"
        return f"The server has {what} the browser lacks: progress made after the migration"
    if status == Status.MISSING_IN_BACKEND and local_only:
        return f"{base} ({_plural(local_only, 'chapter')})"
    return base


def key_words(row: Mapping[str, Any]) -> str:
    """One key's status in plain words with its numbers, from a :func:`card_table` row."""
    quiz = row.get("quiz_better") or {}
    return _words(
        str(row["status"]),
        len(row.get("local_only_chapters") or ()),
        len(row.get("backend_only_chapters") or ()),
        sum(v == "local" for v in quiz.values()),
        sum(v == "backend" for v in quiz.values()),
        row.get("local_watch_seconds"),
        row.get("backend_watch_seconds"),
        str(row.get("reason") or ""),
    )


def attention(diff: pd.DataFrame) -> pd.Series:
    """Per key: needs support's attention (not quiet, a claim, quarantined or foreign records)."""
    return (
        ~diff["status"].isin(QUIET)
        | diff["certificate_claim"].astype(bool)
        | (diff["quarantined_records"] > 0)
        | (diff["foreign_records"] > 0)
    )


# --- column helpers -------------------------------------------------------------------


def _objects(values: Iterable[Any], n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = list(values)
    return out


def _chapters(value: Any) -> tuple[str, ...] | None:
    """Chapter ids as the diff frame holds them (``diff.parquet`` read plainly: arrays)."""
    if value is None or isinstance(value, float):
        return None
    if isinstance(value, tuple):
        return value
    return tuple(value.tolist() if isinstance(value, np.ndarray) else value)


def _quiz(value: Any) -> dict[str, float] | None:
    """Quiz scores as a dict (``diff.parquet`` read plainly: JSON text)."""
    if isinstance(value, str):
        return {} if value == "{}" else dict(orjson.loads(value))
    return value if isinstance(value, dict) else None


def _exact(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` on a RangeIndex with the diff frame's exact types (tuples, dicts, bools)."""
    exact = rows.reset_index(drop=True)
    n = len(exact)
    for side in ("local", "backend"):
        chapters, quiz = f"{side}_completed_chapters", f"{side}_quiz_scores"
        exact[chapters] = _objects(map(_chapters, exact[chapters].tolist()), n)
        exact[quiz] = _objects(map(_quiz, exact[quiz].tolist()), n)
        certificate = f"{side}_certificate_earned"
        exact[certificate] = _bools(exact[certificate])
    return exact


def _ints(series: pd.Series) -> np.ndarray:
    """Nullable integers as an object array of ``int`` / ``None``."""
    values = series.astype("Int64")
    out = np.full(len(values), None, dtype=object)
    known = values.notna().to_numpy()
    out[known] = values[known].to_numpy(dtype="int64").tolist()
    return out


def _floats(series: pd.Series) -> np.ndarray:
    values = series.astype("float64").to_numpy()
    out = np.full(len(values), None, dtype=object)
    known = ~np.isnan(values)
    out[known] = values[known].tolist()
    return out


def _bools(series: pd.Series) -> np.ndarray:
    values = series.astype("boolean")
    out = np.full(len(values), None, dtype=object)
    known = values.notna().to_numpy()
    out[known] = values[known].to_numpy(dtype=bool).tolist()
    return out


def _iso(series: pd.Series) -> np.ndarray:
    """UTC timestamps as ISO 8601 text to the second (``2026-01-10T10:00:00Z``)."""
    stamps = pd.to_datetime(series, utc=True).dt.tz_localize(None).to_numpy("datetime64[s]")
    out = np.full(len(stamps), None, dtype=object)
    known = ~np.isnat(stamps)
    out[known] = np.char.add(np.datetime_as_string(stamps[known], unit="s"), "Z").tolist()
    return out


def hms(seconds: np.ndarray) -> np.ndarray:
    """Seconds (object array of ``int`` / ``None``) as ``h:mm:ss`` (``-h:mm:ss`` if negative)."""
    out = np.full(len(seconds), None, dtype=object)
    known = np.array([s is not None for s in seconds], dtype=bool)
    raw = seconds[known].astype("int64")
    value = np.abs(raw)
    parts = pd.DataFrame({"h": value // 3600, "m": value // 60 % 60, "s": value % 60})
    text = (
        pd.Series(np.where(raw < 0, "-", ""))
        + parts["h"].astype(str)
        + ":"
        + parts["m"].astype(str).str.zfill(2)
        + ":"
        + parts["s"].astype(str).str.zfill(2)
    )
    out[known] = text.tolist()
    return out


def _side(rows: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    """One side's (or the predicted row's) card fields, from columns ``prefix + field``."""
    n = len(rows)
    col = {name: rows[prefix + field] for name, field in _FIELDS.items()}
    side = {
        "chapters": _objects((None if c is None else list(c) for c in col["chapters"]), n),
        "chapters_completed": _ints(col["chapters_completed"]),
        "total_chapters": _ints(col["total_chapters"]),
        "completion": _floats(col["completion"]),
        "quiz": col["quiz"].to_numpy(dtype=object),
        "watch_seconds": _ints(col["watch_seconds"]),
        "certificate": _bools(col["certificate"]),
    }
    side["watch"] = hms(side["watch_seconds"])
    for stamp in ("started_at", "completed_at", "last_accessed_at"):
        side[stamp] = _iso(col[stamp])
    return side


_Compared = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


def _compare(
    local: dict[str, np.ndarray], backend: dict[str, np.ndarray], both: np.ndarray
) -> _Compared:
    """Chapters only one side has, the better side per quiz and of watch time, highlights."""
    n = len(both)
    lc, bc = local["chapters"], backend["chapters"]
    lists = both & pd.notna(lc) & pd.notna(bc)
    local_only = _objects(([] for _ in range(n)), n)
    backend_only = _objects(([] for _ in range(n)), n)
    differ = lists & ~np.asarray(lc == bc, dtype=bool)
    for i in np.flatnonzero(differ).tolist():
        a, b = set(lc[i]), set(bc[i])
        local_only[i], backend_only[i] = sorted(a - b), sorted(b - a)
    lq, bq = local["quiz"], backend["quiz"]
    quiz_better = _objects(({} for _ in range(n)), n)
    quiz_differ = both & ~np.asarray(lq == bq, dtype=bool)
    for i in np.flatnonzero(quiz_differ).tolist():
        mine, theirs = lq[i] or {}, bq[i] or {}
        quiz_better[i] = {
            q: "local" if mine.get(q, -np.inf) > theirs.get(q, -np.inf) else "backend"
            for q in sorted(set(mine) | set(theirs))
            if mine.get(q) != theirs.get(q)
        }
    lw, bw = local["watch_seconds"], backend["watch_seconds"]
    watches = both & (lw != None) & (bw != None)  # noqa: E711 (object arrays)
    watch_better = np.full(n, "", dtype=object)
    watch_better[watches] = np.where(lw[watches] > bw[watches], "local", "backend")
    watch_better[watches & (lw == bw)] = ""
    differs = {
        f"differs_{name}": both
        & pd.notna(local[field])
        & pd.notna(backend[field])
        & ~np.asarray(local[field] == backend[field], dtype=bool)
        for name, field in _DIFFERS.items()
    }
    counts = differs.pop("differs_chapters_completed")
    differs = {"differs_chapters": differ | counts, **differs}
    return local_only, backend_only, quiz_better, watch_better, differs


def _review_lines(rows: pd.DataFrame) -> np.ndarray:
    """The reason and notes ``review.sql`` gives each review key (``[]`` for others)."""
    out = _objects(([] for _ in range(len(rows))), len(rows))
    positions = np.flatnonzero((rows["action"] == Action.REVIEW.value).to_numpy())
    records = rows.iloc[positions].to_dict("records")
    for i, record in zip(positions.tolist(), records, strict=True):
        entry = _review_entry(record, "t", certificate=False)
        fix = [line for line in entry if line.startswith("fix:")]
        keep = [line for line in entry if line.startswith(("reason:", "note:"))]
        if fix and fix[0] == "fix:":
            keep.append("fix: a suggested UPDATE, commented out, for a person to run")
        elif fix:
            keep.append(fix[0].split(";")[0] + ": compare the row with the browser record")
        out[i] = keep
    return out


def _repair_sentence(rows: pd.DataFrame, review: np.ndarray) -> np.ndarray:
    action = rows["action"].to_numpy(dtype=object)
    backend_id = _ints(rows["backend_id"])
    out = np.full(len(rows), "nothing", dtype=object)
    out[action == Action.INSERT.value] = "repair.sql inserts a new server row with these values"
    for i in np.flatnonzero(action == Action.MERGE.value).tolist():
        out[i] = f"repair.sql merges into server row id {backend_id[i]}, leaving these values"
    for i in np.flatnonzero(action == Action.REVIEW.value).tolist():
        out[i] = "review.sql: a person decides (nothing runs by itself)"
    return out


def _records_by_key(frame: pd.DataFrame, fields: tuple[str, ...]) -> dict[Any, list[dict]]:
    grouped: dict[Any, list[dict]] = {}
    for record in frame[list({*KEY, *fields})].to_dict("records"):
        line = record.get("line")
        record["line"] = None if line is None or line == "" or pd.isna(line) else int(line)
        key = (record["user_id"], record["tutorial_id"])
        grouped.setdefault(key, []).append({f: record[f] for f in fields})
    return grouped


def _attach(rows: pd.DataFrame, records: dict[Any, list[dict]], *, spill: bool) -> np.ndarray:
    """Records per row by key; with ``spill``, a user's records of no row go on their first."""
    keys = list(zip(rows["user_id"].tolist(), rows["tutorial_id"].tolist(), strict=True))
    out = _objects((records.pop(k, []) for k in keys), len(rows))
    if spill and records:
        first = {u: i for i, (u, _) in reversed(list(enumerate(keys)))}
        for (user, _), extra in records.items():
            if user in first:
                out[first[user]] = [*out[first[user]], *extra]
    return out


# --- the tables -----------------------------------------------------------------------


def card_table(
    diff: pd.DataFrame,
    quarantine: pd.DataFrame,
    foreign: pd.DataFrame,
    *,
    users: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The cards' rows: every key of ``users`` (default: the users needing attention).

    Columns: see the module docstring. ``diff`` may be the run's frame or ``diff.parquet``
    as read by :func:`pandas.read_parquet` (chapter arrays, quiz JSON text).
    """
    codes, uniques = pd.factorize(diff["user_id"])
    if users is None:
        chosen = np.bincount(codes, weights=attention(diff).to_numpy(), minlength=len(uniques))
        wanted = (chosen > 0)[codes]
    else:
        wanted = pd.Index(uniques).isin(list(users))[codes]
    rows = _exact(diff[wanted].sort_values(list(KEY), kind="stable"))
    local, backend = _side(rows, "local_"), _side(rows, "backend_")
    local_present = (rows["local_records"] > 0).to_numpy()
    backend_present = rows["backend_id"].notna().to_numpy()
    local_only, backend_only, quiz_better, watch_better, differs = _compare(
        local, backend, local_present & backend_present
    )
    solo = local_present & ~backend_present & pd.notna(local["chapters"])
    local_only[solo] = local["chapters"][solo]
    solo = backend_present & ~local_present & pd.notna(backend["chapters"])
    backend_only[solo] = backend["chapters"][solo]
    review = _review_lines(rows)
    status = rows["status"].astype(str).to_numpy(dtype=object)
    out: dict[str, Any] = {
        "user_id": rows["user_id"].astype(str).to_numpy(dtype=object),
        "tutorial_id": rows["tutorial_id"].astype(str).to_numpy(dtype=object),
        "status": status,
        "action": rows["action"].astype(str).to_numpy(dtype=object),
        "at_risk": np.isin(status, [s.value for s in AT_RISK]),
        "attention": attention(rows).to_numpy(),
        "reason": rows["reason"].astype(str).to_numpy(dtype=object),
        "local_present": local_present,
        "backend_present": backend_present,
    }
    for name, side in (("local", local), ("backend", backend)):
        out.update({f"{name}_{field}": values for field, values in side.items()})
    out.update(
        local_only_chapters=local_only,
        backend_only_chapters=backend_only,
        quiz_better=quiz_better,
        watch_better=watch_better,
        **differs,
        repair=_repair_sentence(rows, review),
    )
    out.update(_will(rows))
    claims = rows["certificate_claim"].astype(bool).to_numpy()
    out.update(
        review=review,
        certificate_claim=claims,
        claim=np.where(
            claims,
            "The browser says the certificate was earned, the server does not: review.sql "
            "asks a person to check (a repair never grants a certificate)",
            "",
        ).astype(object),
        quarantined=_attach(
            rows,
            _records_by_key(
                quarantine[quarantine["user_id"].isin(set(out["user_id"]))],
                _QUARANTINE_FIELDS,
            ),
            spill=True,
        ),
        found_in=_attach(
            rows,
            _records_by_key(
                foreign[foreign["user_id"].isin(set(out["user_id"]))],
                _FOREIGN_FIELDS,
            ),
            spill=False,
        ),
    )
    table = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in out.items()})
    quiz_local = [sum(v == "local" for v in q.values()) for q in quiz_better]
    quiz_backend = [sum(v == "backend" for v in q.values()) for q in quiz_better]
    words = [
        _words(*args)
        for args in zip(
            status,
            [len(c) for c in local_only],
            [len(c) for c in backend_only],
            quiz_local,
            quiz_backend,
            local["watch_seconds"],
            backend["watch_seconds"],
            out["reason"],
            strict=True,
        )
    ]
    table.insert(6, "words", pd.Series(words, dtype=object))
    for column in ("at_risk", "attention", "local_present", "backend_present"):
        table[column] = table[column].astype(bool)
    return table


def _will(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``will_*`` columns: the row repair.sql leaves for insert and merge keys."""
    n = len(rows)
    exact = rows
    predicted = predict_repairs(exact)
    renamed = predicted[list(PROGRESS_FIELDS)].add_prefix("will_")
    will = _side(renamed, "will_")
    out = {}
    positions = predicted.index.to_numpy()
    for field, values in will.items():
        column = np.full(n, None, dtype=object)
        column[positions] = values
        out[f"will_{field}"] = column
    return out


def user_summary(diff: pd.DataFrame) -> pd.DataFrame:
    """One row per user of the run (sorted by id): counts per status and the one-line state.

    Column-wise: the state is written once per distinct combination of counts.
    """
    codes, found = pd.factorize(diff["user_id"].astype(str))
    order = np.argsort(np.asarray(found, dtype=object), kind="stable")
    users = np.asarray(found, dtype=object)[order]
    codes = np.argsort(order)[codes]  # codes in id order
    status = pd.Categorical(diff["status"].astype(str), categories=_STATUSES).codes
    width = len(_STATUSES)
    matrix = np.bincount(codes * width + status, minlength=len(users) * width).reshape(-1, width)
    claims = np.bincount(
        codes, weights=diff["certificate_claim"].astype(bool), minlength=len(users)
    )
    quarantined = np.bincount(codes, weights=diff["quarantined_records"], minlength=len(users))
    needs = np.bincount(codes, weights=attention(diff).to_numpy(), minlength=len(users)) > 0
    extras = np.column_stack([claims, quarantined]).astype("int64")
    full = pd.DataFrame(np.hstack([matrix, extras]))
    inverse = full.groupby(list(full.columns), sort=False).ngroup().to_numpy()
    combos = full.to_numpy()[np.unique(inverse, return_index=True)[1]]  # one row per group
    states = np.array(
        [_state(c[:width], int(c[width]), int(c[width + 1])) for c in combos], dtype=object
    )
    out = pd.DataFrame({"user_id": users, "tutorials": matrix.sum(axis=1)})
    for i, name in enumerate(_STATUSES):
        out[name] = matrix[:, i]
    at_risk = [i for i, s in enumerate(_STATUSES) if s in AT_RISK]
    review = [i for i, s in enumerate(_STATUSES) if s in (Status.CONFLICT, Status.INVALID_BACKEND)]
    out["at_risk"] = matrix[:, at_risk].sum(axis=1)
    out["to_review"] = matrix[:, review].sum(axis=1)
    out["claims"] = extras[:, 0]
    out["quarantined"] = extras[:, 1]
    out["attention"] = needs
    out["state"] = states[inverse]
    return out


def _state(counts: np.ndarray, claims: int, quarantined: int) -> str:
    """A user's one-line state from their keys per status (in :data:`_STATUSES` order)."""
    by_status = {s: int(c) for s, c in zip(_STATUSES, counts, strict=True) if c}
    total = sum(by_status.values())
    tutorials = _plural(total, "tutorial")
    at_risk = sum(by_status.get(s, 0) for s in AT_RISK)
    review = by_status.get(Status.CONFLICT, 0) + by_status.get(Status.INVALID_BACKEND, 0)
    listed = ", ".join(f"{c} {s}" for s, c in by_status.items())
    if set(by_status) == {Status.BACKEND_ONLY}:
        head = PLAIN_WORDS[Status.BACKEND_ONLY] + (f" ({tutorials})" if total > 1 else "")
    elif set(by_status) == {Status.IN_SYNC}:
        head = f"{tutorials}, {'all ' if total > 1 else ''}in sync"
    elif at_risk or review:
        parts = [f"{at_risk} at risk"] if at_risk else []
        parts += [f"{review} to review"] if review else []
        head = f"{tutorials}, {' and '.join(parts)}: {listed}"
    else:
        head = f"{tutorials}, nothing to repair: {listed}"
    if claims:
        head += f"; {_plural(claims, 'certificate claim')} to review"
    if quarantined:
        head += f"; {_plural(quarantined, 'quarantined record')}"
    return head


# --- one user -------------------------------------------------------------------------


@dataclass(frozen=True)
class UserCard:
    """Everything about one user in one run: a :func:`card_table` row per tutorial."""

    user_id: str
    state: str
    tutorials: tuple[dict[str, Any], ...]
    #: The user's quarantined records, each ``{"file", "line", "key", "tutorial_id", "reason"}``.
    quarantined: tuple[dict[str, Any], ...]
    #: Records of other users found in this user's export (``foreign.csv`` rows).
    held_for_others: tuple[dict[str, Any], ...] = ()
    run_id: str = ""


def user_card(run_or_frames: Any, user_id: str) -> UserCard | None:
    """The card of ``user_id``, or ``None`` when the id is not in the run.

    ``run_or_frames``: a :class:`~reconcile.outputs.result.RunResult`, a
    :class:`~reconcile.outputs.artifacts.RunArtifacts`, or ``(diff, quarantine, foreign)``.
    """
    if isinstance(run_or_frames, tuple):
        diff, quarantine, foreign = run_or_frames
        run_id = ""
    else:
        diff, quarantine, foreign = (
            run_or_frames.diff,
            run_or_frames.quarantine,
            run_or_frames.foreign,
        )
        run_id = str(getattr(run_or_frames, "run_id", ""))
    own = diff[(diff["user_id"] == user_id).to_numpy()]
    table = card_table(own, quarantine, foreign, users=[user_id])
    tutorials = tuple(table.to_dict("records"))
    stray = quarantine[(quarantine["user_id"] == user_id).to_numpy()]
    if tutorials:
        quarantined = tuple(r for t in tutorials for r in t["quarantined"])
    else:  # records of the user but no key (a partial run): list them all the same
        quarantined = tuple(
            r for rs in _records_by_key(stray, _QUARANTINE_FIELDS).values() for r in rs
        )
    held = foreign[(foreign["export_user_id"] == user_id).to_numpy()]
    held_for_others = tuple(
        r
        for rs in _records_by_key(held, ("user_id", "tutorial_id", "file", "line", "key")).values()
        for r in rs
    )
    if not tutorials and not held_for_others and stray.empty:
        return None
    if tutorials:
        state = str(user_summary(own)["state"].iloc[0])
    else:
        state = "no tutorial of this user in the run"
    if held_for_others:
        state += f"; their export held {_plural(len(held_for_others), 'record')} of other users"
    return UserCard(
        user_id=user_id,
        state=state,
        tutorials=tutorials,
        quarantined=quarantined,
        held_for_others=held_for_others,
        run_id=run_id,
    )


def render_text(card: UserCard | None, *, color: bool, user_id: str = "") -> str:
    """The card for a terminal (:func:`reconcile.outputs.card_text.render`): ANSI colour
    only when ``color``; control characters in untrusted text are escaped."""
    from reconcile.outputs.card_text import render

    return render(card, color=color, user_id=user_id)
