"""One result contract: a row per model (:func:`summarize`) and a side-by-side table (:func:`compare`).

The row's keys are :mod:`greenlab.ledger` columns, so ``gl.log(..., **gl.summarize(...))`` stores it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .profile import count_nonzero, count_params, latency, size_bytes

__all__ = ["summarize"]


def summarize(model, x_test, y_test, batch_size: int = 256, repeats: int = 20) -> dict:
    """Accuracy, F1, latency (ms per batch of ``batch_size``), size and parameters of a model.

    The keys match :mod:`greenlab.ledger` columns, so the dict can be logged as it is.
    """
    from .train import evaluate, predict

    row = evaluate(model, x_test, y_test)
    batch = np.asarray(x_test[:batch_size], dtype=np.float32)
    if isinstance(model, nn.Module):
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        xb = torch.as_tensor(batch).to(dev)
        lat = latency(lambda: model(xb), repeats=repeats)
        row.update(params=count_params(model), nonzero=count_nonzero(model))
    else:
        lat = latency(lambda: predict(model, batch), repeats=repeats)
        row.update(params=None, nonzero=None)
    row.update(latency_ms=lat.median_ms, latency_p90_ms=lat.p90_ms, batch_size=len(batch),
               size_bytes=size_bytes(model))
    return row
