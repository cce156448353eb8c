"""The machine and the run: seeds, threads, device, and a report of what is installed.

``python -m greenlab.env`` prints the report; notebooks call :func:`setup` once in their first cell.
"""

from __future__ import annotations

import importlib
import os
import platform
import random
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ._internal.validate import boolean
from ._internal.validate import integer as _check_int

__all__ = ["setup", "setup_threads", "device", "check", "report", "requirements", "Requirement",
           "RunInfo", "COURSE_EXTRAS"]

# The versions come from greenlab's installed metadata (pyproject.toml, as installed): nothing here
# repeats them. What is kept here is what metadata cannot say: what each package is for, and the two
# packages whose import name is not their distribution name.
COURSE_EXTRAS = ("tf", "onnx", "grading")  # what the lessons and exercises use beyond the core
USED_BY = {
    "numpy": "all", "pandas": "ledger", "torch": "all", "scikit-learn": "all",
    "threadpoolctl": "all (BLAS threads)", "mnist1d": "all", "matplotlib": "all",
    "seaborn": "plots", "ipywidgets": "sliders (02, 05)", "tqdm": "all (progress bars)",
    "psutil": "all (env report, bench)", "codecarbon": "00", "py-spy": "00", "pyjoules": "00",
    "torchao": "03",
    "ipykernel": "all (the kernel)", "packaging": "all (this report)",
    "tensorflow": "02, 03, 10", "tf-keras": "02, 03", "tensorflow-model-optimization": "02, 03",
    "ai-edge-litert": "03, 10", "onnx": "03, 10", "onnxscript": "03, 10", "onnxruntime": "03, 10",
    "otter-grader": "exercises", "nbformat": "exercises, tools", "nbclient": "exercises, bench",
}
IMPORT_NAMES = {"scikit-learn": "sklearn", "otter-grader": "otter", "pyjoules": "pyJoules"}
COMMANDS = {"py-spy": "py-spy"}  # distributions that install a program, not a module
# What reinstalls everything at the versions behind the committed outputs.
FIX_ALL = "in the repository: make lab  (or: pip install -c constraints.txt -e '.[lab,dev]')"

# only on request: TF ~3 s and ~0.5 GB; torchao logs failed CUDA-kernel loads on a CPU machine
_HEAVY = {"tensorflow", "tf_keras", "tensorflow_model_optimization", "torchao"}


@dataclass(frozen=True)
class Requirement:
    """One of greenlab's dependencies, as its installed metadata declares it."""

    dist: str                  # distribution name, as declared ("scikit-learn")
    specifier: str             # the supported range (">=1.4")
    extra: str | None = None   # None for the core, else the extra that brings it ("tf")

    @property
    def module(self) -> str:
        return IMPORT_NAMES.get(self.dist, self.dist.replace("-", "_"))

    @property
    def lessons(self) -> str:
        return USED_BY.get(_canonical(self.dist), "?")

    @property
    def minimum(self) -> str | None:
        return next((s.split(">=", 1)[1] for s in self.specifier.split(",") if ">=" in s), None)

    def __str__(self) -> str:
        return f"{self.dist}{self.specifier}"


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _metadata():
    from importlib import metadata

    return metadata.metadata("greenlab")


def requirements(extras: tuple[str, ...] = COURSE_EXTRAS) -> tuple[Requirement, ...]:
    """greenlab's runtime dependencies from its installed metadata: the core, then ``extras``.

    Raises ``importlib.metadata.PackageNotFoundError`` when greenlab itself is not installed.
    """
    from packaging.requirements import Requirement as Req

    reqs = [Req(line) for line in _metadata().get_all("Requires-Dist") or []]
    out: dict[str, Requirement] = {}
    for extra in (None, *extras):  # the core first: a line without an extra marker is core
        for req in reqs:
            if req.name != "greenlab" and (req.marker is None or
                                           req.marker.evaluate({"extra": extra or ""})):
                out.setdefault(_canonical(req.name), Requirement(req.name, str(req.specifier), extra))
    return tuple(out.values())


def _python_spec() -> str | None:
    return _metadata().get("Requires-Python")


@dataclass
class RunInfo:
    """What :func:`setup` fixed for this run."""

    seed: int
    threads: int
    device: str
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"greenlab: seed={self.seed} threads={self.threads} device={self.device}"]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device(prefer: str | None = None) -> str:
    """The torch device to use: ``"cuda"`` when a GPU is present, else ``"cpu"``.

    ``prefer`` forces a device; ``GREENLAB_DEVICE`` does the same from the environment.
    """
    import torch

    if prefer is not None and not isinstance(prefer, str):
        raise TypeError(f"prefer must be 'cpu', 'cuda[:N]' or None, got {type(prefer).__name__}")
    choice = prefer or os.environ.get("GREENLAB_DEVICE")
    if choice is not None:
        if choice not in ("cpu", "cuda") and not choice.startswith("cuda:"):
            raise ValueError(f"prefer must be 'cpu' or 'cuda[:N]', got {choice!r}")
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"prefer={choice!r} but no CUDA GPU is visible to torch")
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


