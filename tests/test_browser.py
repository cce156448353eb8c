"""JupyterLab as a learner meets it, in headless Chromium: the interface works.

On a small fixture notebook (``tests/fixtures/browser_smoke.ipynb``: no torch, no data, no
training): JupyterLab starts, a kernel starts, *Run All* runs every cell with no error output, a
matplotlib plot is drawn inline, and dragging an ipywidgets slider redraws its plot. The lessons
themselves are proven by nbval (``make nbval``), not here: running them in a browser under a
wall-clock budget made this test fail on a busy machine.

Every wait is a budget only a hang exhausts: ``GREENLAB_BROWSER_TIMEOUT_S`` (default 300 s) per
step, many times what each step takes on a 4x slower machine (the test prints each step's
seconds). Screenshots go to ``build/browser/`` (``slider-after.png`` is the last plot drawn). Needs
Debian's ``/usr/bin/chromium`` (``make browser-deps``) and Playwright's Python package; without
them the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import jlab
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "browser"
NOTEBOOK = ROOT / "tests" / "fixtures" / "browser_smoke.ipynb"
TIMEOUT_S = float(os.environ.get("GREENLAB_BROWSER_TIMEOUT_S", "300"))

_reason = jlab.why_unavailable()
if _reason:
    print(f"browser tests skipped: {_reason}")
pytestmark = pytest.mark.skipif(_reason is not None, reason=str(_reason))


def plot_cells(path: Path) -> list[int]:
    """Code cells that draw a plot when they run (``plt.show()``), the slider's own excepted."""
    cells = json.loads(path.read_text())["cells"]
    return [i for i, c in enumerate(cells) if c["cell_type"] == "code"
            and "plt.show()" in "".join(c["source"]) and i != jlab.slider_cell_index(path)]


@dataclass
class Session:
    """The fixture notebook after Run All in one JupyterLab tab, or what went wrong."""

    nb: jlab.NotebookPage
    state: dict | None = None
    problem: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def fail(self, message: str):
        self.nb.page.screenshot(path=str(ARTIFACTS / "FAILED.png"))
        pytest.fail(f"{message}\n--- JupyterLab log (tail) ---\n{self.nb.lab.log(2000)}")

    def ran(self) -> dict:
        if self.problem:
            self.fail(self.problem)
        errors = self.nb.errors(self.state)
        if errors:
            self.fail(f"a cell shows an error in the browser: {errors}")
        return self.state


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """JupyterLab and Chromium started, the fixture notebook open and run once (Run All)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("lab")  # a copy: running cells must not touch committed files
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    env = {"GREENLAB_LEDGER": str(root / "ledger.sqlite")}
    t0 = time.perf_counter()
    with jlab.JupyterLab(root, env=env, startup_timeout_s=TIMEOUT_S) as lab, \
            sync_playwright() as p:
        seconds = {"JupyterLab start": time.perf_counter() - t0}
        context = jlab.launch_chromium(p, tmp_path_factory.mktemp("chromium-profile"))
        context.set_default_timeout(TIMEOUT_S * 1000)  # clicks, locators: only a hang takes this
        run = Session(jlab.NotebookPage(context.new_page(), lab, NOTEBOOK.name), seconds=seconds)
        step = "opening the notebook (page and kernel)"
        try:
            t = time.perf_counter()
            run.nb.open(timeout_s=TIMEOUT_S)
            seconds["page + kernel ready"] = time.perf_counter() - t
            step, t = "Run All", time.perf_counter()
            run.nb.start_all()
            run.state = run.nb.wait(TIMEOUT_S)
            seconds["Run All"] = time.perf_counter() - t
        except (RuntimeError, TimeoutError, PlaywrightError) as exc:
            run.problem = f"{step}: {type(exc).__name__}: {exc}"
        yield run
        context.close()
    print("\nbrowser test: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
          + f"; {time.perf_counter() - t0:.0f} s from JupyterLab's start to its stop "
          f"(budget {TIMEOUT_S:g} s per step)")


def test_cells_run_and_a_plot_renders(session):
    state = session.ran()
    not_run = [c["index"] for c in state["cells"] if c["count"] is None]
    if not_run:
        session.fail(f"cells {not_run} did not run")
    by_index = {c["index"]: c for c in state["cells"]}
    backend = " ".join(o["text"] or "" for o in by_index[1]["outputs"])
    if "inline" not in backend:
        session.fail(f"the kernel's matplotlib backend is not the inline one: {backend!r} "
                     "(is MPLBACKEND leaking into JupyterLab?)")
    expected = plot_cells(NOTEBOOK)
    assert expected, "the fixture notebook has no plot cell"
    missing = [i for i in expected
               if not any("image/png" in o["mimes"] for o in by_index[i]["outputs"])]
    if missing:
        session.fail(f"cells {missing} call plt.show() but show no image in JupyterLab")
    page = session.nb.page
    plot = page.locator(".jp-Notebook .jp-Cell").nth(expected[0])
    plot.locator(".jp-OutputArea-output img").first.wait_for(state="visible")
    plot.scroll_into_view_if_needed()
    plot.screenshot(path=str(ARTIFACTS / "plot.png"))
    print(f"{len(state['cells'])} code cells ran in JupyterLab, {len(expected)} drew a plot, "
          "no errors")


def test_slider_redraws_its_plot(session):
    session.ran()
    nb = session.nb
    cell = nb.slider_cell()
    try:
        cell.wait_for(state="attached")
        cell.locator("img").first.wait_for(state="visible")  # the first drawing, before any drag
    except Exception as exc:
        session.fail(f"no ipywidgets slider with its plot after Run All ({type(exc).__name__}; "
                     "is the jupyterlab_widgets extension installed?)")
    cell.scroll_into_view_if_needed()
    before = nb.output_signature()
    cell.screenshot(path=str(ARTIFACTS / "slider-before.png"))
    t0 = time.perf_counter()
    readout_before, readout_after = nb.move_slider(cell, fraction=0.4)
    if readout_before == readout_after:
        session.fail(f"dragging the slider did not change its value ({readout_before!r})")
    try:
        after = nb.wait_for_change(before, timeout_s=TIMEOUT_S)
    except TimeoutError as exc:
        session.fail(f"{exc} (slider {readout_before!r} -> {readout_after!r})")
    problems = nb.widget_errors(cell) + nb.errors()
    if problems:
        session.fail(f"the slider's callback raised: {problems}")
    assert after != before
    if cell.locator("img").count() != 1:
        session.fail(f"after the drag the slider's cell shows {cell.locator('img').count()} "
                     "plots, not 1")
    cell.screenshot(path=str(ARTIFACTS / "slider-after.png"))  # the last plot drawn
    print(f"slider {readout_before} -> {readout_after} redrew its plot in "
          f"{time.perf_counter() - t0:.1f} s")
