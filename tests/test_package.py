import subprocess
import sys

import greenlab


def test_public_surface_is_small_and_resolves():
    assert len(greenlab.__all__) <= 27  # 10 functions, 17 submodules
    for name in greenlab.__all__:
        assert getattr(greenlab, name) is not None
    assert "measure" in dir(greenlab)


def test_import_has_no_side_effects():
    code = ("import sys, greenlab; heavy = [m for m in ('torch', 'tensorflow', 'mnist1d', 'codecarbon') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


def test_unknown_attribute():
    try:
        greenlab.nope  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'nope'" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_all_lists_exactly_the_lazy_names():
    assert set(greenlab.__all__) == set(greenlab._FUNCTIONS) | set(greenlab._SUBMODULES)


def test_type_checking_block_names_every_public_name():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(greenlab))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and getattr(node.test, "id", "") == "TYPE_CHECKING")
    imported = {alias.asname or alias.name for node in ast.walk(block)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == set(greenlab.__all__)
    assert greenlab.compare.__module__ == "greenlab.results"
