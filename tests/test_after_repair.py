"""The night after a repair finds nothing new: demo data, run, apply, run again.

The repair must never write a row the job's own validation rejects, and its own inserts
must not look like a count anomaly the next night.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconcile.config import Config
from reconcile.demo.run import build_dataset, load_backend_rows, write_exports
from reconcile.model import AT_RISK, Status
from reconcile.pipeline import run_job
from reconcile.repair.apply import apply_repair
from reconcile.validate.nights import MIN_NIGHTS_FOR_BAND

pytestmark = pytest.mark.slow


def _statuses(run_dir: Path) -> dict[tuple[str, str], str]:
    import pandas as pd

    diff = pd.read_parquet(run_dir / "diff.parquet", columns=["user_id", "tutorial_id", "status"])
    return dict(zip(zip(diff.user_id, diff.tutorial_id, strict=True), diff.status, strict=True))


def test_the_night_after_a_repair_finds_nothing_new(database_url: str, tmp_path: Path) -> None:
    config = Config()
    dataset = build_dataset(users=400)
    exports = tmp_path / "exports"
    write_exports(exports, dataset)
    load_backend_rows(database_url, config.schema, config.table, dataset.backend)
    out = tmp_path / "out"

    for _ in range(MIN_NIGHTS_FOR_BAND):  # enough good nights for the count bands
        first = run_job(database_url=database_url, exports=[exports], out=out, config=config)
    assert first.totals.at_risk > 0  # the demo plants lost progress
    applied = apply_repair(database_url, first.run_dir, dry_run=False, config=config)
    assert applied.inserted + applied.merged == first.actions["insert"] + first.actions["merge"]

    second = run_job(database_url=database_url, exports=[exports], out=out, config=config)
    before, after = _statuses(first.run_dir), _statuses(second.run_dir)
    for status in (Status.INVALID_BACKEND, Status.CONFLICT):
        new = {k for k, s in after.items() if s == status and before.get(k) != status}
        assert new == set(), f"the repair made {status} keys: {sorted(new)[:5]}"
    assert second.totals.at_risk == 0
    assert not any(s in {a.value for a in AT_RISK} for s in after.values())
    summary = json.loads((second.run_dir / "summary.json").read_text(encoding="utf-8"))
    first_failed = {c["name"] for c in first.summary["checks"] if not c["success"]}
    new_failures = [
        c for c in summary["checks"] if not c["success"] and c["name"] not in first_failed
    ]
    assert new_failures == [], "the repair made checks fail the next night"
