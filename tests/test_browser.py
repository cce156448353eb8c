"""The course as a learner meets it: JupyterLab from .venv in headless Chromium.

Lesson 01 runs from the *Run* menu with no error and with its plots drawn; in the first lesson with
an ipywidgets slider, the cells up to the slider run, and dragging the slider redraws its output.
Budget: about 3 minutes on an idle 2-core machine (each notebook may take GREENLAB_BROWSER_TIMEOUT_S).
Screenshots go to ``tests/artifacts/`` (not committed). Needs Debian's ``/usr/bin/chromium``
(``make browser-deps``) and Playwright's Python package; without them the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import jlab
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
LESSON = Path(os.environ.get("GREENLAB_BROWSER_LESSON", ROOT / "notebooks" / "01_baselines.ipynb"))
TIMEOUT_S = float(os.environ.get("GREENLAB_BROWSER_TIMEOUT_S", "300"))

_reason = jlab.why_unavailable()
if _reason:
    print(f"browser tests skipped: {_reason}")
pytestmark = pytest.mark.skipif(_reason is not None, reason=str(_reason))


def slider_lesson() -> Path | None:
    """The first lesson (in course order) with an ipywidgets slider."""
    override = os.environ.get("GREENLAB_BROWSER_SLIDER")
    if override:
        return Path(override)
    return next((p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                 if jlab.slider_cell_index(p) is not None), None)


def skip_absent(path: Path | None, what: str) -> Path:
    if path is None or not path.exists():
        reason = f"{what} not found ({path}): nothing to open yet"
        print(f"browser test skipped: {reason}")
        pytest.skip(reason)
    return path


class Run:
    """One notebook running in its own tab: its page, final state, seconds, or what went wrong."""

    def __init__(self, nb: jlab.NotebookPage, path: Path):
        self.nb, self.path, self.name = nb, path, path.stem
        self.state: dict | None = None
        self.seconds = float("nan")
        self.problem: str | None = None

    def fail(self, message: str):
        self.nb.page.screenshot(path=str(ARTIFACTS / f"{self.name}-FAILED.png"))
        pytest.fail(f"{self.name}: {message}\n--- JupyterLab log (tail) ---\n{self.nb.lab.log(2000)}")

    def check_ran(self) -> dict:
        if self.problem:
            self.fail(self.problem)
        errors = self.nb.errors(self.state)
        if errors:
            self.fail(f"a cell shows an error in the browser: {errors}")
        return self.state


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start JupyterLab and Chromium; run lesson 01, then the slider lesson up to its slider.

    One after the other, like a learner, and each notebook's kernel alone on the cores: two kernels
    at 2 threads each on 2 cores would oversubscribe them. Lesson 01's kernel is shut down when it
    is done (its outputs stay on the page).
    """
    lesson, slider = LESSON if LESSON.exists() else None, slider_lesson()
    if lesson is None and slider is None:
        yield {}
        return
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("course")  # a copy: running cells must not touch committed files
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    for extra in (lesson, slider):
        if extra is not None and not (root / "notebooks" / extra.name).exists():
            shutil.copy(extra, root / "notebooks")
    env = {"GREENLAB_LEDGER": str(root / "ledger.sqlite")}
    t0 = time.perf_counter()
    with jlab.JupyterLab(root, env=env) as lab, sync_playwright() as p:
        context = jlab.launch_chromium(p, tmp_path_factory.mktemp("chromium-profile"))
        context.set_default_timeout(60_000)
        out: dict[str, Run] = {}
        for key, path in (("lesson", lesson), ("slider", slider)):
            if path is None:
                continue
            if key == "slider" and path == lesson:
                out["slider"] = out["lesson"]
                continue
            t_start = time.perf_counter()
            nb = jlab.NotebookPage(context.new_page(), lab, f"notebooks/{path.name}")
            run = out[key] = Run(nb, path)
            try:
                nb.open()
                if key == "lesson":
                    nb.start_all()
                else:  # only what the slider needs: the cells above it, then its own
                    nb.start_through(jlab.slider_cell_index(path))
                run.state = nb.wait(TIMEOUT_S)
            except (RuntimeError, TimeoutError) as exc:
                run.problem = str(exc)
            run.seconds = time.perf_counter() - t_start
            if key == "lesson" and run.problem is None:
                nb.page.screenshot(path=str(ARTIFACTS / f"{run.name}-after-run-all.png"))
                lab.shutdown_kernels()
        yield out
        context.close()
    print(f"\nbrowser tests: {time.perf_counter() - t0:.0f} s from JupyterLab's start to its stop")


def test_lesson_01_runs_in_jupyterlab(runs):
    skip_absent(LESSON, "lesson 01")
    run = runs["lesson"]
    state = run.check_ran()
    not_run = [c["index"] for c in state["cells"] if c["count"] is None]
    if not_run:
        run.fail(f"cells {not_run} did not run")
    # The plots the committed notebook shows are drawn in the browser too (inline backend).
    drawn = [c["index"] for c in state["cells"]
             if any("image/png" in o["mimes"] for o in c["outputs"])]
    missing = sorted(set(jlab.image_cells(run.path)) - set(drawn))
    if missing:
        run.fail(f"cells {missing} drew a plot in the committed notebook but not in JupyterLab "
                 "(is MPLBACKEND set to a non-inline backend?)")
    if drawn:
        page = run.nb.page
        plots = page.locator(".jp-CodeCell", has=page.locator(".jp-OutputArea-output img"))
        for which, plot in (("first", plots.first), ("last", plots.last)):
            plot.scroll_into_view_if_needed()
            plot.screenshot(path=str(ARTIFACTS / f"{run.name}-{which}-plot.png"))
    print(f"{run.name}: {len(state['cells'])} code cells ran in JupyterLab in {run.seconds:.0f} s, "
          f"{len(drawn)} with plots, no errors")


def test_slider_redraws_its_output(runs):
    skip_absent(slider_lesson(), "a lesson with an ipywidgets slider")
    run = runs["slider"]
    run.check_ran()
    nb = run.nb
    cell = nb.slider_cell()
    try:
        cell.wait_for(state="attached", timeout=30_000)
    except Exception:
        run.fail("no rendered ipywidgets slider after running the cells up to it "
                 "(is the jupyterlab_widgets extension installed?)")
    cell.scroll_into_view_if_needed()
    before = nb.output_signature()
    cell.screenshot(path=str(ARTIFACTS / f"{run.name}-slider-before.png"))
    t0 = time.perf_counter()
    readout_before, readout_after = nb.move_slider(cell, fraction=0.4)
    if readout_before == readout_after:
        run.fail(f"dragging the slider did not change its value ({readout_before!r})")
    try:
        after = nb.wait_for_change(before)
    except TimeoutError as exc:
        run.fail(f"{exc} (slider {readout_before!r} -> {readout_after!r})")
    cell.screenshot(path=str(ARTIFACTS / f"{run.name}-slider-after.png"))
    assert after != before
    problems = nb.widget_errors(cell) + nb.errors()
    if problems:
        run.fail(f"the slider's callback raised: {problems}")
    print(f"{run.name}: the cells up to the slider ran in {run.seconds:.0f} s; "
          f"slider {readout_before} -> {readout_after} redrew its output in "
          f"{time.perf_counter() - t0:.1f} s")
