"""Colab: every notebook's first code cell installs greenlab once, pinned, and only on Colab.

The cell is run the way IPython runs it (``%pip`` becomes ``get_ipython().run_line_magic``) with a
recorder in place of IPython, once with a fake ``google.colab`` module and once without; one test
also runs it in a real kernel. Nothing is installed: the ``%pip`` magic is replaced by a recorder.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import sys
import tomllib
import types
import warnings
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nbtools", ROOT / "tools" / "nbtools.py")
nbtools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbtools)

CFG = nbtools.config()
NOTEBOOKS = [p for f in ("notebooks", "solutions", "exercises") for p in sorted((ROOT / f).glob("*.ipynb"))]


class RecordingIPython:
    """Stands in for ``get_ipython()``: records magics and shell escapes instead of running them."""

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []

    def run_line_magic(self, name, line, _stack_depth=1):
        self.calls.append(("line_magic", name, line))

    def run_cell_magic(self, name, line, cell):
        self.calls.append(("cell_magic", name, line))

    def system(self, cmd):
        self.calls.append(("system", "!", cmd))

    def getoutput(self, cmd, *args, **kwargs):
        self.calls.append(("system", "!!", cmd))
        return []


def run_cell(source: str, on_colab: bool, monkeypatch) -> tuple[list, dict]:
    """Execute a cell as IPython would; returns the recorded calls and the names it defined."""
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    ip = RecordingIPython()
    namespace = {"get_ipython": lambda: ip, "__name__": "__main__"}
    exec(compile(TransformerManager().transform_cell(source), "<colab-setup>", "exec"), namespace)
    return ip.calls, {k: v for k, v in namespace.items() if k not in ("get_ipython", "__builtins__",
                                                                      "__name__")}


def expected_install() -> Requirement:
    return Requirement(f"greenlab @ git+{CFG['repo_url']}@{CFG['colab_ref']}")


PYPROJECT_EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                       ["optional-dependencies"])


def check_setup_cell(source: str, monkeypatch, extras: tuple[str, ...] = ()) -> None:
    # On Colab: exactly one %pip install, of greenlab, from the configured repository and ref.
    calls, names = run_cell(source, on_colab=True, monkeypatch=monkeypatch)
    assert len(calls) == 1, f"on Colab the cell must do one thing (one %pip install), did {calls}"
    kind, magic, line = calls[0]
    assert (kind, magic) == ("line_magic", "pip"), calls
    args = shlex.split(line)
    assert args[0] == "install" and all(a.startswith("-") for a in args[1:-1]), args
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(args), (
        f"the cell must keep Colab's own torch/TensorFlow, not upgrade them: {args}")
    req = Requirement(args[-1])
    want = expected_install()
    assert (req.name, req.url) == (want.name, want.url), f"installs {req}, expected {want}"
    assert req.extras == set(extras), f"installs greenlab{sorted(req.extras)}, expected {extras}"
    assert req.extras <= PYPROJECT_EXTRAS, f"no such extra in pyproject.toml: {req.extras}"
    assert set(names) <= {"sys"}, f"the cell leaves names behind: {sorted(names)}"
    # Anywhere else: nothing at all.
    calls, _ = run_cell(source, on_colab=False, monkeypatch=monkeypatch)
    assert calls == [], f"outside Colab the cell must do nothing, did {calls}"


@pytest.mark.parametrize("extras", [(), ("grading",), ("onnx", "tf")])
def test_generated_cell_installs_once_on_colab_only(monkeypatch, extras):
    check_setup_cell(nbtools.colab_source(CFG, extras), monkeypatch, extras)


@pytest.mark.parametrize("code, folder, extras", [
    ("import greenlab as gl\ngl.setup()", "notebooks", ()),
    ("tf = gl.tf.import_tf(seed=0)", "notebooks", ("tf",)),
    ("path = gl.runtimes.export_onnx(model, x, 'm.onnx')", "notebooks", ("onnx",)),
    ("clf = gl.runtimes.TFLiteClassifier(gl.runtimes.tflite_convert(km))", "notebooks", ("tf",)),
    ("def prune_model(m, a): ...", "solutions", ("grading",)),
    ('grader = gl.grade.notebook("02_pruning.ipynb")', "exercises", ("grading",)),
])
def test_colab_cell_installs_the_extras_the_code_uses(code, folder, extras):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(nbtools.colab_source(CFG, ("tf",)),
                                          metadata={"tags": ["colab-setup"]}),  # not counted
                nbformat.v4.new_code_cell(code)]
    assert nbtools.colab_extras(nb, folder) == extras
    assert set(nbtools.EXTRA_USES) <= PYPROJECT_EXTRAS


def test_generated_cell_is_only_an_import_and_one_guarded_magic():
    code = TransformerManager().transform_cell(nbtools.colab_source(CFG))
    body = ast.parse(code).body
    assert [type(s).__name__ for s in body] == ["Import", "If"], ast.dump(ast.Module(body, []))
    guard = body[1]
    assert ast.unparse(guard.test) == "'google.colab' in sys.modules"
    assert guard.orelse == [] and len(guard.body) == 1
    assert "run_line_magic('pip'" in ast.unparse(guard.body[0])


def test_url_lives_in_one_place():
    """The install line, the Colab badge and the Binder badge all come from [tool.greenlab]."""
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", CFG["repo_url"]), CFG["repo_url"]
    assert CFG["colab_ref"] and " " not in CFG["colab_ref"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        badges = [c.source for c in nb.cells if "badges" in c.metadata.get("tags", [])]
        assert len(badges) == 1, f"{path.name}: run python tools/nbtools.py decorate"
        repo = CFG["repo_url"].split("github.com/")[-1]
        rel = f"{path.parent.name}/{path.name}"
        assert f"colab.research.google.com/github/{repo}/blob/{CFG['colab_ref']}/{rel}" in badges[0]
        assert f"mybinder.org/v2/gh/{repo}/{CFG['colab_ref']}?urlpath=lab/tree/{rel}" in badges[0]
    readme = (ROOT / "README.md").read_text()
    repo = CFG["repo_url"].split("github.com/")[-1]
    assert (f"(https://colab.research.google.com/github/{repo}/blob/{CFG['colab_ref']}/notebooks/"
            in readme), "README's Colab badge must use repo_url and colab_ref from [tool.greenlab]"
    if not re.fullmatch(r"v?\d+(\.\d+)*|[0-9a-f]{40}", CFG["colab_ref"]):
        warnings.warn(f"colab_ref = {CFG['colab_ref']!r} is a branch: Colab installs whatever it "
                      "points to today. Set it to a release tag or commit when publishing.",
                      stacklevel=1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_setup_cell(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code_cells if "colab-setup" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs one colab-setup cell (tools/nbtools.py decorate)"
    assert code_cells[0] is tagged[0], f"{path.name}: the Colab cell must be the first code cell"
    extras = nbtools.colab_extras(nb, path.parent.name)
    assert tagged[0].source == nbtools.colab_source(CFG, extras), (
        f"{path.name}: the Colab cell was edited by hand or is stale: run nbtools decorate")
    check_setup_cell(tagged[0].source, monkeypatch, extras)


def test_no_notebook_installs_anything_else():
    """Outside the Colab cell, no notebook cell runs pip, conda or apt."""
    pattern = re.compile(r"^\s*[%!]+\s*(pip|conda|mamba|apt|apt-get)\b|subprocess.*\bpip\b", re.M)
    bad = [f"{p.parent.name}/{p.name} cell {i}"
           for p in NOTEBOOKS for i, c in enumerate(nbformat.read(p, as_version=4).cells)
           if c.cell_type == "code" and "colab-setup" not in c.metadata.get("tags", [])
           and pattern.search(c.source)]
    assert bad == []


def test_cell_in_a_real_kernel(tmp_path):
    """In a real IPython kernel: skipped locally, one %pip call with a fake google.colab."""
    from nbclient import NotebookClient

    record = ("_calls = []\n"
              "get_ipython().register_magic_function(lambda line: _calls.append(line), 'line', 'pip')")
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')"
    setup = nbtools.colab_source(CFG)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in
                (record, setup, "print(len(_calls))", fake_colab, setup, "print(_calls)")]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[2].outputs[0]["text"].strip() == "0"
    want = f"install -q \"greenlab @ git+{CFG['repo_url']}@{CFG['colab_ref']}\""
    assert nb.cells[5].outputs[0]["text"].strip() == repr([want])
