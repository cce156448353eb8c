"""greenlab.results / greenlab.comparison: one summarize for every model, one side-by-side compare."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from fakes import no_deterministic_algorithms  # noqa: F401  (the fixture pytestmark uses)
from sklearn.tree import DecisionTreeClassifier

import greenlab as gl
from greenlab import ledger, profile
from greenlab.meters import ReplayMeter
from greenlab.results import ENERGY_KEYS, Summary
from greenlab.techniques import prune as gp
from greenlab.techniques import quantize as glq

OLD_KEYS = {"accuracy", "f1", "latency_ms", "latency_p90_ms", "batch_size", "size_bytes", "params",
            "nonzero"}  # what gl.summarize returned before: ledger rows written with it must still fit


pytestmark = pytest.mark.usefixtures("no_deterministic_algorithms")


@pytest.fixture(scope="module")
def digits():
    return gl.data.load("digits")


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return gl.models.mlp(64, (16,), 10)


class _Counting(torch.nn.Module):
    """Wraps a model and counts forward calls, to see which calls the energy window covers."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


class _WindowMeter(ReplayMeter):
    """A replay meter that notes the model's call count when its window opens and closes."""

    def __init__(self, model, windows):
        super().__init__(windows)
        self.model, self.seen = model, []

    def begin(self, name):
        self.seen.append(self.model.calls)
        super().begin(name)

    def end(self, name):
        self.seen.append(self.model.calls)
        return super().end(name)


# ----------------------------------------------------------------------------- summarize


def test_summarize_a_torch_model_fills_every_column(digits):
    model = _mlp().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    row = gl.summarize(model, digits.x_test, digits.y_test, repeats=4,
                       meter=ReplayMeter([(0.5, 0.2)]))
    assert model.training, "summarize must leave the model's mode as it was"
    assert isinstance(row, Summary) and set(row) >= OLD_KEYS | set(ENERGY_KEYS)
    assert set(row) <= set(ledger.COLUMNS)
    assert row["params"] == profile.count_params(model) == row.nonzero
    assert row.flops == 2 * (64 * 16 + 16 * 10)  # one sample: a multiply-add is 2 FLOPs
    assert row.batch_size == 256 and row.size_bytes == profile.size_bytes(model)
    assert 0 < row.latency_ms <= row.latency_p90_ms and row.latency_1_ms > 0
    assert row.accuracy == gl.evaluate(model, digits.x_test, digits.y_test)["accuracy"]
    # the replayed window: 0.2 s of CPU time x 10 W per core, over 4 batches of 256 predictions
    assert row.energy_j == pytest.approx(2.0) and row.energy_samples == 4 * 256
    assert (row.energy_phase, row.energy_kind, row.energy_source) == ("inference", "estimated",
                                                                      "estimate")
    assert row.energy_uj_per_sample == pytest.approx(2.0 / 1024 * 1e6)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_the_energy_window_covers_exactly_the_timed_batches(digits):
    model = _Counting(_mlp())
    meter = _WindowMeter(model, [(0.1, 0.1)])
    row = gl.summarize(model, digits.x_test, digits.y_test, batch_size=100, repeats=7, meter=meter)
    start, stop = meter.seen
    assert stop - start == 7  # the timed batch calls, not the warm-up, evaluation or batch-1 ones
    assert start > 0 and model.calls > stop
    assert row.energy_samples == 7 * 100 and row.batch_size == 100


def test_a_measured_energy_is_labelled_measured(digits):
    row = gl.summarize(_mlp(), digits.x_test, digits.y_test, repeats=2,
                       meter=ReplayMeter([(0.5, 0.01)], counter_w=8.0))
    assert row.energy_j == pytest.approx(4.0) and row.energy_kind == "measured"


def test_no_energy_at_all_gives_empty_energy_columns_that_still_log(digits, tmp_path):
    meter = gl.Meter(sources=("rapl",), powercap_root=tmp_path / "no-powercap")  # nothing to read
    row = gl.summarize(_mlp(), digits.x_test, digits.y_test, repeats=2, meter=meter)
    assert all(row[k] is None for k in ENERGY_KEYS) and row.energy_uj_per_sample is None
    stored = ledger.log(lesson="t", technique="t", model="mlp", path=tmp_path / "l.sqlite", **row)
    assert stored["energy_j"] is None and stored["accuracy"] == row.accuracy


