"""The analysts' notebooks run top to bottom on a real demo run, and are committed clean.

Each notebook is executed with papermill as an analyst would run it: from the notebooks'
folder (Jupyter's kernel folder) while the output folder is given relative to the folder
papermill was started in, with hostile ids as parameters. Every cell must succeed and every
plot cell (tagged ``plot``) must leave a PNG.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import papermill
import pytest

import reconcile
from tests.analyst_demo import demo_out

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]
PLOTTING = re.compile(r"\bplt\.|\.plot\b|\.hist\(|\.boxplot\(")


@pytest.fixture(scope="session")
def reports(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_out(server_url, tmp_path_factory.mktemp("analyst"))


def test_the_three_notebooks_are_there() -> None:
    assert NAMES == [
        "01-nightly-overview.ipynb",
        "02-user-investigation.ipynb",
        "03-tutorial-drilldown.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name
            assert "papermill" not in cell.metadata and "execution" not in cell.metadata
    assert "papermill" not in notebook.metadata, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_has_a_parameters_cell_and_tagged_plots(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "out = " in parameters[0].source
    plots = [c for c in code if "plot" in c.metadata.get("tags", [])]
    assert plots, path.name
    for cell in code:  # every cell that draws is a plot cell, so the test below sees it
        if PLOTTING.search(cell.source) and "rcParams" not in cell.source:
            assert cell in plots, cell.source[:80]
    for cell in notebook.cells:  # each plot follows one sentence saying what to look for
        if cell in plots:
            before = notebook.cells[notebook.cells.index(cell) - 1]
            assert before.cell_type == "markdown" or before in code, path.name
    looks = [
        c for c in notebook.cells if c.cell_type == "markdown" and "What to look for" in c.source
    ]
    assert len(looks) == len(plots), path.name


def _hostile(reports: Path) -> dict[str, dict[str, str]]:
    """Parameters per notebook: hostile ids the demo holds (quotes, $, HTML, SQL)."""
    run = reconcile.load_run(reports)
    users = [u for u in run.at_risk()["user_id"].unique() if re.search(r"[<'\"$]", u)]
    tutorials = [t for t in run.by_tutorial()["tutorial_id"] if "<" in t]
    assert users and tutorials  # the demo plants them
    return {
        "01-nightly-overview.ipynb": {"out": "reports"},
        "02-user-investigation.ipynb": {"out": "reports", "user_id": users[0]},
        "03-tutorial-drilldown.ipynb": {"out": "reports", "tutorial": tutorials[0]},
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_on_a_demo_run_with_two_nights(
    path: Path, reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(reconcile.list_runs(reports)) == 2
    parameters = _hostile(reports)[path.name]
    # Started from the folder holding "reports"; the kernel runs in notebooks/ as in Jupyter.
    monkeypatch.setenv("PWD", str(reports.parent))
    clock = time.perf_counter()
    executed = papermill.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(path.parent),
        progress_bar=False,
    )
    print(f"{path.name}: executed in {time.perf_counter() - clock:.1f} s")
    code = [c for c in executed.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    for cell in code:
        if "plot" in cell.metadata.get("tags", []):
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert len(images) == 1, cell.source[:80]
    html = "".join(o.get("data", {}).get("text/html", "") for c in code for o in c.outputs)
    for value in parameters.values():  # shown escaped in tables, never as markup
        if "<" in value:
            assert value not in html
    if "user_id" in parameters:
        stream = "".join(o.get("text", "") for c in code for o in c.outputs)
        assert repr(parameters["user_id"]) in stream
