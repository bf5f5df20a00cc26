"""Geometry of the report's inline SVG charts; the template draws them (and escapes).

Figures come from the run result as it is: counts per status, the two completion columns
of the diff, the at-risk keys' tutorials, the dashboard's days and the history's nights.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from reconcile.model import AT_RISK, Status
from reconcile.outputs.report.embed import GROUPS
from reconcile.outputs.result import RunResult

WIDTH: Final = 380
_ROW: Final = 18
_BINS: Final = 10


def run_charts(result: RunResult) -> dict[str, Any]:
    """Keys per status, completion local vs backend, at risk per tutorial, records per day."""
    status = hbars(
        "keys per status", [(s.value, result.counts[s.value], GROUPS[s.value]) for s in Status]
    )
    diff = result.diff
    risky = diff["status"].isin([s.value for s in AT_RISK]).to_numpy()
    top = diff.loc[risky, "tutorial_id"].value_counts().head(10)
    tutorials = hbars(
        "at-risk keys per tutorial", [(str(t), int(n), "risk") for t, n in top.items()]
    )
    days = list(reversed(result.dashboard.get("per_day", {}).get("days", [])))
    return {
        "status": status,
        "completion": _completion(diff),
        "tutorials": tutorials,
        "days": vbars(
            "records per day",
            [[(d["date"], int(d["total_progress_records"]), "bar")] for d in days],
            ticks=[d["date"][5:] for d in days],
        ),
    }


def hbars(title: str, items: list[tuple[str, int, str]]) -> dict[str, Any]:
    """Horizontal bars: one ``(label, value, css class)`` a row."""
    label_width = 150
    room = WIDTH - label_width - 60
    top = max((v for _, v, _ in items), default=0) or 1
    bars = [
        {
            "label": label if len(label) <= 24 else label[:23] + "…",
            "y": i * _ROW,
            "w": round(room * value / top, 1),
            "text": f"{value:,}",
            "cls": cls,
        }
        for i, (label, value, cls) in enumerate(items)
    ]
    return {
        "title": title,
        "width": WIDTH,
        "height": max(_ROW, len(items) * _ROW),
        "label_width": label_width,
        "bars": bars,
    }


def vbars(
    title: str,
    groups: list[list[tuple[str, int, str]]],
    *,
    ticks: list[str],
    legend: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """Vertical bars: one group of ``(label, value, css class)`` bars per tick."""
    left, top, base, height = 30, 16, 120, 136
    room = base - top
    highest = max((v for g in groups for _, v, _ in g), default=0) or 1
    slot = (WIDTH - left) / max(1, len(groups))
    bars, tick_marks = [], []
    every = max(1, len(groups) // 8)
    for i, group in enumerate(groups):
        width = min(28.0, max(1.0, (slot - 2) / max(1, len(group))))
        for j, (label, value, cls) in enumerate(group):
            h = round(room * value / highest, 1)
            bars.append(
                {
                    "x": round(left + i * slot + (slot - width * len(group)) / 2 + j * width, 1),
                    "y": round(base - h, 1),
                    "w": round(width, 1),
                    "h": h,
                    "cls": cls,
                    "label": label,
                    "text": f"{value:,}",
                }
            )
        if i % every == 0:
            tick_marks.append({"x": round(left + (i + 0.5) * slot, 1), "text": ticks[i]})
    return {
        "title": title,
        "width": WIDTH,
        "height": height,
        "top": top,
        "base": base,
        "max_text": _short(highest),
        "bars": bars,
        "ticks": tick_marks,
        "legend": [{"x": left + 90 * k, "cls": c, "text": t} for k, (c, t) in enumerate(legend)],
    }


def _completion(diff: pd.DataFrame) -> dict[str, Any]:
    """Keys per completion decile on each side (a side without a value is left out)."""
    edges = np.linspace(0, 100, _BINS + 1)
    counts = {}
    for side in ("local", "backend"):
        values = pd.to_numeric(diff[f"{side}_completion_percentage"], errors="coerce")
        values = values.to_numpy(dtype=float, na_value=np.nan)
        counts[side] = np.histogram(np.clip(values[np.isfinite(values)], 0, 100), edges)[0]
    groups = [
        [
            (f"local {lo:.0f}–{lo + 10:.0f}%", int(counts["local"][i]), "local"),
            (f"backend {lo:.0f}–{lo + 10:.0f}%", int(counts["backend"][i]), "backend"),
        ]
        for i, lo in enumerate(edges[:-1])
    ]
    return vbars(
        "completion local vs backend",
        groups,
        ticks=[f"{lo:.0f}" for lo in edges[:-1]],
        legend=(("local", "local"), ("backend", "backend")),
    )


def trend(nights: list[dict[str, Any]]) -> dict[str, Any]:
    """Two polylines over the nights: success rate (0-100%) and keys at risk (0-max)."""
    width, height, pad = 360, 70, 14
    n = len(nights)
    risks = [int(x.get("at_risk") or 0) for x in nights]
    risk_max = max(risks, default=0) or 1
    xs = [pad + (width - 2 * pad) * i / max(1, n - 1) for i in range(n)]

    def points(values: list[float]) -> str:
        room = height - 2 * pad
        return " ".join(
            f"{x:.1f},{height - pad - room * v:.1f}" for x, v in zip(xs, values, strict=True)
        )

    rates = [float(x.get("migration_success_rate") or 0) for x in nights]
    return {
        "nights": n,
        "width": width,
        "height": height,
        "rate": points(rates),
        "risk": points([r / risk_max for r in risks]),
        "risk_max": f"{risk_max:,}",
        "first": f"{nights[0]['run_id']}" if nights else "",
        "last": f"{nights[-1]['run_id']}" if nights else "",
    }


def _short(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.0f}k"
    return str(value)
