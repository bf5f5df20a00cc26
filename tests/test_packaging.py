"""A non-editable install ships everything the job reads at run time.

The test builds a wheel of the working tree, installs it into a fresh venv and runs
``python -m reconcile demo`` there from a folder that is not the repository, so nothing can
come from the checkout: not the package, not the Great Expectations suites, not the report
template.

How the fresh venv gets the dependencies without the editable install:

* The wheel is built from a copy of the working tree (no ``.git``, ``build/``, caches), with
  ``pip wheel --no-deps --no-build-isolation`` and the setuptools of the running venv (the
  ``dev`` extra pins one that reads this ``pyproject.toml``), so no index is needed and no
  stale ``build/`` in the checkout can leak files into the wheel.
* The venv is made with ``venv --without-pip`` (no ``--system-site-packages``), and the wheel
  is installed into it with ``--no-deps`` by the running pip (``pip --python``).
* One ``.pth`` file in the venv lists the running environment's site-packages folders as
  plain paths. A plain path is only appended to ``sys.path``: the ``.pth`` files inside that
  folder are NOT processed, so the editable install's finder (``__editable__*reconcile*.pth``)
  never runs, and the venv's own site-packages (with the wheel) comes first on ``sys.path``.
  The test checks this from inside the venv: ``reconcile``, its ``dist-info`` and its
  default suites folder all resolve to the venv, and no ``__editable__`` finder is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile.validate.suites import check_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reconcile"
SUITES = PACKAGE / "validate" / "expectations"
TEMPLATES = PACKAGE / "outputs" / "report" / "templates"

#: Top-level entries of the checkout that are not part of a build.
_NOT_SOURCE = {".git", "build", "dist", "reports", ".venv", "venv"}

#: Asked inside the fresh venv: where do the package and its data come from?
_PROBE = """
import importlib.metadata, json, sys
import reconcile, reconcile.config
print(json.dumps({
    "file": reconcile.__file__,
    "dist": str(importlib.metadata.distribution("reconcile").locate_file("")),
    "suites": str(reconcile.config.DEFAULT_EXPECTATIONS_DIR),
    "finders": [repr(f) for f in sys.meta_path],
}))
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder the embedded PostgreSQL (an unprivileged user when run as root) can enter.

    pytest's ``tmp_path`` is below a private folder, which would move the demo's data
    folder to a fixed place under /tmp that nothing removes.
    """
    path = Path(tempfile.mkdtemp(prefix="reconcile-packaging-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _ignore(folder: str, names: list[str]) -> set[str]:
    skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if Path(folder) == ROOT:
        skipped |= {n for n in names if n in _NOT_SOURCE or n.startswith(".")}
    return skipped


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _build_wheel(scratch: Path, env: dict[str, str]) -> Path:
    source = scratch / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_ignore)
    wheels = scratch / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
    pip_wheel += ["--no-build-isolation", "--check-build-dependencies", "-w", str(wheels), "."]
    _run(pip_wheel, source, env)
    (wheel,) = wheels.glob("reconcile-*.whl")
    return wheel


def _package_files() -> set[str]:
    """Every file of the package in the checkout, as a path inside the wheel."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith(".")
    }


def _fresh_venv(scratch: Path, wheel: Path, env: dict[str, str]) -> Path:
    venv = scratch / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], scratch, env)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    _run([*install, "--no-deps", "--no-index", str(wheel)], scratch, env)
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            scratch,
            env,
        ).stdout.strip()
    )
    ours = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (purelib / "_reconcile_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    return venv


@pytest.mark.slow
def test_wheel_runs_the_demo_from_anywhere(scratch: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"

    wheel = _build_wheel(scratch, env)
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    suites = sorted(SUITES.glob("*.json"))
    assert suites, f"no suite in {SUITES}"
    for path in [*suites, TEMPLATES / "report.html"]:
        assert path.relative_to(ROOT).as_posix() in shipped, f"{path} is not in {wheel.name}"
    missing = _package_files() - shipped
    assert not missing, f"not in the wheel (add to [tool.setuptools.package-data]): {missing}"

    venv = _fresh_venv(scratch, wheel, env)
    python = str(venv / "bin" / "python")
    elsewhere = scratch / "elsewhere"
    elsewhere.mkdir()

    probe = json.loads(_run([python, "-c", _PROBE], elsewhere, env).stdout)
    for key in ("file", "dist", "suites"):
        assert Path(probe[key]).resolve().is_relative_to(venv.resolve()), (key, probe[key])
    assert not [f for f in probe["finders"] if "__editable__" in f], probe["finders"]
    _run([str(venv / "bin" / "reconcile"), "--help"], elsewhere, env)

    demo = [python, "-m", "reconcile", "demo", "--users", "200"]
    _run([*demo, "--workdir", "work", "--out", "out"], elsewhere, env)

    (run_dir,) = [p for p in (elsewhere / "out").iterdir() if p.is_dir() and p.name[0].isdigit()]
    for name in ("summary.json", "index.html", "repair.sql"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "data-docs" / "index.html").is_file()
    checks = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["checks"]
    ran = {(c["suite"], c["name"]) for c in checks}
    for path in suites:
        suite = json.loads(path.read_text(encoding="utf-8"))
        name = suite.get("name", path.stem)
        expected = {(name, check_name(name, e)) for e in suite["expectations"]}
        assert expected <= ran, f"checks of {path.name} missing from summary.json"
        assert (run_dir / "data-docs" / "expectations" / f"{name}.html").is_file(), name


def _pins(lock: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a pip-compile lock file, every pin hashed."""
    from packaging.utils import canonicalize_name

    text = lock.read_text(encoding="utf-8")
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", text, flags=re.MULTILINE))
    assert text.count("==") >= len(pins) and pins, lock
    assert text.count("--hash=sha256:") >= len(pins), f"{lock}: a pin without a hash"
    return {canonicalize_name(name): version for name, version in pins.items()}


@pytest.mark.parametrize(("lock", "extras"), [("nightly.lock", ()), ("dev.lock", ("dev", "dask"))])
def test_the_lock_files_pin_what_pyproject_asks(lock: str, extras: tuple[str, ...]) -> None:
    """requirements/*.lock agree with pyproject.toml: regenerate them when a range moves."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"]]
    for extra in extras:
        wanted += [
            r for r in project["optional-dependencies"][extra] if not r.startswith("reconcile")
        ]
    pins = _pins(ROOT / "requirements" / lock)
    assert "reconcile" not in pins  # the package itself is installed from the checkout
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (line, pins[name])