def test_summarize_int8_models_counts_params_and_skips_flops(digits):
    model = _mlp().eval()
    for q in (glq.dynamic_int8(model), glq.static_int8_fx(model, digits.x_train[:200])):
        row = gl.summarize(q, digits.x_test, digits.y_test, repeats=2)
        assert row.params == profile.count_params(model)  # computed: int8 counted like float
        assert row.flops is None and 0 < row.nonzero <= row.params
        assert row.size_bytes == profile.size_bytes(q) < profile.size_bytes(model)


def test_summarize_sklearn(digits):
    tree = DecisionTreeClassifier(max_depth=5, random_state=0).fit(digits.x_train, digits.y_train)
    row = gl.summarize(tree, digits.x_test, digits.y_test, repeats=2)
    assert row.params is None and row.nonzero is None and row.flops is None
    assert row.accuracy > 0.5 and row.size_bytes == profile.size_bytes(tree)
    assert row.energy_phase == "inference" and row.energy_samples == 2 * 256


def test_summarize_an_onnx_session(digits, tmp_path):
    model = _mlp().eval()
    path = gl.runtimes.export_onnx(model, torch.as_tensor(digits.x_test[:2]), tmp_path / "m.onnx")
    clf = gl.runtimes.OrtClassifier(path, threads=1)
    row = gl.summarize(clf, digits.x_test, digits.y_test, repeats=2, params=1234)
    assert row.params == 1234 and row.nonzero is None and row.flops is None  # passed through
    assert row.size_bytes == path.stat().st_size == profile.size_bytes(clf)
    assert row.accuracy == pytest.approx(gl.evaluate(model, digits.x_test, digits.y_test)["accuracy"])
    assert row.latency_1_ms > 0 and row.energy_samples == 2 * 256


@pytest.mark.parametrize("kwargs, error, text", [
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
    ({"batch_size": -5}, ValueError, "batch_size must be a positive int"),
    ({"repeats": 0}, ValueError, "repeats must be a positive int"),
    ({"params": 10}, ValueError, "a torch module's is computed"),
    ({"params": "10"}, TypeError, "params must be an int"),
])
def test_summarize_validates_arguments(digits, kwargs, error, text):
    with pytest.raises(error, match=text):
        gl.summarize(_mlp(), digits.x_test, digits.y_test, **kwargs)


def test_summarize_validates_inputs(digits):
    with pytest.raises(TypeError, match="model must be a torch module, a scikit-learn"):
        gl.summarize(object(), digits.x_test, digits.y_test)
    with pytest.raises(TypeError, match="x_test must be a numpy array"):
        gl.summarize(_mlp(), digits.x_test.tolist(), digits.y_test)
    with pytest.raises(ValueError, match="same, non-zero length"):
        gl.summarize(_mlp(), digits.x_test, digits.y_test[:5])
    with pytest.raises(ValueError, match="same, non-zero length"):
        gl.summarize(_mlp(), digits.x_test[:0], digits.y_test[:0])


def test_summary_is_a_read_only_mapping(digits, tmp_path):
    row = gl.summarize(_mlp(), digits.x_test, digits.y_test, repeats=2)
    assert dict(row) == row.as_dict() and row["f1"] == row.f1 and len(row) == len(row.as_dict())
    with pytest.raises(KeyError):
        row["nope"]  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.accuracy = 1.0
    assert not set(ENERGY_KEYS) & set(row.as_dict(energy=False))
    stored = ledger.log(lesson="t", technique="t", model="mlp", path=tmp_path / "l.sqlite", **row)
    assert stored["latency_1_ms"] == row.latency_1_ms and stored["flops"] == row.flops
    back = ledger.read(tmp_path / "l.sqlite", phase="inference")
    assert back.loc[0, "energy_samples"] == row.energy_samples


