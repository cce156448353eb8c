"""Attack greenlab's public functions with bad input and sort what each does (issue 15, part 4).

    .venv/bin/python tools/probe_inputs.py [-v]

Each probe calls one public function with one realistic mistake (a wrong type, NaN / inf, an
empty array, a zero or negative size, a wrong shape, float labels, a string for a bool) or with
valid input a learner will pass (numpy scalars), and is classified:

* clear: refused with TypeError / ValueError whose message names the argument (for ``checks``:
  a failed check, ``CheckFailed``); valid input accepted.
* unclear: refused with another exception, or without naming the argument.
* silent wrong: bad input accepted (a result returned), or valid input refused.
* crash: the process died, hung (over 20 s) or raised something that is not an ``Exception``.

Probes run in a child process; if it dies, the probe it was on is a crash and the rest go on in a
new child. Runs offline in well under a minute (tiny models, 1-3 steps, a temporary cache and ledger).

Issue 15, part 4 (206 probes): before its fixes 114 clear / 28 unclear / 64 silent wrong / 0 crash;
after them 206 / 0 / 0 / 0.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HANG_S = 20
KINDS = ("clear", "unclear", "silent wrong", "crash")


def _probes():
    """``(label, argument name, call, expect)``: expect "refuse", "accept" or a predicate."""
    import numpy as np
    import torch
    from torch import nn

    import greenlab as gl
    from greenlab import data, models, opcost, plots, profile
    from greenlab.course import checks
    from greenlab.techniques import distill, lowrank, prune, quantize

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 40)).astype(np.float32)
    y = rng.integers(0, 10, size=16)
    mlp = models.mlp(40, (8,))
    cnn = models.cnn1d(channels=4)
    w = torch.randn(6, 5)
    p = []

    def add(label, arg, fn, expect="refuse"):
        p.append((label, arg, fn, expect))

    def fit(**kw):
        args = dict(model=models.mlp(40, (8,)), x=x, y=y, steps=2, batch_size=8, progress=False)
        args.update(kw)
        return gl.fit(**args)

    def nan_at(a, value=np.nan):
        a = a.copy()
        a.flat[3] = value
        return a

    # ---- env
    add("setup(seed='0')", "seed", lambda: gl.setup(seed="0", quiet=True))
    add("setup(threads=0)", "threads", lambda: gl.setup(threads=0, quiet=True))
    add("setup(threads=np.int64(2))", "threads", lambda: gl.setup(threads=np.int64(2), quiet=True),
        "accept")
    add("setup(quiet='no')", "quiet", lambda: gl.setup(quiet="no"))
    add("device(prefer='tpu')", "prefer", lambda: gl.device("tpu"))
    add("device(prefer=3)", "prefer", lambda: gl.device(3))
    add("env.check(extras='tf')", "extras", lambda: gl.env.check(imports=False, extras="tf"))
    # ---- data
    add("data.load(3)", "name", lambda: data.load(3))
    add("data.load('imagenet')", "name", lambda: data.load("imagenet"))
    add("mnist1d_extra(n=5)", "n", lambda: data.mnist1d_extra(5))
    add("mnist1d_extra(n=2.5)", "n", lambda: data.mnist1d_extra(2.5))
    add("mnist1d_extra(n=np.int64(20))", "n", lambda: data.mnist1d_extra(np.int64(20)), "accept")
    add("mnist1d_extra(seed='1')", "seed", lambda: data.mnist1d_extra(20, seed="1"))
    add("shift_augment(max_shift=-1)", "max_shift", lambda: data.shift_augment(-1))
    add("shift_augment(max_shift=np.int64(2))", "max_shift", lambda: data.shift_augment(np.int64(2)),
        "accept")
    # ---- models
    add("linear(in_features=0)", "in_features", lambda: models.linear(0))
    add("linear(in_features='40')", "in_features", lambda: models.linear("40"))
    add("linear(in_features=np.int64(40))", "in_features", lambda: models.linear(np.int64(40)),
        "accept")
    add("mlp(hidden=100)", "hidden", lambda: models.mlp(40, 100))
    add("mlp(hidden=(0,))", "hidden", lambda: models.mlp(40, (0,)))
    add("mlp(hidden=(np.int64(8),))", "hidden", lambda: models.mlp(40, (np.int64(8),)), "accept")
    add("mlp(dropout=1.5)", "dropout", lambda: models.mlp(dropout=1.5))
    add("mlp(dropout=nan)", "dropout", lambda: models.mlp(dropout=float("nan")))
    add("mlp(dropout='0.1')", "dropout", lambda: models.mlp(dropout="0.1"))
    add("mlp(dropout=np.float32(0.1))", "dropout", lambda: models.mlp(dropout=np.float32(0.1)),
        "accept")
    add("cnn1d(channels=2.5)", "channels", lambda: models.cnn1d(channels=2.5))
    add("cnn1d(channels=np.int64(4))", "channels", lambda: models.cnn1d(channels=np.int64(4)),
        "accept")
    add("cnn1d(length=2)", "length", lambda: models.cnn1d(length=2))
    add("cnn1d(length=3)", "length", lambda: models.cnn1d(4, length=3)(torch.zeros(2, 3)), "accept")
    add("cnn1d(hidden=0)", "hidden", lambda: models.cnn1d(hidden=0))
    add("clone(None)", "model", lambda: models.clone(None))
    # ---- train.fit
    add("fit(model=None)", "model", lambda: fit(model=None))
    add("fit(x=list)", "x", lambda: fit(x=x.tolist()))
    add("fit(x with NaN)", "x", lambda: fit(x=nan_at(x)))
    add("fit(x with inf)", "x", lambda: fit(x=nan_at(x, np.inf)))
    add("fit(empty x, y)", "x", lambda: fit(x=x[:0], y=y[:0]))
    add("fit(float labels 0.5)", "y", lambda: fit(y=y + 0.5))
    add("fit(labels >= classes)", "y", lambda: fit(y=np.full(16, 10)))
    add("fit(negative labels)", "y", lambda: fit(y=np.full(16, -3)))
    add("fit(y 2-D one-hot)", "y", lambda: fit(y=np.eye(10)[y]))
    add("fit(y shorter)", "y", lambda: fit(y=y[:8]))
    add("fit(x width 30)", "x", lambda: fit(x=x[:, :30]))
    add("fit(cnn, x width 30)", "x", lambda: fit(model=models.cnn1d(4), x=x[:, :30]))
    add("fit(lr=inf)", "lr", lambda: fit(lr=float("inf")))
    add("fit(lr=nan)", "lr", lambda: fit(lr=float("nan")))
    add("fit(lr=0)", "lr", lambda: fit(lr=0))
    add("fit(lr='0.01')", "lr", lambda: fit(lr="0.01"))
    add("fit(lr=np.float32(0.01))", "lr", lambda: fit(lr=np.float32(0.01)), "accept")
    add("fit(weight_decay=-1)", "weight_decay", lambda: fit(weight_decay=-1.0))
    add("fit(weight_decay=nan)", "weight_decay", lambda: fit(weight_decay=float("nan")))
    add("fit(steps=0)", "steps", lambda: fit(steps=0))
    add("fit(steps=2.0)", "steps", lambda: fit(steps=2.0))
    add("fit(steps='2')", "steps", lambda: fit(steps="2"))
    add("fit(steps=np.int64(2))", "steps", lambda: fit(steps=np.int64(2)), "accept")
    add("fit(batch_size=0)", "batch_size", lambda: fit(batch_size=0))
    add("fit(batch_size=np.int32(8))", "batch_size", lambda: fit(batch_size=np.int32(8)), "accept")
    add("fit(log_every=0)", "log_every", lambda: fit(log_every=0))
    add("fit(seed='0')", "seed", lambda: fit(seed="0"))
    add("fit(progress='no')", "progress", lambda: fit(progress="no"))
    add("fit(loss_fn=3)", "loss_fn", lambda: fit(loss_fn=3))
    add("fit(augment='shift')", "augment", lambda: fit(augment="shift"))
    add("fit(optimizer='adam')", "optimizer", lambda: fit(optimizer="adam"))
    add("fit(torch float x, long y)", "x", lambda: fit(x=torch.as_tensor(x), y=torch.as_tensor(y)),
        "accept")
    # ---- evaluate / predict / logits
    add("evaluate(x width 30)", "x", lambda: gl.evaluate(mlp, x[:, :30], y))
    add("evaluate(x with NaN)", "x", lambda: gl.evaluate(mlp, nan_at(x), y))
    add("evaluate(y shorter)", "y", lambda: gl.evaluate(mlp, x, y[:3]))
    add("evaluate(float labels 0.5)", "y", lambda: gl.evaluate(mlp, x, y + 0.5))
    add("evaluate(empty x, y)", "x", lambda: gl.evaluate(mlp, x[:0], y[:0]))
    add("evaluate(model=None)", "model", lambda: gl.evaluate(None, x, y))
    add("logits(batch_size=0)", "batch_size", lambda: gl.train.logits(mlp, x, batch_size=0))
    add("predict(x='abc')", "x", lambda: gl.train.predict(mlp, "abc"))
    # ---- results.summarize / compare
    add("summarize(batch_size=0)", "batch_size", lambda: gl.summarize(mlp, x, y, batch_size=0))
    add("summarize(batch_size=-5)", "batch_size", lambda: gl.summarize(mlp, x, y, batch_size=-5))
    add("summarize(batch_size=np.int64(8))", "batch_size",
        lambda: gl.summarize(mlp, x, y, batch_size=np.int64(8), repeats=2), "accept")
    add("summarize(repeats=0)", "repeats", lambda: gl.summarize(mlp, x, y, repeats=0))
    add("summarize(x width 30)", "x_test", lambda: gl.summarize(mlp, x[:, :30], y, repeats=2))
    add("summarize(x with NaN)", "x_test", lambda: gl.summarize(mlp, nan_at(x), y, repeats=2))
    add("summarize(empty)", "x_test", lambda: gl.summarize(mlp, x[:0], y[:0]))
    add("summarize(model=3)", "model", lambda: gl.summarize(3, x, y))
    add("compare(models=[])", "models", lambda: gl.compare([], x, y))
    add("compare({}, ...)", "models", lambda: gl.compare({}, x, y))
    # ---- profile
    add("count_params(None)", "model", lambda: profile.count_params(None))
    add("sparsity(nn.ReLU())", "model", lambda: profile.sparsity(nn.ReLU()))
    add("size_bytes(3)", "model", lambda: profile.size_bytes(3))
    add("compressed_size_bytes(level=10)", "level", lambda: profile.compressed_size_bytes(mlp, 10))
    add("compressed_size_bytes(level=np.int64(5))", "level",
        lambda: profile.compressed_size_bytes(mlp, np.int64(5)), "accept")
    add("flops(example=ndarray)", "example", lambda: profile.flops(mlp, x[:1]))
    add("latency(fn=3)", "fn", lambda: profile.latency(3))
    add("latency(repeats=0)", "repeats", lambda: profile.latency(lambda: None, repeats=0))
    add("latency(warmup=-1)", "warmup", lambda: profile.latency(lambda: None, warmup=-1))
    add("latency(repeats=np.int64(3))", "repeats",
        lambda: profile.latency(lambda: None, repeats=np.int64(3)), "accept")
    # ---- prune
    add("global_magnitude(sparsity=1.5)", "sparsity", lambda: prune.global_magnitude(mlp, 1.5))
    add("global_magnitude(sparsity=90)", "sparsity", lambda: prune.global_magnitude(mlp, 90))
    add("global_magnitude(sparsity=nan)", "sparsity",
        lambda: prune.global_magnitude(mlp, float("nan")))
    add("global_magnitude(sparsity='0.5')", "sparsity", lambda: prune.global_magnitude(mlp, "0.5"))
    add("global_magnitude(sparsity=True)", "sparsity", lambda: prune.global_magnitude(mlp, True))
    add("global_magnitude(sparsity=np.float32(0.9))", "sparsity",
        lambda: prune.global_magnitude(mlp, np.float32(0.9)), "accept")
    add("global_magnitude(model=None)", "model", lambda: prune.global_magnitude(None, 0.5))
    add("layerwise_magnitude(sparsity=-0.1)", "sparsity",
        lambda: prune.layerwise_magnitude(mlp, -0.1))
    add("layerwise_magnitude(sparsity=np.float32(0.5))", "sparsity",
        lambda: prune.layerwise_magnitude(mlp, np.float32(0.5)), "accept")
    add("layer_sparsity(module_types='Linear')", "module_types",
        lambda: prune.layer_sparsity(mlp, "Linear"))
    add("polynomial_sparsity(step=-1)", "step", lambda: prune.polynomial_sparsity(-1, 0.9, 0, 10))
    add("polynomial_sparsity(power='3')", "power",
        lambda: prune.polynomial_sparsity(1, 0.9, 0, 10, power="3"))
    add("polynomial_sparsity(power=inf)", "power",
        lambda: prune.polynomial_sparsity(1, 0.9, 0, 10, power=float("inf")))
    add("polynomial_sparsity(np.int64 steps, np.float32)", "step",
        lambda: prune.polynomial_sparsity(np.int64(5), np.float32(0.9), np.int64(0), np.int64(10)),
        "accept")
    add("polynomial_sparsity(end_step=begin_step)", "end_step",
        lambda: prune.polynomial_sparsity(1, 0.9, 5, 5))
    add("gradual_magnitude(steps=0)", "steps",
        lambda: prune.gradual_magnitude(mlp, x, y, 0.5, steps=0))
    add("gradual_magnitude(ramp_fraction=nan)", "ramp_fraction",
        lambda: prune.gradual_magnitude(mlp, x, y, 0.5, steps=4, rounds=1,
                                        ramp_fraction=float("nan")))
    add("gradual_magnitude(lr=inf)", "lr",
        lambda: prune.gradual_magnitude(mlp, x, y, 0.5, steps=2, rounds=1, lr=float("inf")))
    add("gradual_magnitude(x with NaN)", "x",
        lambda: prune.gradual_magnitude(mlp, nan_at(x), y, 0.5, steps=2, rounds=1))
    add("top_channels(keep=0)", "keep", lambda: prune.top_channels(w, 0))
    add("top_channels(keep=np.int64(2))", "keep", lambda: prune.top_channels(w, np.int64(2)),
        "accept")
    add("channel_prune_conv1d(keep_fraction=0)", "keep_fraction",
        lambda: prune.channel_prune_conv1d(cnn, 0))
    add("channel_prune_conv1d(keep_fraction=np.float32(0.5))", "keep_fraction",
        lambda: prune.channel_prune_conv1d(cnn, np.float32(0.5)), "accept")
    add("channel_prune_conv1d(mlp)", "model", lambda: prune.channel_prune_conv1d(mlp, 0.5))
    add("sparse_size_bytes(min_sparsity=2)", "min_sparsity",
        lambda: prune.sparse_size_bytes(mlp, 2))
    # ---- quantize
    t = torch.linspace(-1, 1, 11)
    add("int_range(bits=1)", "bits", lambda: quantize.int_range(1))
    add("int_range(bits=np.int64(8))", "bits", lambda: quantize.int_range(np.int64(8)), "accept")
    add("int_range(signed='no')", "signed", lambda: quantize.int_range(8, signed="no"))
    add("affine_params(x_min=nan)", "x_min", lambda: quantize.affine_params(float("nan"), 1.0))
    add("affine_params(x_max=inf)", "x_max", lambda: quantize.affine_params(-1.0, float("inf")))
    add("affine_params(x_min > x_max)", "x_min", lambda: quantize.affine_params(1.0, -1.0))
    add("affine_params(np.float32 range)", "x_min",
        lambda: quantize.affine_params(np.float32(-1), np.float32(1)), "accept")
    add("affine_params(symmetric='yes')", "symmetric",
        lambda: quantize.affine_params(-1.0, 1.0, symmetric="yes"))
    add("quantize(x with NaN)", "x",
        lambda: quantize.quantize(torch.tensor([0.5, float("nan")]), 0.1, 0))
    add("quantize(x with inf)", "x",
        lambda: quantize.quantize(torch.tensor([0.5, float("inf")]), 0.1, 0))
    add("quantize(scale=0)", "scale", lambda: quantize.quantize(t, 0.0, 0))
    add("quantize(scale=nan)", "scale", lambda: quantize.quantize(t, float("nan"), 0))
    add("quantize(scale=inf)", "scale", lambda: quantize.quantize(t, float("inf"), 0))
    add("quantize(zero_point=0.5)", "zero_point", lambda: quantize.quantize(t, 0.1, 0.5))
    add("quantize(zero_point outside [qmin, qmax])", "zero_point",
        lambda: quantize.quantize(t, 0.1, 300))
    add("quantize(qmin=np.int64(-128), np.float32 scale)", "scale",
        lambda: quantize.quantize(t, np.float32(0.1), np.int64(0), np.int64(-128)), "accept")
    add("quantize(axis=5)", "axis", lambda: quantize.quantize(w, torch.ones(6), torch.zeros(6),
                                                              axis=5))
    add("quantize(x='abc')", "x", lambda: quantize.quantize("abc", 0.1, 0))
    add("dequantize(q with NaN)", "q",
        lambda: quantize.dequantize(torch.tensor([1.0, float("nan")]), 0.1, 0))
    add("dequantize(q=1.5)", "q", lambda: quantize.dequantize(torch.tensor([1.5]), 0.1, 0))
    add("dequantize(scale=-1)", "scale", lambda: quantize.dequantize(torch.tensor([1]), -1.0, 0))
    add("fake_quantize(x with NaN)", "x",
        lambda: quantize.fake_quantize(torch.tensor([0.5, float("nan")])))
    add("fake_quantize(x empty)", "x", lambda: quantize.fake_quantize(torch.zeros(0)))
    add("fake_quantize(bits=np.int64(4))", "bits",
        lambda: quantize.fake_quantize(t, bits=np.int64(4)), "accept")
    add("fake_quantize(per_channel='yes')", "per_channel",
        lambda: quantize.fake_quantize(w, per_channel="yes"))
    add("fake_quantize(axis=5)", "axis", lambda: quantize.fake_quantize(w, per_channel=True, axis=5))
    add("qconfig_mapping(weight_bits=np.int64(8))", "weight_bits",
        lambda: quantize.qconfig_mapping(weight_bits=np.int64(8)), "accept")
    add("qconfig_mapping(weight_bits=9)", "weight_bits", lambda: quantize.qconfig_mapping(
        weight_bits=9))
    add("qconfig_mapping(qat='no')", "qat", lambda: quantize.qconfig_mapping(qat="no"))
    add("weight_bytes(None)", "model", lambda: quantize.weight_bytes(None))
    add("dynamic_int8(None)", "model", lambda: quantize.dynamic_int8(None))
    add("static_int8_fx(calib_x empty)", "calib_x", lambda: quantize.static_int8_fx(mlp, x[:0]))
    add("static_int8_fx(calib_x with NaN)", "calib_x",
        lambda: quantize.static_int8_fx(mlp, nan_at(x)))
    add("static_int8_fx(batch_size=0)", "batch_size",
        lambda: quantize.static_int8_fx(mlp, x, batch_size=0))
    # ---- lowrank
    s3 = torch.tensor([3.0, 2.0, 1.0])
    add("rank_for_energy(unsorted values)", "weight",
        lambda: lowrank.rank_for_energy(torch.tensor([1.0, 10.0]), 0.9),
        lambda r: r == 1)
    add("rank_for_energy(values with NaN)", "weight",
        lambda: lowrank.rank_for_energy(torch.tensor([3.0, float("nan"), 1.0]), 0.9))
    add("rank_for_energy(values with inf)", "weight",
        lambda: lowrank.rank_for_energy(torch.tensor([3.0, float("inf")]), 0.9))
    add("rank_for_energy(negative values)", "weight",
        lambda: lowrank.rank_for_energy(torch.tensor([3.0, -1.0]), 0.9))
    add("rank_for_energy(empty values)", "weight",
        lambda: lowrank.rank_for_energy(torch.zeros(0), 0.9))
    add("rank_for_energy(weight with NaN)", "weight",
        lambda: lowrank.rank_for_energy(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), 0.9))
    add("rank_for_energy(fraction=0)", "fraction", lambda: lowrank.rank_for_energy(s3, 0))
    add("rank_for_energy(fraction=nan)", "fraction",
        lambda: lowrank.rank_for_energy(s3, float("nan")))
    add("rank_for_energy(fraction=np.float32(0.9))", "fraction",
        lambda: lowrank.rank_for_energy(s3, np.float32(0.9)), "accept")
    add("rank_for_energy(weight=ndarray)", "weight",
        lambda: lowrank.rank_for_energy(np.ones((3, 3)), 0.9))
    add("truncated_svd(rank=0)", "rank", lambda: lowrank.truncated_svd(w, 0))
    add("truncated_svd(rank=np.int64(2))", "rank", lambda: lowrank.truncated_svd(w, np.int64(2)),
        "accept")
    add("singular_values(weight with NaN)", "weight",
        lambda: lowrank.singular_values(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])))
    add("factorize_linear(Conv1d)", "layer", lambda: lowrank.factorize_linear(nn.Conv1d(2, 2, 3), 1))
    add("factorize_model(ranks=np.int64(2))", "ranks",
        lambda: lowrank.factorize_model(mlp, ranks=np.int64(2)), "accept")
    add("factorize_model(ranks={'0': np.int64(2)})", "ranks",
        lambda: lowrank.factorize_model(models.mlp(40, (20,)), ranks={"1": np.int64(2)}), "accept")
    add("factorize_model(energy=1.5)", "energy", lambda: lowrank.factorize_model(mlp, energy=1.5))
    add("factorize_model(energy=np.float32(0.9))", "energy",
        lambda: lowrank.factorize_model(mlp, energy=np.float32(0.9)), "accept")
    add("choose_ranks(layers='fc')", "layers", lambda: lowrank.choose_ranks(mlp, 0.9, "fc"))
    # ---- distill
    lg = torch.randn(4, 10)
    add("soft_targets(T=0)", "T", lambda: distill.soft_targets(lg, 0))
    add("soft_targets(T=np.float32(2))", "T", lambda: distill.soft_targets(lg, np.float32(2)),
        "accept")
    add("kd_loss(alpha=1.5)", "alpha", lambda: distill.kd_loss(lg, lg, None, alpha=1.5))
    add("kd_loss(alpha=np.float32(0.5))", "alpha",
        lambda: distill.kd_loss(lg, lg, torch.zeros(4, dtype=torch.long), alpha=np.float32(0.5)),
        "accept")
    add("kd_loss(student_logits with NaN)", "student_logits",
        lambda: distill.kd_loss(torch.full((4, 10), float("nan")), lg, None))
    add("teacher_logits(batch_size=0)", "batch_size",
        lambda: distill.teacher_logits(mlp, x, batch_size=0))
    add("distill_loss_fn(teacher=3)", "teacher", lambda: distill.distill_loss_fn(3))
    add("gap_recovered(nan, ...)", "teacher_acc",
        lambda: distill.gap_recovered(float("nan"), 0.5, 0.6))
    add("gap_recovered(np.float32 values)", "teacher_acc",
        lambda: distill.gap_recovered(np.float32(0.9), np.float32(0.5), np.float32(0.7)), "accept")
    # ---- opcost
    add("modelled_energy(macs=-1)", "macs", lambda: opcost.modelled_energy(-1, 10))
    add("modelled_energy(macs='10')", "macs", lambda: opcost.modelled_energy("10", 10))
    add("modelled_energy(macs=np.int64(10))", "macs",
        lambda: opcost.modelled_energy(np.int64(10), np.int64(10)), "accept")
    add("modelled_energy(density=np.float32(0.5))", "density",
        lambda: opcost.modelled_energy(10, 10, density=np.float32(0.5)), "accept")
    add("modelled_energy(bits=np.int64(8))", "bits",
        lambda: opcost.modelled_energy(10, 10, bits=np.int64(8)), "accept")
    add("modelled_energy(index_bits=np.int64(4))", "index_bits",
        lambda: opcost.modelled_energy(10, 10, index_bits=np.int64(4)), "accept")
    add("modelled_energy(density=nan)", "density",
        lambda: opcost.modelled_energy(10, 10, density=float("nan")))
    # ---- plots
    add("pareto_front(cost with NaN)", "cost", lambda: plots.pareto_front([1, float("nan")], [1, 2]))
    add("pareto_front(lengths differ)", "cost", lambda: plots.pareto_front([1, 2], [1]))
    # ---- ledger
    row = dict(lesson="01", technique="probe", model="m")
    add("log(accuracy=1.5)", "accuracy", lambda: gl.log(**row, accuracy=1.5))
    add("log(accuracy=nan)", "accuracy", lambda: gl.log(**row, accuracy=float("nan")))
    add("log(accuracy='0.9')", "accuracy", lambda: gl.log(**row, accuracy="0.9"))
    add("log(accuracy=np.float32(0.9))", "accuracy",
        lambda: gl.log(**row, accuracy=np.float32(0.9)), "accept")
    add("log(latency_ms=-1)", "latency_ms", lambda: gl.log(**row, latency_ms=-1.0))
    add("log(lesson=1)", "lesson", lambda: gl.log(lesson=1, technique="t", model="m"))
    # ---- meters
    add("measure(name=3)", "name", lambda: gl.measure(3))
    add("Meter(sources='rapl')", "sources", lambda: gl.Meter(sources="rapl"))
    # ---- checks (a refusal here is a failed check: CheckFailed)
    add("checks.close('1.0', 1.0)", "result", lambda: checks.close("1.0", 1.0))
    add("checks.close(True, 1)", "result", lambda: checks.close(True, 1))
    add("checks.close(nan, nan)", "result", lambda: checks.close(float("nan"), float("nan")))
    add("checks.close(np.float32(1), 1.0)", "result", lambda: checks.close(np.float32(1), 1.0),
        "accept")
    add("checks.sparsity(None, 0.9)", "model", lambda: checks.sparsity(None, 0.9))
    add("checks.array(list, shape)", "result", lambda: checks.array([1, 2], shape=(2,)))
    # ---- zoo, runtimes (no training, no export: the checks before them)
    add("zoo.load('resnet')", "name", lambda: gl.zoo.load("resnet"))
    add("zoo.card(3)", "name", lambda: gl.zoo.card(3))
    add("export_onnx(model=None)", "model", lambda: gl.runtimes.export_onnx(None, x[:1], "m.onnx"))
    add("ort_session(threads=0)", "threads", lambda: gl.runtimes.ort_session(Path("empty.onnx").touch() or "empty.onnx", 0))
    add("OrtClassifier(path=3)", "path", lambda: gl.runtimes.OrtClassifier(3))
    return p


def _outcome(label: str, arg: str, fn, expect) -> tuple[str, str]:
    """``(kind, what happened)`` for one probe."""
    from greenlab.course.checks import CheckFailed

    try:
        result = fn()
    except CheckFailed as exc:
        if expect == "refuse" and label.startswith("checks."):
            return "clear", f"CheckFailed: {exc}"
        return "silent wrong" if expect != "refuse" else "unclear", f"CheckFailed: {exc}"
    except (TypeError, ValueError) as exc:
        what = f"{type(exc).__name__}: {exc}"
        if expect != "refuse":
            return "silent wrong", f"valid input refused: {what}"
        named = re.search(rf"\b{re.escape(arg)}\b", str(exc))
        return ("clear" if named else "unclear"), what
    except Exception as exc:  # noqa: BLE001 -- the point is to see what escapes
        what = f"{type(exc).__name__}: {exc}"
        return ("unclear" if expect == "refuse" else "silent wrong"), what
    shown = repr(result)[:80]
    if expect == "refuse":
        return "silent wrong", f"accepted, returned {shown}"
    if callable(expect) and not expect(result):
        return "silent wrong", f"wrong result {shown}"
    return "clear", f"accepted: {shown}"


def _child(start: int, out_path: str) -> None:
    """Run probes from ``start`` on, appending one JSON line per probe to ``out_path``."""
    import warnings

    warnings.filterwarnings("ignore")
    probes = _probes()
    with open(out_path, "a") as out:
        for i, (label, arg, fn, expect) in enumerate(probes[start:], start):
            out.write(json.dumps({"i": i, "label": label, "started": True}) + "\n")
            out.flush()
            signal.alarm(HANG_S)
            try:
                kind, what = _outcome(label, arg, fn, expect)
            except BaseException as exc:  # noqa: BLE001 -- SystemExit, KeyboardInterrupt, alarm
                kind, what = "crash", f"{type(exc).__name__}: {exc}"
            signal.alarm(0)
            out.write(json.dumps({"i": i, "label": label, "kind": kind, "what": what[:300]}) + "\n")
            out.flush()
        out.write(json.dumps({"done": len(probes)}) + "\n")


def _alarm(signum, frame):
    raise TimeoutError(f"hung for more than {HANG_S} s")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        signal.signal(signal.SIGALRM, _alarm)
        _child(int(argv[1]), argv[2])
        return 0
    verbose = "-v" in argv
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GREENLAB_CACHE=tmp, GREENLAB_LEDGER=str(Path(tmp) / "l.sqlite"),
                   CUDA_VISIBLE_DEVICES="", GREENLAB_DEVICE="cpu")
        out_path = str(Path(tmp) / "probes.jsonl")
        results: dict[int, dict] = {}
        start, total = 0, None
        while total is None:
            subprocess.run([sys.executable, __file__, "--child", str(start), out_path], env=env,
                           cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            lines = [json.loads(line) for line in Path(out_path).read_text().splitlines()]
            for rec in lines:
                if "done" in rec:
                    total = rec["done"]
                elif "kind" in rec:
                    results[rec["i"]] = rec
            if total is None:  # the child died on the last probe it started
                last = max(rec["i"] for rec in lines if "i" in rec)
                if last not in results:
                    results[last] = {"i": last, "label": next(
                        r["label"] for r in lines if r.get("i") == last), "kind": "crash",
                        "what": "the process died"}
                start = last + 1
    rows = [results[i] for i in sorted(results)]
    counts = {k: sum(r["kind"] == k for r in rows) for k in KINDS}
    print("| probes | clear | unclear | silent wrong | crash |")
    print("|---|---|---|---|---|")
    print(f"| {len(rows)} | " + " | ".join(str(counts[k]) for k in KINDS) + " |")
    for r in rows:
        if r["kind"] != "clear" or verbose:
            print(f"  [{r['kind']}] {r['label']}: {r['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
