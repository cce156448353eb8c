"""Friendly failures: a missing, old or broken package is explained with the command that fixes it,
and a machine without energy counters gets a one-line notice, never a traceback."""

from __future__ import annotations

import importlib
import runpy
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
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


def test_requirements_match_pyproject():
    """env.REQUIREMENTS is the runtime dependency list of pyproject.toml, same minimum versions."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {}
    for line in deps:
        req = Requirement(line)
        minimum = next((s.version for s in req.specifier if s.operator == ">="), None)
        wanted[canonicalize_name(req.name)] = minimum
    have = {canonicalize_name(dist): minimum for _m, dist, minimum, _l in env.REQUIREMENTS}
    assert have == wanted


def test_this_environment_has_no_problems():
    assert env.check() == []


def test_missing_package_says_which_lessons_and_how_to_fix(monkeypatch):
    fake_versions(monkeypatch, onnx=None)
    problems = env.check(imports=False)
    assert len(problems) == 1, problems
    msg = problems[0]
    assert msg.startswith("onnx is missing (needed by lessons 03, 10)"), msg
    assert "Fix: pip install 'onnx>=1.16'" in msg and "make lab" in msg, msg


def test_old_package_says_the_minimum_and_how_to_upgrade(monkeypatch):
    fake_versions(monkeypatch, torch="2.1.0+cpu")
    (msg,) = env.check(imports=False)
    assert msg.startswith("torch 2.1.0+cpu is older than 2.3 (lessons all)"), msg
    assert "Fix: pip install -U 'torch>=2.3'" in msg, msg


def test_newer_and_local_versions_are_fine(monkeypatch):
    fake_versions(monkeypatch, torch="2.13.0+cu128", numpy="10.0rc1", mnist1d="0.0.2.post1")
    assert env.check(imports=False) == []


def test_broken_install_is_told_apart_from_a_missing_one(monkeypatch):
    real_import = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "seaborn":
            raise ImportError("libfoo.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(env.importlib, "import_module", broken)
    (msg,) = env.check()
    assert msg.startswith("seaborn 0.13.2 is installed but fails to import (ImportError: libfoo.so"), msg
    assert "Fix: pip install --force-reinstall 'seaborn==0.13.2'" in msg, msg


def test_old_python_is_explained(monkeypatch):
    monkeypatch.setattr(env, "_python_version", lambda: (3, 9, 18))
    (msg,) = env.check(imports=False)
    assert msg.startswith("python 3.9.18 is older than 3.10: install Python 3.11"), msg


def test_cli_explains_problems_and_exits_1(monkeypatch, capsys):
    """``python -m greenlab.env`` with a missing and an old package: the fixes, no traceback."""
    fake_versions(monkeypatch, codecarbon=None, pandas="1.5.3")
    monkeypatch.setattr(sys, "argv", ["greenlab.env"])
    with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # greenlab.env is already imported: fine
        runpy.run_module("greenlab.env", run_name="__main__")
    out = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "codecarbon                       MISSING" in out.out
    assert "  - codecarbon is missing (needed by lessons 00). Fix: pip install 'codecarbon>=2.8'" in out.out
    assert "  - pandas 1.5.3 is older than 2.0 (lessons ledger). Fix: pip install -U 'pandas>=2.0'" in out.out
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
    fake_versions(monkeypatch, ipywidgets="7.8.1")
    info = gl.setup(seed=0, threads=2)
    out = capsys.readouterr().out
    assert "  note: ipywidgets 7.8.1 is older than 8.0 (lessons sliders (02, 05))" in out
    assert any("pip install -U 'ipywidgets>=8.0'" in n for n in info.notes)


def test_setup_without_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ImportError, match=r"greenlab needs PyTorch.*Fix: pip install 'torch>=2.3'"):
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