def test_summary_from_mapping_validates():
    assert Summary.from_mapping({"accuracy": 0.9, "f1": 0.8}).params is None
    with pytest.raises(ValueError, match=r"unknown keys \['speed'\]"):
        Summary.from_mapping({"accuracy": 0.9, "f1": 0.8, "speed": 3})
    with pytest.raises(ValueError, match="fraction in"):
        Summary.from_mapping({"accuracy": 90, "f1": 0.8})
    with pytest.raises(TypeError, match="must be a number"):
        Summary.from_mapping({"f1": 0.8})
    with pytest.raises(TypeError, match="must be a mapping"):
        Summary.from_mapping([("accuracy", 0.9)])


# ----------------------------------------------------------------------------- compare


def _row(**values) -> dict:
    base = dict(accuracy=0.9, f1=0.9, params=1000, nonzero=1000, flops=2000, latency_ms=2.0,
                latency_1_ms=0.1, batch_size=256, size_bytes=4000, energy_j=1.0,
                energy_samples=10_000, energy_phase="inference", energy_kind="estimated",
                energy_source="estimate")
    return {**base, **values}


def _train(j: float, kind: str = "estimated") -> dict:
    return {"energy_j": j, "energy_kind": kind, "energy_source": "estimate" if kind == "estimated"
            else "rapl"}


def test_compare_ratios_are_value_over_baseline():
    cmp = gl.compare({"dense": _row(), "pruned": _row(accuracy=0.85, nonzero=100, latency_ms=1.0,
                                                      energy_j=0.5)},
                     train_measurements={"dense": _train(10.0), "pruned": _train(15.0)})
    t = cmp.table
    assert list(t.index) == ["dense", "pruned"] and cmp.baseline == "dense"
    assert t.loc["pruned", "nonzero_ratio"] == pytest.approx(0.1)
    assert t.loc["pruned", "latency_ms_ratio"] == pytest.approx(0.5)
    assert t.loc["pruned", "accuracy_ratio"] == pytest.approx(0.85 / 0.9)
    assert t.loc["pruned", "infer_uj_per_sample"] == pytest.approx(50.0)  # 0.5 J / 10,000 samples
    assert t.loc["pruned", "train_energy_j_ratio"] == pytest.approx(1.5)
    assert (t.filter(like="_ratio").loc["dense"] == 1.0).all()
    assert t.loc["pruned", "infer_energy_kind"] == t.loc["pruned", "train_energy_kind"] == "estimated"


def test_compare_summarizes_models_and_leaves_them_unchanged(digits):
    base = _mlp()
    gl.fit(base, digits.x_train, digits.y_train, steps=50, progress=False, device="cpu")
    pruned = gp.global_magnitude(base, 0.75)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    with gl.measure("training") as m:
        pass
    cmp = gl.compare({"baseline": base, "pruned 75%": pruned, "keras": _row()}, digits.x_test,
                     digits.y_test, train_measurements={"baseline": m}, repeats=2)
    t = cmp.table
    weights, biases = 64 * 16 + 16 * 10, 16 + 10  # biases are not pruned
    assert t.loc["pruned 75%", "nonzero_ratio"] == (round(0.25 * weights) + biases) / (weights + biases)
    assert t.loc["pruned 75%", "params_ratio"] == 1.0
    assert t.loc["baseline", "train_energy_j"] == m.energy_j
    assert math.isnan(t.loc["pruned 75%", "train_energy_j"])
    assert cmp.rows["keras"].accuracy == 0.9 and cmp.labels["baseline"] == "sequential"
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in state.items())


def test_compare_rendering_labels_kinds_marks_the_baseline_and_shades():
    cmp = gl.compare({"baseline": _row(), "worse acc, faster": _row(accuracy=0.8, latency_ms=1.0)},
                     train_measurements={"baseline": _train(2.0)})
    text = " ".join(str(cmp).split())
    assert "inference energy / sample (estimated)" in text and "training energy (estimated)" in text
    assert "(0.5x)" in text and "(0.889x)" in text and "follows latency by construction" in text
    assert "CPU time" in cmp.caption() and repr(cmp) == str(cmp)
    html = cmp._repr_html_()
    assert "follows latency by construction" in html and "<caption" in html
    headers = list(cmp.style().data.columns)
    red, green = "#f6d5d5", "#d8f0d8"
    acc, lat = headers.index("accuracy"), headers.index("latency, batch 256")

    def css_of(row, col):
        return "".join(re.findall(rf"row{row}_col{col}\b[^{{]*\{{([^}}]*)\}}", html))

    assert red in css_of(1, acc) and green in css_of(1, lat)  # worse accuracy, better latency
    assert "background" not in css_of(1, headers.index("params"))  # the same count: not shaded
    assert "font-weight: bold" in css_of(0, acc)  # the baseline row


