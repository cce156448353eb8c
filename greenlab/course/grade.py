"""Grading of the exercise notebooks, built on otter-grader.

* ``notebook``: the ``grader`` of an exercise notebook (``grader.check("q1")``), also on Colab.
* ``grade`` / ``python -m greenlab.course.grade PATH [--timeout S] [--json OUT]``: grade a learner's notebook
  with ``otter run`` in a fresh kernel, offline, within a timeout, on a copy (the learner's file is
  only read); print a score table and write it as JSON beside the notebook (``NN_name.grade.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .autograder import autograder, find_master, questions, write_json

__all__ = ["notebook", "TaskScore", "Report", "grade", "main"]

# --- in the learner's notebook --------------------------------------------------------------------

def notebook(name: str):
    """The ``otter.Notebook`` behind ``grader.check("q1")`` in exercise ``name`` (e.g. "02_pruning.ipynb").

    Locally and on Binder the public tests are read from the notebook file's metadata (a renamed
    copy is found by its otter assignment name). On Colab the notebook is not a file, and otter
    refuses metadata tests there (otter-grader issues 630, 901): the tests are taken from the open
    notebook through Colab's frontend and written to a temporary folder of test files.
    """
    import otter

    if "google.colab" not in sys.modules:
        path = Path(name)
        if not path.is_file():
            found = [p for p in sorted(Path().glob("*.ipynb")) if _assignment_name(p) == path.stem]
            if not found and not getattr(otter.Notebook, "_grading_mode", False):
                raise FileNotFoundError(f"no notebook {name!r} in {Path.cwd()}: open the exercise "
                                        "from its folder (exercises/) so its checks can be read")
            path = found[0] if found else path
        return otter.Notebook(str(path)) if path.is_file() else otter.Notebook()
    from google.colab import _message  # only exists on Colab

    nb = _message.blocking_request("get_ipynb", request="", timeout_sec=30) or {}
    tests = nb.get("ipynb", {}).get("metadata", {}).get("otter", {}).get("tests")
    if not tests:
        raise RuntimeError("could not read this notebook's checks from Colab: save it (Ctrl+S), "
                           "then run this cell again")
    tests_dir = Path(tempfile.mkdtemp(prefix="greenlab-tests-"))
    for question, source in tests.items():
        (tests_dir / f"{question}.py").write_text(source, encoding="utf-8")
    return otter.Notebook(tests_dir=str(tests_dir))


def _assignment_name(path: Path) -> str | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        return meta.get("otter", {}).get("assignment_name")
    except (OSError, ValueError, AttributeError):
        return None


# --- grading --------------------------------------------------------------------------------------

@dataclass
class TaskScore:
    """One row of the score table."""

    task: str
    points: float
    max: float
    passed: bool
    message: str = ""


@dataclass
class Report:
    """The score table of one graded notebook.

    ``status`` is "graded", "timeout" (killed after ``timeout_s``), "invalid" (not a notebook) or
    "error" (otter could not grade it); in every case each task has a row, with the reason.
    """

    notebook: str
    assignment: str
    status: str
    tasks: list[TaskScore]
    notes: list[str] = field(default_factory=list)
    time_s: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tasks)

    @property
    def max_score(self) -> float:
        return sum(t.max for t in self.tasks)

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "assignment": self.assignment, "status": self.status,
                "score": self.score, "max_score": self.max_score, "time_s": round(self.time_s, 1),
                "tasks": [asdict(t) for t in self.tasks], "notes": self.notes}

    def table(self) -> str:
        rows = [("task", "points", "max", "passed", "message")]
        rows += [(t.task, f"{t.points:g}", f"{t.max:g}", "yes" if t.passed else "no", t.message)
                 for t in self.tasks]
        rows.append(("total", f"{self.score:g}", f"{self.max_score:g}", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
                 for r in rows]
        return "\n".join(line.rstrip() for line in [*lines, *(f"note: {n}" for n in self.notes)])


def _exception_line(message: str) -> str:
    """``"CheckFailed: expected ..."`` out of otter's "Error at line N in test q1: ..." text."""
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "failed"
    for i in range(len(lines) - 1, -1, -1):
        if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Failed|Interrupt|Exit)\b", lines[i]):
            text = " ".join(lines[i:])
            break
    if re.search(r"NoneType'? object is not callable", text):  # otter passes None for a missing name
        text += " (a function this task needs is not defined: was its cell deleted or not run?)"
    return text[:300]


def _child(submission: str, zip_path: str, out_dir: str) -> None:
    """Runs in the grading subprocess: ``otter run``, then a compact summary for the parent."""
    from otter.run import main as otter_run

    results = otter_run(submission, autograder=zip_path, output_dir=out_dir, no_logo=True)
    tasks = {}
    for name, test_file in results.results.items():
        failed = [_exception_line(r.message) for r in test_file.test_case_results if not r.passed]
        tasks[name] = {"points": float(test_file.score), "messages": list(dict.fromkeys(failed))}
    errors = []
    for cell in getattr(results.notebook, "cells", None) or []:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
                errors.append(f"a cell raised {out.get('ename')}: {str(out.get('evalue'))[:200]}"
                              f" (cell starting {first!r})")
    failure = getattr(results, "_catastrophic_error", None)  # e.g. the kernel died
    summary = {"tasks": tasks, "errors": errors, "failure": repr(failure) if failure else ""}
    Path(out_dir, "greenlab.json").write_text(json.dumps(summary), encoding="utf-8")


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the grading process, its group and its kernel (which runs in a session of its own)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    if hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, 9)
    proc.kill()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    proc.wait()


