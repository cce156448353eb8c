"""Binder: environment.yml is what repo2docker builds, and it says what pyproject.toml says.

repo2docker cannot run here (it needs Docker), so these tests check what it reads: the file's shape,
its package list against pyproject (names) and constraints.txt (versions), that pip resolves it to
exactly this .venv without downloading anything, and that the README's badge opens notebooks/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version
    return pins


def environment() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env, dict), "environment.yml must be a mapping (repo2docker rejects a list)"
    return env


def pip_lines() -> list[str]:
    sections = [d["pip"] for d in environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one `- pip:` section"
    return [str(x).strip() for x in sections[0]]


def pip_requirements() -> dict[str, Requirement]:
    reqs = {}
    for line in pip_lines():
        if line.startswith("-"):
            continue
        req = Requirement(line)
        assert canonicalize_name(req.name) not in reqs, f"{req.name} listed twice"
        reqs[canonicalize_name(req.name)] = req
    return reqs


def pyproject_requirements() -> dict[str, Requirement]:
    project = pyproject()["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                       for r in extra]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in lines}


def test_repo2docker_reads_this_file():
    # A binder/ (or .binder/) folder makes repo2docker ignore every configuration file at the root.
    for folder in ("binder", ".binder"):
        if (ROOT / folder).is_dir():
            assert (ROOT / folder / "environment.yml").exists(), (
                f"{folder}/ exists, so repo2docker ignores the root environment.yml")
    env = environment()
    assert "conda-forge" in env.get("channels", [])
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in deps, f"python must be pinned to 3.11 (constraints.txt's), got {deps}"
    assert "pip" in deps
    py = SpecifierSet(pyproject()["project"]["requires-python"])
    assert "3.11" in py
    assert "python 3.11" in (ROOT / "constraints.txt").read_text().splitlines()[0]


def test_cpu_torch_and_greenlab_itself():
    lines = pip_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines, "Binder must get the CPU-only torch build"
    assert "-c constraints.txt" in lines, "transitive versions must come from constraints.txt"
    editable = [line for line in lines if line.startswith("-e ")]
    assert len(editable) == 1, "greenlab itself must be installed (-e .[...])"
    m = re.fullmatch(r"-e \.\[([\w,]+)\]", editable[0])
    assert m, f"expected `-e .[extras]`, got {editable[0]!r}"
    assert set(m.group(1).split(",")) == set(pyproject()["project"]["optional-dependencies"])


def test_package_names_match_pyproject():
    env_names, py_names = set(pip_requirements()), set(pyproject_requirements())
    assert env_names - py_names == set(), "in environment.yml but not in pyproject.toml"
    assert py_names - env_names == set(), "in pyproject.toml but not in environment.yml"


@pytest.mark.parametrize("name", sorted(pyproject_requirements()))
def test_versions_are_pinned_to_constraints_and_inside_pyproject_ranges(name):
    req, pins = pip_requirements()[name], constraints()
    (spec,) = req.specifier  # exactly one: ==version
    assert spec.operator == "==", f"{name}: pin the exact version, got {req}"
    assert spec.version == pins[name], (
        f"{name}: environment.yml has {spec.version}, constraints.txt has {pins[name]}")
    assert pyproject_requirements()[name].specifier.contains(spec.version, prereleases=True), (
        f"{name} {spec.version} is outside pyproject's range {pyproject_requirements()[name]}")


def test_pip_resolves_it_to_this_environment_offline(tmp_path):
    """``pip install --dry-run --no-index``: every pin is already installed here, nothing to fetch."""
    lines = []
    for line in pip_lines():
        if line.startswith("--extra-index-url"):
            continue
        line = re.sub(r"^-c (\S+)", lambda m: f"-c {ROOT / m.group(1)}", line)
        line = re.sub(r"^-e \.", f"-e {ROOT}", line)
        lines.append(line)
    reqs = tmp_path / "binder-requirements.txt"
    reqs.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", "-r", str(reqs)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    would = re.findall(r"^Would install (.*)$", result.stdout, re.M)
    extra = [p for p in " ".join(would).split() if not p.startswith("greenlab-")]
    assert extra == [], f"Binder would get other versions than this .venv: {extra}"


def test_readme_binder_badge_opens_notebooks():
    cfg = pyproject()["tool"]["greenlab"]
    repo = cfg["repo_url"].split("github.com/")[-1].removesuffix(".git")
    url = f"https://mybinder.org/v2/gh/{repo}/{cfg['colab_ref']}?urlpath=lab/tree/notebooks"
    readme = (ROOT / "README.md").read_text()
    assert f"[![Binder](https://mybinder.org/badge_logo.svg)]({url})" in readme
    assert "## Binder and Colab" in readme
