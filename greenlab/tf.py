"""TensorFlow, imported the one way that works with tensorflow-model-optimization.

tfmot needs Keras 2 (``tf-keras``): ``TF_USE_LEGACY_KERAS=1`` must be set *before* TensorFlow is first
imported, or models built with ``tf.keras`` are Keras 3 models that ``prune_low_magnitude`` rejects.
Lessons call :func:`import_tf` instead of ``import tensorflow``.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["import_tf", "import_tfmot"]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (C++ logs) for the duration; Python errors still raise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some notebook front-ends)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tf():
    """Return the ``tensorflow`` module with legacy (Keras 2) keras and quiet C++ logs."""
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError(
            "TensorFlow was imported before greenlab.tf.import_tf(): restart the kernel and "
            "import TensorFlow through greenlab.tf.import_tf() (tfmot needs TF_USE_LEGACY_KERAS=1)"
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_stderr():  # TF 2.21 logs oneDNN/CUDA lines at import whatever the log level
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def import_tfmot():
    """Return ``tensorflow_model_optimization`` (after :func:`import_tf`)."""
    import_tf()
    import tensorflow_model_optimization as tfmot

    return tfmot
