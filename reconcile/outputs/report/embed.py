"""The data the report page embeds: every user of the run, and the cards to show.

One JSON document, column-wise: each text column dictionary-encoded as ``[uniques,
codes]`` (code -1: no value), users as indexes into one sorted list of ids, tutorials
into one list of ids. It is gzip-compressed and base64-encoded (:func:`pack`); the page
decodes it with the browser's ``DecompressionStream``.

The words, side values and the values ``repair.sql`` will write come from the card model
(:func:`reconcile.outputs.cards.card_table`, :func:`~reconcile.outputs.cards.user_summary`);
this module only turns them into display text (``h:mm:ss`` is the model's) and columns.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd

from reconcile.model import AT_RISK, Status
from reconcile.outputs import cards
from reconcile.outputs.result import RunResult

#: Quarantined records embedded at most (quarantine.csv has all); a user's come first.
MAX_QUARANTINE: Final = 50_000
#: A run with at most this many keys embeds the card of every user; a larger one embeds
#: the cards of users who need attention (:func:`reconcile.outputs.cards.attention`), and
#: for the others their one-line state ("2 tutorials, all in sync").
SMALL_RUN_KEYS: Final = 5_000

#: Worklist group of each status, for the badges and the lists.
GROUPS: Final[dict[str, str]] = {
    **{s.value: "risk" for s in AT_RISK},
    Status.CONFLICT.value: "review",
    Status.INVALID_BACKEND.value: "review",
    Status.IN_SYNC.value: "ok",
    Status.BACKEND_AHEAD.value: "ok",
    Status.BACKEND_ONLY.value: "ok",
    Status.INVALID_LOCAL.value: "other",
    Status.FOREIGN_USER.value: "other",
}
#: Order of the keys in the worklists: the at-risk statuses, then review.
WORKLIST_ORDER: Final = (
    Status.MISSING_IN_BACKEND.value,
    Status.LOCAL_AHEAD.value,
    Status.DIVERGED.value,
    Status.CONFLICT.value,
    Status.INVALID_BACKEND.value,
)

#: The card's table, one row each: label, then the column of the browser's value, the
#: server's, what repair.sql writes, and the card model's highlight flag.
CARD_ROWS: Final = (
    ("chapters", "chapters", "differs_chapters"),
    ("completion", "completion", "differs_completion"),
    ("quiz scores", "quiz", "differs_quiz"),
    ("watch time", "watch", "differs_watch"),
    ("certificate", "certificate", "differs_certificate"),
    ("started", "started_at", "differs_started_at"),
    ("completed", "completed_at", "differs_completed_at"),
    ("last accessed", "last_accessed_at", "differs_last_accessed_at"),
)
_TIMES: Final = ("started_at", "completed_at", "last_accessed_at")
#: Under a key whose dates a large run's page leaves out.
DATES_LEFT_OUT: Final = "Nothing to do here; its dates are in diff.parquet."
#: What the page's script reads: column names of ``keys.cols``.
CARD_SPEC: Final = {
    "words": "words",
    "action": "action_text",
    "writes": "writes",
    "extra": "extra",
    "rows": [[label, f"local_{f}", f"backend_{f}", f"will_{f}"] for label, f, _ in CARD_ROWS],
}


def payload(result: RunResult) -> tuple[dict[str, Any], str]:
    """The page's data, and a sentence on what it leaves out (``""`` when nothing)."""
    diff = result.diff
    status_names = [s.value for s in Status]
    summary = cards.user_summary(diff)
    users = _users(result)
    index = pd.Index(users)
    states = _states(summary, users, result.quarantine)
    small = len(diff) <= SMALL_RUN_KEYS
    table = cards.card_table(
        diff, result.quarantine, result.foreign, users=users if small else None
    )
    user_of_key = index.get_indexer(table["user_id"])
    order = np.lexsort((np.arange(len(table)), user_of_key))  # the page's user order
    table = table.iloc[order].reset_index(drop=True)
    user_of_key = user_of_key[order]
    tutorials = pd.Index(pd.unique(diff["tutorial_id"].astype(object)))
    quarantine, note = _quarantine(result.quarantine, index, tutorials)
    quiet = np.ones(len(users), dtype=np.int8)
    quiet[index.get_indexer(summary.loc[summary["attention"].to_numpy(), "user_id"])] = 0
    uniques, codes = dictionary(pd.Series(states, dtype=object))
    data = {
        "users": users,
        "summary": codes,
        "summaries": uniques,
        "quiet": quiet.tolist(),
        "statuses": status_names,
        "groups": GROUPS,
        "worklist_order": list(WORKLIST_ORDER),
        "tutorials": [str(t) for t in tutorials],
        "keys": {
            "u": user_of_key.tolist(),
            "t": tutorials.get_indexer(table["tutorial_id"]).tolist(),
            "s": pd.Categorical(table["status"], categories=status_names).codes.tolist(),
            "claim": table["certificate_claim"].to_numpy(dtype=bool).astype(np.int8).tolist(),
            "differs": _differs(table).tolist(),
            "cols": _columns(_display(table, dated=None if small else table["attention"])),
        },
        "card": CARD_SPEC,
        "quarantine": quarantine,
        "foreign": _foreign(result.foreign, index, tutorials),
    }
    return data, note


