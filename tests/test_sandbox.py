"""greenlab.course.sandbox: what a contained command can see, write, reach and leave behind.

Plain Python commands (no otter, no kernel), so these run in seconds; tests/test_grade_attacks.py
drives the same sandbox end to end through ``grade``. Where bubblewrap cannot run, the contained
tests skip (with the reason) and only the uncontained clean-up is tested.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from fakes import alive, gone

import greenlab
from greenlab.course import sandbox

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(greenlab.__file__).resolve().parent
contained = pytest.mark.skipif(bool(sandbox.reason()), reason=f"no sandbox: {sandbox.reason()}")


def _start(tmp_path: Path, code: str, limits: sandbox.Limits | None = None, wrap: bool = True,
           token: str = "") -> subprocess.Popen:
    """``code`` in a fresh interpreter that first applies ``limits`` (as grading's worker does)."""
    limits = limits or sandbox.Limits()
    script = tmp_path / f"probe-{secrets.token_hex(4)}.py"
    script.write_text("import json, sys\nfrom greenlab.course import sandbox\n"
                      "sandbox.apply_limits(sandbox.Limits(**json.loads(sys.argv[1])))\n"
                      + textwrap.dedent(code))
    argv = [sys.executable, str(script), json.dumps(asdict(limits))]
    if wrap:
        argv = sandbox.wrap(argv, read_only=[PACKAGE, script], cache=None, limits=limits)
    env = {**os.environ, sandbox.TOKEN_VAR: token or secrets.token_hex(8)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _run(tmp_path: Path, code: str, **kwargs) -> dict:
    """Run ``code`` contained; it prints one JSON line, returned here."""
    proc = _start(tmp_path, code, **kwargs)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])




DAEMON = """
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {marker!r}],
                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
"""


def test_limits_are_checked():
    with pytest.raises(ValueError, match="memory_mb must be a positive int, got 0"):
        sandbox.Limits(memory_mb=0)
    with pytest.raises(TypeError, match="processes must be a positive int, got str"):
        sandbox.Limits(processes="many")
    with pytest.raises(TypeError, match="cpu_s must be a positive int, got bool"):
        sandbox.Limits(cpu_s=True)
    assert sandbox.Limits(cpu_s=None).cpu_s is None


def test_without_bwrap_the_command_is_unchanged(monkeypatch):
    monkeypatch.setattr(sandbox, "reason", lambda: "bubblewrap (bwrap) is not installed")
    argv = ["python", "-c", "pass"]
    assert sandbox.wrap(argv, read_only=[], cache=None, limits=sandbox.Limits()) == argv


def test_uncontained_kill_finds_processes_that_left_the_group(tmp_path):
    # outside a sandbox a detached daemon leaves the process group; its token still marks it
    marker, token = f"greenlab-test-{secrets.token_hex(6)}", secrets.token_hex(8)
    proc = _start(tmp_path, DAEMON.format(marker=marker) + "import time; time.sleep(600)\n",
                  wrap=False, token=token)
    deadline = time.monotonic() + 60
    while not alive(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(marker), "the daemon never started"
    sandbox.kill(proc, token)
    assert proc.returncode is not None and gone(marker)


@contained
def test_it_sees_only_what_it_needs(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden tests")
    python = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    home = [p for p in Path.home().iterdir()  # the learner's files (not the Python install)
            if not any(d.is_relative_to(p.resolve()) for d in python)]
    paths = [ROOT / "solutions", ROOT / ".git", ROOT / "build", ROOT / "tests", secret,
             ROOT / "pyproject.toml", *home]
    seen = _run(tmp_path, f"""
        import os, greenlab
        paths = {[str(p) for p in paths]!r}
        print(json.dumps({{"exists": [p for p in paths if os.path.exists(p)],
                           "greenlab": os.path.dirname(greenlab.__file__),
                           "uid": os.getuid()}}))
    """)
    assert seen["exists"] == []
    assert seen["greenlab"] == str(PACKAGE)
    if os.geteuid() == 0:
        assert seen["uid"] == sandbox.NOBODY  # root drops to nobody inside


@contained
def test_it_writes_only_its_own_tmp(tmp_path):
    victim, planted = tmp_path / "victim.txt", PACKAGE / f"planted-{secrets.token_hex(4)}.py"
    victim.write_text("keep me")
    try:
        got = _run(tmp_path, f"""
        import os
        def attempt(fn):
            try:
                fn()
                return "done"
            except OSError as exc:
                return type(exc).__name__
        print(json.dumps({{
            "package": attempt(lambda: open({str(planted)!r}, "w").write("x")),
            "outside": attempt(lambda: os.remove({str(victim)!r})),
            "tmp": attempt(lambda: open("/tmp/mine.txt", "w").write("x")),
        }}))
    """)
        assert got["package"] != "done" and got["outside"] != "done" and got["tmp"] == "done"
        assert victim.read_text() == "keep me" and not planted.exists()
    finally:
        planted.unlink(missing_ok=True)  # only there if containment failed


@contained
def test_it_has_no_network(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))  # reachable from this machine, not from inside
    try:
        port = server.getsockname()[1]
        got = _run(tmp_path, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
                result = "connected"
            except OSError as exc:
                result = type(exc).__name__
            print(json.dumps({{"result": result}}))
        """)
    finally:
        server.close()
    assert got["result"] != "connected"


@contained
def test_processes_it_leaves_die_with_it(tmp_path):
    marker = f"greenlab-test-{secrets.token_hex(6)}"
    proc = _start(tmp_path, DAEMON.format(marker=marker) + "print('{}')\n")
    proc.communicate(timeout=120)
    assert proc.returncode == 0 and gone(marker)


@contained
def test_kill_stops_everything_it_started(tmp_path):
    marker, token = f"greenlab-test-{secrets.token_hex(6)}", secrets.token_hex(8)
    proc = _start(tmp_path, DAEMON.format(marker=marker) + "import time; time.sleep(600)\n",
                  token=token)
    deadline = time.monotonic() + 60
    while not alive(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(marker), "the daemon never started"
    sandbox.kill(proc, token)  # what a timeout or Ctrl-C does
    assert gone(marker)


@contained
def test_memory_file_and_process_limits_hold(tmp_path):
    limits = sandbox.Limits(memory_mb=1024, file_mb=4, processes=24)
    got = _run(tmp_path, """
        import subprocess
        out = {}
        try:
            bytearray(2 << 30)
            out["memory"] = "allocated"
        except MemoryError:
            out["memory"] = "MemoryError"
        try:
            with open("/tmp/big", "wb") as f:
                f.write(b"x" * (8 << 20))
            out["file"] = "written"
        except OSError as exc:
            out["file"] = exc.errno
        kids = []
        try:
            for _ in range(100):
                kids.append(subprocess.Popen(["sleep", "30"]))
            out["processes"] = len(kids)
        except OSError:
            out["processes"] = f"refused after {len(kids)}"
        for k in kids:
            k.kill()
            k.wait()
        print(json.dumps(out))
    """, limits=limits)
    assert got["memory"] == "MemoryError"
    assert got["file"] == 27  # EFBIG: File too large
    assert str(got["processes"]).startswith("refused after")


@pytest.mark.slow  # a second of CPU, plus interpreter start-up, on a shared 2-core machine
@contained
def test_cpu_limit_stops_a_busy_loop(tmp_path):
    proc = _start(tmp_path, "while True:\n    pass\n", limits=sandbox.Limits(cpu_s=1))
    proc.communicate(timeout=120)
    assert proc.returncode != 0  # SIGXCPU (bwrap reports the signal as its exit status)
