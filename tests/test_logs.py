"""The log: quiet text by default, one JSON object a line with --log-format json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from tests import small_fixture
from tests.small_fixture import CASES
from tests.test_config import clean_env, reconcile


def test_json_logs_parse_line_by_line_with_stages_and_a_final_summary(
    database_url: str, tmp_path: Path
) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    args = ["--database-url", database_url, "--exports", str(exports), "--out", str(tmp_path)]
    done = reconcile("run", *args, "--log-format", "json")

    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == str(next(tmp_path.glob("2*")))  # stdout: the run folder only
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    stages = {line["stage"]: line for line in lines if "stage" in line}
    assert {"load_backend", "load_exports", "validate_and_compare", "write"} <= set(stages)
    assert stages["load_backend"]["rows"] == sum(c.backend is not None for c in CASES)
    assert stages["load_exports"]["files"] >= 1 and stages["load_exports"]["rows"] > 0
    assert all(isinstance(s["seconds"], float) for s in stages.values())
    final = lines[-1]
    assert final["exit_code"] == 1 and final["run_dir"] == done.stdout.strip()
    assert final["at_risk"] > 0 and "failed_checks" in final
    summary = json.loads((Path(final["run_dir"]) / "summary.json").read_text())
    assert final["at_risk"] == summary["at_risk"]


def test_text_logs_are_quiet_by_default_and_one_line_per_stage_with_v(
    database_url: str, tmp_path: Path
) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    args = ["--database-url", database_url, "--exports", str(exports)]
    quiet = reconcile("run", *args, "--out", str(tmp_path / "a"))
    verbose = reconcile("-v", "run", *args, "--out", str(tmp_path / "b"))

    assert quiet.returncode == verbose.returncode == 1
    assert quiet.stderr == ""  # cron mails nothing but what was asked for
    stage_lines = [line for line in verbose.stderr.splitlines() if " stage " in line]
    assert any("stage load_backend took" in line and " rows" in line for line in stage_lines)
    assert "exit 1 by actionable>0" in verbose.stderr.splitlines()[-1]
    assert "\x1b[" not in verbose.stderr  # no progress bar when stderr is not a terminal


def test_progress_bars_only_when_stderr_is_a_terminal(database_url: str, tmp_path: Path) -> None:
    """On a terminal the loading stages draw bars (files, bytes); the run's outputs stay."""
    import fcntl
    import pty
    import struct
    import termios

    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    args = ["--database-url", database_url, "--exports", str(exports), "--out", str(tmp_path)]
    env = clean_env()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a window
    drawn = bytearray()

    def read_screen() -> None:  # the terminal's side, read while the run draws
        while True:
            try:
                block = os.read(leader, 65536)
            except OSError:  # the run closed the terminal
                return
            if not block:
                return
            drawn.extend(block)

    reader = threading.Thread(target=read_screen, daemon=True)
    reader.start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "reconcile", "run", *args],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=300,
            env=env,
        )
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    assert run.returncode == 1
    screen = bytes(drawn).decode("utf-8", "replace")
    assert "exports" in screen and "file" in screen  # the exports bar, a file at a time
    assert "backend" in screen
    assert run.stdout.decode().strip() == str(next(tmp_path.glob("2*")))
