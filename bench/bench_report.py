"""The support report of the 1,000,000-key run, measured in Chromium (not a test).

    python bench/bench_report.py [--keys 1000000] [--users 200000] [--seed 20260120]
                                 [--url URL] [--out DIR] [--artifacts DIR]

Runs the whole job on the cached benchmark dataset of ``bench/bench_run.py`` (its exports,
and its table in schema ``reconcile_bench`` of ``--url``: default
``$RECONCILE_BENCH_DATABASE_URL``, else the URL in ``/tmp/prof/url``; the table is loaded
from the dataset's ``backend.csv`` when missing), renders the report again to time it, then
opens ``index.html`` from disk in headless Chromium (Debian's ``/usr/bin/chromium``) and
measures: the page's size, the time until it is interactive (the page's data decoded and
indexed: ``body[data-ready]``), the time of a lookup (typing an id and Enter, until the
card is in the DOM: in-page ``performance.now()`` and as Playwright sees it), and that every
user with a repair or review is found with keys and every other user of the run is known.
Screenshots of the headline and of a card go to ``--artifacts`` (default
``tests/artifacts/``). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOOKUP = """([id, prefix]) => {
  const box = document.getElementById("lookup");
  const start = performance.now();
  box.value = prefix; box.dispatchEvent(new Event("input"));
  const typed = performance.now();
  box.value = id; box.dispatchEvent(new Event("input"));
  box.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter"}));
  const card = document.querySelector("#card .usercard h3");
  return {prefix_ms: typed - start, open_ms: performance.now() - typed,
          found: card ? card.textContent : null};
}"""
COVERAGE = """(ids) => {
  let missing = 0, empty = 0;
  for (const id of ids) {
    const seen = window.reconcileLookup(id);
    if (seen === null) missing += 1; else if (seen.keys === 0) empty += 1;
  }
  return {missing, empty};
}"""


def _bench_run() -> Any:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "bench_run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _url(given: str | None) -> str:
    if given:
        return given
    if url := os.environ.get("RECONCILE_BENCH_DATABASE_URL"):
        return url
    return Path("/tmp/prof/url").read_text(encoding="utf-8").strip()


def _ensure_table(bench: Any, url: str, folder: Path) -> None:
    from reconcile.db import connect

    with connect(url) as conn:
        found = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{bench.SCHEMA}.tutorial_progress",)
        ).fetchone()
    if not (found and found[0]):
        print("bench: loading the table from backend.csv", file=sys.stderr)
        bench.load_table(url, folder / "backend.csv")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The job, the report's render time, and its figures in Chromium."""
    from reconcile.config import Config
    from reconcile.model import ACTIONABLE
    from reconcile.outputs.report.html import render_report
    from reconcile.pipeline import run_job

    bench = _bench_run()
    folder = bench.dataset_folder(args.cache, args.keys, args.users, args.seed)
    url = _url(args.url)
    _ensure_table(bench, url, folder)
    clock = time.perf_counter()
    result = run_job(
        database_url=url,
        exports=[folder / "exports"],
        out=args.out,
        config=Config(schema=bench.SCHEMA),
    )
    figures: dict[str, Any] = {"run_job_s": time.perf_counter() - clock, "keys": len(result.diff)}
    clock = time.perf_counter()
    render_report(result, docs_link=None)
    figures["render_s"] = time.perf_counter() - clock
    diff = result.diff
    actionable = diff["status"].isin([s.value for s in ACTIONABLE]).to_numpy()
    figures["users"] = int(diff["user_id"].nunique())
    acting = sorted(set(diff.loc[actionable, "user_id"]))
    quiet = sorted(set(diff["user_id"]) - set(acting))
    figures["actionable_users"] = len(acting)
    report = result.run_dir / "index.html"
    figures["page_bytes"] = report.stat().st_size
    figures.update(_browser(report, acting, quiet, args.artifacts))
    return figures


def _browser(report: Path, acting: list[str], quiet: list[str], artifacts: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        clock = time.perf_counter()
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-ready]", timeout=120_000)
        out["interactive_wall_s"] = time.perf_counter() - clock
        out["interactive_page_ms"] = int(page.locator("body").get_attribute("data-ready") or 0)
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "report-1m-headline.png"))
        samples = [acting[-1], acting[0], acting[len(acting) // 2], quiet[-1], quiet[0]]
        timings = [page.evaluate(LOOKUP, [u, u[: max(1, len(u) - 2)]]) for u in samples]
        assert all(t["found"] == u for t, u in zip(timings, samples, strict=True)), timings
        out["lookup_open_ms"] = max(t["open_ms"] for t in timings)
        out["lookup_prefix_ms"] = max(t["prefix_ms"] for t in timings)
        walls = []
        for user in samples:
            clock = time.perf_counter()
            page.fill("#lookup", user)
            page.press("#lookup", "Enter")
            page.wait_for_selector("#card .usercard h3")
            walls.append(time.perf_counter() - clock)
        out["lookup_wall_ms"] = 1000 * statistics.median(walls)
        page.fill("#lookup", acting[-1])  # the card shown: the last user with a repair or review
        page.press("#lookup", "Enter")
        page.locator("#card").screenshot(path=str(artifacts / "report-1m-card.png"))
        out["actionable_not_found"] = page.evaluate(COVERAGE, acting)
        out["quiet_not_found"] = page.evaluate(COVERAGE, quiet)["missing"]
        out["page_errors"] = len(errors)
        browser.close()
    out["screenshots"] = [
        str(artifacts / n) for n in ("report-1m-headline.png", "report-1m-card.png")
    ]
    return out


def table(f: dict[str, Any]) -> str:
    rows = [
        (
            "keys / users / users with a repair or review",
            f"{f['keys']:,} / {f['users']:,} / {f['actionable_users']:,}",
        ),
        ("`run_job` (writes the report)", f"{f['run_job_s']:.1f} s"),
        ("`render_report` alone", f"{f['render_s']:.1f} s"),
        ("**index.html size**", f"**{f['page_bytes'] / 1e6:.2f} MB**"),
        (
            "**interactive in Chromium** (page clock / wall)",
            f"**{f['interactive_page_ms'] / 1000:.2f} s** / {f['interactive_wall_s']:.2f} s",
        ),
        (
            "**lookup**: id + Enter to card in the DOM (worst of 5)",
            f"**{f['lookup_open_ms']:.1f} ms**",
        ),
        ("prefix suggestions (worst of 5)", f"{f['lookup_prefix_ms']:.1f} ms"),
        ("lookup as Playwright sees it (median)", f"{f['lookup_wall_ms']:.0f} ms"),
        (
            "users with a repair or review: unknown / without keys",
            f"{f['actionable_not_found']['missing']} / {f['actionable_not_found']['empty']}",
        ),
        ("other users unknown to the lookup", str(f["quiet_not_found"])),
        ("page errors", str(f["page_errors"])),
    ]
    lines = ["| report of the run | figure |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    lines.append("")
    lines += [f"screenshot: {s}" for s in f["screenshots"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20260120)
    parser.add_argument("--url", help="PostgreSQL URL (schema reconcile_bench)")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reconcile-bench"
    parser.add_argument("--cache", type=Path, default=cache)
    parser.add_argument("--out", type=Path, default=Path("/tmp/reconcile-bench-report"))
    parser.add_argument("--artifacts", type=Path, default=ROOT / "tests" / "artifacts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(table(run(args)))


if __name__ == "__main__":
    main()
