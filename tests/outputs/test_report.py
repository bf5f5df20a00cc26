"""The support report, opened from disk in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile.config import Config
from reconcile.pipeline import run_job
from tests import small_fixture
from tests.small_fixture import CASES, HOSTILE

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is required: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def report(database_url: str, tmp_path: Path) -> Path:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    result = run_job(
        database_url=database_url, exports=[exports], out=tmp_path / "out", config=Config()
    )
    return result.run_dir / "index.html"


def test_report_opens_offline_and_finds_a_user(browser, report: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(report.as_uri())

    assert [u for u in requests if not u.startswith("file://")] == []
    assert page.locator("#run-id").inner_text() == report.parent.name
    statuses = page.locator("#statuses tbody tr")
    assert statuses.count() == 10

    # Hostile ids are shown as text, never run or parsed as markup.
    assert dialogs == []
    assert page.locator("#keys script, #keys img").count() == 0
    hostile_cell = page.locator("#keys td.id", has_text="DROP TABLE").first
    assert hostile_cell.inner_text() == HOSTILE

    # Support looks a user up: only that user's rows stay visible, with both sides.
    page.fill("#lookup", "u-ahead")
    visible = page.locator("#keys tbody tr:visible")
    assert visible.count() == 1
    row = visible.first.inner_text()
    assert "local_ahead" in row and "2/4 chapters" in row and "1/4 chapters" in row
    assert "merge" in row
    page.fill("#lookup", "")
    expected_rows = sum(c.status != "backend_only" for c in CASES)
    assert page.locator("#keys tbody tr:visible").count() == expected_rows


def test_report_screenshot_renders(browser, report: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(report.as_uri())
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
