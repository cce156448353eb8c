"""Keep the course's notebooks in one shape: badges, Colab setup cell, navigation, clean metadata.

    python tools/nbtools.py decorate            # badges + Colab cell + navigation, all notebooks
    python tools/nbtools.py execute NB [NB...]  # run in place (fresh kernel, cwd = its folder), clean
    python tools/nbtools.py clean NB [NB...]    # strip noisy metadata only
    python tools/nbtools.py check [NB...]       # exit 1 if decorate + clean would change a notebook

``check`` runs decorate and clean in memory and compares the result with the file, so it finds
everything they would change (metadata, cell ids, output metadata, a stale Colab cell or badge).
The repository URL lives in one place: ``[tool.greenlab]`` in pyproject.toml.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
BADGES_TAG, COLAB_TAG, NAV_TAG = "badges", "colab-setup", "navigation"
KEEP_NB_META = ("kernelspec", "language_info", "otter")
KEEP_CELL_META = ("tags", "deletable", "editable")
# The extras of greenlab a notebook's Colab cell installs, by what its code uses (pyproject.toml).
EXTRA_USES = {
    "tf": re.compile(r"\bimport_tf(mot)?\(|\bgl\.tf\b|\btensorflow\b|tflite|litert", re.I),
    "onnx": re.compile(r"onnx|\bOrt[A-Z]|\bort_", re.I),
    "grading": re.compile(r"\bgrader\.check\(|\bgl\.grade\b|\botter\b"),
}


def config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["greenlab"]


def lessons() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def title_of(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "untitled"


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def _set_cell(nb, tag, cell, index):
    """Replace the cell carrying ``tag`` or insert ``cell`` at ``index``."""
    cell.metadata["tags"] = [tag]
    found = _tagged(nb, tag)
    if found:
        old = nb.cells[found[0]]
        if old.cell_type == cell.cell_type and old.source == cell.source:
            return
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = old.get("outputs", []), old.get("execution_count")
        nb.cells[found[0]] = cell
    else:
        nb.cells.insert(index, cell)


def colab_extras(nb, folder: str) -> tuple[str, ...]:
    """The extras the notebook's code needs (exercises and masters are graded: ``grading``)."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code"
                     and COLAB_TAG not in c.get("metadata", {}).get("tags", []))
    found = {name for name, pattern in EXTRA_USES.items() if pattern.search(code)}
    if folder in ("exercises", "solutions"):
        found.add("grading")
    return tuple(sorted(found))


def colab_source(cfg: dict, extras: tuple[str, ...] = ()) -> str:
    spec = f"greenlab[{','.join(extras)}]" if extras else "greenlab"
    return (
        "# Colab only: install greenlab (pinned) -- Colab's own torch and TensorFlow are kept.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "{spec} @ git+{cfg["repo_url"]}@{cfg["colab_ref"]}"'
    )


def decorate(path: Path, cfg: dict) -> None:
    """Add/refresh the badges cell (after the title), the Colab cell and the navigation cell."""
    nb = decorated(nbformat.read(path, as_version=4), path, cfg)
    nbformat.write(nb, path)


def decorated(nb, path: Path, cfg: dict):
    """``nb`` (read from ``path``) decorated and cleaned, in memory."""
    folder = path.parent.name
    rel = f"{folder}/{path.name}"
    repo_path = cfg["repo_url"].split("github.com/")[-1].removesuffix(".git")
    colab = f"https://colab.research.google.com/github/{repo_path}/blob/{cfg['colab_ref']}/{rel}"
    binder = f"https://mybinder.org/v2/gh/{repo_path}/{cfg['colab_ref']}?urlpath=lab/tree/{rel}"
    badges = (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
        f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})"
    )
    _set_cell(nb, BADGES_TAG, nbformat.v4.new_markdown_cell(badges), 1)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    colab = colab_source(cfg, colab_extras(nb, folder))
    _set_cell(nb, COLAB_TAG, nbformat.v4.new_code_cell(colab), first_code)
    if folder == "notebooks":
        order = lessons()
        i = order.index(path) if path in order else -1
        prev = f"[← {title_of(nbformat.read(order[i - 1], 4))}]({order[i - 1].name})" if i > 0 else ""
        nxt = (f"[{title_of(nbformat.read(order[i + 1], 4))} →]({order[i + 1].name})"
               if 0 <= i < len(order) - 1 else "")
        exercise = ROOT / "exercises" / path.name
        ex = f"[exercises](../exercises/{path.name})" if exercise.exists() else ""
        nav = " · ".join(p for p in (prev, "[course index](../README.md)", ex, nxt) if p)
        found = _tagged(nb, NAV_TAG)
        _set_cell(nb, NAV_TAG, nbformat.v4.new_markdown_cell(nav),
                  found[0] if found else len(nb.cells))
    clean_nb(nb)
    return nb


