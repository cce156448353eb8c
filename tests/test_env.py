"""Friendly failures: a missing, old or broken package is explained with the command that fixes it,
and a machine without energy counters gets a one-line notice, never a traceback."""

from __future__ import annotations

import importlib
import re
import runpy
import subprocess
import sys
import tomllib
import warnings
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import greenlab as gl
from greenlab import env

ROOT = Path(__file__).resolve().parents[1]
NO_COUNTERS = {
    "nvml": "no NVIDIA GPU energy counter (NVMLError_LibraryNotFound)",
    "rapl": "/sys/class/powercap not present (no RAPL on this machine or kernel)",
    "codecarbon": "not used",
    "estimate": "always: CPU time x 10 W/core",
}


def fake_versions(monkeypatch, **versions):
    """Pretend ``dist`` is installed at ``version`` (None: not installed); others stay real."""
    real = metadata.version

    def version(dist):
        key = canonicalize_name(dist)
        if key in versions:
            if versions[key] is None:
                raise metadata.PackageNotFoundError(dist)
            return versions[key]
        return real(dist)

    versions = {canonicalize_name(k): v for k, v in versions.items()}
    monkeypatch.setattr(metadata, "version", version)


def requirement(dist: str) -> env.Requirement:
    (req,) = [r for r in env.requirements() if canonicalize_name(r.dist) == canonicalize_name(dist)]
    return req


def test_requirements_are_read_from_the_installed_metadata():
    """env.requirements() is derived from greenlab's installed metadata, so it says what
    pyproject.toml says: the core dependencies and the course's extras, same ranges (this fails
    when the install is stale: run make)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {canonicalize_name(Requirement(line).name): (str(Requirement(line).specifier), extra)
              for extra, lines in [(None, project["dependencies"])] +
              [(e, project["optional-dependencies"][e]) for e in env.COURSE_EXTRAS]
              for line in lines}
    have = {canonicalize_name(r.dist): (r.specifier, r.extra) for r in env.requirements()}
    assert have == wanted
    assert env.requirements(())[-1].extra is None  # core only
    assert env._python_spec() == project["requires-python"].split("#")[0].strip()


def test_every_requirement_says_which_lessons_need_it():
    assert [r.dist for r in env.requirements() if r.lessons == "?"] == []


def test_this_environment_has_no_problems():
    assert env.check() == []


def test_missing_package_says_which_lessons_and_how_to_fix(monkeypatch):
    fake_versions(monkeypatch, onnx=None)
    problems = env.check(imports=False)
    assert len(problems) == 1, problems
    msg = problems[0]
    assert msg.startswith("onnx is missing (needed by lessons 03, 10)"), msg
    assert f"Fix: pip install '{requirement('onnx')}'" in msg and "make lab" in msg, msg


def test_a_missing_extra_is_only_a_problem_when_that_extra_is_wanted(monkeypatch):
    fake_versions(monkeypatch, tensorflow=None)
    assert env.check(imports=False, extras=("onnx", "grading")) == []
    (msg,) = env.check(imports=False)
    assert msg.startswith("tensorflow is missing"), msg


def test_old_package_says_the_minimum_and_how_to_upgrade(monkeypatch):
    torch = requirement("torch")
    fake_versions(monkeypatch, torch="2.1.0+cpu")
    (msg,) = env.check(imports=False)
    assert msg.startswith(f"torch 2.1.0+cpu is older than {torch.minimum} (lessons all)"), msg
    assert f"Fix: pip install -U '{torch}'" in msg, msg


def test_a_release_candidate_is_older_than_its_release(monkeypatch):
    """PEP 440: "2.9rc1" comes before "2.9" (it was read as (2, 91), newer, before)."""
    torch = requirement("torch")
    fake_versions(monkeypatch, torch=f"{torch.minimum}rc1")
    (msg,) = env.check(imports=False)
    assert msg.startswith(f"torch {torch.minimum}rc1 is older than {torch.minimum}"), msg
    assert env._older("2.3rc1", "2.3") and not env._older("2.31", "2.3")


def test_newer_and_local_versions_are_fine(monkeypatch):
    fake_versions(monkeypatch, torch="20.13.0+cu128", numpy="10.0rc1", mnist1d="0.0.2.post1")
    assert env.check(imports=False) == []


def test_broken_install_is_told_apart_from_a_missing_one(monkeypatch):
    real_import = importlib.import_module
    version = metadata.version("seaborn")

    def broken(name, *args, **kwargs):
        if name == "seaborn":  # raised from seaborn's own code, as a bad install would
            exec(compile("raise ImportError('libfoo.so: cannot open shared object file')",
                         "seaborn/__init__.py", "exec"), {"__name__": "seaborn"})
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(env.importlib, "import_module", broken)
    (msg,) = env.check()
    assert msg.startswith(f"seaborn {version} is installed but fails to import (ImportError: libfoo.so"), msg
    assert f"Fix: pip install --force-reinstall --no-deps 'seaborn=={version}'" in msg, msg


MISSING_NUMPY = """
import importlib.abc, importlib.metadata as md, sys
class NoNumpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "numpy":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoNumpy())
real = md.version
def version(dist):
    if dist.lower() == "numpy":
        raise md.PackageNotFoundError(dist)
    return real(dist)
md.version = version
from greenlab import env
for p in env.check():
    print("PROBLEM", p)
