"""The report of a generated run of ~25,000 keys: small enough, and every user findable.

Stands in for the 1,000,000-key run (``bench/bench_report.py`` measures that one): the
page must keep within the issue's budget of 10 MB per 1,000,000 keys (plus a fixed
allowance for the page's own code and charts), and the last actionable user in id order,
the one a list cut at some size would lose first, must open with its card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconcile.config import Config
from reconcile.demo.run import build_dataset, load_backend_rows, write_exports
from reconcile.model import ACTIONABLE
from reconcile.pipeline import run_job
from tests.outputs.test_report import Page, browser  # noqa: F401 (the module's fixture)

pytestmark = pytest.mark.slow

#: The issue's budget: 10 MB for 1,000,000 keys.
BYTES_PER_KEY = 10
#: The page's script, style, charts and tables, whatever the size of the run.
FIXED = 100_000


def test_a_generated_run_fits_the_budget_and_its_last_user_opens(
    browser: Any,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    dataset = build_dataset(users=11_000)
    write_exports(tmp_path / "exports", dataset)
    config = Config()
    load_backend_rows(database_url, config.schema, config.table, dataset.backend)
    result = run_job(
        database_url=database_url,
        exports=[tmp_path / "exports"],
        out=tmp_path / "out",
        config=config,
    )
    keys = len(result.diff)
    assert 20_000 <= keys <= 50_000
    report = result.run_dir / "index.html"
    size = report.stat().st_size
    assert size <= FIXED + BYTES_PER_KEY * keys, (size, keys)

    diff = result.diff
    actionable = diff.loc[diff["status"].isin([s.value for s in ACTIONABLE]), "user_id"]
    last = max(actionable)
    quiet = diff.groupby("user_id")["status"].agg(set)
    synced = max(u for u, s in quiet.items() if s == {"in_sync"})

    page = Page(browser, report)
    try:
        card = page.lookup(last)
        assert card.locator("h3").inner_text() == last
        assert card.locator("article.key").count() == int((diff["user_id"] == last).sum())
        assert "repair.sql" in card.inner_text() or "review.sql" in card.inner_text()
        # A key with nothing to do, of a user with a card: its dates are left out, said so.
        mixed = max(u for u, s in quiet.items() if "in_sync" in s and s & set(ACTIONABLE))
        text = page.lookup(mixed).inner_text()
        assert "its dates are in diff.parquet" in text and " UTC" in text
        calm = page.lookup(synced)  # a user with nothing to do is known, not unknown
        assert "in sync" in calm.locator(".verdict").inner_text()
        page.clean()
    finally:
        page.close()
