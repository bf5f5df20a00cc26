"""The user card in a terminal (``reconcile user``): plain text, ANSI colour when asked.

Every untrusted text (ids, chapter ids, quiz names, file names, reasons) goes through
:func:`safe`, so no control character of the data reaches the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import click

from reconcile.outputs.cards import NOT_IN_RUN, UserCard
from reconcile.quoting import printable


def safe(value: Any) -> str:
    """Untrusted text for a terminal: control characters (ESC, CR, LF, ...) as ``\\uXXXX``."""
    return printable(str(value))


_ROWS: Final[tuple[tuple[str, str], ...]] = (  # label, highlight
    ("chapters", "chapters"),
    ("only this side", "chapters"),
    ("total chapters", "total_chapters"),
    ("completion", "completion"),
    ("quiz scores", "quiz"),
    ("watch time", "watch"),
    ("certificate", "certificate"),
    ("started", "started_at"),
    ("completed", "completed_at"),
    ("last accessed", "last_accessed_at"),
)
_DASH: Final = "-"


def _cells(t: Mapping[str, Any], side: str) -> list[str]:
    """The card's rows for one side (``local``, ``backend`` or ``will``) as text."""
    if side != "will" and not t[f"{side}_present"]:
        return [_DASH] * len(_ROWS)
    if side == "will" and t["will_chapters_completed"] is None:
        return [_DASH] * len(_ROWS)
    better = t["quiz_better"]
    chapters = t[f"{side}_chapters"]
    count = f"{_text(t[f'{side}_chapters_completed'])}/{_text(t[f'{side}_total_chapters'])}"
    quiz = t[f"{side}_quiz"] or {}
    only = t.get(f"{side}_only_chapters") or []
    watch = _text(t[f"{side}_watch"])
    if t["watch_better"] == side:
        watch += " (more)"
    completion = t[f"{side}_completion"]
    return [
        count if chapters is not None or side == "will" else f"{count} (count only, no ids)",
        ", ".join(safe(c) for c in only) or _DASH,
        _text(t[f"{side}_total_chapters"]),
        _DASH if completion is None else f"{completion:.2f} %",
        ", ".join(
            f"{safe(q)} {s:g}" + (" (better)" if better.get(q) == side else "")
            for q, s in quiz.items()
        )
        or _DASH,
        watch,
        {True: "yes", False: "no"}.get(t[f"{side}_certificate"], _DASH),
        _text(t[f"{side}_started_at"]),
        _text(t[f"{side}_completed_at"]),
        _text(t[f"{side}_last_accessed_at"]),
    ]


def _text(value: Any) -> str:
    return _DASH if value is None else safe(value)


def _chapter_lines(t: Mapping[str, Any]) -> list[str]:
    """The chapter ids under the table: those both sides hold, or the one side's."""
    local, backend = t["local_chapters"], t["backend_chapters"]
    if local is not None and backend is not None:
        both = sorted(set(local) & set(backend))
        return [f"  chapters on both sides: {', '.join(safe(c) for c in both) or _DASH}"]
    if not (t["local_present"] and t["backend_present"]):
        return []  # the one side's ids are all in "only this side"
    for side, chapters in (("browser", local), ("server", backend)):
        if chapters is not None:
            return [f"  chapter ids ({side}): {', '.join(safe(c) for c in chapters) or _DASH}"]
    return []


def _tutorial(t: Mapping[str, Any], style: Any) -> list[str]:
    status = t["status"] + (" (at risk)" if t["at_risk"] else "")
    lines = [
        style(f"{safe(t['tutorial_id'])}: {status}", bold=True, fg="red" if t["at_risk"] else None),
        f"  {safe(t['words'])}",
    ]
    sides = ["local", "backend"] + (["will"] if t["will_chapters_completed"] is not None else [])
    heads = {"local": "browser (local)", "backend": "server (backend)", "will": "after repair.sql"}
    columns = [_cells(t, side) for side in sides]
    widths = [
        max(len(heads[s]), *(len(c) for c in col)) for s, col in zip(sides, columns, strict=True)
    ]
    label_width = max(len(label) for label, _ in _ROWS)
    head = "  ".join(heads[s].ljust(w) for s, w in zip(sides, widths, strict=True))
    lines.append(f"    {'':<{label_width}}  {head}".rstrip())
    for r, (label, highlight) in enumerate(_ROWS):
        if label == "only this side" and not (
            t["local_only_chapters"] or t["backend_only_chapters"]
        ):
            continue
        differs = bool(t.get(f"differs_{highlight}"))
        cells = []
        for side, col, width in zip(sides, columns, widths, strict=True):
            pad = " " * (width - len(col[r]))
            ahead = (
                side in ("local", "backend")
                and col[r] != _DASH
                and (
                    (label == "only this side")
                    or (label == "watch time" and t["watch_better"] == side)
                    or (label == "quiz scores" and side in t["quiz_better"].values())
                )
            )
            cells.append((style(col[r], fg="green") if ahead else col[r]) + pad)
        mark = "* " if differs else "  "
        row = f"  {mark}{style(label.ljust(label_width), fg='yellow' if differs else None)}  "
        lines.append((row + "  ".join(cells)).rstrip())
    lines += _chapter_lines(t)
    lines.append(f"  why: {safe(t['reason'])}")
    lines.append(f"  repair: {safe(t['repair'])}")
    if t["will_chapters"] is not None:
        ids = ", ".join(safe(c) for c in t["will_chapters"]) or _DASH
        lines.append(f"    chapter ids it writes: {ids}")
    lines += [f"    {safe(line)}" for line in t["review"] if line != f"reason: {t['reason']}"]
    if t["certificate_claim"]:
        lines.append(f"  certificate: {safe(t['claim'])}")
    for found in t["found_in"]:
        lines.append(
            f"  found in the export of user {safe(found['export_user_id'])}: "
            f"{safe(found['file'])}, line {_text(found['line'])} (key {safe(found['key'])})"
        )
    return lines


def render(card: UserCard | None, *, color: bool, user_id: str = "") -> str:
    """The card for a terminal; ANSI colour only when ``color``. Untrusted text is escaped.

    ``None`` (an id that is not in the run) renders as one line saying so.
    """

    def style(text: str, **how: Any) -> str:
        how = {k: v for k, v in how.items() if v is not None}
        return click.style(text, **how) if color and how else text

    if card is None:
        return f"user {safe(user_id)}: {NOT_IN_RUN}\n"
    lines = [
        style(f"user {safe(card.user_id)}", bold=True)
        + (f"  (run {safe(card.run_id)})" if card.run_id else "")
    ]
    lines.append(safe(card.state))
    marker = any(t.get(f"differs_{h}") for t in card.tutorials for _, h in _ROWS)
    if marker:
        lines.append("(* marks a field where browser and server differ)")
    for t in card.tutorials:
        lines += ["", *_tutorial(t, style)]
    if card.quarantined:
        lines += ["", style(f"quarantined records ({len(card.quarantined)})", bold=True)]
        for q in card.quarantined:
            lines.append(
                f"  {safe(q['file'])}, line {_text(q['line'])}, "
                f"tutorial {_text(q['tutorial_id'])}: {safe(q['reason'])}"
            )
    if card.held_for_others:
        lines += [
            "",
            style(
                f"records of other users in this user's export ({len(card.held_for_others)})",
                bold=True,
            ),
        ]
        for r in card.held_for_others:
            lines.append(
                f"  user {safe(r['user_id'])}, tutorial {safe(r['tutorial_id'])}: "
                f"{safe(r['file'])}, line {_text(r['line'])}"
            )
    return "\n".join(lines) + "\n"
