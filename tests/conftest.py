"""Markers for the development loop: ``make quick`` runs ``-m "not slow and not browser and not otter
and not tf"``; ``make test`` runs everything.

A test is marked from what its code does, so new tests are marked without editing this file:
``tf`` when it imports TensorFlow (through greenlab.tf or directly), ``otter`` when it runs otter-grader,
nbclient or a Jupyter kernel. ``browser`` and ``slow`` (≥ ~5 s on 2 cores, measured) are listed below.
"""

from __future__ import annotations

import inspect
import re

import pytest

# What a test's own source (or its module's, for whole-file entries) says it runs.
USES = {
    "tf": re.compile(r"import_tf(mot)?\(|\btensorflow\b|to_tf_dataset|tflite_convert"),
    "otter": re.compile(r"\botter\b|NotebookClient|nbclient|greenlab\.course\.grade|jupyter"),
}
# Whole files, by what they run.
FILES = {
    "test_browser.py": ("browser", "slow"),  # JupyterLab in headless Chromium
    "test_grade.py": ("otter", "slow"),      # otter assign / otter run in fresh kernels
    "test_repeatable.py": ("slow",),         # two fresh processes run a lesson's core: 24 s setup
    "test_tf.py": ("tf", "slow"),            # TensorFlow in a fresh process, 14 s
}
# Single slow tests (name prefix), measured with --durations on a 2-core machine.
# Single slow tests (name prefix), from --durations / CPU time on a 2-core machine.
SLOW = {
    "test_quantize.py": ("test_torchao_int8", "test_import_torchao_is_quiet",  # torchao import, 7 s
                         "test_export_onnx_and_ort_runtimes", "test_onnx_helpers_validate"),  # 6 s
    "test_data.py": ("test_damaged_cache_is_rebuilt",                         # MNIST-1D rebuilt, 6 s
                     "test_mnist1d_default_split_is_deterministic", "test_mnist1d_extra_is_fresh"),
    "test_ledger.py": ("test_kernels_creating_the_ledger_at_once_all_land",),  # 6 processes, 5.5 s
    "test_binder.py": ("test_pip_resolves_it_to_this_environment_offline",),   # pip resolves ~200
    "test_env.py": ("test_a_missing_numpy_is_the_only_problem_named",),       # fresh process, 29 s
    "test_train.py": ("test_fit_learns_and_is_reproducible", "test_evaluate_sklearn"),  # 43 s, 6 s
    "test_distill.py": ("test_distill_loss_fn_trains_with_fit_on_unlabelled_data",),    # 18 s
    "test_results.py": ("test_compare_summarizes_models", "test_summarize_an_onnx_session"),  # 6 s
    "test_lowrank.py": ("test_factorize_model_by_rank_dict_energy_and_int",   # 5 s CPU
                        "test_factorizing_never_changes_the_model_or_layer"),  # 3 s CPU
    "test_prune.py": ("test_gradual_magnitude_prunes_while_training",),        # 4 s CPU
    "test_zoo.py": ("test_cache_hit_returns_identical_weights_without_training",),  # trains, 3.4 s CPU
    "test_exercises_04.py": ("test_q4_",),  # q4 trains 16-channel students: 6 + 2 per check, ~60 s CPU
}


def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def markers_for(filename: str, test_name: str, source: str) -> set[str]:
    """The markers of test ``test_name`` in ``filename`` whose function source is ``source``."""
    marks = set(FILES.get(filename, ()))
    if any(test_name.startswith(prefix) for prefix in SLOW.get(filename, ())):
        marks.add("slow")
    marks.update(name for name, pattern in USES.items() if pattern.search(source))
    return marks


def pytest_collection_modifyitems(config, items):
    for item in items:
        function = getattr(item, "function", None)
        if function is None:
            continue
        filename = item.path.name
        for mark in sorted(markers_for(filename, item.originalname, _source(function))):
            item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture
def one_thread():
    """torch on 1 thread for one test, restored after: the masters grade on 1 thread, and on a busy
    2-core machine 2 threads made the lessons' small CNNs ~10x slower (spin-waiting)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