_SETUP_THREADS: int | None = None


def setup_threads() -> int | None:
    """The thread count the last :func:`setup` fixed (None before it ran): other frameworks
    (TensorFlow, see ``greenlab.tf``) follow it."""
    return _SETUP_THREADS


def setup(seed: int = 0, threads: int = 2, quiet: bool = False) -> RunInfo:
    """Fix seeds and thread counts so that a notebook gives the same numbers every run.

    Args:
        seed: seed for python, numpy and torch.
        threads: intra-op threads for torch, and the limit of every BLAS/OpenMP pool numpy, scipy
            and scikit-learn use (the course is sized for 2 cores, like Binder).
        quiet: do not print the one-line summary.
    """
    try:
        import torch
    except ImportError as exc:  # the one dependency nothing works without: say how to get it
        try:
            want = next(str(r) for r in requirements(()) if _canonical(r.dist) == "torch")
        except Exception:  # greenlab's metadata unreadable: any torch is a start
            want = "torch"
        raise ImportError(f"greenlab needs PyTorch, which does not import here ({exc}). "
                          f"Fix: pip install '{want}'  ({FIX_ALL})") from None

    seed, threads = _check_int("seed", seed, 0), _check_int("threads", threads, 1)
    quiet = boolean("quiet", quiet)
    torch.set_num_threads(threads)
    global _SETUP_THREADS
    _SETUP_THREADS = threads
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # OpenBLAS & co. would start one thread per core seen
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once per process, before parallel work
        pass
    seed_everything(seed)
    dev = device()
    # CPU kernels are deterministic already; on a GPU ask for deterministic ones (warn, don't fail).
    # Not on CPU: there it makes int8 kernels warn on every call and run slower.
    torch.use_deterministic_algorithms(dev != "cpu", warn_only=True)
    info = RunInfo(seed=seed, threads=threads, device=dev)
    if dev == "cpu":
        info.notes.append("no GPU found: running on CPU (every lesson is sized for 2 CPU cores)")
    from . import meters

    status = meters.available_sources()
    if not any(status.get(s, "").startswith("readable") for s in ("rapl", "nvml")):
        info.notes.append("no energy counters here (no RAPL/NVML): energies are estimated "
                          "from CPU time; see lesson 00")
    info.notes += check(imports=False, extras=())  # missing / old packages, with fixes (~30 ms)
    if not quiet:
        print(info)
    return info


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _older(version: str, minimum: str) -> bool:
    """``version < minimum`` by PEP 440 ("2.3rc1" is older than "2.3"; "+cpu" labels are ignored)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) < Version(minimum)
    except InvalidVersion:  # not PEP 440: cannot tell, do not complain
        return False


def _python_version() -> tuple[int, ...]:
    return tuple(sys.version_info[:3])


def _culprit(module: str, exc: BaseException) -> str | None:
    """The top-level module that really failed when importing ``module`` raised ``exc``: ``module``
    itself (a broken install), another one (a missing or broken dependency), or None."""
    seen, link = set(), exc
    while link is not None and id(link) not in seen:  # pandas re-raises numpy's as its own
        seen.add(id(link))
        if isinstance(link, ModuleNotFoundError) and link.name:
            return link.name.split(".")[0]
        link = link.__cause__ or link.__context__
    tb, last = exc.__traceback__, None
    while tb is not None:  # the innermost frame that belongs to a package, not to importlib
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name and not name.startswith(("importlib", "_frozen_importlib", __name__)):
            last = name.split(".")[0]
        tb = tb.tb_next
    return last or module


def check(import_heavy: bool = False, imports: bool = True,
          extras: tuple[str, ...] | None = None) -> list[str]:
    """Problems with Python and the installed packages, each with the command that fixes it.

    Args:
        import_heavy: also import TensorFlow and friends (~3 s) to catch broken installs.
        imports: import the light packages too; ``False`` only reads installed versions (fast).
        extras: the extras that must be installed (default: all of :data:`COURSE_EXTRAS`); packages
            of other extras are checked only when installed (Colab installs per lesson).
    Returns:
        One message per problem ("onnx is missing (...). Fix: pip install ..."); empty when all is
        well. A package that fails only because another is missing or broken is not listed.
    """
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    if isinstance(extras, str):
        raise TypeError(f"extras must be a tuple of extra names such as ('tf',), got str {extras!r}")
    wanted = COURSE_EXTRAS if extras is None else tuple(extras)
    try:
        reqs, python_spec = requirements(), _python_spec()
    except metadata.PackageNotFoundError:
        return [f"greenlab itself is not installed, so its requirements are unknown. "
                f"Fix: pip install -e .  ({FIX_ALL})"]
    problems = []
    py = ".".join(map(str, _python_version()))
    if python_spec and not SpecifierSet(python_spec).contains(py, prereleases=True):
        problems.append(f"python {py} does not satisfy greenlab's requires-python {python_spec}: "
                        f"install Python 3.11 and recreate the environment ({FIX_ALL})")
    failed: set[str] = set()  # top-level modules reported missing or broken
    installed = []
    for req in reqs:
        version = _version(req.dist)
        if version is None:
            if req.extra is None or req.extra in wanted:
                failed.add(req.module)
                problems.append(f"{req.dist} is missing (needed by lessons {req.lessons}). "
                                f"Fix: pip install '{req}'  ({FIX_ALL})")
            continue
        if not SpecifierSet(req.specifier).contains(version, prereleases=True):
            what = (f"older than {req.minimum}" if req.minimum and _older(version, req.minimum)
                    else f"outside {req.specifier}")
            problems.append(f"{req.dist} {version} is {what} (lessons {req.lessons}). "
                            f"Fix: pip install -U '{req}'  ({FIX_ALL})")
            continue
        installed.append((req, version))
    for req, version in installed:
        if not imports or (req.module in _HEAVY and not import_heavy):
            continue
        if req.dist in COMMANDS:  # a program: it must be on PATH (or beside this Python)
            beside = Path(sys.executable).with_name(COMMANDS[req.dist])
            if not (shutil.which(COMMANDS[req.dist]) or beside.is_file()):
                problems.append(f"{req.dist} {version} is installed but its program "
                                f"{COMMANDS[req.dist]!r} is not on PATH (lessons {req.lessons}). "
                                f"Fix: pip install --force-reinstall --no-deps '{req.dist}=={version}'")
            continue
        try:
            importlib.import_module(req.module)
        except Exception as exc:
            culprit = _culprit(req.module, exc)
            named = [m for m in failed if re.search(rf"\b{re.escape(m)}\b", str(exc))]
            if culprit in failed or named:  # "import numpy failed" (onnxruntime's C extension)  # already reported: fixing that one fixes this one
                continue
            failed.update((req.module, culprit))
            if culprit == req.module:  # its own files are broken: reinstall it alone
                fix = f"pip install --force-reinstall --no-deps '{req.dist}=={version}'"
            else:  # a dependency is: pip installs what it lacks, without touching the rest
                fix = f"pip install '{req.dist}=={version}'"
            problems.append(f"{req.dist} {version} is installed but fails to import "
                            f"({type(exc).__name__}: {exc}). Fix: {fix}  ({FIX_ALL})")
    return problems


def report(import_heavy: bool = False, problems: list[str] | None = None) -> str:
    """A plain-text report: python, packages, CPU/GPU, energy sources, and problems.

    ``problems`` reuses a :func:`check` result instead of checking again.
    """
    from . import meters

    try:
        import psutil

        ram = f", {psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:
        ram = ", RAM unknown (psutil missing)"
    lines = [
        f"python      {sys.version.split()[0]} ({platform.platform()})",
        f"cpu         {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical cores{ram}",
    ]
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"
    except Exception as exc:
        gpu = f"unknown (torch failed: {exc})"
    lines.append(f"gpu         {gpu}")
    lines.append("packages")
    try:
        reqs = requirements()
    except Exception:  # greenlab not installed: check() says so below
        reqs = ()
    for req in reqs:
        extra = f"  [{req.extra}]" if req.extra else ""
        lines.append(f"  {req.dist:32s} {_version(req.dist) or 'MISSING':14s} "
                     f"lessons {req.lessons}{extra}")
    lines.append("energy sources")
    for name, status in meters.available_sources().items():
        lines.append(f"  {name:12s} {status}")
    if problems is None:
        problems = check(import_heavy=import_heavy)
    lines.append("problems" if problems else "problems    none")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m greenlab.env [--import]``: print the report; exit 1 when something needs fixing."""
    heavy = "--import" in (sys.argv[1:] if argv is None else argv)
    problems = check(import_heavy=heavy)
    print(report(import_heavy=heavy, problems=problems))
    if problems:
        print(f"\n{len(problems)} problem(s): run the Fix command of each, then python -m greenlab.env")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