def _users(result: RunResult) -> list[str]:
    """Every user of the run (keys, quarantine, foreign records) in JavaScript's order.

    JavaScript compares strings by UTF-16 code units, so the page's binary search needs
    them sorted that way (Python's order differs above U+FFFF).
    """
    ids = pd.concat(
        [
            result.diff["user_id"],
            result.quarantine["user_id"].dropna(),
            result.foreign["user_id"].dropna(),
        ],
        ignore_index=True,
    )
    unique = ids.astype(object).unique()
    return sorted((str(u) for u in unique), key=_utf16)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def _states(summary: pd.DataFrame, users: list[str], quarantine: pd.DataFrame) -> list[str]:
    """Each user's one-line state; a user known only from the exports' rejects gets one."""
    states = pd.Series(summary["state"].to_numpy(), index=summary["user_id"].to_numpy())
    out = states.reindex(users)
    missing = out.isna().to_numpy()
    if missing.any():
        rejected = quarantine["user_id"].value_counts()
        for i in np.flatnonzero(missing).tolist():
            n = int(rejected.get(users[i], 0))
            out.iloc[i] = (
                f"no usable record: {n} quarantined record{'' if n == 1 else 's'}"
                if n
                else "only named in another user's export"
            )
    return [str(s) for s in out.tolist()]


