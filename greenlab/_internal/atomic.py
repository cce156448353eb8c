"""Files written whole or not at all: the results ledger's CSV, the data cache, grade reports."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(dest: str | Path) -> Iterator[Path]:
    """A temporary path beside ``dest`` to write to; when the block ends without an error it
    replaces ``dest`` in one step (a reader, or a second kernel, sees the old file or the new one,
    never half of it); after an error it is removed and ``dest`` is untouched.

    The temporary name keeps ``dest``'s suffix (``np.savez`` would otherwise append ``.npz``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.{threading.get_ident()}.part{dest.suffix}")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
