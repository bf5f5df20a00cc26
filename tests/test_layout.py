"""The layout's promises: pure stages import no I/O module of the project."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = ("reconcile.rules", "reconcile.compare.merge", "reconcile.compare.status")
PURE_REPAIR = ("reconcile.repair.scripts", "reconcile.repair.review", "reconcile.quoting")
IO = ("reconcile.db", "reconcile.sources", "reconcile.outputs", "reconcile.pipeline")


@pytest.mark.parametrize("module", [*PURE, *PURE_REPAIR])
def test_pure_stages_import_no_io(module: str) -> None:
    code = f"import sys, {module}\nprint(sorted(m for m in sys.modules if m.startswith({IO!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"{module} imports {done.stdout.strip()}"
