"""The support report, opened from disk in a real headless Chromium.

One run of :mod:`tests.small_fixture` (a user of every status, hostile ids) serves the
module; each test opens the page once. Screenshots go to ``$RECONCILE_TEST_ARTIFACTS``
(default ``tests/artifacts/``, git-ignored); the card of each status is compared with
``tests/golden/report_cards/<status>.html`` (``RECONCILE_UPDATE_GOLDEN=1`` rewrites them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from reconcile.config import Config
from reconcile.db import libpq_url, parse_url
from reconcile.model import Status
from reconcile.outputs.report.html import render_report
from reconcile.outputs.result import RunResult
from reconcile.pipeline import run_job
from tests import small_fixture
from tests.small_fixture import CASES, HOSTILE

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "report_cards"
ARTIFACTS = Path(os.environ.get("RECONCILE_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
#: What the card says each action does.
ACTION_WORDS = {
    "insert": "repair.sql inserts a new server row",
    "merge": "repair.sql merges into server row id",
    "review": "review.sql: a person decides",
    "none": "nothing",
}
#: Hostile user ids beyond the fixture's: each must show literally and run nothing.
HOSTILE_IDS = (HOSTILE, '"><img src=x onerror=alert(2)>', "</script><script>alert(3)</script>")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is required: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def module_database(server_url: str) -> Iterator[str]:
    """A database of this module's own (the shared ``database_url`` is per test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield parse_url(server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def run(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    small_fixture.write_backend(module_database)
    folder = tmp_path_factory.mktemp("report")
    exports = small_fixture.write_exports(folder / "exports")
    _hostile_exports(exports)
    return run_job(
        database_url=module_database, exports=[exports], out=folder / "out", config=Config()
    )


@pytest.fixture(scope="module")
def report(run: RunResult) -> Path:
    return run.run_dir / "index.html"


