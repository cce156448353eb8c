"""TensorFlow, imported the one way that works with tensorflow-model-optimization.

tfmot needs Keras 2 (``tf-keras``): ``TF_USE_LEGACY_KERAS=1`` must be set *before* TensorFlow is first
imported, or models built with ``tf.keras`` are Keras 3 models that ``prune_low_magnitude`` rejects.
Lessons call :func:`import_tf` instead of ``import tensorflow``.
"""

from __future__ import annotations

import os
import sys
import warnings

from ._internal.quiet import native_output
from ._internal.validate import integer
from .env import setup_threads

__all__ = ["import_tf", "import_tfmot"]


def import_tf(threads: int | None = None, seed: int | None = None):
    """Return the ``tensorflow`` module with legacy (Keras 2) keras and quiet C++ logs.

    Args:
        threads: TensorFlow's intra-op threads (inter-op: 1). Default: the count
            :func:`greenlab.setup` gave torch, so both frameworks use the same cores; TensorFlow's
            own default (one thread per core it sees) if setup has not run.
        seed: when given, ``tf.keras.utils.set_random_seed(seed)`` (python, numpy and TF).
    """
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError(
            "TensorFlow was imported before greenlab.tf.import_tf(): restart the kernel and "
            "import TensorFlow through greenlab.tf.import_tf() (tfmot needs TF_USE_LEGACY_KERAS=1)"
        )
    if threads is not None:
        integer("threads", threads, minimum=1)
    if seed is not None:
        integer("seed", seed, minimum=0)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_output(fds=(2,)):  # TF 2.21 logs oneDNN/CUDA lines at import whatever the log level
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    threads = threads if threads is not None else setup_threads()
    if threads is not None:
        _set_threads(tf, threads)
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    return tf


def _set_threads(tf, threads: int) -> None:
    pool = tf.config.threading
    if pool.get_intra_op_parallelism_threads() == threads and \
            pool.get_inter_op_parallelism_threads() == 1:
        return
    try:
        pool.set_intra_op_parallelism_threads(threads)
        pool.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF's runtime has started: its pools are fixed for this process
        now = pool.get_intra_op_parallelism_threads()
        now = f"{now} threads" if now else "its default threads (one per core)"
        warnings.warn(f"TensorFlow already runs with {now}; restart the kernel to use {threads}",
                      stacklevel=3)


def import_tfmot():
    """Return ``tensorflow_model_optimization`` (after :func:`import_tf`)."""
    import_tf()
    import tensorflow_model_optimization as tfmot

    return tfmot
