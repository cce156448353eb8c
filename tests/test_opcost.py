import doctest

import pytest
import torch
from torch import nn

from greenlab import opcost
from greenlab.opcost import ENERGY_PJ, model_energy, modelled_energy


def test_docstring_example_holds():
    assert doctest.testmod(opcost).failed == 0


def test_a_mac_costs_a_multiply_and_an_accumulate_at_each_precision():
    fp32 = modelled_energy(macs=1000, weights=0, bits=32)
    int8 = modelled_energy(macs=1000, weights=0, bits=8)
    assert fp32.compute_j == pytest.approx(1000 * (3.7 + 0.9) * 1e-12)
    assert int8.compute_j == pytest.approx(1000 * (0.2 + 0.1) * 1e-12)
    assert fp32.compute_j / int8.compute_j == pytest.approx(4.6 / 0.3)
    assert fp32.memory_j == 0 and fp32.energy_j == fp32.compute_j


def test_weight_reads_are_64_bit_dram_words_with_the_published_range():
    m = modelled_energy(macs=0, weights=2, bits=32)  # 8 bytes = one 64-bit word
    assert m.weight_bytes == 8
    assert m.memory_low_j == pytest.approx(ENERGY_PJ["dram_read_64b_low"] * 1e-12)
    assert m.memory_high_j == pytest.approx(ENERGY_PJ["dram_read_64b_high"] * 1e-12)
    assert m.memory_low_j < m.memory_j < m.memory_high_j
    on_chip = modelled_energy(macs=0, weights=2, bits=32, memory="sram_8kb")
    assert on_chip.memory_j == pytest.approx(10e-12)


def test_int8_reads_a_quarter_of_the_bytes_and_density_scales_both_parts():
    fp32 = modelled_energy(macs=10_000, weights=5_000, bits=32)
    int8 = modelled_energy(macs=10_000, weights=5_000, bits=8)
    assert int8.memory_j == pytest.approx(fp32.memory_j / 4)
    sparse = modelled_energy(macs=10_000, weights=5_000, bits=32, density=0.1)
    assert sparse.compute_j == pytest.approx(fp32.compute_j * 0.1)
    assert sparse.memory_j == pytest.approx(fp32.memory_j * 0.1)
    indexed = modelled_energy(macs=10_000, weights=5_000, bits=32, density=0.1, index_bits=16)
    assert indexed.memory_j == pytest.approx(sparse.memory_j * 48 / 32)


def test_model_energy_counts_a_linear_layer_and_skips_zeros_only_when_asked():
    layer = nn.Linear(10, 4, bias=False)
    with torch.no_grad():
        layer.weight[:, :5] = 0
    dense = model_energy(layer, torch.zeros(1, 10))
    assert dense.macs == 40 and dense.weight_bytes == 40 * 4
    skipping = model_energy(layer, torch.zeros(1, 10), skip_zeros=True)
    assert skipping.compute_j == pytest.approx(dense.compute_j / 2)
    assert "modelled" in str(dense) and dense.kind == "modelled"


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"macs": -1, "weights": 1}, ValueError, "macs must be a number >= 0, got -1"),
    ({"macs": "10", "weights": 1}, TypeError, "macs must be a number >= 0, got str"),
    ({"macs": float("nan"), "weights": 1}, ValueError, "macs must be a finite number"),
    ({"macs": 1, "weights": 1, "bits": 4}, ValueError, "bits must be one of [8, 16, 32]"),
    ({"macs": 1, "weights": 1, "density": 0}, ValueError, "density must be a number in (0, 1]"),
    ({"macs": 1, "weights": 1, "density": True}, TypeError, "density must be a number"),
    ({"macs": 1, "weights": 1, "memory": "hbm"}, ValueError, "memory must be one of"),
])
def test_bad_arguments_are_named(kwargs, exc, words):
    with pytest.raises(exc, match=words.replace("(", r"\(").replace("[", r"\[")):
        modelled_energy(**kwargs)


def test_model_energy_wants_one_sample():
    with pytest.raises(ValueError, match="batch of one"):
        model_energy(nn.Linear(3, 2), torch.zeros(2, 3))
