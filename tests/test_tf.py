"""greenlab.tf: TensorFlow with Keras 2, the thread count gl.setup chose, and a seed."""

import subprocess
import sys
import textwrap

import pytest

from greenlab import tf as gltf

SCRIPT = textwrap.dedent("""
    import warnings
    import greenlab as gl
    gl.setup(seed=0, threads=1, quiet=True)
    tf = gl.tf.import_tf(seed=3)
    pool = tf.config.threading
    print("threads", pool.get_intra_op_parallelism_threads(), pool.get_inter_op_parallelism_threads())
    print("keras", tf.keras.__name__)
    a = float(tf.random.uniform(()))
    gl.tf.import_tf(seed=3)
    print("same draw", a == float(tf.random.uniform(())))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gl.tf.import_tf(threads=3)  # TF's runtime has started: cannot change, says so
    print("warned", any("restart the kernel" in str(w.message) for w in caught))
""")


def test_import_tf_follows_setup_threads_seeds_and_warns_when_too_late():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "threads 1 1" in lines, out.stdout
    assert any(ln.startswith("keras tf_keras") for ln in lines), out.stdout  # Keras 2, for tfmot
    assert "same draw True" in lines and "warned True" in lines, out.stdout


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(threads=0), ValueError, "threads must be >= 1, got 0"),
    (dict(threads=2.0), TypeError, "threads must be an int, got float"),
    (dict(seed=-1), ValueError, "seed must be >= 0, got -1"),
])
def test_import_tf_validates_before_importing(kwargs, error, match):
    with pytest.raises(error, match=match):
        gltf.import_tf(**kwargs)