def test_compare_labels_each_cell_when_kinds_differ():
    cmp = gl.compare({"a": _row(), "b": _row(energy_kind="measured", energy_source="rapl")})
    text = str(cmp)
    assert "estimated" in text and "measured" in text
    assert "inference energy / sample (" not in text  # no single kind to put in the header
    assert "Measured energy: hardware counters" in cmp.caption()


def test_compare_log_writes_both_phases(tmp_path, digits):
    path = tmp_path / "l.sqlite"
    with gl.measure("training") as m:
        pass
    cmp = gl.compare({"baseline": _mlp(), "keras": _row()}, digits.x_test, digits.y_test,
                     train_measurements={"baseline": m, "keras": _train(3.0, "measured")},
                     train_samples={"baseline": 50 * 128}, repeats=2)
    stored = cmp.log(lesson="99", dataset="digits", model={"keras": "keras-mlp"}, path=path)
    assert [(r["technique"], r["energy_phase"]) for r in stored] == [
        ("baseline", "inference"), ("baseline", "train"), ("keras", "inference"), ("keras", "train")]
    df = ledger.read(path)
    train = df[df.energy_phase == "train"].set_index("technique")
    assert train.loc["baseline", "energy_samples"] == 50 * 128
    assert train.loc["baseline", "energy_kind"] == m.kind
    assert train.loc["keras", "energy_j"] == 3.0 and train.loc["keras", "model"] == "keras-mlp"
    infer = df[df.energy_phase == "inference"].set_index("technique")
    assert infer.loc["baseline", "model"] == "sequential"
    assert infer.loc["baseline", "energy_samples"] == 2 * 256
    assert infer.loc["baseline", "accuracy"] == train.loc["baseline", "accuracy"]


@pytest.mark.parametrize("call, error, text", [
    (lambda: gl.compare([_row()]), TypeError, "models must be a mapping"),
    (lambda: gl.compare({}), ValueError, "at least the baseline"),
    (lambda: gl.compare({"a": _mlp()}), ValueError, "x_test and y_test are needed"),
    (lambda: gl.compare({"a": _row(speed=1)}), ValueError, "unknown keys"),
    (lambda: gl.compare({"a": _row()}, train_measurements={"b": _train(1)}), ValueError,
     "not in models"),
    (lambda: gl.compare({"a": _row()}, train_samples={"a": 10}), ValueError,
     "without a training measurement"),
    (lambda: gl.compare({"a": _row()}, train_measurements={"a": 3.0}), TypeError,
     "must be a greenlab.Measurement"),
    (lambda: gl.compare({"a": _row()}, train_measurements={"a": _train(-1)}), ValueError,
     "finite number >= 0"),
    (lambda: gl.compare({"a": _row()}, train_measurements={"a": {"energy_j": 1.0}}), ValueError,
     "kind must be one of"),
    (lambda: gl.compare({"a": _row()}, train_measurements={"a": _train(1)},
                        train_samples={"a": 0}), ValueError, "positive int"),
    (lambda: gl.compare({"a": _row()}).log("01", model=3), TypeError, "model must be a string"),
])
def test_compare_validates(call, error, text):
    with pytest.raises(error, match=text):
        call()


def test_compare_is_exported():
    assert gl.compare is gl.results.compare and "compare" in gl.__all__
    assert np.isnan(gl.compare({"a": _row(latency_1_ms=None)}).table.loc["a", "latency_1_ms"])


def test_compare_keeps_each_column_in_its_unit():
    cmp = gl.compare({"a": _row(energy_j=36.3, latency_ms=1234.5), "b": _row(energy_j=0.0005)},
                     train_measurements={"a": _train(0.000292)})
    text = str(cmp)
    assert "3,630 µJ" in text and "0.05 µJ" in text  # µJ per sample in every lesson, no 3.63e+03
    assert "1,234 ms" in text and "0.000292 J" in text and "4 kB" in text
