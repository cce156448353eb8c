"""Run an untrusted command contained: what ``grade`` runs a submission in.

With bubblewrap (``bwrap``; Debian package ``bubblewrap``, ``make grade-deps``) the command sees
only a read-only view of what it needs (the system's ``/usr``, Python and its packages, the
greenlab package, the data cache's files), an empty, size-capped ``/tmp`` of its own, no network
(a network namespace with loopback only) and its own process tree: when the command ends or is
killed, every process it left behind is killed with it. Started as root, it drops to ``nobody``.
``Limits`` (address space, processes, CPU time, file size) are set by the command itself, with
``apply_limits``, before it runs anything else.

Without a usable bwrap, ``reason()`` says why and ``wrap`` returns the command as is: it then runs
with every right of the user who grades (``grade`` warns and notes it in the report).
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "reason", "wrap", "apply_limits", "kill", "TOKEN_VAR", "NOBODY"]

TOKEN_VAR = "GREENLAB_GRADE_TOKEN"  # every process of one grading run carries its token
NOBODY = 65534
_DROP_VAR = "GREENLAB_SANDBOX_DROP"  # set when the command starts as root and must drop to nobody
_ETC = ("passwd", "group", "nsswitch.conf", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
        "localtime", "alternatives", "fonts", "mime.types", "os-release")


@dataclass(frozen=True)
class Limits:
    """What one grading run may use; every process it starts gets the same limits.

    Attributes:
        memory_mb: address space of each process (MiB).
        processes: processes and threads it may start (on top of those its user already runs).
        cpu_s: CPU seconds of each process; None: no CPU limit (the wall-clock timeout still holds).
        file_mb: largest file it may write (MiB), its captured output included.
        tmp_mb: size of its private ``/tmp`` (MiB), where it runs and may write.
    """

    memory_mb: int = 8192
    processes: int = 512
    cpu_s: int | None = None
    file_mb: int = 256
    tmp_mb: int = 1024

    def __post_init__(self):
        for name in ("memory_mb", "processes", "cpu_s", "file_mb", "tmp_mb"):
            value = getattr(self, name)
            if value is None and name == "cpu_s":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value}")


@functools.cache
def reason() -> str:
    """Empty when bubblewrap can contain a command here, else why not (one line)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed: `make grade-deps` or `apt-get install bubblewrap`"
    probe = [bwrap, *_namespaces(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not run here: {exc}"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"bubblewrap cannot create namespaces here ({why[:200]})"
    return ""


def _namespaces() -> list[str]:
    """New pid, network, IPC and UTS namespaces; a user namespace unless we are root (root drops
    to nobody instead, which a user namespace would forbid)."""
    spaces = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
              "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        return [*spaces, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return ["--unshare-user", *spaces]


def _python_dirs() -> list[Path]:
    """Where this interpreter, its standard library and its packages live."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {p for key, p in sysconfig.get_paths().items() if key != "scripts"}
    paths.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    with contextlib.suppress(Exception):
        import site

        paths |= set(site.getsitepackages()) | {site.getusersitepackages()}
    return sorted({Path(p) for p in paths if p and Path(p).is_dir()})


def wrap(argv: list[str], *, read_only: list[Path], cache: Path | None, limits: Limits) -> list[str]:
    """``argv`` inside the sandbox (or as is, when ``reason()`` is not empty).

    Args:
        argv: the command; paths in it must be under ``read_only`` or in ``/tmp``.
        read_only: files and folders it may read, bound at their own paths.
        cache: the data cache (``GREENLAB_CACHE``); its files are readable at
            ``/tmp/greenlab-cache``, where new entries may be written (and vanish afterwards).
        limits: ``tmp_mb`` sizes the private ``/tmp``.
    """
    if reason():
        return list(argv)
    args = [shutil.which("bwrap") or "bwrap", *_namespaces()]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", "/usr", "/usr"]
    args += ["--perms", "0755", "--dir", "/etc"]
    args += [arg for name in _ETC for arg in ("--ro-bind-try", f"/etc/{name}", f"/etc/{name}")]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    binds = sorted({Path(p) for p in [*_python_dirs(), *read_only]
                    if Path(p).exists() and not Path(p).is_relative_to("/usr")})
    binds = [p for p in binds if not any(p != q and p.is_relative_to(q) for q in binds)]
    made = {Path("/"), Path("/tmp")}
    for path in binds:  # bwrap would create the folders above a bind as 0700: nobody could enter
        for folder in reversed(path.parents):
            if folder not in made:
                made.add(folder)
                args += ["--perms", "0755", "--dir", str(folder)]
        args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "1777", "--dir", "/tmp/greenlab-cache"]
    if cache is not None and cache.is_dir():
        for entry in sorted(cache.iterdir()):
            if entry.is_file() or entry.is_dir():
                args += ["--ro-bind", str(entry), f"/tmp/greenlab-cache/{entry.name}"]
    if os.geteuid() == 0:
        args += ["--setenv", _DROP_VAR, "1"]
    return [*args, "--chdir", "/tmp", *argv]


def apply_limits(limits: Limits) -> None:
    """Called first by the contained command: become nobody (if the sandbox started us as root),
    then set ``limits`` on this process, which every process it starts inherits."""
    if os.environ.pop(_DROP_VAR, None) and os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    mib = 1 << 20
    wanted = {resource.RLIMIT_AS: limits.memory_mb * mib, resource.RLIMIT_FSIZE: limits.file_mb * mib,
              resource.RLIMIT_CORE: 0}
    if limits.cpu_s is not None:
        wanted[resource.RLIMIT_CPU] = limits.cpu_s
    if os.getuid() != 0:  # root is never held to RLIMIT_NPROC
        wanted[resource.RLIMIT_NPROC] = _tasks_of(os.getuid()) + limits.processes
    for kind, value in wanted.items():
        soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (value, value))
    with contextlib.suppress(OSError):
        os.nice(5)


def _tasks_of(uid: int) -> int:
    """Processes and threads the user ``uid`` runs now (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(entry / "task"))
    return count


def kill(proc: subprocess.Popen, token: str) -> None:
    """Kill ``proc``, its process group, its descendants and every process carrying ``token``
    (a process that left the group, e.g. a detached daemon outside a sandbox); then reap it."""
    import psutil

    victims = []
    with contextlib.suppress(psutil.Error):
        victims = psutil.Process(proc.pid).children(recursive=True)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)  # the sandbox's outer process: its namespace dies too
    with contextlib.suppress(OSError):
        proc.kill()
    for _ in range(3):  # a daemon may fork again while we look
        victims += [p for p in _carrying(token) if p.pid != os.getpid()]
        if not victims:
            break
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        psutil.wait_procs(victims, timeout=2)
        victims = []
        time.sleep(0.05)
    proc.wait()


def _carrying(token: str) -> list:
    import psutil

    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.environ().get(TOKEN_VAR) == token:
                found.append(p)
    return found
