"""The user card: golden terminal cards for every status, the command, hostile ids, scale.

The small documented fixture (one user per status, a hostile id) runs through the real
job on a real PostgreSQL. When a change to the card is meant, regenerate and review the
files in ``git diff``::

    RECONCILE_UPDATE_GOLDEN=1 python -m pytest tests/outputs/test_cards.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest

from reconcile.model import Status
from reconcile.outputs.artifacts import load_run
from reconcile.outputs.cards import (
    NOT_IN_RUN,
    card_table,
    key_words,
    render_text,
    user_card,
    user_summary,
)
from tests.small_fixture import CASES, HOSTILE
from tests.test_golden import UPDATE, pinned_fixture_run

GOLDEN = Path(__file__).parent.parent / "golden" / "cards"
REPO = Path(__file__).parent.parent.parent

#: One golden card per status (the fixture's first user of each), and three more cases.
USERS: dict[str, str] = {
    **{status.value: next(c.user for c in CASES if c.status == status) for status in Status},
    "certificate_claim": "u-cert",
    "hostile_id": HOSTILE,
    "export_holder": "u-host",  # no key of their own; their export held u-guest's record
}
#: Control characters a hostile id could use on a terminal: clear, title, bell, CR, LF.
EVIL = "evil\x1b[2J\x1b]0;owned\x07\r\nfake line\x1b[31m"


def reconcile(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconcile", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )


def test_the_card_of_every_status_matches_its_golden_file(
    database_url: str, tmp_path: Path
) -> None:
    result = pinned_fixture_run(database_url, tmp_path)
    got = {}
    for name, user in USERS.items():
        card = user_card(result, user)
        assert card is not None, user
        text = render_text(card, color=False)
        assert click.unstyle(render_text(card, color=True)) == text
        got[name] = text.replace(str(tmp_path), "<tmp>")
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in got.items():
            (GOLDEN / f"{name}.txt").write_text(text, encoding="utf-8")
    for name, text in got.items():
        path = GOLDEN / f"{name}.txt"
        assert path.is_file(), f"no {path}: run RECONCILE_UPDATE_GOLDEN=1 pytest {__file__}"
        assert text == path.read_text(encoding="utf-8"), f"{name}: card differs from {path}"
    # What support must read on the card, in plain words.
    assert "The browser has 1 chapter the server never received" in got["local_ahead"]
    assert "the migration lost it" in got["missing_in_backend"]
    assert "repair.sql inserts" in got["missing_in_backend"]
    assert "backend only: no local data received" in got["backend_only"]
    assert "export of user u-host" in got["foreign_user"]
    assert "completion_percentage is 150.0" in got["invalid_local"]  # quarantine reason
    assert "0:15:00 (more)" in got["backend_ahead"] or "c2, c3" in got["backend_ahead"]
    assert user_card(result, "nobody") is None
    assert render_text(None, color=False, user_id="nobody") == f"user nobody: {NOT_IN_RUN}\n"


def test_the_command_finds_users_and_escapes_hostile_ids(database_url: str, tmp_path: Path) -> None:
    run_dir = pinned_fixture_run(database_url, tmp_path).run_dir
    # A run whose diff holds an id full of terminal control characters (u-ahead's key).
    diff = pd.read_parquet(run_dir / "diff.parquet")
    evil = diff[diff["user_id"] == "u-ahead"].assign(user_id=EVIL, tutorial_id=EVIL + "-t")
    pd.concat([diff, evil], ignore_index=True).to_parquet(run_dir / "diff.parquet")

    found = reconcile("user", "u-ahead", "--out", str(tmp_path / "out"))  # the latest run
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("user u-ahead") and "\x1b" not in found.stdout  # no TTY
    assert "The browser has 1 chapter the server never received" in found.stdout

    hostile = reconcile("user", EVIL, "--run", str(run_dir), "--color")
    assert hostile.returncode == 0, hostile.stderr
    shown = hostile.stdout
    for raw in ("\x1b[2J", "\x1b]", "\x07", "\r", "\nfake line", "line\x1b[31m"):
        assert raw not in shown  # the id's own control characters never reach the terminal
    assert shown.count("\n") == render_text(user_card(load_run(run_dir), EVIL), color=False).count(
        "\n"
    )
    assert "evil\\u001b[2J\\u001b]0;owned\\u0007\\u000d\\u000afake line" in click.unstyle(shown)

    unknown = reconcile("user", "nobody\x1b[2J", "--run", str(run_dir))
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip() == (
        f'reconcile: user "nobody\\u001b[2J" is {NOT_IN_RUN} {run_dir.name}'
    )


@pytest.mark.parametrize(
    "args",
    [("--run", "no-such-run"), ("--out", "no-such-folder"), ()],
    ids=["missing --run", "empty --out", "no reports folder"],
)
def test_no_run_folder_is_a_one_line_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = reconcile("user", "u-ahead", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("reconcile: error: ")
    assert "Traceback" not in done.stderr


def test_card_table_of_a_200000_key_diff_equals_each_users_own_card(
    database_url: str, tmp_path: Path
) -> None:
    """Column-wise on a big frame gives, row for row, what each user's card gives alone."""
    result = pinned_fixture_run(database_url, tmp_path)
    one = result.diff
    copies = -(-200_000 // len(one))
    big = pd.concat([one] * copies, ignore_index=True)
    copy = np.repeat(np.arange(copies), len(one))
    big["user_id"] = big["user_id"].astype(str) + "#" + pd.Series(copy).astype(str).str.zfill(5)
    assert len(big) >= 200_000
    quarantine, foreign = result.quarantine.head(0), result.foreign.head(0)

    table = card_table(big, quarantine, foreign)
    summary = user_summary(big)

    alone = card_table(one, quarantine, foreign).drop(columns="user_id")
    assert len(table) == len(alone) * copies
    first_copy = table[table["user_id"].str.endswith("#00000")].drop(columns="user_id")
    last_copy = table[table["user_id"].str.endswith(f"#{copies - 1:05d}")].drop(columns="user_id")
    for part in (first_copy, last_copy):
        pd.testing.assert_frame_equal(part.reset_index(drop=True), alone)
    sample = table.sample(500, random_state=1).to_dict("records")
    assert all(row["words"] == key_words(row) for row in sample)
    assert len(summary) == len(one["user_id"].unique()) * copies
    assert summary["tutorials"].sum() == len(big)
    assert set(table["user_id"]) == set(summary.loc[summary["attention"], "user_id"])
    states = dict(zip(summary["user_id"], summary["state"], strict=True))
    assert states[f"u-sync#{copies - 1:05d}"] == "1 tutorial, in sync"
    assert states["u-bonly#00000"] == "backend only: no local data received"
