"""The run API for orchestrators: the README's Airflow and Dagster examples, run as written.

Airflow and Dagster are not dependencies: their decorators are stood in by ones that return
the function, so the examples' ``reconcile`` calls run on the small fixture, on PostgreSQL.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import reconcile
from tests import small_fixture

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Run from Python: Airflow and Dagster"


def _examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_run_api_is_exported() -> None:
    for name in ("run_job", "Config", "RunResult", "Execution", "prune_runs"):
        assert name in reconcile.__all__ and getattr(reconcile, name) is not None
    used = set(re.findall(r"reconcile\.(\w+)", "".join(_examples())))
    assert used == {"run_job", "Config", "Execution", "prune_runs"}
    assert all(name in reconcile.__all__ for name in used)


def _stand_ins(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    airflow = types.ModuleType("airflow")
    decorators = types.ModuleType("airflow.decorators")
    decorators.task = lambda f: f  # type: ignore[attr-defined]
    dagster = types.ModuleType("dagster")
    dagster.asset = lambda f: f  # type: ignore[attr-defined]
    dagster.AssetExecutionContext = object  # type: ignore[attr-defined]
    dagster.MaterializeResult = lambda metadata: metadata  # type: ignore[attr-defined]
    dagster.EnvVar = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
        get_value=lambda: database_url
    )
    for name, module in {
        "airflow": airflow,
        "airflow.decorators": decorators,
        "dagster": dagster,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)


def _run(example: str, exports: Path, out: Path) -> dict[str, Any]:
    code = example.replace("/data/exports/latest", str(exports)).replace("/data/reports", str(out))
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_the_readme_examples_run(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_fixture.write_backend(database_url)
    exports = small_fixture.write_exports(tmp_path / "exports")
    out = tmp_path / "reports"
    _stand_ins(monkeypatch, database_url)
    airflow, dagster = _examples()

    task = _run(airflow, exports, out)["reconcile_progress"]
    with pytest.raises(RuntimeError, match=r"keys at risk: "):
        task(database_url)  # the fixture has keys at risk: the documented policy fails
    metadata = _run(dagster, exports, out)["reconcile_run"](context=None)
    assert metadata["exit_code"] == 1 and metadata["at_risk"] > 0
    assert (Path(metadata["run_dir"]) / "summary.json").exists()
    assert len(reconcile.list_runs(out)) == 2
