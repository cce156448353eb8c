"""Silence what libraries print on their own, for the duration of a ``with`` block: C++ code writing
straight to file descriptors 1/2 (TensorFlow, TFLite, XNNPACK), and Python loggers (torchao,
torch.onnx). Python exceptions still propagate with their messages."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_output(fds: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Point ``fds`` at /dev/null, then restore them; a no-op where there is no real descriptor
    (some notebook front-ends)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(fd) for fd in fds]
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


@contextlib.contextmanager
def loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of the loggers ``names`` to ``level``, then put their own levels back."""
    found = [logging.getLogger(name) for name in names]
    before = [lg.level for lg in found]
    for lg in found:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(found, before, strict=True):
            lg.setLevel(old)
