"""The repo's notebook tools: decoration is idempotent, cleaning removes noise, check finds it."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("nbtools", ROOT / "tools" / "nbtools.py")
nbtools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtools)


def make_nb(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       toc={"noise": 1}, language_info={"name": "python", "version": "3.11.7"})
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · Test lesson"),
                nbformat.v4.new_code_cell("x = 1", metadata={"execution": {"iopub.status.busy": "2026-11-25T02:00:00Z"}, "tags": ["keep"]})]
    nbformat.write(nb, path)
    return path


def test_decorate_is_idempotent_and_clean(tmp_path):
    path = make_nb(tmp_path / "99_test.ipynb")
    cfg = {"repo_url": "https://github.com/org/repo", "colab_ref": "v1"}
    nbtools.decorate(path, cfg)
    first = path.read_bytes()
    nbtools.decorate(path, cfg)
    assert path.read_bytes() == first
    nb = nbformat.read(path, as_version=4)
    badges = nb.cells[1]
    assert "colab.research.google.com/github/org/repo/blob/v1/" in badges.source
    assert "mybinder.org/v2/gh/org/repo/v1" in badges.source
    colab = next(c for c in nb.cells if "colab-setup" in c.metadata.get("tags", []))
    assert 'if "google.colab" in sys.modules' in colab.source
    assert "git+https://github.com/org/repo@v1" in colab.source
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.metadata["language_info"] == {"name": "python"}
    assert nb.cells[-1].metadata == {"tags": ["keep"]}
    assert nbtools.is_clean(path, cfg) == []


CFG = {"repo_url": "https://github.com/org/repo", "colab_ref": "v1"}


def test_check_reports_noise(tmp_path):
    path = make_nb(tmp_path / "99_test.ipynb")
    problems = nbtools.is_clean(path, CFG)
    assert any("toc" in p for p in problems)
    assert any("execution" in p for p in problems)
    assert any("badges cell missing" in p for p in problems)


def _with_output(nb):
    nb["cells"][-1]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                   "data": {"text/plain": "1"}}]


# Each thing clean strips (or decorate rewrites), put back into a clean notebook.
DIRT = {
    "notebook metadata": lambda nb: nb["metadata"].update(toc={"noise": 1}),
    "language_info": lambda nb: nb["metadata"]["language_info"].update(version="3.11.7"),
    "cell 1 metadata": lambda nb: nb["cells"][1]["metadata"].update(collapsed=True),
    "cell 0 id": lambda nb: nb["cells"][0].update(id="a1b2c3"),
    "output metadata": lambda nb: nb["cells"][-1]["outputs"][0]["metadata"].update(
        isolated=True),
    "nbformat_minor": lambda nb: nb.update(nbformat_minor=5),
    "colab-setup cell": lambda nb: nb["cells"][2].update(source="%pip install greenlab"),
}


@pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning")  # the dirt itself
@pytest.mark.parametrize("dirt", sorted(DIRT))
def test_check_fails_on_each_thing_clean_would_strip(tmp_path, dirt):
    path = make_nb(tmp_path / "99_test.ipynb")
    nbtools.decorate(path, CFG)
    nb = json.loads(path.read_text())
    _with_output(nb)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    nbtools.clean_nb(clean := nbformat.read(path, as_version=4))
    nbformat.write(clean, path)
    assert nbtools.is_clean(path, CFG) == []
    nb = json.loads(path.read_text())
    DIRT[dirt](nb)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    problems = nbtools.is_clean(path, CFG)
    assert any(dirt in p for p in problems), problems


def test_check_fails_on_a_layout_clean_would_rewrite(tmp_path):
    path = make_nb(tmp_path / "99_test.ipynb")
    nbtools.decorate(path, CFG)
    path.write_text(json.dumps(json.loads(path.read_text())))  # same content, one line
    assert nbtools.is_clean(path, CFG) == [
        "differs from what decorate + clean write (run: python tools/nbtools.py decorate)"]


def test_repo_url_lives_in_pyproject():
    cfg = nbtools.config()
    assert cfg["repo_url"].startswith("https://github.com/") and cfg["colab_ref"]


def test_committed_notebooks_are_decorated_and_clean():
    cfg = nbtools.config()
    bad = {p.name: nbtools.is_clean(p, cfg) for f in ("notebooks", "solutions", "exercises")
           for p in (ROOT / f).glob("*.ipynb")}
    assert not {k: v for k, v in bad.items() if v}
