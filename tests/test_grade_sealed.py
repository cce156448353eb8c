"""greenlab.course.sealed: test files import a private, verified greenlab.

A submission's monkeypatch of ``greenlab.checks`` (the attack that took a stub from 0 to 4 of 6
points) must not reach the tests; a greenlab file changed on disk must fail them; and the private
copy must work like the real one (lazy ``gl.<name>``, relative imports, dataclasses).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

import greenlab
from greenlab.course import checks, sealed

PACKAGE = Path(greenlab.__file__).resolve().parent

TEST = '''
def test_double(double):
    import greenlab as gl
    import greenlab.course.checks
    from greenlab.course.checks import CheckFailed
    assert greenlab.course.checks is gl.checks
    gl.checks.close(double(2), 4, name="double(2)")
    model = gl.models.mlp(4, (3,), 2)
    return CheckFailed, gl.profile.count_params(model), gl.meters.Measurement
'''


def _sealed_test(sums=None):
    namespace: dict = {}
    source = sealed.prologue(PACKAGE, sums or sealed.digests(PACKAGE)) + TEST
    exec(compile(source, "<sealed test>", "exec"), namespace)
    return namespace["test_double"]


def test_a_monkeypatch_of_the_submissions_checks_does_not_reach_the_tests(monkeypatch):
    monkeypatch.setattr(checks, "close", lambda *a, **k: None)  # what the attack did
    monkeypatch.setattr(checks, "CheckFailed", AssertionError)
    test = _sealed_test()
    with pytest.raises(AssertionError, match=r"double\(2\) is None: did you return it\?"):
        test(lambda x: None)
    failed, params, measurement = test(lambda x: 2 * x)
    assert failed.__name__ == "CheckFailed" and failed is not checks.CheckFailed
    assert params == 4 * 3 + 3 + 3 * 2 + 2 and measurement.__name__ == "Measurement"


def test_a_patch_made_while_the_test_runs_does_not_reach_it(monkeypatch):
    def double(x):  # the learner's function, called by the test, patches what it can reach
        import greenlab as gl
        gl.checks.close = lambda *a, **k: None
        sys.modules["greenlab.course.checks"].close = lambda *a, **k: None
        return None

    monkeypatch.setattr(checks, "close", checks.close)  # restored afterwards
    with pytest.raises(AssertionError, match="is None"):
        _sealed_test()(double)


def test_the_private_copy_leaves_sys_modules_as_it_was():
    before = {k: v for k, v in sys.modules.items() if k.startswith("greenlab")}
    _sealed_test()(lambda x: 2 * x)
    after = {k: v for k, v in sys.modules.items() if k.startswith("greenlab")}
    assert after == before


def test_a_greenlab_file_changed_on_disk_fails_the_tests():
    sums = sealed.digests(PACKAGE)
    sums["course/checks.py"] = "0" * 64  # as if checks.py had been rewritten after the grader hashed it
    with pytest.raises(ImportError, match=r"greenlab/course/checks.py changed after grading started"):
        _sealed_test(sums)(lambda x: 2 * x)


def test_seal_rewrites_only_test_files(tmp_path):
    src, dest = tmp_path / "ag.zip", tmp_path / "sealed.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("tests/q1.py", "from otter.test_files import test_case\nname = 'q1'\n")
        zf.writestr("otter_config.json", "{}")
    sealed.seal(src, dest, PACKAGE, sealed.digests(PACKAGE))
    sealed.seal(dest, tmp_path / "twice.zip", PACKAGE, sealed.digests(PACKAGE))
    with zipfile.ZipFile(dest) as zf, zipfile.ZipFile(tmp_path / "twice.zip") as twice:
        test = zf.read("tests/q1.py").decode()
        assert test.startswith("# --- greenlab: these tests import a private")
        assert test.endswith("name = 'q1'\n") and zf.read("otter_config.json") == b"{}"
        assert twice.read("tests/q1.py").decode() == test  # sealing is idempotent
    namespace: dict = {}
    exec(compile(test.replace("from otter.test_files import test_case\n", ""), "q1", "exec"),
         namespace)
    assert namespace["name"] == "q1" and callable(namespace["__builtins__"]["__import__"])
