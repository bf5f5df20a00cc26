"""The nightly Checkpoint of ``<out>/gx/``: results accumulate in one offline Data Docs site.

Two nights of the small fixture (real PostgreSQL) into one output folder; the site opens
from disk in headless Chromium; an analyst runs the Checkpoint with the README's snippet;
a night that did not finish is removed by the next one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from reconcile.config import Config
from reconcile.pipeline import run_job
from reconcile.validate.suites import GX_DIR, PENDING, SITE_DIR, UNREADABLE
from tests.small_fixture import write_backend, write_exports
from tests.validate.test_data_docs import browser, open_from_disk

__all__ = ["browser"]  # the module's headless Chromium, shared with test_data_docs

README = Path(__file__).parents[2] / "README.md"
NOW = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)
NIGHTS = ("20260120T080000Z-aaaa", "20260121T080000Z-bbbb")


def night(url: str, exports: Path, out: Path, run_id: str, day: int) -> Any:
    return run_job(
        database_url=url,
        exports=[exports],
        out=out,
        config=Config(),
        now=NOW + timedelta(days=day),
        run_id=run_id,
    )


@pytest.fixture
def two_nights(database_url: str, tmp_path: Path) -> tuple[str, Path, list[Any]]:
    write_backend(database_url)
    exports = write_exports(tmp_path / "exports")
    out = tmp_path / "out"
    results = [night(database_url, exports, out, run_id, i) for i, run_id in enumerate(NIGHTS)]
    return database_url, out, results


def site_index(out: Path) -> Path:
    return out / GX_DIR / SITE_DIR / "index.html"


def stored_results(out: Path) -> list[Path]:
    return sorted((out / GX_DIR / "uncommitted" / "validations").rglob("*.json"))


def test_two_nights_accumulate_in_one_offline_site(
    two_nights: tuple[str, Path, list[Any]], browser: Browser
) -> None:
    _, out, results = two_nights
    index = site_index(out)
    # Each night: one result per suite, kept in the project; nothing pending.
    assert len(stored_results(out)) == 4
    assert not any((out / GX_DIR / "uncommitted" / PENDING).iterdir())

    seen = open_from_disk(browser, index)

    assert [u for u in seen["requests"] if not u.startswith("file://")] == []
    assert seen["errors"] == [] and seen["scripts"] == 0 and seen["images"] == 0
    for run_id in NIGHTS:  # both nights, both suites, listed on the one index
        assert len(re.findall(rf"{run_id}.*?(backend_progress|local_exports)", seen["text"])) >= 2
    pages = sorted((index.parent / "validations").rglob("*.html"))
    assert len(pages) == 4 and not (index.parent / "static").exists()
    html = index.read_text(encoding="utf-8")
    assert html.count("Content-Security-Policy") == 1  # rewritten once, not once per night
    for page in pages:
        assert "<script" not in page.read_text(encoding="utf-8"), page

    # Each run folder keeps its own night only, and links to the accumulated site.
    for result, run_id, other in zip(results, NIGHTS, reversed(NIGHTS), strict=True):
        # docs_index was named while the run folder was still the temporary one.
        assert result.docs_index.parts[-2:] == ("data-docs", "index.html")
        own_index = result.run_dir / "data-docs" / "index.html"
        own = open_from_disk(browser, own_index)
        assert run_id in own["text"] and other not in own["text"]
        link = re.search(r'class="reconcile-link"><a href="([^"]+)"', own_index.read_text())
        assert link and (own_index.parent / link[1]).resolve() == index.resolve()
        for check, page in result.docs_pages.items():
            assert (result.run_dir / page.partition("#")[0]).is_file(), check


def readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Great Expectations: the nightly Checkpoint") :]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]  # type: ignore[index]


def test_an_analyst_runs_the_checkpoint_with_the_readme_snippet(
    two_nights: tuple[str, Path, list[Any]], browser: Browser
) -> None:
    url, out, results = two_nights
    code = readme_snippet().replace("/srv/reconcile/out", str(out))
    namespace: dict[str, Any] = {"DATABASE_URL": url}

    exec(compile(code, "README snippet", "exec"), namespace)

    result = namespace["result"]
    (suite,) = [key.expectation_suite_identifier.name for key in result.run_results]
    assert suite == "backend_progress"
    # The same checks as the night's: the same outcome for each expectation.
    nightly = {c.name: c.success for c in results[-1].checks if c.suite == suite}
    assert result.success == all(nightly.values())
    assert len(stored_results(out)) == 5  # stored beside the nights'

    # The next night adds the analyst's result to the site, offline.
    write_exports(out.parent / "exports")
    night(url, out.parent / "exports", out, "20260122T080000Z-cccc", 2)
    pages = sorted((site_index(out).parent / "validations").rglob("*.html"))
    assert len(pages) == 7
    seen = open_from_disk(browser, site_index(out))
    assert seen["scripts"] == 0 and [u for u in seen["requests"] if "file://" not in u] == []


def test_a_night_that_did_not_finish_leaves_nothing_behind(
    two_nights: tuple[str, Path, list[Any]],
) -> None:
    url, out, _ = two_nights
    gx = out / GX_DIR
    # A killed run: results of a night whose run folder never came, and a result cut short.
    (first,) = [p for p in stored_results(out) if NIGHTS[0] in str(p) and "backend" in str(p)]
    killed = Path(str(first).replace(NIGHTS[0], "20260121T120000Z-dead"))
    killed.parent.mkdir(parents=True)
    killed.write_bytes(first.read_bytes())
    (gx / "uncommitted" / PENDING / "20260121T120000Z-dead").touch()
    cut = Path(str(first).replace(NIGHTS[0], "20260121T130000Z-half"))
    cut.parent.mkdir(parents=True)
    cut.write_bytes(first.read_bytes()[:100])

    result = night(url, out.parent / "exports", out, "20260122T080000Z-cccc", 2)

    assert not killed.exists() and not cut.exists()
    assert (gx / "uncommitted" / UNREADABLE / cut.relative_to(gx)).is_file()
    index = site_index(out).read_text(encoding="utf-8")
    assert "dead" not in index and "half" not in index
    assert all(run_id in index for run_id in (*NIGHTS, result.run_id))
    assert len(stored_results(out)) == 6


def test_a_misspelled_expectation_still_exits_2(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconcile.cli import main
    from reconcile.config import DEFAULT_EXPECTATIONS_DIR

    suites = tmp_path / "suites"
    suites.mkdir()
    data = json.loads((DEFAULT_EXPECTATIONS_DIR / "backend_progress.json").read_text())
    data["expectations"][0]["type"] = "expect_column_values_to_be_betwen"
    (suites / "backend_progress.json").write_text(json.dumps(data))
    config = tmp_path / "reconcile.toml"
    config.write_text(f'[validation]\nexpectations_dir = "{suites}"\n')
    write_backend(database_url)
    out = tmp_path / "out"
    argv = ["run", "--config", str(config), "--database-url", database_url]
    argv += ["--exports", str(write_exports(tmp_path / "exports")), "--out", str(out)]

    assert main(argv) == 2

    assert "expect_column_values_to_be_betwen" in capsys.readouterr().err
    assert not (out / GX_DIR).exists()  # nothing written: not even the GX project
