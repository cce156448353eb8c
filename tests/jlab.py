"""Drive a real JupyterLab in headless Chromium (Playwright): the helper behind tests/test_browser.py.

* :class:`JupyterLab` starts ``python -m jupyterlab`` from the current interpreter (``.venv``) on
  127.0.0.1, a free port and a random token, with throw-away runtime/config/settings/workspace
  folders, and stops it (API shutdown, then the process group it started) at the end.
* :func:`launch_chromium` opens Debian's ``/usr/bin/chromium`` with a fresh ``--user-data-dir``.
* :class:`NotebookPage` opens a notebook, runs all cells from the *Run* menu, reads the notebook
  model (``window.jupyterapp``) to know when every cell ran and whether any failed, and moves an
  ipywidgets slider with the mouse.

Nothing here downloads: Playwright's own browsers are never installed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path(os.environ.get("GREENLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A slider in a code cell's source: ipywidgets' slider classes or interact(...) with a range.
SLIDER_SOURCE = re.compile(r"\b(?:Int|Float|FloatLog|IntRange|FloatRange|Selection)Slider\b|"
                           r"\binteract(?:ive)?\s*\(")


def why_unavailable() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return (f"no Chromium at {CHROMIUM} (run `make browser-deps` as root to apt-get install "
                "Debian's chromium; Playwright's own browser downloads are never used)")
    try:  # e.g. Ubuntu's chromium is a snap stub that cannot run in a container
        subprocess.run([str(CHROMIUM), "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{CHROMIUM} does not run here ({type(exc).__name__}: {exc})"
    for module, hint in (("playwright", "pip install playwright (dev extra)"),
                         ("jupyterlab", "pip install jupyterlab (lab extra)")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: {hint}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slider_cell_index(path: Path) -> int | None:
    """Index of the first code cell that builds an ipywidgets slider (None: the notebook has none)."""
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    if "ipywidgets" not in code and "widgets." not in code:
        return None
    return next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                 and SLIDER_SOURCE.search("".join(c["source"]))), None)


class JupyterLab:
    """A JupyterLab server for one test: ``with JupyterLab(root) as lab: lab.url("x.ipynb")``."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, startup_timeout_s: float = 90):
        self.root = Path(root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.startup_timeout_s = startup_timeout_s
        self._tmp = Path(tempfile.mkdtemp(prefix="greenlab-jlab-"))
        self._extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self._tmp / "jupyterlab.log"

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # `make lab` leaves the matplotlib backend to ipykernel (inline plots); a backend inherited
        # from a test runner (MPLBACKEND=Agg) would hide every plot.
        env.pop("MPLBACKEND", None)
        settings = self._tmp / "settings"
        notification = settings / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        # No "news / updates?" toast over the page: it asks the network, which the course never does.
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env.update(
            JUPYTER_RUNTIME_DIR=str(self._tmp / "runtime"),
            JUPYTER_CONFIG_DIR=str(self._tmp / "config"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self._tmp / "workspaces"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        env.update(self._extra_env)
        return env

    def start(self) -> JupyterLab:
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read cell states, not pixels
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log = open(self.log_path, "w")  # noqa: SIM115 -- closed in stop()
        self._log = log
        self.proc = subprocess.Popen(cmd, env=self._environment(), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.root, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.api("status"), timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"JupyterLab did not answer in {self.startup_timeout_s} s:\n{self.log()}")

    def api(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/{path}?token={self.token}"

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}&reset"

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:  # the clean way: the server shuts its kernels down, then itself
                req = urllib.request.Request(self.api("shutdown"), method="POST")
                urllib.request.urlopen(req, timeout=5).close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)  # the group this object started
                    self.proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def launch_chromium(playwright, user_data_dir: Path, viewport=(1400, 1000)):
    """Debian's Chromium, headless, with a fresh profile; returns a persistent browser context."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),  # Playwright passes it as --user-data-dir
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": viewport[0], "height": viewport[1]},
    )


# Reads the open notebook's model: which code cells ran, their outputs, the kernel's status.
_STATE_JS = """
() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    const outputs = c.outputs.toJSON().map(o => ({
      type: o.output_type, mimes: Object.keys(o.data || {}), ename: o.ename || null,
      evalue: o.evalue || null, text: o.output_type === 'stream' ? String(o.text).slice(0, 300) : null}));
    out.push({index: i, count: c.executionCount, state: c.executionState || null, outputs});
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {kernel: kernel ? kernel.status : null, ready: panel.context.isReady, cells: out};
}
"""


class NotebookPage:
    """One notebook open in JupyterLab in a Playwright page."""

    def __init__(self, page, lab: JupyterLab, notebook: str):
        self.page, self.lab, self.notebook = page, lab, notebook

    def open(self, timeout_s: float = 90) -> None:
        self.page.goto(self.lab.url(self.notebook), wait_until="domcontentloaded",
                       timeout=timeout_s * 1000)
        self.page.wait_for_function(
            "() => { const s = (" + _STATE_JS + ")(); return s && s.ready && s.kernel === 'idle'; }",
            timeout=timeout_s * 1000, polling=500)

    def state(self) -> dict:
        return self.page.evaluate(_STATE_JS)

    def errors(self, state: dict | None = None) -> list[str]:
        state = state or self.state()
        return [f"cell {c['index']}: {o['ename']}: {o['evalue']}"
                for c in state["cells"] for o in c["outputs"] if o["type"] == "error"]

    def _menu(self, menu: str, command: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
        self.page.locator(f'.lm-Menu-item[data-command="{command}"]').click()

    def clear_all(self, timeout_s: float = 120) -> None:
        """Edit > Clear Outputs of All Cells: what the browser shows next comes from this run."""
        self._menu("Edit", "editmenu:clear-all")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cells = self.state()["cells"]
            if all(c["count"] is None and not c["outputs"] for c in cells):
                return
            time.sleep(0.3)
        raise TimeoutError("Clear Outputs of All Cells left outputs behind")

    def start_all(self, timeout_s: float = 120) -> None:
        """Clear all outputs, then Run > Run All Cells (returns at once; see :meth:`wait`)."""
        self.clear_all(timeout_s)
        self._menu("Run", "runmenu:run-all")

    def poll(self) -> tuple[bool, dict]:
        """(finished, state): finished once every cell ran and the kernel is idle, or a cell
        shows an error (Run All stops there)."""
        state = self.state()
        if state["kernel"] in ("dead", "unknown"):
            raise RuntimeError(f"{self.notebook}: the kernel died ({state['kernel']}):\n"
                               f"{self.lab.log()}")
        if self.errors(state):
            return True, state
        ran = all(c["count"] is not None and c["state"] != "running" for c in state["cells"])
        return ran and state["kernel"] == "idle", state

    def wait(self, timeout_s: float = 180) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(1.0)
            finished, state = self.poll()
            if finished:
                return state
        raise TimeoutError(f"{self.notebook}: cells still running after {timeout_s} s: "
                           f"{[c['index'] for c in self.state()['cells'] if c['count'] is None]}")

    def slider_cell(self):
        """The first rendered code cell that shows an ipywidgets slider."""
        return self.page.locator(".jp-CodeCell", has=self.page.locator(".widget-slider")).first

    def output_signature(self) -> str:
        """What the notebook's outputs show: their images and texts, minus slider readouts."""
        return self.page.evaluate("""() => {
          const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
          const parts = [];
          if (!nb) return '';
          nb.querySelectorAll('.jp-Cell-outputWrapper img').forEach(img => parts.push(
            'img:' + img.src.length + ':' + img.src.slice(-64)));
          nb.querySelectorAll('.jp-Cell-outputWrapper .jp-RenderedText, ' +
                              '.jp-Cell-outputWrapper .jp-RenderedHTMLCommon').forEach(el => {
            if (!el.closest('.widget-slider')) parts.push('text:' + el.innerText);
          });
          return parts.join('\\n');
        }""")

    def move_slider(self, cell, fraction: float = 0.5) -> tuple[str, str]:
        """Drag the first slider's handle by ``fraction`` of its track; returns readouts before/after."""
        slider = cell.locator(".widget-slider").first
        slider.scroll_into_view_if_needed()
        readout = slider.locator(".widget-readout").first
        before = readout.inner_text() if readout.count() else ""
        handle = slider.locator(".noUi-handle").first
        track = slider.locator(".noUi-target").first
        hb, tb = handle.bounding_box(), track.bounding_box()
        if hb is None or tb is None:
            raise RuntimeError("the slider is not visible (no bounding box)")
        x0, y0 = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        x1 = min(tb["x"] + tb["width"] - 1, x0 + fraction * tb["width"])
        self.page.mouse.move(x0, y0)
        self.page.mouse.down()
        for i in range(1, 6):  # a real drag: several moves, not a jump
            self.page.mouse.move(x0 + (x1 - x0) * i / 5, y0)
        self.page.mouse.up()
        after = readout.inner_text() if readout.count() else ""
        return before, after

    def wait_for_change(self, before: str, timeout_s: float = 90) -> str:
        """Wait until the outputs differ from ``before`` and the kernel is idle; the settled view."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if self.state()["kernel"] != "idle":
                continue
            now = self.output_signature()
            if now != before and now.strip():
                time.sleep(0.5)  # let the browser draw the last update
                return self.output_signature()
        raise TimeoutError(f"the outputs did not change within {timeout_s} s of moving the slider")

    def widget_errors(self, cell) -> list[str]:
        """Tracebacks shown inside the cell's output (an ``interact`` callback that raised)."""
        return cell.evaluate("""(cell) => Array.from(cell.querySelectorAll(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
            .map(el => el.innerText).filter(t => /Traceback|Error:/.test(t))""")