def _hostile_exports(folder: Path) -> None:
    """One more export per hostile id: a missing_in_backend key each."""
    cases = [
        small_fixture.Case(
            u, "t<b>", "missing_in_backend", "hostile", None, [small_fixture.row(["c1"])]
        )
        for u in HOSTILE_IDS[1:]
    ]
    lines = [json.dumps(e) for e in small_fixture.exports(cases)]
    (folder / "hostile.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


class Page:
    """One page of the report, with what it asked the network, alerted and logged."""

    def __init__(self, browser: Any, report: Path, **options: Any) -> None:
        self.page = browser.new_page(**options)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.goto(report.as_uri())
        self.page.wait_for_selector("body[data-ready]", timeout=15_000)

    def lookup(self, user: str) -> Any:
        """Type ``user`` in the lookup and press Enter; the card (or unknown) element."""
        self.page.fill("#lookup", user)
        self.page.press("#lookup", "Enter")
        return self.page.locator("#card .usercard")

    def clean(self) -> None:
        assert [u for u in self.requests if not u.startswith("file://")] == []
        assert self.dialogs == []
        assert self.errors == []

    def close(self) -> None:
        self.page.close()


def _user_of(status: str) -> small_fixture.Case:
    return next(c for c in CASES if c.status == status)


def test_every_status_card_shows_both_sides_and_the_repair(browser: Any, report: Path) -> None:
    page = Page(browser, report)
    try:
        for status in Status:
            case = _user_of(status.value)
            card = page.lookup(case.user)
            assert card.locator("h3").inner_text() == case.user
            block = card.locator(f"article.status-{status.value}")
            assert block.count() == 1, status
            text = block.inner_text()
            assert "browser (local exports)" in text or status is Status.FOREIGN_USER
            assert "server (backend row)" in text or status is Status.FOREIGN_USER
            action = small_fixture_action(status)
            assert ACTION_WORDS[action] in text, (status, text)
            if action in ("insert", "merge"):
                assert "repair.sql will write" in text
            _golden(status.value, card.inner_html())
        ahead = page.lookup("u-ahead").inner_text()
        assert "2 of 4: c1, c2" in ahead and "1 of 4: c1" in ahead
        assert "Only the browser has: c2" in ahead
        assert page.page.locator("#card tr.differs").count() >= 1
        guest = page.lookup("u-guest").inner_text()
        assert "u-host" in guest and "batch.json" in guest  # the export that held it
        page.clean()
    finally:
        page.close()


def small_fixture_action(status: Status) -> str:
    from reconcile.model import ACTION_BY_STATUS

    return ACTION_BY_STATUS[status].value


def _golden(status: str, html: str) -> None:
    """The card's HTML, with the run's paths made stable, against its golden file."""
    normal = re.sub(r"/[^<>\"]*/exports/", "EXPORTS/", html)
    normal = re.sub(r"server row id \d+", "server row id N", normal)
    normal = re.sub(r"(<(?:article|h3|h4|p|table|div|section)[ >])", r"\n\1", normal).strip() + "\n"
    path = GOLDEN / f"{status}.html"
    if os.environ.get("RECONCILE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(normal, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with RECONCILE_UPDATE_GOLDEN=1"
    assert normal == path.read_text(encoding="utf-8"), f"{path} differs"


def test_backend_only_and_unknown_are_told_apart(browser: Any, report: Path) -> None:
    page = Page(browser, report)
    try:
        known = page.lookup("u-bonly")
        assert "backend only: no local data received" in known.locator(".verdict").inner_text()
        assert "unknown" not in (known.get_attribute("class") or "")
        unknown = page.lookup("u-nobody")
        assert "unknown" in (unknown.get_attribute("class") or "")
        assert unknown.locator(".verdict").inner_text().startswith("Unknown user")
        synced = page.lookup("u-two")
        assert "in sync" in synced.locator(".verdict").inner_text()
        page.clean()
    finally:
        page.close()


def test_hostile_ids_show_literally_and_run_nothing(browser: Any, report: Path) -> None:
    page = Page(browser, report)
    try:
        policy = page.page.locator("meta[http-equiv=Content-Security-Policy]").get_attribute(
            "content"
        )
        assert policy and "default-src 'none'" in policy
        assert "unsafe" not in policy
        for user in HOSTILE_IDS:
            card = page.lookup(user)
            assert card.locator("h3").inner_text() == user
            assert "unknown" not in (card.get_attribute("class") or "")
        risk = page.page.locator("#work-risk tbody")
        for user in HOSTILE_IDS:
            assert risk.locator("td.id", has_text=user[:12]).first.inner_text() == user
        assert (
            page.page.locator("#card script, #card img, #worklists script, #worklists img").count()
            == 0
        )
        assert page.page.locator("script").count() == 2  # the data block and ours
        page.clean()
    finally:
        page.close()


def test_keyboard_lookup_worklists_and_screenshots(browser: Any, report: Path) -> None:
    page = Page(browser, report, viewport={"width": 1280, "height": 900})
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(ARTIFACTS / "report-headline.png"))
        assert page.page.locator("#headline svg, #charts svg").count() >= 3
        page.page.locator("body").press("/")
        assert page.page.evaluate("document.activeElement.id") == "lookup"
        page.page.keyboard.type("u-b")
        options = page.page.locator("#suggestions li")
        assert options.all_inner_texts()[0].startswith("u-badback")
        assert options.count() == 4  # u-badback, u-badlocal, u-behind, u-bonly
        page.page.keyboard.press("ArrowDown")
        page.page.keyboard.press("Enter")
        assert page.page.locator("#card h3").inner_text() == "u-badlocal"
        page.lookup("u-div")
        page.page.locator("#card").screenshot(path=str(ARTIFACTS / "report-card.png"))

        # The at-risk worklist: missing_in_backend first, filtered by status and tutorial.
        risk = page.page.locator("#work-risk tbody tr")
        at_risk = sum(c.status in ("missing_in_backend", "local_ahead", "diverged") for c in CASES)
        assert risk.count() == at_risk + len(HOSTILE_IDS) - 1
        assert "missing_in_backend" in risk.first.inner_text()
        page.page.select_option("#filter-status", "diverged")
        assert risk.count() == 1 and "u-div" in risk.first.inner_text()
        page.page.select_option("#filter-status", "")
        page.page.select_option("#filter-tutorial", label="t<b>")
        assert risk.count() == len(HOSTILE_IDS) - 1
        review = page.page.locator("#work-review tbody tr")
        page.page.select_option("#filter-tutorial", "")
        assert "u-cert" in review.all_inner_texts()[-1]  # a certificate claim is reviewed
        risk.first.click()
        assert page.page.locator("#card .usercard").count() == 1
        page.clean()
    finally:
        page.close()
    assert (ARTIFACTS / "report-headline.png").stat().st_size > 10_000
    assert (ARTIFACTS / "report-card.png").stat().st_size > 5_000


def test_the_trend_draws_the_earlier_nights_and_this_one(run: RunResult, tmp_path: Path) -> None:
    """The history of the output folder (two earlier nights) and this run: three points."""
    earlier = [
        {"run_id": "20260101T000000Z-aaaa", "migration_success_rate": 0.5, "at_risk": 9},
        {"run_id": "20260102T000000Z-bbbb", "migration_success_rate": 0.7, "at_risk": 4},
    ]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(n) + "\n" for n in earlier))
    moved = dataclasses.replace(run, run_dir=tmp_path / run.run_id)
    html = render_report(moved)
    rate = re.search(r'<polyline class="line-rate" points="([^"]+)"', html)
    risk = re.search(r'<polyline class="line-risk" points="([^"]+)"', html)
    assert rate and risk
    heights = [float(p.split(",")[1]) for p in rate.group(1).split()]
    assert len(heights) == 3
    assert heights[0] > heights[1]  # 50% drawn lower than 70%
    assert "3 nights, oldest left." in html
    a = run.actions
    assert a["insert"] and a["merge"] and a["review"] and a["certificate_review"]
    assert (
        f"keys repair.sql restores: {a['insert']} insert · {a['merge']} merge; review.sql lists "
        f"{a['review']} review · {a['certificate_review']} certificate review"
    ) in html
    alone = render_report(dataclasses.replace(run, run_dir=tmp_path / "empty" / run.run_id))
    assert "<polyline" not in alone and "The trend starts with the next run" not in html