"""


def test_a_missing_numpy_is_the_only_problem_named():
    """Without numpy, pandas, scikit-learn, matplotlib, onnx... all fail to import: the report
    names numpy alone (it suggested force-reinstalling 11 healthy packages before)."""
    out = subprocess.run([sys.executable, "-c", MISSING_NUMPY], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    problems = [line for line in out.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 1, problems
    assert problems[0].startswith("PROBLEM numpy is missing (needed by lessons all). "
                                  f"Fix: pip install '{requirement('numpy')}'"), problems


def test_a_package_whose_dependency_is_missing_gets_a_plain_install(monkeypatch):
    real_import = importlib.import_module
    version = metadata.version("seaborn")

    def lacking(name, *args, **kwargs):
        if name == "seaborn":
            raise ModuleNotFoundError("No module named 'scipy_fake'", name="scipy_fake")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(env.importlib, "import_module", lacking)
    (msg,) = env.check()
    assert f"Fix: pip install 'seaborn=={version}'" in msg and "force" not in msg, msg


def test_old_python_is_explained(monkeypatch):
    monkeypatch.setattr(env, "_python_version", lambda: (3, 9, 18))
    (msg,) = env.check(imports=False)
    assert msg.startswith(f"python 3.9.18 does not satisfy greenlab's requires-python "
                          f"{env._python_spec()}: install Python 3.11"), msg


def test_cli_explains_problems_and_exits_1(monkeypatch, capsys):
    """``python -m greenlab.env`` with a missing and an old package: the fixes, no traceback."""
    fake_versions(monkeypatch, codecarbon=None, pandas="1.5.3")
    monkeypatch.setattr(sys, "argv", ["greenlab.env"])
    with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # greenlab.env is already imported: fine
        runpy.run_module("greenlab.env", run_name="__main__")
    out = capsys.readouterr()
    pandas = requirement("pandas")
    assert exit_info.value.code == 1
    assert "codecarbon                       MISSING" in out.out
    assert ("  - codecarbon is missing (needed by lessons 00). "
            f"Fix: pip install '{requirement('codecarbon')}'") in out.out
    assert (f"  - pandas 1.5.3 is older than {pandas.minimum} (lessons ledger). "
            f"Fix: pip install -U '{pandas}'") in out.out
    assert "2 problem(s): run the Fix command of each" in out.out
    assert "Traceback" not in out.out + out.err


def test_cli_exits_0_when_all_is_well(capsys):
    assert env.main([]) == 0
    out = capsys.readouterr().out
    assert "problems    none" in out and "energy sources" in out


def test_report_survives_a_missing_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil -> ImportError
    text = env.report(problems=[])
    assert "RAM unknown (psutil missing)" in text


def test_setup_without_energy_counters_prints_one_line_notice(monkeypatch, capsys):
    monkeypatch.setattr(gl.meters, "available_sources", lambda *a, **k: dict(NO_COUNTERS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would show as a red block in the notebook
        info = gl.setup(seed=0, threads=2)
    out = capsys.readouterr()
    notices = [line for line in out.out.splitlines() if "energy counter" in line]
    assert len(notices) == 1, out.out
    assert "estimated from CPU time" in notices[0]
    assert "Traceback" not in out.out + out.err and out.err == ""
    assert any("energy counter" in n for n in info.notes)


def test_setup_with_a_counter_prints_no_notice(monkeypatch, capsys):
    sources = dict(NO_COUNTERS, rapl="readable: package-0, dram")
    monkeypatch.setattr(gl.meters, "available_sources", lambda *a, **k: sources)
    gl.setup(seed=0, threads=2)
    assert "energy counter" not in capsys.readouterr().out


def test_setup_lists_package_problems_as_notes(monkeypatch, capsys):
    widgets = requirement("ipywidgets")
    fake_versions(monkeypatch, ipywidgets="7.8.1")
    info = gl.setup(seed=0, threads=2)
    out = capsys.readouterr().out
    assert f"  note: ipywidgets 7.8.1 is older than {widgets.minimum} (lessons sliders (02, 05))" in out
    assert any(f"pip install -U '{widgets}'" in n for n in info.notes)


def test_setup_without_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    want = re.escape(f"Fix: pip install '{requirement('torch')}'")
    with pytest.raises(ImportError, match=r"greenlab needs PyTorch.*" + want):
        gl.setup(seed=0)


def test_setup_caps_blas_threads_like_torch():
    import numpy as np  # noqa: F401  (loads its BLAS)
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=None):  # restore whatever was there after the test
        env.setup(seed=0, threads=1, quiet=True)
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas, "numpy has no BLAS pool to cap"
        assert all(p["num_threads"] == 1 for p in blas), blas
        env.setup(seed=0, threads=2, quiet=True)
        assert all(p["num_threads"] <= 2 for p in threadpool_info() if p["user_api"] == "blas")
    env.setup(seed=0, threads=2, quiet=True)


def test_a_program_package_is_checked_on_path_not_imported(monkeypatch, tmp_path):
    # py-spy installs a program, not a module: importing "py_spy" would always fail
    assert env.check(import_heavy=False) == []
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    monkeypatch.setattr(env.sys, "executable", str(tmp_path / "python"))
    problems = [p for p in env.check(import_heavy=False) if p.startswith("py-spy")]
    assert len(problems) == 1 and "'py-spy' is not on PATH (lessons 00)" in problems[0], problems
