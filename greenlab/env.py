"""The machine and the run: seeds, threads, device, and a report of what is installed.

``python -m greenlab.env`` prints the report; notebooks call :func:`setup` once in their first cell.
"""

from __future__ import annotations

import importlib
import os
import platform
import random
import sys
from dataclasses import dataclass, field

from ._internal.validate import integer as _check_int

__all__ = ["setup", "setup_threads", "device", "check", "report", "RunInfo", "REQUIREMENTS"]

# (import name, distribution name, minimum version, which lessons need it): pyproject's runtime
# dependencies, same minimums (tests/test_env.py keeps them in step).
REQUIREMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("numpy", "numpy", "1.26", "all"),
    ("torch", "torch", "2.3", "all"),
    ("sklearn", "scikit-learn", "1.4", "all"),
    ("threadpoolctl", "threadpoolctl", "3.1", "all (BLAS threads)"),
    ("mnist1d", "mnist1d", "0.0.2", "all"),
    ("matplotlib", "matplotlib", "3.7", "all"),
    ("seaborn", "seaborn", "0.13", "plots"),
    ("pandas", "pandas", "2.0", "ledger"),
    ("ipywidgets", "ipywidgets", "8.0", "sliders (02, 05)"),
    ("tqdm", "tqdm", "4.60", "all (progress bars)"),
    ("psutil", "psutil", "5.9", "all (env report, bench)"),
    ("codecarbon", "codecarbon", "2.8", "00"),
    ("tensorflow", "tensorflow", "2.16", "02, 03, 10"),
    ("tf_keras", "tf-keras", "2.16", "02, 03"),
    ("tensorflow_model_optimization", "tensorflow-model-optimization", "0.8", "02, 03"),
    ("ai_edge_litert", "ai-edge-litert", "1.0", "03, 10"),
    ("torchao", "torchao", "0.14", "03"),
    ("onnx", "onnx", "1.16", "03, 10"),
    ("onnxscript", "onnxscript", "0.2", "03, 10"),
    ("onnxruntime", "onnxruntime", "1.18", "03, 10"),
    ("otter", "otter-grader", "7.0", "exercises"),
    ("nbformat", "nbformat", "5.9", "exercises, tools"),
    ("nbclient", "nbclient", "0.10", "exercises, bench"),
    ("ipykernel", "ipykernel", "6.0", "all (the kernel)"),
)
MIN_PYTHON = (3, 10)
# What reinstalls everything at the versions behind the committed outputs.
FIX_ALL = "in the repository: make lab  (or: pip install -c constraints.txt -e '.[lab,dev]')"

# only on request: TF ~3 s and ~0.5 GB; torchao logs failed CUDA-kernel loads on a CPU machine
_HEAVY = {"tensorflow", "tf_keras", "tensorflow_model_optimization", "torchao"}


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
        raise ImportError(f"greenlab needs PyTorch, which does not import here ({exc}). "
                          f"Fix: pip install 'torch>=2.3'  ({FIX_ALL})") from None

    _check_int("seed", seed, 0)
    _check_int("threads", threads, 1)
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
    info.notes += check(imports=False)  # missing / too old packages, each with its fix (~30 ms)
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
    def key(v: str) -> tuple[int, ...]:
        out = []
        for part in v.split("+")[0].split("."):
            digits = "".join(ch for ch in part if ch.isdigit())
            out.append(int(digits) if digits else 0)
        return tuple(out)

    return key(version) < key(minimum)


def _python_version() -> tuple[int, ...]:
    return tuple(sys.version_info[:3])


def check(import_heavy: bool = False, imports: bool = True) -> list[str]:
    """Problems with Python and the installed packages, each with the command that fixes it.

    Args:
        import_heavy: also import TensorFlow and friends (~3 s) to catch broken installs.
        imports: import the light packages too; ``False`` only reads installed versions (fast).
    Returns:
        One message per problem ("onnx is missing (...). Fix: pip install ..."); empty when all is well.
    """
    problems = []
    py = _python_version()
    if py[:2] < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        problems.append(f"python {'.'.join(map(str, py))} is older than {need}: install Python "
                        f"3.11 (or {need}+) and recreate the environment ({FIX_ALL})")
    for module, dist, minimum, lessons in REQUIREMENTS:
        version = _version(dist)
        if version is None:
            problems.append(f"{dist} is missing (needed by lessons {lessons}). "
                            f"Fix: pip install '{dist}>={minimum}'  ({FIX_ALL})")
            continue
        if _older(version, minimum):
            problems.append(f"{dist} {version} is older than {minimum} (lessons {lessons}). "
                            f"Fix: pip install -U '{dist}>={minimum}'  ({FIX_ALL})")
            continue
        if imports and (module not in _HEAVY or import_heavy):
            try:
                importlib.import_module(module)
            except Exception as exc:  # a broken install, not a missing one
                problems.append(
                    f"{dist} {version} is installed but fails to import "
                    f"({type(exc).__name__}: {exc}). "
                    f"Fix: pip install --force-reinstall '{dist}=={version}'  ({FIX_ALL})"
                )
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
    for _module, dist, _minimum, lessons in REQUIREMENTS:
        lines.append(f"  {dist:32s} {_version(dist) or 'MISSING':14s} lessons {lessons}")
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
