"""Install: environment.yml (Binder), the lock (constraints.txt) and the Makefile's install rule.

repo2docker cannot run here (it needs Docker), so these tests check what it reads: the file's shape,
that it takes packages from pyproject and versions from the lock and repeats neither, that pip
resolves it to exactly this .venv without downloading anything, and that the README's badge opens
notebooks/. The lock's pins must sit inside pyproject's ranges and equal what .venv has; the
Makefile's probe of torch's CPU index must give up quickly when the index does not answer.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def constraints() -> dict[str, str]:
    """The lock's pins that apply to this machine (markers evaluated)."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, version = spec.split("==", 1)
        assert canonicalize_name(name) not in pins, f"{name} pinned twice for this machine"
        pins[canonicalize_name(name)] = version.strip()
    return pins


def environment() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env, dict), "environment.yml must be a mapping (repo2docker rejects a list)"
    return env


def pip_lines() -> list[str]:
    sections = [d["pip"] for d in environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one `- pip:` section"
    return [str(x).strip() for x in sections[0]]


def extras_closure(names: set[str]) -> set[str]:
    """``names`` and every extra they pull in through ``greenlab[...]`` self-references."""
    optional = pyproject()["project"]["optional-dependencies"]
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in optional[name]:
            req = Requirement(line)
            if canonicalize_name(req.name) == "greenlab":
                todo += sorted(req.extras)
    return seen


def pyproject_requirements() -> dict[str, Requirement]:
    project = pyproject()["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                       for r in extra]
    reqs = (Requirement(r) for r in lines)
    return {canonicalize_name(r.name): r for r in reqs if canonicalize_name(r.name) != "greenlab"}


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


def test_cpu_torch_and_greenlab_itself_and_nothing_repeated():
    lines = pip_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines, "Binder must get the CPU-only torch build"
    assert "-c constraints.txt" in lines, "versions must come from the lock, constraints.txt"
    editable = [line for line in lines if line.startswith("-e ")]
    assert len(editable) == 1, "greenlab itself must be installed (-e .[...])"
    m = re.fullmatch(r"-e \.\[([\w,]+)\]", editable[0])
    assert m, f"expected `-e .[extras]`, got {editable[0]!r}"
    assert extras_closure(set(m.group(1).split(","))) == set(
        pyproject()["project"]["optional-dependencies"]), "Binder must get every extra"
    assert [line for line in lines if not line.startswith("-")] == [], (
        "environment.yml lists packages itself: they belong in pyproject.toml, versions in the lock")


@pytest.mark.parametrize("name", sorted(pyproject_requirements()))
def test_lock_pins_every_requirement_inside_pyproject_range(name):
    pins = constraints()
    assert name in pins, f"{name} is in pyproject.toml but not in the lock: run make lock"
    assert pyproject_requirements()[name].specifier.contains(pins[name], prereleases=True), (
        f"{name} {pins[name]} is outside pyproject's range {pyproject_requirements()[name]}: "
        "run make lock")


def test_this_venv_has_the_locked_versions():
    """What `make` installed is what the lock says (torch's +cpu label aside)."""
    wrong = {}
    for name, version in constraints().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. CUDA-only packages: constraints, never installed with the CPU torch
        if have.split("+")[0] != version:
            wrong[name] = (have, version)
    assert wrong == {}, f"installed != locked (run make): {wrong}"


def test_lock_says_where_it_comes_from():
    head = (ROOT / "constraints.txt").read_text().splitlines()[:3]
    assert any("make lock" in line for line in head), head
    assert "pip freeze" not in (ROOT / "Makefile").read_text(), "the lock is compiled, not frozen"


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


def make_torch_index(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "--no-print-directory", "torch-index",
                           f"TORCH_CPU_INDEX={url}", "TORCH_INDEX_TIMEOUT_S=2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_torch_index_is_used_when_it_answers():
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html></html>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/whl/cpu"
        out = make_torch_index(url)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"--extra-index-url {url}", out
    assert "CPU wheels from" in out.stderr


def test_torch_index_that_never_answers_falls_back_instead_of_hanging():
    """A server that accepts the connection and then says nothing (a firewall, a captive portal):
    the probe gives up after its timeout and pip uses the default index. The 60 s limit of the run
    is a hang guard, far above the 2 s probe, not a speed test."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        out = make_torch_index(f"http://127.0.0.1:{silent.getsockname()[1]}/whl/cpu")
    finally:
        silent.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out
    assert "did not answer" in out.stderr and "default index" in out.stderr, out.stderr
