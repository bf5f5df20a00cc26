"""Data Docs open from disk in Chromium with no network, and each check links to its page.

One run of the suites on a small backend with two failing expectations, hostile ids
among the failing rows; one headless Chromium for the module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from reconcile.validate.data_docs import CSP, offline_page
from reconcile.validate.suites import ChecksOutcome
from tests.validate.test_records import backend_frame, clean_records, record
from tests.validate.test_suites import BACKEND_CHECKS, LOCAL_CHECKS, run

HOSTILE_USER = "<script>alert('u')</script>"
HOSTILE_TUTORIAL = "\"><img src=x onerror=alert('t')></td>"
RANGE = "backend_progress.expect_column_values_to_be_between.completion_percentage"
UNIQUE = "backend_progress.expect_compound_columns_to_be_unique.user_id,tutorial_id"


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ChecksOutcome]:
    run_dir = tmp_path_factory.mktemp("run")
    twice = record(user=HOSTILE_USER, tutorial=HOSTILE_TUTORIAL, completion_percentage=150.0)
    backend = backend_frame([*clean_records(), twice, dict(twice)])
    return run_dir, run(backend, docs_dir=run_dir / "data-docs")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def open_from_disk(browser: Browser, path: Path) -> dict[str, Any]:
    """Load ``path`` as file://; what it requested, logged, popped up, and its text."""
    page = browser.new_page()
    seen: dict[str, Any] = {"requests": [], "errors": [], "dialogs": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on(
        "console", lambda m: seen["errors"].append(m.text) if m.type in ("error", "warning") else 0
    )
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    seen["text"] = page.inner_text("body")
    seen["scripts"] = page.locator("script").count()
    seen["images"] = page.locator("img").count()
    page.close()
    return seen


def validation_page(run_dir: Path, suite: str) -> Path:
    (page,) = (run_dir / "data-docs" / "validations" / suite).rglob("*.html")
    return page


def test_pages_open_offline_and_show_the_failed_expectations(
    outcome: tuple[Path, ChecksOutcome], browser: Browser
) -> None:
    run_dir, checks = outcome
    failed = {c.name for c in checks.checks if not c.success}
    assert failed == {RANGE, UNIQUE}
    docs = run_dir / "data-docs"
    pages = [
        docs / "index.html",
        validation_page(run_dir, "backend_progress"),
        docs / "expectations" / "backend_progress.html",
    ]
    seen = {page.name: open_from_disk(browser, page) for page in pages}

    for name, page in seen.items():
        assert [u for u in page["requests"] if not u.startswith("file://")] == [], name
        assert page["errors"] == [] and page["dialogs"] == [], name
        assert page["scripts"] == 0 and page["images"] == 0, name
    # The index's tables, drawn by jQuery in GX, are plain HTML now: each suite's status.
    index = seen["index.html"]["text"]
    assert re.search(r"Failed\s+\S+\s.*backend_progress", index)
    assert re.search(r"Success\s+\S+\s.*local_exports", index)
    result = seen[pages[1].name]["text"]
    assert "values must be greater than or equal to 0.0 and less than or equal to 100.0" in result
    assert "2 unexpected values found" in result
    assert "Values for given compound columns must be unique together" in result
    assert not (docs / "static").exists()  # 4 MB of fonts and logos nothing needs


def test_hostile_ids_in_failing_rows_display_as_text(
    outcome: tuple[Path, ChecksOutcome], browser: Browser
) -> None:
    run_dir, _ = outcome
    page = validation_page(run_dir, "backend_progress")
    html = page.read_text(encoding="utf-8")
    assert HOSTILE_USER not in html and "<img" not in html  # escaped by GX, not dropped by us

    seen = open_from_disk(browser, page)

    assert HOSTILE_USER in seen["text"] and HOSTILE_TUTORIAL in seen["text"]
    assert seen["dialogs"] == [] and seen["scripts"] == 0 and seen["images"] == 0


def test_each_check_links_to_its_section_of_its_suites_page(
    outcome: tuple[Path, ChecksOutcome],
) -> None:
    run_dir, checks = outcome
    assert set(checks.docs_pages) == set(BACKEND_CHECKS + LOCAL_CHECKS)
    for name, link in checks.docs_pages.items():
        path, _, anchor = link.partition("#")
        target = (run_dir / path).resolve()
        assert target.is_file() and target.is_relative_to(run_dir.resolve()), link
        assert target == validation_page(run_dir, name.split(".")[0]).resolve()
        assert f'id="{anchor}"' in target.read_text(encoding="utf-8"), link
    # The anchor is the column's section (or the table-level one) of the page.
    page = validation_page(run_dir, "backend_progress").read_text(encoding="utf-8")
    for name, heading in [(RANGE, "completion_percentage"), (UNIQUE, "Table-Level Expectations")]:
        anchor = checks.docs_pages[name].partition("#")[2]
        section = page[page.index(f'id="{anchor}"') :]
        assert re.match(rf'id="{anchor}".*?<h5[^>]*>\s*{heading}\s*</h5>', section, re.S)


def test_rewrite_leaves_nothing_that_runs_or_fetches() -> None:
    page = offline_page(
        "<!DOCTYPE html><html><head><meta charset='UTF-8'>"
        '<link rel="stylesheet" href="https://cdn.example/b.css"><style>a{}</style>'
        '<script src="https://cdn.example/j.js"></script></head><body>'
        '<img src="https://cdn.example/logo.png" alt="Logo &amp; co">'
        '<div style="background:url(https://x.example/a.png)" onclick="go()">x &lt;b&gt;</div>'
        '<a href="javascript:alert(1)">j</a><a href="../index.html">home</a>'
        '<iframe src="https://x.example"></iframe><video poster="//x.example/p.png"></video>'
        '<table id="t-body-table" data-toggle="table"></table>'
        "<script>$('#t-body-table').bootstrapTable(Object.assign({"
        "columns: [{'field': 'ok', 'title': 'Status'}, {'field': 'name', 'title': 'Suite'}],"
        "\n data: [{'ok': '<i class=\"fas fa-times\"></i>', '_ok_text': 'Failed',"
        " 'name': 'b&lt;', '_table_row_link_path': 'validations/b.html'}],"
        "\n toolbar: '#t'}, {}));</script></body></html>"
    ).html

    assert not re.search(r"<(script|link|iframe|img)\b|\bon\w+=|url\(|javascript:|//x\.|cdn", page)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}"'.replace("'", "&#x27;") in (
        page
    )
    assert "Logo &amp; co" in page and "x &lt;b&gt;" in page and 'href="../index.html"' in page
    assert (
        '<td><a href="validations/b.html"><i class="fas fa-times"></i>'
        '<span class="ge-status-text">Failed</span></a></td>'
        '<td><a href="validations/b.html">b&lt;</a></td>'
    ) in page