def _run_otter(submission: Path, zip_path: Path, out: Path, timeout_s: float) -> tuple[str, str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3",
           "GREENLAB_LEDGER": str(out / "ledger.sqlite")}  # grading runs stay out of your ledger
    code = "import sys; from greenlab.course.grade import _child; _child(*sys.argv[1:])"
    with open(out / "otter.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", code, str(submission), str(zip_path), str(out)],
                                cwd=submission.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return "timeout", (f"not finished after {timeout_s:g} s and stopped (an endless loop? "
                               "a long training run? --timeout raises the limit)")
    if not (out / "greenlab.json").is_file():
        tail = (out / "otter.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return "error", f"otter could not grade this notebook (exit {proc.returncode}): {tail[0][:300]}"
    return "graded", ""


def _check_notebook(path: Path) -> str:
    """Empty when ``path`` reads as a Jupyter notebook, else why not."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # malformed JSON, a binary file...
        return f"not a valid notebook: its file is not JSON ({type(exc).__name__}: {exc})"[:300]
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", nb.get("worksheets")), list):
        return "not a valid notebook: the JSON has no list of cells"
    return ""


def _report_path(notebook: Path, json_path: str | Path | None) -> Path:
    """Where the JSON report goes: ``json_path``, or ``<notebook stem>.grade.json`` beside it."""
    return Path(json_path) if json_path else notebook.with_name(f"{notebook.stem}.grade.json")


def grade(path: str | Path, *, master: str | Path | None = None,
          autograder_zip: str | Path | None = None, timeout_s: float = 300.0,
          json_path: str | Path | None = None, build_dir: str | Path | None = None) -> Report:
    """Grade one notebook with ``otter run`` on a copy of it; write the report as JSON.

    Args:
        path: the learner's notebook (only read, never modified).
        master: its master; default ``solutions/<assignment name>.ipynb`` found above it.
        autograder_zip: an otter autograder zip to use instead of building one from ``master``.
        timeout_s: the whole run (fresh kernel, every cell, every test) is stopped after this.
        json_path: where to write the report; default ``<notebook stem>.grade.json`` beside it.
        build_dir: where autograder zips are cached (see ``autograder``).

    Returns:
        The report; a notebook that raises, never ends or is not valid JSON still gets one.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing notebook file, got {str(path)!r}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
    named = _assignment_name(path)
    name = named or path.stem
    if autograder_zip is None:
        autograder_zip = autograder(master or find_master(path, name), build_dir)
    zip_path = Path(autograder_zip).resolve()
    if not zip_path.is_file():
        raise ValueError(f"autograder_zip must be an existing zip file, got {str(zip_path)!r}")
    maxima = questions(zip_path)
    start = time.perf_counter()
    summary, notes = {"tasks": {}, "errors": []}, []
    reason = _check_notebook(path)
    status = "invalid" if reason else "graded"
    if not reason:
        with tempfile.TemporaryDirectory(prefix="greenlab-grade-") as tmp:
            submission = Path(tmp, "submission", re.sub(r"[^\w.-]", "_", name) + ".ipynb")
            submission.parent.mkdir()
            shutil.copyfile(path, submission)
            if not named:  # e.g. a master graded as a submission: named after its file
                data = json.loads(submission.read_text(encoding="utf-8"))
                data.setdefault("metadata", {}).setdefault("otter", {})["assignment_name"] = name
                submission.write_text(json.dumps(data), encoding="utf-8")
            out = Path(tmp, "out")
            out.mkdir()
            status, reason = _run_otter(submission, zip_path, out, timeout_s)
            if status == "graded":
                summary = json.loads((out / "greenlab.json").read_text(encoding="utf-8"))
                notes = summary["errors"] + ([summary["failure"]] if summary["failure"] else [])
    tasks = []
    for question, max_points in maxima.items():
        got = summary["tasks"].get(question)
        if got is None:
            tasks.append(TaskScore(question, 0.0, max_points, False, reason or "not graded"))
            continue
        passed = got["points"] >= max_points - 1e-9
        message = "" if passed else "; ".join(got["messages"]) or "failed"
        tasks.append(TaskScore(question, got["points"], max_points, passed, message))
    report = Report(str(path), name, status, tasks, notes, time.perf_counter() - start)
    write_json(report.to_dict(), _report_path(path, json_path))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m greenlab.course.grade PATH``: 0 when graded (whatever the score), 2 for usage errors."""
    parser = argparse.ArgumentParser(
        prog="python -m greenlab.course.grade",
        description="Grade an exercise notebook in a fresh kernel (otter-grader, offline) and "
                    "write the score table as JSON beside it. Your notebook is only read.")
    parser.add_argument("path", help="the notebook, e.g. exercises/02_pruning.ipynb")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="stop the run after S seconds (default 300)")
    parser.add_argument("--json", metavar="OUT", help="write the report here instead")
    parser.add_argument("--master", help="the master notebook (default: solutions/<name>.ipynb)")
    parser.add_argument("--autograder", metavar="ZIP", help="an otter autograder zip to use")
    args = parser.parse_args(argv)
    try:
        if args.timeout <= 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
        if Path(args.path).is_file():
            print(f"grading {args.path} in a fresh kernel (otter-grader, timeout "
                  f"{args.timeout:g} s)...", flush=True)
        report = grade(args.path, master=args.master, autograder_zip=args.autograder,
                       timeout_s=args.timeout, json_path=args.json)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    print(f"{report.status}: {report.score:g} / {report.max_score:g} points in {report.time_s:.0f} s;"
          f" report written to {_report_path(Path(args.path), args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