def clean_nb(nb) -> None:
    """Drop metadata that changes from run to run or machine to machine."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NB_META}
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_META}
        cell.pop("id", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).clear() if "metadata" in out else None
    nb.nbformat_minor = 4  # no cell ids: they are random on creation


def execute(path: Path, timeout: int = 600) -> None:
    """Execute a notebook in a fresh kernel with its own folder as cwd, then clean it."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_ledger = os.environ.setdefault("GREENLAB_LEDGER", str(ROOT / "build" / "ledger.sqlite"))
    Path(env_ledger).parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    clean_nb(nb)
    nbformat.write(nb, path)


def _text(nb) -> str:
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"  # as nbformat.write writes it


def is_clean(path: Path, cfg: dict | None = None) -> list[str]:
    """What ``decorate`` + ``clean`` would change in ``path`` (empty: nothing, byte for byte)."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    after = decorated(copy.deepcopy(nb), path, cfg or config())
    if _text(after) == text:
        return []
    problems = []
    extra = set(nb.metadata) - set(after.metadata)
    if extra:
        problems.append(f"notebook metadata {sorted(extra)}")
    if nb.metadata.get("language_info") != after.metadata.get("language_info"):
        problems.append("notebook metadata language_info beyond its name")
    if nb.nbformat_minor != after.nbformat_minor:
        problems.append(f"nbformat_minor {nb.nbformat_minor} (clean writes {after.nbformat_minor})")
    tags = {(t, c.source) for c in after.cells for t in c.metadata.get("tags", [])
            if t in (BADGES_TAG, COLAB_TAG, NAV_TAG)}
    old_tags = {(t, c.source) for c in nb.cells for t in c.get("metadata", {}).get("tags", [])
                if t in (BADGES_TAG, COLAB_TAG, NAV_TAG)}
    for tag in sorted({t for t, _ in tags ^ old_tags}):
        problems.append(f"{tag} cell missing or stale (run: python tools/nbtools.py decorate)")
    for i, cell in enumerate(nb.cells):
        extra = set(cell.get("metadata", {})) - set(KEEP_CELL_META)
        if extra:
            problems.append(f"cell {i} metadata {sorted(extra)}")
        if "id" in cell:
            problems.append(f"cell {i} id")
        if any(out.get("metadata") for out in cell.get("outputs", [])):
            problems.append(f"cell {i} output metadata")
    return problems or ["differs from what decorate + clean write (run: python tools/nbtools.py "
                        "decorate)"]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cmd, paths = argv[0], [Path(p).resolve() for p in argv[1:]]
    all_nbs = [p for f in FOLDERS for p in sorted((ROOT / f).glob("*.ipynb"))]
    if cmd == "decorate":
        cfg = config()
        for p in paths or all_nbs:
            decorate(p, cfg)
    elif cmd == "execute":
        for p in paths:
            print(f"executing {p.relative_to(ROOT)}", flush=True)
            execute(p)
    elif cmd == "clean":
        for p in paths or all_nbs:
            nb = nbformat.read(p, as_version=4)
            clean_nb(nb)
            nbformat.write(nb, p)
    elif cmd == "check":
        cfg = config()
        bad = {p: is_clean(p, cfg) for p in paths or all_nbs}
        bad = {p: v for p, v in bad.items() if v}
        for p, v in bad.items():
            print(f"{p.relative_to(ROOT)}: {'; '.join(v)}")
        return 1 if bad else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
