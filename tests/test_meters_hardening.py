"""The meter never raises for a counter, never masks the learner's exception, never reports an
impossible reading as measured, says what it did not count, and knows no framework."""

import dataclasses
import logging
import subprocess
import sys
import textwrap
import types

import pytest
from fakes import fake_powercap, set_energy

from greenlab.meters import Measurement, Meter, codecarbon_measure

MAX_UJ = 262_143_328_850  # a typical Intel package counter's range (~262 kJ)




def ticking(*times_s):
    """A fake clock returning ``times_s`` in turn (the window's length is then known exactly)."""
    it = iter(times_s)
    return lambda: next(it)


def cpu_part(r):
    return next(p for p in r.parts if p.name == "cpu")


# --------------------------------------------------------------------------- probing and reading


@pytest.mark.parametrize("bad", ["", "garbage", "12.5.7", "-3"])
def test_probe_parses_energy_uj_and_never_raises_later(tmp_path, bad):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, MAX_UJ)})
    set_energy(root, "intel-rapl:0", bad)
    m = Meter(powercap_root=root, sources=("rapl", "estimate"))
    assert not m.status["rapl"].startswith("readable"), m.status["rapl"]
    assert "energy_uj" in m.status["rapl"] and "not a number" in m.status["rapl"]
    m.begin("w")  # raised ValueError: the probe only read the file, never parsed it
    r = m.end("w")
    assert r.kind == "estimated" and cpu_part(r).kind == "estimated"


def test_probe_refuses_a_counter_above_its_own_range(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 5_000_000, 1_000_000)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"))
    assert "exceeds max_energy_range_uj" in m.status["rapl"]


def test_a_bad_dram_domain_keeps_the_package_measured(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, MAX_UJ),
                                    "intel-rapl:0:1": ("dram", 0, MAX_UJ)})
    set_energy(root, "intel-rapl:0:1", "nan")
    m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 1.0))
    assert m.status["rapl"].startswith("readable: package-0") and "skipped" in m.status["rapl"]
    m.begin("w")
    set_energy(root, "intel-rapl:0", 3_000_000)
    r = m.end("w")
    assert (r.kind, r.source, r.energy_j) == ("measured", "rapl", pytest.approx(3.0))


@pytest.mark.parametrize("how", ["vanished", "denied", "garbage"])
def test_counter_lost_mid_window_degrades_to_a_labelled_estimate(tmp_path, monkeypatch, how):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, MAX_UJ),
                                    "intel-rapl:0:1": ("dram", 0, MAX_UJ)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 1.0))
    m.begin("w")
    set_energy(root, "intel-rapl:0:1", 2_000_000)
    if how == "vanished":
        (root / "intel-rapl:0" / "energy_uj").unlink()
    elif how == "garbage":
        set_energy(root, "intel-rapl:0", "")
    else:
        real = type(root).read_text

        def deny(self, *a, **k):
            if self.name == "energy_uj" and self.parent.name == "intel-rapl:0":
                raise PermissionError(13, "Permission denied")
            return real(self, *a, **k)

        monkeypatch.setattr(type(root), "read_text", deny)
    with pytest.warns(RuntimeWarning, match="rapl:package-0"):
        r = m.end("w")  # raised FileNotFoundError / PermissionError / ValueError
    cpu = cpu_part(r)
    assert cpu.kind == "estimated" and "package-0" in cpu.note and "window's end" in cpu.note
    dram = next(p for p in r.parts if p.name == "dram")
    assert dram.kind == "measured" and dram.energy_j == pytest.approx(2.0)
    assert r.kind == "mixed" and r.source == "estimate+rapl"
    assert any("package-0" in w for w in r.warnings)


def test_counter_lost_mid_window_without_an_estimate_is_unavailable(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, MAX_UJ)})
    m = Meter(powercap_root=root, sources=("rapl",), clock=ticking(0.0, 1.0))
    m.begin("w")
    (root / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.warns(RuntimeWarning):
        r = m.end("w")
    assert r.kind == "unavailable" and cpu_part(r).energy_j is None and cpu_part(r).note


def test_measure_never_masks_the_learners_exception(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, MAX_UJ)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"))
    with pytest.raises(KeyError, match="learner's bug"), pytest.warns(RuntimeWarning):
        with m.measure("w") as r:
            (root / "intel-rapl:0" / "energy_uj").unlink()
            raise KeyError("learner's bug")
    assert r.kind == "estimated"  # and the window still has its result


def test_measure_keeps_the_learners_exception_even_if_the_meter_breaks(tmp_path, monkeypatch):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))

    def broken(name):
        raise RuntimeError("meter bug")

    monkeypatch.setattr(m, "end", broken)
    with pytest.raises(KeyError) as info:
        with m.measure("w"):
            raise KeyError("learner's bug")
    if hasattr(info.value, "__notes__"):  # Python >= 3.11: the meter's failure is a note
        assert "meter bug" in info.value.__notes__[0]
    with pytest.raises(RuntimeError, match="meter bug"), m.measure("v"):
        pass  # with no exception of the learner's, the meter's own is not swallowed


