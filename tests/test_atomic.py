import numpy as np
import pytest

from greenlab._internal import atomic as _atomic


def test_replacing_swaps_in_the_new_file_whole(tmp_path):
    dest = tmp_path / "sub" / "cache.npz"
    with _atomic.replacing(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.suffix == ".npz" and tmp != dest
        np.savez(tmp, a=np.arange(3))  # keeps the name: np.savez appends .npz only when missing
        assert not dest.exists()  # nothing visible until the block ends
    np.testing.assert_array_equal(np.load(dest)["a"], [0, 1, 2])
    assert [p.name for p in dest.parent.iterdir()] == ["cache.npz"]


def test_replacing_leaves_the_old_file_after_an_error(tmp_path):
    dest = tmp_path / "report.json"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), _atomic.replacing(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
