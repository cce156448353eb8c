"""Hidden tests that a monkeypatch of the submission's greenlab does not reach.

otter-grader runs the tests in the submission's own kernel, so ``gl.checks.close = lambda *a: None``
in a notebook cell used to pass every test built on it. ``seal`` rewrites the test files of an
autograder zip so that each imports a private copy of greenlab: ``import greenlab`` (and every
``from greenlab... import``) inside a test is served by its own ``__import__``, which executes
greenlab's files afresh, each checked against the SHA-256 the grader computed before the run (a file
changed on disk fails the test), into modules the submission's ``sys.modules`` never holds.

This raises the bar; it is not a proof: code running in the same process can still reach and change
anything (numpy, otter itself, the results file). See README, "Grading threat model".
"""

from __future__ import annotations

import hashlib
import inspect
import re
import zipfile
from pathlib import Path

__all__ = ["digests", "private_builtins", "prologue", "seal"]

_MARK = "# --- greenlab: these tests import a private, verified copy of greenlab (course/sealed.py)\n"


def digests(package: Path) -> dict[str, str]:
    """``{path relative to package: sha256}`` of every ``.py`` file of the greenlab ``package``."""
    return {p.relative_to(package).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(package).rglob("*.py"))}


def private_builtins(root: str, sums: dict) -> dict:
    """A builtins dict whose ``__import__`` serves ``greenlab`` from ``root`` in private modules.

    Each file is read once, checked against ``sums`` (see ``digests``) and executed into a module
    that only functions using these builtins see. Self-contained: ``prologue`` copies its source
    into the test files, so nothing here is looked up in the submission's modules at test time.
    """
    import builtins
    import hashlib
    import importlib
    import os
    import sys
    import types

    real_import, modules = builtins.__import__, {}
    names = dict(vars(builtins))

    def ours(name):
        return name == "greenlab" or name.startswith("greenlab.")

    def source(name):
        base = os.path.join(root, *name.split(".")[1:])
        for path, package in ((os.path.join(base, "__init__.py"), True), (base + ".py", False)):
            key = os.path.relpath(path, root).replace(os.sep, "/")
            if key in sums:
                with open(path, "rb") as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != sums[key]:
                    raise ImportError(f"greenlab/{key} changed after grading started: the tests "
                                      "only run against the greenlab the grader verified")
                return path, package, data
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    def load(name):
        if name in modules:
            return modules[name]
        parent, _, last = name.rpartition(".")
        if parent:
            load(parent)
        path, package, data = source(name)
        module = types.ModuleType(name)
        module.__file__, module.__package__ = path, name if package else parent
        if package:
            module.__path__ = [os.path.dirname(path)]
        module.__builtins__ = names
        modules[name] = module
        before = sys.modules.get(name)
        sys.modules[name] = module  # only while it runs: dataclasses look their module up there
        try:
            exec(compile(data, path, "exec"), module.__dict__)
        except BaseException:
            del modules[name]
            raise
        finally:
            if before is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = before
        if module.__dict__.get("importlib") is importlib:
            module.importlib = shim
        if parent:
            setattr(modules[parent], last, module)
        return module

    def private_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            package = (globals or {}).get("__package__") or ""
            if not ours(package):
                return real_import(name, globals, locals, fromlist, level)
            base = package.rsplit(".", level - 1)[0]
            name = f"{base}.{name}" if name else base
        elif not ours(name):
            return real_import(name, globals, locals, fromlist, level)
        module = load(name)
        if not fromlist:
            return module if level else load("greenlab")
        for item in fromlist:
            if item != "*" and not hasattr(module, item):
                try:
                    load(f"{name}.{item}")
                except ModuleNotFoundError:
                    pass
        return module

    def import_module(name, package=None):
        name = importlib.util.resolve_name(name, package) if name.startswith(".") else name
        return load(name) if ours(name) else importlib.import_module(name)

    class Importlib(types.ModuleType):
        def __getattr__(self, attr):
            return getattr(importlib, attr)

    shim = Importlib("importlib")
    shim.import_module = import_module
    names["__import__"] = private_import
    return names


def prologue(root: Path, sums: dict[str, str]) -> str:
    """The lines ``seal`` puts at the top of a test file."""
    return (_MARK + inspect.getsource(private_builtins)
            + f"__builtins__ = private_builtins({str(root)!r}, {sums!r})\ndel private_builtins\n")


def seal(src: Path, dest: Path, root: Path, sums: dict[str, str]) -> None:
    """Copy the autograder zip ``src`` to ``dest`` with every test file sealed (see module doc)."""
    head = prologue(root, sums)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if re.fullmatch(r"tests/[^/]+\.py", item.filename):
                text = data.decode("utf-8")
                if _MARK not in text:
                    text = head + text
                data = text.encode("utf-8")
            zout.writestr(item, data)
