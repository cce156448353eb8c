"""Grading of the exercise notebooks, built on otter-grader.

* ``notebook``: the ``grader`` of an exercise notebook (``grader.check("q1")``), also on Colab.
* ``grade`` / ``python -m greenlab.course.grade PATH [--timeout S] [--json OUT]``: grade a learner's
  notebook with ``otter run`` in a fresh kernel, offline, within a timeout, on a copy (the learner's
  file is only read), contained by ``sandbox`` where bubblewrap works, against the grader's own
  master (``--lesson``, ``--master``; never one the notebook names by path), with hidden tests that
  import a private greenlab (``sealed``); print a score table and write it as JSON beside the
  notebook (``NN_name.grade.json``). README, "Grading threat model", says what this protects.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import sandbox, sealed, worker
from .autograder import LESSON_NAME, autograder, find_master, questions, write_json

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
    ``sandbox`` is "bubblewrap" when the run was contained, else "none".
    """

    notebook: str
    assignment: str
    status: str
    tasks: list[TaskScore]
    notes: list[str] = field(default_factory=list)
    time_s: float = 0.0
    sandbox: str = "none"

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tasks)

    @property
    def max_score(self) -> float:
        return sum(t.max for t in self.tasks)

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "assignment": self.assignment, "status": self.status,
                "score": self.score, "max_score": self.max_score, "time_s": round(self.time_s, 1),
                "sandbox": self.sandbox, "tasks": [asdict(t) for t in self.tasks], "notes": self.notes}

    def table(self) -> str:
        rows = [("task", "points", "max", "passed", "message")]
        rows += [(t.task, f"{t.points:g}", f"{t.max:g}", "yes" if t.passed else "no", t.message)
                 for t in self.tasks]
        rows.append(("total", f"{self.score:g}", f"{self.max_score:g}", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
                 for r in rows]
        return "\n".join(line.rstrip() for line in [*lines, *(f"note: {n}" for n in self.notes)])


_PASS_ENV = ("PYTHONHASHSEED", "TF_USE_LEGACY_KERAS", "HF_HUB_OFFLINE", "OMP_NUM_THREADS",
             "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VIRTUAL_ENV", "LANG", "LC_ALL")


def _run_otter(submission: Path, zip_path: Path, tmp: Path, timeout_s: float,
               limits: sandbox.Limits, contained: bool) -> tuple[str, str, dict]:
    """``_child`` in a subprocess (in the sandbox when ``contained``): (status, reason, summary)."""
    token = secrets.token_hex(8)
    env = {"MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3", sandbox.TOKEN_VAR: token}
    if contained:  # nothing of the grader's environment but what the run needs
        env |= {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env |= {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
                "HOME": "/tmp/home", "TMPDIR": "/tmp", "USER": "grader",
                "GREENLAB_LEDGER": "/tmp/ledger.sqlite", "GREENLAB_CACHE": "/tmp/greenlab-cache"}
    else:
        env = {**os.environ, **env, "GREENLAB_LEDGER": str(tmp / "ledger.sqlite")}
    code = "import sys; from greenlab.course.worker import run; run(*sys.argv[1:])"
    argv = [sys.executable, "-c", code, str(submission), str(zip_path), json.dumps(asdict(limits))]
    if contained:
        package = Path(__file__).resolve().parents[1]
        argv = sandbox.wrap(argv, read_only=[package, submission.parent], limits=limits,
                            cache=Path(os.environ.get("GREENLAB_CACHE", Path.home() / ".cache" / "greenlab")))
    log_path = tmp / "otter.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=submission.parent, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return "timeout", (f"not finished after {timeout_s:g} s and stopped (an endless loop? "
                               "a long training run? --timeout raises the limit)"), {}
        finally:  # also on Ctrl-C: nothing it started outlives the grading
            sandbox.kill(proc, token)
    with open(log_path, "rb") as log:
        log.seek(max(0, log_path.stat().st_size - (4 << 20)))
        lines = log.read().decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        if line.startswith(worker.SUMMARY):
            with contextlib.suppress(ValueError):
                summary = json.loads(line[len(worker.SUMMARY):])
                if isinstance(summary, dict) and isinstance(summary.get("tasks"), dict):
                    return "graded", "", summary
            break
    tail = [line for line in lines if line.strip()][-1:] or [""]
    return "error", f"otter could not grade this notebook (exit {proc.returncode}): {tail[0][:300]}", {}


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


def _lesson_of(path: Path) -> str:
    """The lesson a notebook is graded as: its file name ("02_pruning.ipynb"), else the name its
    metadata gives, but only a lesson name (never a path): it picks one of the grader's masters."""
    if LESSON_NAME.fullmatch(path.stem):
        return path.stem
    named = _assignment_name(path)
    if isinstance(named, str) and LESSON_NAME.fullmatch(named):
        return named
    raise ValueError(f"cannot tell which lesson {path.name!r} is: name it like 02_pruning.ipynb or "
                     "pass --lesson NN (or --master)")


def _zip_name(zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path) as zf, contextlib.suppress(KeyError, ValueError):
        name = json.loads(zf.read("otter_config.json")).get("assignment_name")
        if isinstance(name, str) and name:
            return name
    raise ValueError(f"autograder_zip has no assignment name in otter_config.json: {str(zip_path)!r}")


def _options(path: Path, timeout_s, json_path, mode: str) -> Path:
    if not path.is_file():
        raise ValueError(f"path must be an existing notebook file, got {str(path)!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        raise TypeError(f"timeout_s must be a number of seconds, got {type(timeout_s).__name__}")
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a finite number of seconds > 0, got {timeout_s}")
    if mode not in ("auto", "require", "off"):
        raise ValueError(f"sandbox must be 'auto', 'require' or 'off', got {mode!r}")
    if mode == "require" and sandbox.reason():
        raise ValueError(f"sandbox='require' but the submission cannot be contained: {sandbox.reason()}")
    report = _report_path(path, json_path)
    if report.suffix == ".ipynb" or report.resolve() == path.resolve():
        raise ValueError(f"json_path must not be a notebook (it would be overwritten), got {str(report)!r}")
    return report


def grade(path: str | Path, *, master: str | Path | None = None, lesson: str | None = None,
          solutions: str | Path | None = None, autograder_zip: str | Path | None = None,
          timeout_s: float = 300.0, json_path: str | Path | None = None,
          build_dir: str | Path | None = None, sandbox_mode: str = "auto",
          limits: sandbox.Limits | None = None) -> Report:
    """Grade one notebook with ``otter run`` on a copy of it, contained; write the report as JSON.

    Args:
        path: the learner's notebook (only read, never modified; untrusted).
        master: its master; default: ``solutions/<lesson>.ipynb`` in ``solutions``.
        lesson: which lesson it is ("02" or "02_pruning"); default: the notebook's file name, else
            the lesson name in its metadata (a name, never a path).
        solutions: the grader's ``solutions/`` folder (default ``autograder.solutions_dir()``).
        autograder_zip: an otter autograder zip to use instead of building one from the master.
        timeout_s: the whole run (fresh kernel, every cell, every test) is stopped after this.
        json_path: where to write the report; default ``<notebook stem>.grade.json`` beside it.
        build_dir: where autograder zips are cached (see ``autograder``).
        sandbox_mode: "auto" (contain it when bubblewrap works here, else run it uncontained with a
            note), "require" (ValueError when it cannot be contained) or "off".
        limits: what the run may use (``sandbox.Limits``); CPU time defaults to the timeout.

    Returns:
        The report; a notebook that raises, never ends or is not valid JSON still gets one.
    """
    path = Path(path)
    report_path = _options(path, timeout_s, json_path, sandbox_mode)
    if autograder_zip is None:
        found = Path(master) if master else find_master(lesson or _lesson_of(path), solutions)
        autograder_zip = autograder(found, build_dir)
    zip_path = Path(autograder_zip).resolve()
    if not zip_path.is_file() or not zipfile.is_zipfile(zip_path):
        raise ValueError(f"autograder_zip must be an existing zip file, got {str(zip_path)!r}")
    name, maxima = _zip_name(zip_path), questions(zip_path)
    contained = sandbox_mode != "off" and not sandbox.reason()
    limits = limits or sandbox.Limits(cpu_s=int(timeout_s) + 60)
    start = time.perf_counter()
    summary, notes = {"tasks": {}, "errors": []}, []
    if not contained:
        why = "sandbox_mode='off'" if sandbox_mode == "off" else sandbox.reason()
        notes.append(f"not contained ({why}): the notebook ran with the grader's rights "
                     "(README: Grading threat model)")
    reason = _check_notebook(path)
    status = "invalid" if reason else "graded"
    package = Path(__file__).resolve().parents[1]
    sums = sealed.digests(package)
    if not reason:
        with tempfile.TemporaryDirectory(prefix="greenlab-grade-") as tmp:
            inputs = Path(tmp, "in")
            inputs.mkdir()
            submission = inputs / f"{name if LESSON_NAME.fullmatch(name) else 'submission'}.ipynb"
            data = json.loads(path.read_text(encoding="utf-8"))
            data.setdefault("metadata", {}).setdefault("otter", {})["assignment_name"] = name
            submission.write_text(json.dumps(data), encoding="utf-8")
            sealed.seal(zip_path, inputs / "autograder.zip", package, sums)
            status, reason, got = _run_otter(submission, inputs / "autograder.zip", Path(tmp),
                                             timeout_s, limits, contained)
            if status == "graded":
                summary = got
                notes += summary.get("errors", []) + ([summary["failure"]] if summary.get("failure") else [])
    changed = sorted(k for k, v in sealed.digests(package).items() if sums.get(k) != v)
    if changed:
        notes.append(f"greenlab's files changed during grading ({', '.join(changed)[:200]}): "
                     "the tests refused them; restore them (git checkout greenlab)")
    tasks = []
    for question, max_points in maxima.items():
        got = summary["tasks"].get(question)
        if not isinstance(got, dict) or not isinstance(got.get("points"), (int, float)):
            tasks.append(TaskScore(question, 0.0, max_points, False, reason or "not graded"))
            continue
        points = min(max(float(got["points"]), 0.0), max_points)
        passed = points >= max_points - 1e-9
        message = "" if passed else "; ".join(map(str, got.get("messages", []))) or "failed"
        tasks.append(TaskScore(question, points, max_points, passed, message[:600]))
    report = Report(str(path), name, status, tasks, [str(n)[:400] for n in notes],
                    time.perf_counter() - start, "bubblewrap" if contained else "none")
    write_json(report.to_dict(), report_path)
    return report


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m greenlab.course.grade PATH``: 0 when graded (whatever the score), 2 for usage
    errors, 130 when interrupted (Ctrl-C: otter, its kernel and all they started are stopped)."""
    parser = argparse.ArgumentParser(
        prog="python -m greenlab.course.grade",
        description="Grade an exercise notebook in a fresh kernel (otter-grader, offline, in a "
                    "sandbox where bubblewrap works) and write the score table as JSON beside it. "
                    "Your notebook is only read.")
    parser.add_argument("path", help="the notebook, e.g. exercises/02_pruning.ipynb")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="stop the run after S seconds (default 300)")
    parser.add_argument("--json", metavar="OUT", help="write the report here instead")
    parser.add_argument("--lesson", help="grade it as this lesson (02 or 02_pruning)")
    parser.add_argument("--master", help="the master notebook (default: solutions/<lesson>.ipynb)")
    parser.add_argument("--solutions", metavar="DIR", help="the folder of masters")
    parser.add_argument("--autograder", metavar="ZIP", help="an otter autograder zip to use")
    parser.add_argument("--sandbox", choices=("auto", "require", "off"), default="auto",
                        help="contain the notebook with bubblewrap: auto (default; warns when it "
                             "cannot), require (refuse to grade uncontained) or off")
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        if Path(args.path).is_file():
            if args.sandbox == "auto" and sandbox.reason():
                print(f"warning: not contained: {sandbox.reason()}. The notebook runs with your "
                      "rights (README: Grading threat model).", file=sys.stderr)
            print(f"grading {args.path} in a fresh kernel (otter-grader, timeout "
                  f"{args.timeout:g} s)...", flush=True)
        report = grade(args.path, master=args.master, lesson=args.lesson, solutions=args.solutions,
                       autograder_zip=args.autograder, timeout_s=args.timeout, json_path=args.json,
                       sandbox_mode=args.sandbox)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        for name, flag in (("timeout_s", "--timeout"), ("json_path", "--json"),
                           ("autograder_zip", "--autograder"), ("sandbox=", "--sandbox ")):
            text = text.replace(name, flag)
        print(f"error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: grading stopped (otter, its kernel and what they started were "
              "killed); no report written", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(report.table())
    print(f"{report.status}: {report.score:g} / {report.max_score:g} points in {report.time_s:.0f} s;"
          f" report written to {_report_path(Path(args.path), args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
