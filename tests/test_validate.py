"""The validation layer, and each bad-input finding of issue 15 part 4 (each failed before its fix)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import greenlab as gl
from greenlab import data, models
from greenlab._internal import validate as _validate
from greenlab.techniques import lowrank, prune, quantize

QUICK = settings(max_examples=60, deadline=None)


@pytest.mark.parametrize("value, minimum, error, match", [
    (2.0, None, TypeError, "steps must be an int, got float"),
    (True, None, TypeError, "steps must be an int, got bool"),
    (np.bool_(True), None, TypeError, "steps must be an int, got bool"),
    ("3", 1, TypeError, "steps must be an int, got str"),
    (0, 1, ValueError, "steps must be >= 1, got 0"),
])
def test_integer_names_the_argument_and_what_it_got(value, minimum, error, match):
    with pytest.raises(error, match=match):
        _validate.integer("steps", value, minimum)


def test_integer_returns_plain_ints_numpy_ones_too():
    assert _validate.integer("steps", 5, minimum=1) == 5
    assert _validate.integer("offset", -3) == -3
    got = _validate.integer("steps", np.int64(5), minimum=1)
    assert got == 5 and type(got) is int
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 16\], got 17"):
        _validate.integer("bits", 17, 2, 16)


def test_module_accepts_modules_and_names_the_argument_otherwise():
    layer = torch.nn.Linear(2, 2)
    assert _validate.module(layer) is layer
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module, got Tensor"):
        _validate.module(torch.zeros(2), "teacher")


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError),
                                          (True, TypeError), ("3", TypeError), (None, TypeError)])
def test_positive_refuses_all_but_ints_from_one(value, error):
    with pytest.raises(error, match="batch_size must be a positive int, got"):
        _validate.positive("batch_size", value)
    assert _validate.positive("batch_size", np.int32(1)) == 1


@pytest.mark.parametrize("value, error", [(-1, ValueError), (0.0, TypeError), (False, TypeError)])
def test_at_least_names_the_bound(value, error):
    with pytest.raises(error, match=r"warmup must be an int >= 0, got"):
        _validate.at_least("warmup", value, 0)
    assert _validate.at_least("warmup", np.uint8(0), 0) == 0


@pytest.mark.parametrize("call, error, match", [
    (lambda: _validate.fraction("sparsity", 1.5), ValueError,
     r"sparsity must be a number in \[0, 1\], got 1.5"),
    (lambda: _validate.fraction("sparsity", 90), ValueError, r"a fraction: 0.9 for 90 %"),
    (lambda: _validate.fraction("sparsity", "0.5"), TypeError, "sparsity must be a number"),
    (lambda: _validate.fraction("sparsity", True), TypeError, "got bool"),
    (lambda: _validate.number("lr", math.inf, 0, low_open=True), ValueError,
     "lr must be a finite number > 0, got inf"),
    (lambda: _validate.number("lr", 0, 0, low_open=True), ValueError, "lr must be a number > 0"),
    (lambda: _validate.boolean("progress", "no"), TypeError, "progress must be True or False"),
    (lambda: _validate.function("loss_fn", 3), TypeError, "loss_fn must be a function"),
    (lambda: _validate.float_tensor(np.array([1.0, np.nan]), "x", finite=True), ValueError,
     "x must hold finite numbers, got 1 NaN or inf value of 2"),
    (lambda: _validate.float_tensor(np.array(["a"]), "x"), TypeError, "x must hold numbers"),
])
def test_number_bool_and_array_checks_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_scalars_are_accepted_where_python_ones_are():
    assert _validate.fraction("sparsity", np.float32(0.5)) == 0.5
    assert _validate.boolean("progress", np.bool_(False)) is False
    assert prune.global_magnitude(models.mlp(40, (8,)), np.float32(0.9)) is not None  # refused before
    assert lowrank.rank_for_energy(torch.tensor([3.0, 1.0]), np.float32(0.9)) == 1


# ---------------------------------------------------------------- property tests of the validators


@QUICK
@given(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                 st.booleans(), st.text(max_size=3), st.none()))
def test_fraction_accepts_exactly_the_finite_numbers_in_0_1(value):
    ok = (not isinstance(value, (bool, str, type(None))) and math.isfinite(value)
          and 0 <= value <= 1)
    if ok:
        assert _validate.fraction("s", value) == float(value)
        assert _validate.fraction("s", np.float64(value)) == float(value)
    else:
        with pytest.raises((TypeError, ValueError), match="^s must be"):
            _validate.fraction("s", value)


@QUICK
@given(st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2)))
def test_positive_accepts_exactly_the_ints_from_one(value):
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        assert _validate.positive("n", value) == value == _validate.positive("n", np.int64(value))
    else:
        with pytest.raises(TypeError if not isinstance(value, int) or isinstance(value, bool)
                           else ValueError, match="^n must be a positive int, got"):
            _validate.positive("n", value)


# ---------------------------------------------------------------- fit / evaluate / summarize


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 40)).astype(np.float32), rng.integers(0, 10, size=16)


def _fit(x, y, **kw):
    return gl.fit(models.mlp(40, (8,)), x, y, **{"steps": 2, "batch_size": 8, "progress": False,
                                                 **kw})


def _with(a, value):
    a = a.copy()
    a.flat[3] = value
    return a


@pytest.mark.parametrize("change, match", [
    (dict(lr=math.inf), "lr must be a finite number > 0, got inf"),
    (dict(lr=math.nan), "lr must be a finite number > 0, got nan"),
    (dict(weight_decay=-1.0), "weight_decay must be a number >= 0"),
    ("nan", "x must hold finite numbers, got 1 NaN or inf value of 640"),
    ("inf", "x must hold finite numbers"),
    ("empty", r"x must hold at least one sample, got shape \(0, 40\)"),
    ("float labels", "y must hold whole numbers .* got 0.5"),
    ("labels out of range", r"y must hold class indices in \[0, 9\] \(the model has 10 outputs\)"),
    ("width", r"x has 30 features per sample \(shape \(30,\)\), the model expects 40"),
])
def test_fit_refuses_what_used_to_train_to_nan_or_garbage(xy, change, match):
    x, y = xy
    kw = change if isinstance(change, dict) else {}
    if change == "nan":
        x = _with(x, np.nan)
    elif change == "inf":
        x = _with(x, np.inf)
    elif change == "empty":
        x, y = x[:0], y[:0]
    elif change == "float labels":
        y = y + 0.5
    elif change == "labels out of range":
        y = np.full(16, 10)
    elif change == "width":
        x = x[:, :30]
    with pytest.raises(ValueError, match=match):
        _fit(x, y, **kw)


def test_fit_accepts_numpy_scalars_and_whole_float_labels(xy):
    x, y = xy
    h = _fit(x, y.astype(np.float32), steps=np.int64(2), batch_size=np.int32(8),
             lr=np.float32(0.01))
    assert h.steps == 2 and math.isfinite(h.final_loss)
    with pytest.raises(TypeError, match="progress must be True or False"):
        _fit(x, y, progress="no")


def test_a_cnn_fed_the_wrong_width_says_the_width_it_expects(xy):
    x, y = xy
    with pytest.raises(ValueError, match="x has 30 features per sample .* the model expects 40"):
        gl.fit(models.cnn1d(4), x[:, :30], y, steps=1, progress=False)
    with pytest.raises(ValueError, match="x has 30 features per sample"):
        gl.evaluate(models.mlp(40, (8,)), x[:, :30], y)


def test_evaluate_and_summarize_refuse_nan_inputs(xy):
    x, y = xy
    model = models.mlp(40, (8,))
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        gl.evaluate(model, _with(x, np.nan), y)
    with pytest.raises(ValueError, match="x_test must hold finite numbers"):
        gl.summarize(model, _with(x, np.nan), y, repeats=1)
    with pytest.raises(ValueError, match="x_test has 30 features per sample"):
        gl.summarize(model, x[:, :30], y, repeats=1)


@pytest.mark.parametrize("batch_size", [0, -5])
def test_summarize_refuses_a_batch_that_is_not_positive(xy, batch_size):
    x, y = xy
    with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {batch_size}"):
        gl.summarize(models.mlp(40, (8,)), x, y, batch_size=batch_size)
    assert gl.summarize(models.mlp(40, (8,)), x, y, batch_size=np.int64(8), repeats=1).batch_size == 8


# ---------------------------------------------------------------- quantize / dequantize


@pytest.mark.parametrize("x, scale, zero_point, match", [
    ([0.5, math.nan], 0.1, 0, "x must hold finite numbers"),
    ([0.5, math.inf], 0.1, 0, "x must hold finite numbers"),
    ([0.5], math.nan, 0, "scale must hold finite numbers"),
    ([0.5], 0.0, 0, "scale must be > 0"),
    ([0.5], 0.1, 0.5, "zero_point must hold whole numbers"),
    ([0.5], 0.1, 300, r"zero_point must be in \[qmin, qmax\]"),
])
def test_quantize_refuses_what_it_mapped_outside_qmin_qmax(x, scale, zero_point, match):
    with pytest.raises(ValueError, match=match):
        quantize.quantize(torch.tensor(x), scale, zero_point)


def test_dequantize_refuses_codes_that_are_not_integers():
    with pytest.raises(ValueError, match="q must hold finite numbers"):
        quantize.dequantize(torch.tensor([1.0, math.nan]), 0.1, 0)
    with pytest.raises(ValueError, match="q must hold whole numbers"):
        quantize.dequantize(torch.tensor([1.5]), 0.1, 0)


finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@QUICK
@given(st.lists(finite, min_size=1, max_size=30), st.floats(1e-3, 10.0), st.integers(-20, 20),
       st.sampled_from([(-128, 127), (0, 255), (-8, 7)]))
def test_quantize_round_trip_error_is_half_a_step_inside_the_range_and_clips_outside(
        values, scale, zero_point, q_range):
    qmin, qmax = q_range
    zero_point = min(max(zero_point, qmin), qmax)
    x = torch.tensor(values, dtype=torch.float32)
    q = quantize.quantize(x, scale, zero_point, qmin, qmax)
    assert q.dtype == torch.int32 and int(q.min()) >= qmin and int(q.max()) <= qmax
    back = quantize.dequantize(q, scale, zero_point)
    s = float(torch.tensor(scale, dtype=torch.float32))
    lo, hi = (qmin - zero_point) * s, (qmax - zero_point) * s
    inside = (x >= lo) & (x <= hi)
    tol = s / 2 * (1 + 1e-4) + 1e-6 * x.abs()
    assert bool(((back - x).abs() <= tol)[inside].all())
    assert bool((q[x < lo] == qmin).all()) and bool((q[x > hi] == qmax).all())  # clipped


@QUICK
@given(st.lists(finite, min_size=1, max_size=10), st.integers(0, 9))
def test_quantize_refuses_nan_wherever_it_is(values, where):
    x = torch.tensor(values)
    x[where % len(values)] = math.nan
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        quantize.quantize(x, 0.1, 0)


# ---------------------------------------------------------------- sparsity and rank helpers


@QUICK
@given(st.floats(0, 1), st.integers(1, 3))
def test_global_magnitude_hits_any_sparsity_and_numpy_scalars_give_the_same(sparsity, seed):
    torch.manual_seed(seed)
    model = models.mlp(10, (6,), 3)
    total = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    pruned = prune.global_magnitude(model, sparsity)
    zeros = sum(int((m.weight == 0).sum()) for m in pruned.modules()
                if isinstance(m, torch.nn.Linear))
    assert zeros == round(sparsity * total)
    same = prune.global_magnitude(model, np.float32(sparsity))
    assert abs(gl.profile.sparsity(same) - zeros / total) <= 1 / total


@QUICK
@given(st.floats(0, 1), st.integers(0, 20), st.integers(1, 20), st.floats(0.5, 5))
def test_polynomial_sparsity_stays_between_initial_and_final(final, begin, span, power):
    end = begin + span
    values = [prune.polynomial_sparsity(s, final, begin, end, power=power)
              for s in range(0, end + 3)]
    assert all(-1e-12 <= v <= final + 1e-12 for v in values)
    assert values[-1] == pytest.approx(final) and values[0] == pytest.approx(0.0)


singular = st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=12)


@QUICK
@given(singular, st.floats(0.01, 1.0))
def test_rank_for_energy_does_not_depend_on_the_order_and_keeps_the_energy(values, fraction):
    s = torch.tensor(values, dtype=torch.float64)
    rank = lowrank.rank_for_energy(s, fraction)
    assert rank == lowrank.rank_for_energy(s.flip(0), fraction)
    assert 1 <= rank <= len(values)
    energy = torch.sort(s, descending=True).values.pow(2)
    if float(energy.sum()) > 0:
        assert float(energy[:rank].sum() / energy.sum()) >= fraction - 1e-9
        if rank > 1:  # the smallest such rank
            assert float(energy[:rank - 1].sum() / energy.sum()) < fraction


def test_rank_for_energy_with_unsorted_nan_or_empty_values():
    assert lowrank.rank_for_energy(torch.tensor([1.0, 10.0]), 0.9) == 1  # was 2: assumed sorted
    with pytest.raises(ValueError, match="must hold finite numbers"):
        lowrank.rank_for_energy(torch.tensor([3.0, math.nan, 1.0]), 0.9)  # was 4 for 3 values
    with pytest.raises(ValueError, match="at least one value"):
        lowrank.rank_for_energy(torch.zeros(0), 0.9)
    with pytest.raises(ValueError, match="weight must hold finite numbers"):
        lowrank.singular_values(torch.tensor([[1.0, math.nan], [0.0, 1.0]]))


# ---------------------------------------------------------------- the MNIST-1D cache


@pytest.mark.parametrize("damage", ["truncated", "empty", "crc"])
def test_a_damaged_mnist1d_cache_is_rebuilt(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("GREENLAB_CACHE", str(tmp_path))
    good = data.mnist1d_extra(20, seed=3)
    (path,) = tmp_path.glob("mnist1d-*.npz")
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]  # BadZipFile before
    elif damage == "empty":
        raw = bytearray()  # EOFError before
    else:
        start = raw.index(b"\x93NUMPY") + 200  # a byte inside the first array: CRC error
        raw[start] ^= 0xFF
    path.write_bytes(bytes(raw))
    again = data.mnist1d_extra(20, seed=3)
    np.testing.assert_array_equal(again[0], good[0])
    np.testing.assert_array_equal(data.mnist1d_extra(20, seed=3)[1], good[1])  # rebuilt file reads