# --------------------------------------------------------------------------- impossible readings


def test_a_step_back_is_not_read_as_a_wrap(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 100_000_000, MAX_UJ)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 0.02))
    m.begin("w")
    set_energy(root, "intel-rapl:0", 99_999_999)  # 1 µJ back: a glitch, not 262 kJ in 20 ms
    with pytest.warns(RuntimeWarning, match="impossible"):
        r = m.end("w")
    cpu = cpu_part(r)
    assert cpu.kind == "estimated" and "W" in cpu.note and "wrap" in cpu.note
    assert r.kind == "estimated" and r.energy_j < 1.0


def test_a_real_wrap_is_still_measured(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", MAX_UJ - 1_000_000, MAX_UJ)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 0.02))
    m.begin("w")
    set_energy(root, "intel-rapl:0", 500_000)  # 1.5 J in 20 ms = 75 W, across the wrap
    r = m.end("w")
    assert (r.kind, r.energy_j) == ("measured", pytest.approx(1.5))


def test_a_range_smaller_than_the_counter_never_gives_negative_energy(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 500_000, 1_000_000)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 1.0))
    set_energy(root, "intel-rapl:0", 5_000_000)  # the counter runs past its stated range
    m.begin("w")
    set_energy(root, "intel-rapl:0", 1_000_000)
    with pytest.warns(RuntimeWarning, match="outside"):
        r = m.end("w")
    assert cpu_part(r).kind == "estimated" and r.energy_j >= 0


def test_the_domains_own_power_limit_bounds_what_is_plausible(tmp_path):
    domains = {"intel-rapl:0": ("package-0", 0, MAX_UJ)}
    plain = fake_powercap(tmp_path / "plain", domains)
    capped = fake_powercap(tmp_path / "capped", domains)
    (capped / "intel-rapl:0" / "constraint_0_max_power_uw").write_text("15000000\n")  # 15 W
    results = {}
    for label, root in (("plain", plain), ("capped", capped)):
        m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 0.01))
        m.begin("w")
        set_energy(root, "intel-rapl:0", 5_000_000)  # 5 J in 10 ms = 500 W
        with pytest.warns(RuntimeWarning) if label == "capped" else _no_warning():
            results[label] = m.end("w")
    assert results["plain"].kind == "measured"  # 500 W: under the generous default cap
    assert results["capped"].kind == "estimated"  # 500 W from a 15 W part is impossible
    assert "150 W" in cpu_part(results["capped"]).note


class _no_warning:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


# --------------------------------------------------------------------------- child processes

BUSY_CHILD = textwrap.dedent("""
    import time
    t = time.process_time()
    while time.process_time() - t < {cpu_s}:
        pass
""")


def test_cpu_of_waited_child_processes_is_counted(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    with m.measure("child") as r:
        subprocess.run([sys.executable, "-c", BUSY_CHILD.format(cpu_s=0.3)], check=True)
    assert r.child_cpu_time_s >= 0.29  # was estimated at ~0 J
    watts = m.power_model.watts_per_core
    assert r.energy_j == pytest.approx((r.cpu_time_s + r.child_cpu_time_s) * watts)
    assert r.estimate_j == pytest.approx(r.energy_j)


def test_a_child_still_running_is_said_not_to_be_counted(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD.format(cpu_s=30)])
    try:
        with m.measure("waiting") as r:
            try:
                child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
    finally:
        child.kill()
        child.wait()
    assert r.child_cpu_time_s == 0.0
    assert any("child processes still running" in w for w in r.warnings), r.warnings


# --------------------------------------------------------------------------- an immutable result


