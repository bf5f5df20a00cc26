"""Worker processes: started without re-running the caller's script, dead with the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
from reconcile.workers import worker_pool
print("script ran", flush=True)
with worker_pool(2) as pool:
    print(pool.map(abs, [-1, -2]), flush=True)
"""


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    """``spawn`` would run an unguarded script again in every worker, forever."""
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script ran", "[1, 2]"]
