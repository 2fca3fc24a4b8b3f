"""The package as a researcher installs it: a normal (non-editable) install, outside a clone."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import mlejax_helpers

ROOT = Path(__file__).resolve().parents[1]

OUTSIDE = """
import importlib.metadata, os
import mlejax_helpers, mlejax_helpers.mixed_logit as ml
import mlejax_helpers.apartments as apt
from mlejax_helpers import config
assert "site" in mlejax_helpers.__file__ or os.environ["TARGET"] in mlejax_helpers.__file__
assert importlib.metadata.version("mlejax-helpers") == mlejax_helpers.__version__
r = apt.fit(apt.simulate(300, 4, 5))
assert r.success, r.message
assert ml.load_electricity().shape == (17232, 10)  # package data travels with the wheel
try:
    config.results_dir()
except FileNotFoundError as err:
    assert "MLEJAX_ROOT" in str(err)
else:
    raise AssertionError("found a book root outside any clone")
os.environ["MLEJAX_ROOT"] = os.environ["BOOK"]
assert (config.results_dir() / "bench-cpu.jsonl").is_file()
print("installed package works")
"""


@pytest.mark.slow
def test_a_normal_install_works_outside_the_clone(tmp_path):
    wheels, target, src = tmp_path / "wheels", tmp_path / "site", tmp_path / "src"
    src.mkdir()  # build from a copy, so the build leaves no build/ folder in the clone
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "mlejax_helpers", src / "mlejax_helpers")
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run(
        pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(wheels.glob("mlejax_helpers-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    env = {"PYTHONPATH": str(target), "TARGET": str(target), "BOOK": str(ROOT), "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", OUTSIDE], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and "installed package works" in out.stdout, out.stderr[-3000:]


def test_the_version_is_written_once():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in meta and "version" in meta["dynamic"]
    assert mlejax_helpers.__version__.count(".") == 2


def test_every_imported_package_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        d.split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for d in meta["dependencies"] + sum(meta["optional-dependencies"].values(), [])
    }
    imported = set()
    for path in (ROOT / "mlejax_helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"mlejax_helpers"}
    names = {"yaml": "pyyaml"}
    missing = {m for m in third_party if names.get(m, m) not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_license_file_matches_the_declared_licence():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