def dictionary(values: pd.Series) -> list[Any]:
    """``[uniques, codes]``: a column as its distinct values and one code a row (-1: none)."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    return [[str(u) for u in uniques], codes.tolist()]


def _columns(display: dict[str, pd.Series]) -> dict[str, list[Any]]:
    """Each display column dictionary-encoded; a value equal to its row's value in an
    earlier column of the same field (server = browser, written = browser or server) is
    stored as a reference to it: code ``-2 - k`` reads column ``refs[k]``.

    A time column is ``["t", seconds, refs]`` instead: Unix seconds (the page writes them
    as ISO 8601 UTC), ``None``, or the text ``"k"`` for the row of column ``refs[k]``.
    """
    out: dict[str, list[Any]] = {}
    for name, column in display.items():
        side, _, field = name.partition("_")
        earlier = {"backend": ["local"], "will": ["local", "backend"]}.get(side, [])
        refs = [f"{other}_{field}" for other in earlier if f"{other}_{field}" in display]
        if field in _TIMES:
            out[name] = ["t", _times(column, [display[r] for r in refs]), refs]
            continue
        uniques, codes = dictionary(column)
        if refs:
            same = np.zeros(len(column), dtype=bool)
            codes_array = np.asarray(codes)
            for k, ref in enumerate(refs):
                match = (column.to_numpy() == display[ref].to_numpy()) & column.notna().to_numpy()
                codes_array[match & ~same] = -2 - k
                same |= match
            uniques, kept = dictionary(column.where(~same, None))
            codes_array[~same] = np.asarray(kept)[~same]
            codes = codes_array.tolist()
        out[name] = [uniques, codes, refs] if refs else [uniques, codes]
    return out


def _seconds(values: pd.Series) -> pd.Series:
    """ISO 8601 texts as whole Unix seconds (``None`` where there is none)."""
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    known = stamps.notna().to_numpy()
    seconds = stamps.to_numpy(dtype="datetime64[s]").astype("int64")
    return pd.Series(np.where(known, seconds, None), dtype=object)


def _times(column: pd.Series, earlier: list[pd.Series]) -> list[Any]:
    values = column.to_numpy(dtype=object).copy()
    known = column.notna().to_numpy()
    taken = np.zeros(len(values), dtype=bool)
    for k, ref in enumerate(earlier):
        same = known & ~taken & (column.to_numpy() == ref.to_numpy())
        values[same] = str(k)
        taken |= same
    return values.tolist()


def _differs(table: pd.DataFrame) -> np.ndarray:
    """One bit per :data:`CARD_ROWS` row: the card model says the two sides differ there."""
    bits = np.zeros(len(table), dtype=np.int64)
    for bit, (_, _, flag) in enumerate(CARD_ROWS):
        bits |= table[flag].to_numpy(dtype=bool).astype(np.int64) << bit
    return bits


def _display(table: pd.DataFrame, *, dated: pd.Series | None) -> dict[str, pd.Series]:
    """The card model's values as the text the card shows, one column per cell.

    ``dated``: the keys whose dates are embedded (None: all). The dates of a key with
    nothing to do cost a large run's page a sixth of its size and tell support nothing.
    """
    with_dates = np.ones(len(table), dtype=bool) if dated is None else dated.to_numpy(dtype=bool)
    out: dict[str, pd.Series] = {
        "words": table["words"],
        "action_text": _action_text(table),
        "writes": pd.Series("repair.sql will write", index=table.index, dtype=object).where(
            table["will_chapters_completed"].notna(), None
        ),
        "extra": _extra(table, ~with_dates),
    }
    for side in ("local", "backend", "will"):
        present = (
            table[f"{side}_present"].to_numpy(dtype=bool)
            if side != "will"
            else table["will_chapters_completed"].notna().to_numpy()
        )
        for _, field, _ in CARD_ROWS:
            if field == "chapters":
                column = _texts(table, side, _chapters_text)
            elif field in _TIMES:
                column = _seconds(table[f"{side}_{field}"]).where(with_dates, None)
            else:
                column = _map(table[f"{side}_{field}"], _FORMAT.get(field, str))
            out[f"{side}_{field}"] = column.where(present, None)
    return out


def _chapters_text(row: tuple[Any, Any, Any]) -> str | None:
    chapters, done, total = row
    if done is None and chapters is None:
        return None
    head = f"{'?' if done is None else done} of {'?' if total is None else total}"
    if chapters is None:
        return f"{head} (a count only: which chapters is unknown)"
    return f"{head}: {', '.join(chapters)}" if chapters else head


def _texts(
    table: pd.DataFrame, side: str, make: Callable[[tuple[Any, Any, Any]], Any]
) -> pd.Series:
    columns = [f"{side}_chapters", f"{side}_chapters_completed", f"{side}_total_chapters"]
    rows = zip(*(table[c].tolist() for c in columns), strict=True)
    return pd.Series([make(r) for r in rows], dtype=object)


def _map(values: pd.Series, show: Callable[[Any], str]) -> pd.Series:
    """``show`` once per distinct value (dicts as their JSON), ``None`` kept."""
    plain = values.tolist()
    keys = [
        orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if isinstance(v, dict) else v for v in plain
    ]
    cache: dict[Any, str | None] = {}
    out = []
    for key, value in zip(keys, plain, strict=True):
        if key not in cache:
            cache[key] = None if value is None else show(value)
        out.append(cache[key])
    return pd.Series(out, dtype=object)


def _quiz(scores: dict[str, float]) -> str:
    return ", ".join(f"{q}: {s:g}" for q, s in sorted(scores.items())) or "none"


_FORMAT: Final[dict[str, Callable[[Any], str]]] = {
    "completion": lambda v: f"{v:g}%",
    "quiz": _quiz,
    "certificate": lambda v: "yes" if v else "no",
}


def _action_text(table: pd.DataFrame) -> pd.Series:
    review = [" · ".join(lines) for lines in table["review"].tolist()]
    repair = table["repair"].astype(str).tolist()
    return pd.Series(
        [f"{a} — {r}" if r else a for a, r in zip(repair, review, strict=True)], dtype=object
    )


def _extra(table: pd.DataFrame, undated: np.ndarray) -> pd.Series:
    """Chapters only one side has, a certificate claim, dates left out: under the table."""
    out = []
    rows = zip(
        table["local_only_chapters"].tolist(),
        table["backend_only_chapters"].tolist(),
        table["claim"].tolist(),
        undated.tolist(),
        strict=True,
    )
    for local, backend, claim, left_out in rows:
        parts = [f"Only the browser has: {', '.join(local)}"] if local else []
        parts += [f"Only the server has: {', '.join(backend)}"] if backend else []
        parts += [claim] if claim else []
        parts += [DATES_LEFT_OUT.rstrip(".")] if left_out else []
        out.append(". ".join(parts) or None)
    return pd.Series(out, dtype=object)


def _quarantine(
    frame: pd.DataFrame, users: pd.Index, tutorials: pd.Index
) -> tuple[dict[str, Any], str]:
    note = ""
    if len(frame) > MAX_QUARANTINE:
        order = np.argsort(frame["user_id"].isna().to_numpy(), kind="stable")[:MAX_QUARANTINE]
        frame = frame.iloc[np.sort(order)]
        note = (
            f"The quarantine worklist shows {MAX_QUARANTINE:,} records (those of a known "
            "user first); quarantine.csv holds every one."
        )
    return {**_located(frame, users, tutorials), "reason": dictionary(frame["reason"])}, note


def _foreign(frame: pd.DataFrame, users: pd.Index, tutorials: pd.Index) -> dict[str, Any]:
    return {
        **_located(frame, users, tutorials),
        "exporter": dictionary(frame["export_user_id"]),
    }


def _located(frame: pd.DataFrame, users: pd.Index, tutorials: pd.Index) -> dict[str, Any]:
    """User and tutorial indexes (-1: none), file, line (-1: none) and key of each record."""
    return {
        "u": users.get_indexer(frame["user_id"]).tolist(),
        "t": tutorials.get_indexer(frame["tutorial_id"]).tolist(),
        "file": dictionary(frame["file"]),
        "line": frame["line"].astype("Int64").fillna(-1).astype("int64").tolist(),
        "key": dictionary(frame["key"]),
    }


def pack(data: dict[str, Any]) -> str:
    """gzip + base64 of the JSON of ``data``.

    orjson refuses lone surrogates (ids may hold them); the standard library writes them
    as ``\\udxxx`` escapes, which JavaScript's JSON.parse reads back as the same code unit.
    """
    try:
        text = orjson.dumps(data)
    except orjson.JSONEncodeError:
        text = json.dumps(data, ensure_ascii=True).encode("ascii")
    return base64.b64encode(gzip.compress(text, compresslevel=6, mtime=0)).decode("ascii")