def test_end_returns_an_immutable_result(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    m.begin("w")
    r = m.end("w")
    assert type(r) is Measurement
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.energy_j = 0.0


def test_the_with_handle_is_readable_only_after_the_block(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    with m.measure("train") as h:
        with pytest.raises(RuntimeError, match=r"energy_j of 'train' is known when the with-block"):
            h.energy_j  # noqa: B018
        assert "still measuring" in str(h)
    assert isinstance(h, Measurement)  # code that takes a Measurement takes the handle
    assert type(h.result) is Measurement and h.energy_j == h.result.energy_j
    assert h.kind == "estimated" and h.as_dict()["name"] == "train" and str(h) == str(h.result)
    with pytest.raises(AttributeError):
        h.no_such_field  # noqa: B018
    with pytest.raises(RuntimeError, match="entered once"), h:
        pass


def test_a_measurement_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        Measurement("x", time_s=1.0, cpu_time_s=1.0, energy_j=1.0, source="estimate", kind="pending")


def test_cancel_drops_a_window(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    m.begin("w")
    m.cancel("w")
    with pytest.raises(ValueError, match="no open window named 'w'"):
        m.end("w")


# --------------------------------------------------------------------------- no framework


def test_measure_never_imports_torch():
    code = ("import sys, greenlab\n"
            "with greenlab.measure('x') as m:\n    pass\n"
            "print(sorted(k for k in ('torch', 'tensorflow', 'jax') if k in sys.modules), m.kind)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "[]", out.stdout + out.stderr


def test_an_imported_framework_is_synchronized_at_both_edges(tmp_path, monkeypatch):
    calls = []
    cuda = types.SimpleNamespace(is_initialized=lambda: True,
                                 synchronize=lambda: calls.append("sync"))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    with m.measure("gpu"):
        calls.append("body")
    assert calls == ["sync", "body", "sync"]
    cuda.is_initialized = lambda: False  # CUDA never used: nothing to wait for
    with m.measure("cpu"):
        pass
    assert calls == ["sync", "body", "sync"]


# --------------------------------------------------------------------------- codecarbon


def test_codecarbon_leaves_its_logger_as_it_found_it():
    import codecarbon  # noqa: F401  (its import configures the logger; that is codecarbon's)

    logger = logging.getLogger("codecarbon")
    before = logger.level, list(logger.handlers)
    logger.setLevel(logging.DEBUG)
    try:
        with codecarbon_measure("cc"):
            pass
        assert logger.level == logging.DEBUG  # was left at ERROR
        with pytest.raises(KeyError), codecarbon_measure("cc-raises"):
            raise KeyError("learner")
        assert logger.level == logging.DEBUG
        assert logger.handlers == before[1]
    finally:
        logger.setLevel(before[0])


def test_a_counter_gone_before_the_window_opens(tmp_path):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 0, MAX_UJ)})
    m = Meter(powercap_root=root, sources=("rapl", "estimate"), clock=ticking(0.0, 1.0))
    (root / "intel-rapl:0" / "energy_uj").unlink()
    m.begin("w")  # raised FileNotFoundError
    with pytest.warns(RuntimeWarning, match="window's start"):
        r = m.end("w")
    assert r.kind == "estimated"


# --------------------------------------------------------------------------- NVML, faked


class FakeNvml(types.ModuleType):
    """Enough of pynvml for one GPU: energy in mJ, a 700 W power limit."""

    def __init__(self):
        super().__init__("pynvml")
        self.energy_mj, self.fail = 1_000_000, False

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"gpu{i}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if self.fail:
            raise RuntimeError("GPU is lost")
        return self.energy_mj

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle):
        return (100_000, 700_000)  # mW


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    from greenlab.meters import counters

    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(counters, "NVIDIA_DRIVER_PATHS", (str(tmp_path),))  # "a driver is loaded"
    return nvml


def test_nvml_gpu_is_measured_and_its_failures_are_labelled(tmp_path, fake_gpu):
    m = Meter(powercap_root=tmp_path / "none", sources=("nvml", "rapl", "estimate"),
              clock=ticking(0.0, 1.0, 0.0, 1.0, 0.0, 0.01))
    assert m.status["nvml"] == "readable: 1 GPU(s)"
    m.begin("ok")
    fake_gpu.energy_mj += 300_000  # 300 J in 1 s
    r = m.end("ok")
    gpu = next(p for p in r.parts if p.name == "gpu:0")
    assert (gpu.kind, gpu.energy_j, r.kind, r.source) == ("measured", 300.0, "mixed", "estimate+nvml")
    m.begin("lost")
    fake_gpu.fail = True
    with pytest.warns(RuntimeWarning, match="nvml:gpu:0 unreadable"):
        r = m.end("lost")
    assert next(p for p in r.parts if p.name == "gpu:0").kind == "unavailable"
    fake_gpu.fail = False
    m.begin("impossible")
    fake_gpu.energy_mj += 1_000_000  # 1 kJ in 10 ms from a 700 W board
    with pytest.warns(RuntimeWarning, match="impossible"):
        r = m.end("impossible")
    assert next(p for p in r.parts if p.name == "gpu:0").kind == "unavailable"
    assert r.kind == "estimated"


@pytest.mark.skipif(sys.platform != "linux", reason="the driver check is Linux's")
def test_no_driver_means_pynvml_is_never_imported(tmp_path, monkeypatch):
    from greenlab.meters import counters

    monkeypatch.setitem(sys.modules, "pynvml", None)  # an import would raise ImportError
    monkeypatch.setattr(counters, "NVIDIA_DRIVER_PATHS", (str(tmp_path / "absent"),))
    assert "no NVIDIA driver" in Meter(sources=("nvml",)).status["nvml"]
