"""Modelled energy: operation counts and bytes moved, times a published energy per operation.

Process CPU time x a power model (``greenlab.meters``) follows latency by construction: it cannot
show what int8 or zeros would save on hardware built to exploit them. This model can. Numbers are
Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, for a 45 nm
process at 0.9 V; newer processes are cheaper per operation, but the *ratios* (a DRAM read costs
hundreds of additions) are what the lessons use. Every result is labelled ``kind="modelled"``.

    >>> m = modelled_energy(macs=1_000_000, weights=50_000, bits=8)
    >>> m.kind, round(m.compute_j * 1e6, 3)
    ('modelled', 0.3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._internal.validate import at_least, number

__all__ = ["ENERGY_PJ", "SOURCE", "ModelledEnergy", "modelled_energy", "model_energy"]

SOURCE = "Horowitz, ISSCC 2014, 45 nm, 0.9 V"

# picojoules per operation (Horowitz 2014, table of energy per operation, 45 nm)
ENERGY_PJ: dict[str, float] = {
    "int8_add": 0.03,
    "int32_add": 0.1,
    "fp16_add": 0.4,
    "fp32_add": 0.9,
    "int8_mul": 0.2,
    "int32_mul": 3.1,
    "fp16_mul": 1.1,
    "fp32_mul": 3.7,
    "sram_read_64b_8kb": 10.0,  # a 64-bit read from an 8 KB SRAM
    "sram_read_64b_32kb": 20.0,
    "sram_read_64b_1mb": 100.0,
    "dram_read_64b_low": 1300.0,  # a 64-bit DRAM read: 1.3-2.6 nJ
    "dram_read_64b_high": 2600.0,
}

# one multiply-accumulate at each weight precision: the multiply at that precision, the
# accumulation where real kernels keep it (int8 products are summed in int32; fp16 in fp32)
_MAC = {8: ("int8_mul", "int32_add"), 16: ("fp16_mul", "fp32_add"), 32: ("fp32_mul", "fp32_add")}
_MEMORY = {"dram": ("dram_read_64b_low", "dram_read_64b_high"),
           "sram_1mb": ("sram_read_64b_1mb",) * 2, "sram_32kb": ("sram_read_64b_32kb",) * 2,
           "sram_8kb": ("sram_read_64b_8kb",) * 2}


@dataclass(frozen=True)
class ModelledEnergy:
    """Energy of one inference as the model counts it: arithmetic plus reading the weights once.

    ``memory_low_j`` / ``memory_high_j`` span the published DRAM range; ``energy_j`` uses their
    geometric mean. Activations are left out (small for these models, and kept on chip).
    """

    compute_j: float
    memory_low_j: float
    memory_high_j: float
    macs: int
    weight_bytes: float
    bits: int
    kind: str = "modelled"
    source: str = SOURCE

    @property
    def memory_j(self) -> float:
        return math.sqrt(self.memory_low_j * self.memory_high_j)

    @property
    def energy_j(self) -> float:
        return self.compute_j + self.memory_j

    @property
    def energy_uj(self) -> float:
        return self.energy_j * 1e6

    def __str__(self) -> str:
        return (f"{self.energy_uj:.3f} µJ modelled ({self.compute_j * 1e6:.3f} compute + "
                f"{self.memory_j * 1e6:.3f} weight reads; {self.macs:,} MACs, "
                f"{self.weight_bytes:,.0f} B of {self.bits}-bit weights; {self.source})")


def _count(name: str, value) -> float:
    return number(name, value, 0)


def modelled_energy(macs: int, weights: int, bits: int = 32, density: float = 1.0,
                    index_bits: int = 0, memory: str = "dram") -> ModelledEnergy:
    """Modelled energy of one inference: ``macs`` multiply-accumulates and ``weights`` weights read.

    Args:
        macs: multiply-accumulates of one forward pass (``greenlab.profile.flops(...) / 2``).
        weights: stored weights read once per inference.
        bits: weight and arithmetic precision: 8 (int8), 16 (fp16) or 32 (fp32).
        density: fraction of non-zero weights (1 - sparsity). Hardware that skips zeros does
            ``density * macs`` MACs and reads only the non-zeros; dense kernels gain nothing
            (pass ``density=1``).
        index_bits: bits stored per non-zero to say where it is (sparse formats; e.g. 4 or 16).
        memory: where weights come from: ``"dram"`` (default), ``"sram_1mb"``, ``"sram_32kb"``,
            ``"sram_8kb"``.
    """
    macs, weights = _count("macs", macs), _count("weights", weights)
    if bits not in _MAC:
        raise ValueError(f"bits must be one of {sorted(_MAC)}, got {bits!r}")
    bits = int(bits)
    density = number("density", density, 0, 1, low_open=True, hint=" (1 - sparsity)")
    index_bits = at_least("index_bits", index_bits, 0)
    if memory not in _MEMORY:
        raise ValueError(f"memory must be one of {sorted(_MEMORY)}, got {memory!r}")
    mul, add = _MAC[bits]
    compute_pj = density * macs * (ENERGY_PJ[mul] + ENERGY_PJ[add])
    weight_bytes = density * weights * (bits + index_bits) / 8
    low, high = (ENERGY_PJ[k] * weight_bytes / 8 for k in _MEMORY[memory])  # per 64-bit word
    return ModelledEnergy(compute_pj * 1e-12, low * 1e-12, high * 1e-12, int(macs),
                          weight_bytes, bits)


def model_energy(model, example, bits: int = 32, skip_zeros: bool = False,
                 index_bits: int = 0, memory: str = "dram") -> ModelledEnergy:
    """:func:`modelled_energy` of a torch model for one sample: MACs counted by
    ``greenlab.profile.flops`` on ``example`` (a batch of one), weights by ``count_params``.

    ``skip_zeros=True`` models hardware that skips zero weights (density = non-zeros / weights).
    """
    from . import profile

    if len(example) != 1:
        raise ValueError(f"example must be a batch of one sample, got {len(example)}")
    weights = profile.count_params(model)
    density = profile.count_nonzero(model) / weights if skip_zeros and weights else 1.0
    return modelled_energy(profile.flops(model, example) // 2, weights, bits,
                           max(density, 1e-12), index_bits, memory)
