"""Generate the learners' exercise notebooks (exercises/) from the masters (solutions/).

    python tools/exercises.py                 # regenerate exercises/ (and build/autograder/ zips)
    python tools/exercises.py --check         # exit 1 if exercises/ drifted, is invalid or unclean
    python tools/exercises.py 02_pruning ...  # only these lessons

Per master, ``otter assign`` (through ``greenlab.course.autograder.assign``: solutions replaced by stubs, hidden
tests removed) makes the learner's notebook; then its otter init cell moves below the Colab cell (on
Colab greenlab and otter are installed there) and uses ``greenlab.course.grade.notebook``, which also works
on Colab; badges point at exercises/; metadata is cleaned. Same master, same bytes: no timestamps,
no cell ids. The autograder zip (hidden tests included) goes to build/autograder/ for ``make grade``;
it is never committed (it embeds timestamps).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbtools  # noqa: E402  (tools/ is not a package)

from greenlab._internal.atomic import replacing  # noqa: E402
from greenlab.course import autograder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INIT_MARK = "# Initialize Otter"
SOLUTION_MARK = re.compile(r"#\s*(BEGIN|END) SOLUTION|#\s*SOLUTION\s*$", re.M)


def init_source(name: str) -> str:
    return (f"{INIT_MARK}: `grader.check(\"q1\")` below each task checks your answer (also on Colab)\n"
            "import greenlab as gl\n"
            "\n"
            f'grader = gl.grade.notebook("{name}")')


def build(master: Path, work: Path, build_dir: Path | None = None) -> str:
    """The exercise notebook for ``master`` as text; its autograder zip is cached in ``build_dir``."""
    assigned = autograder.assign(master, work / "assign")
    autograder.autograder(master, build_dir, zip_path=assigned.autograder)
    nb = nbformat.read(assigned.student, as_version=4)
    init = next(i for i, c in enumerate(nb.cells) if c.source.startswith(INIT_MARK))
    cell = nb.cells.pop(init)
    if nbtools.BADGES_TAG in nb.cells[0].metadata.get("tags", []) and len(nb.cells) > 1:
        nb.cells.insert(1, nb.cells.pop(0))  # the master's config cell was above: badges below title
    cell.source = init_source(master.name)
    colab = [i for i, c in enumerate(nb.cells) if nbtools.COLAB_TAG in c.metadata.get("tags", [])]
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells.insert(colab[0] + 1 if colab else (code[0] if code else len(nb.cells)), cell)
    out = work / "exercises" / master.name  # decorate() takes the badges' folder from the path
    out.parent.mkdir(parents=True, exist_ok=True)
    nbtools.clean_nb(nb)
    nbformat.write(nb, out)
    nbtools.decorate(out, nbtools.config())  # badges with exercises/ links, the Colab cell first
    return out.read_text(encoding="utf-8")


def problems(exercise: Path, master: Path) -> list[str]:
    """What is wrong with a generated exercise notebook, beyond drift: empty when fine."""
    try:
        nb = nbformat.read(exercise, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # malformed JSON or schema
        return [f"not a valid notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"]
    found = nbtools.is_clean(exercise)
    found += [f"cell {i} still holds a solution marker" for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and SOLUTION_MARK.search(c.source)]
    tests = nb.metadata.get("otter", {}).get("tests", {})
    for question, cases in autograder.question_tests(master).items():
        for hidden, source in cases:
            names = re.findall(r"^def (\w+)", source, re.M)
            if hidden and any(n in tests.get(question, "") for n in names):
                found.append(f"hidden test {names} of {question} is in the learner's notebook")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson names (default: every master)")
    parser.add_argument("--check", action="store_true", help="report drift and problems; exercises/ is not written")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--exercises", type=Path, default=ROOT / "exercises")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "autograder")
    args = parser.parse_args(argv)
    masters = sorted(args.solutions.glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:
        wanted = {Path(n).stem for n in args.lessons}
        unknown = wanted - {m.stem for m in masters}
        if unknown:
            print(f"error: no master for {sorted(unknown)} in {args.solutions}", file=sys.stderr)
            return 2
        masters = [m for m in masters if m.stem in wanted]
    bad: list[str] = []
    with tempfile.TemporaryDirectory(prefix="greenlab-exercises-") as tmp:
        for master in masters:
            target = args.exercises / master.name
            text = build(master, Path(tmp) / master.stem, args.build)
            if args.check:
                if not target.is_file():
                    bad.append(f"{target.name}: missing (run `make exercises`)")
                    continue
                if target.read_text(encoding="utf-8") != text:
                    bad.append(f"{target.name}: differs from what `make exercises` generates")
                bad += [f"{target.name}: {p}" for p in problems(target, master)]
            else:
                with replacing(target) as partial:
                    partial.write_text(text, encoding="utf-8")
                print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    if args.check and not args.lessons:
        known = {args.exercises / m.name for m in masters}
        for orphan in sorted(set(args.exercises.glob("*.ipynb")) - known):
            bad.append(f"{orphan.name}: no master {orphan.name} in {args.solutions.name}/")
    for line in bad:
        print(f"exercises/{line}", file=sys.stderr)
    if args.check and not bad:
        print(f"exercises/ matches solutions/ ({len(masters)} notebooks, valid, clean)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
