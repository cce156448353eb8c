"""What runs inside the grading sandbox: ``otter run`` on the submission, then one summary line.

``grade`` starts ``run`` in a subprocess (contained by ``sandbox`` where it can be) and reads the
line starting with ``SUMMARY`` from its output. Everything here runs beside the untrusted notebook,
so the grader treats that summary as a claim (clamped to each task's points), not as proof.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from . import sandbox

__all__ = ["SUMMARY", "exception_line", "run"]

SUMMARY = "greenlab-grade-summary: "


def exception_line(message: str) -> str:
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


def run(submission: str, zip_path: str, limits: str) -> None:
    """Runs in the (contained) grading process: ``otter run``, then a summary line on stdout.

    Hidden tests' failures say only that a hidden test failed: their messages quote their inputs.
    """
    sandbox.apply_limits(sandbox.Limits(**json.loads(limits)))
    os.makedirs(os.environ.get("HOME") or tempfile.gettempdir(), exist_ok=True)
    from otter.run import main as otter_run

    results = otter_run(submission, autograder=zip_path, output_dir=tempfile.mkdtemp(), no_logo=True)
    tasks = {}
    for name, test_file in results.results.items():
        failed = []
        for r in test_file.test_case_results:
            if r.passed:
                continue
            line = exception_line(r.message)
            hidden = f"a hidden test failed ({line.split(':')[0][:40]})"
            failed.append(hidden if r.test_case.hidden else line)
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
    print(f"\n{SUMMARY}{json.dumps(summary)}", flush=True)
