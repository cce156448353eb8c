import math
import time

import pytest
from fakes import fake_powercap, set_energy
from hypothesis import given
from hypothesis import strategies as st

from greenlab import meters
from greenlab.meters import J_PER_KWH, KINDS, Measurement, Meter, PowerModel, ReplayMeter


def test_kwh_conversion_uses_the_exact_constant():
    m = Measurement("x", time_s=3600.0, cpu_time_s=0.0, energy_j=7.2e6, source="replay",
                    kind="measured")
    assert m.energy_kwh == 2.0 and m.avg_power_w == 2000.0 and m.co2e_g(400) == 800.0
    assert 3.6e6 / J_PER_KWH == 1.0  # 1 kWh = 1000 W x 3600 s, not an approximation


def test_estimate_when_no_counters(tmp_path):
    m = Meter(powercap_root=tmp_path / "missing", sources=("rapl", "estimate"))
    with m.measure("spin") as r:
        t = time.process_time()
        while time.process_time() - t < 0.05:
            pass
    assert r.kind == "estimated" and r.source == "estimate"
    assert r.power_model and "W/core" in r.power_model
    assert r.energy_j == pytest.approx(r.cpu_time_s * m.power_model.watts_per_core)
    assert r.energy_j_low < r.energy_j < r.energy_j_high
    assert r.parts[0].kind == "estimated"
    assert "not present" in m.status["rapl"]


def test_rapl_measured_with_wraparound_and_dedup(tmp_path):
    root = fake_powercap(tmp_path, {
        "intel-rapl:0": ("package-0", 999_000_000, 1_000_000_000),
        "intel-rapl:0:0": ("core", 5, 1_000_000_000),     # inside the package: not counted
        "intel-rapl:0:1": ("dram", 0, 1_000_000_000),
        "intel-rapl:1": ("psys", 0, 1_000_000_000),       # contains the package: not counted
    })
    m = Meter(powercap_root=root, sources=("rapl", "estimate"))
    assert set(m.status["rapl"].split(": ")[1].split(", ")) == {"package-0", "dram-0"}
    m.begin("w")
    set_energy(root, "intel-rapl:0", 1_000_000)  # wrapped: 999 J -> 1000 J -> 1 J
    set_energy(root, "intel-rapl:0:1", 500_000)
    r = m.end("w")
    assert r.kind == "measured" and r.source == "rapl"
    assert r.energy_j == pytest.approx(2.0 + 0.5)
    assert {p.source for p in r.parts} == {"rapl:package-0", "rapl:dram-0"}
    assert r.power_model is None
    assert r.warnings  # a near-zero-length window is flagged
    assert r.estimate_j >= 0  # the model's figure is kept beside the measurement


def test_rapl_permission_denied_falls_back_with_reason(tmp_path, monkeypatch):
    root = fake_powercap(tmp_path, {"intel-rapl:0": ("package-0", 1, 10)})
    real_read = type(root).read_text

    def deny(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError("root only")
        return real_read(self, *a, **k)

    monkeypatch.setattr(type(root), "read_text", deny)
    m = Meter(powercap_root=root, sources=("rapl", "estimate"))
    assert "root" in m.status["rapl"]
    with m.measure("x") as r:
        pass
    assert r.kind == "estimated"


def test_mirrored_amd_packages_counted_once(tmp_path):
    root = fake_powercap(tmp_path, {
        "intel-rapl:0": ("package-0", 0, 10**9),
        "intel-rapl:1": ("package-0", 0, 10**9),  # the same counter exposed twice
    })
    m = Meter(powercap_root=root, sources=("rapl",))
    m.begin("w")
    set_energy(root, "intel-rapl:0", 3_000_000)
    set_energy(root, "intel-rapl:1", 3_000_000)
    assert m.end("w").energy_j == pytest.approx(3.0)


def test_no_source_is_unavailable_not_an_error(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("rapl",))
    m.begin("a")
    r = m.end("a")
    assert r.kind == "unavailable" and math.isnan(r.energy_j)
    assert r.parts[0].kind == "unavailable"


def test_windows_nest_and_names_are_checked(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    m.begin("outer")
    m.begin("inner")
    inner = m.end("inner")
    outer = m.end("outer")
    assert outer.time_s >= inner.time_s
    with pytest.raises(ValueError, match="no open window named 'outer'"):
        m.end("outer")
    m.begin("x")
    with pytest.raises(ValueError, match="already open"):
        m.begin("x")
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        m.begin("")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"sources": "rapl"}, TypeError, "sources must be a sequence"),
        ({"sources": ("rapl", "magic")}, ValueError, "sources must be a non-empty subset"),
        ({"sources": ()}, ValueError, "sources must be a non-empty subset"),
        ({"power_model": 10}, TypeError, "power_model must be a PowerModel"),
    ],
)
def test_meter_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Meter(**kwargs)


def test_power_model_validation_and_env(monkeypatch):
    with pytest.raises(ValueError, match="watts_per_core must lie in"):
        PowerModel(20.0, 5.0, 15.0)
    with pytest.raises(ValueError, match="positive number of watts"):
        PowerModel(-1.0, -2.0, 1.0)
    with pytest.raises(TypeError, match="low_w must be a number"):
        PowerModel(10.0, "5", 15.0)
    monkeypatch.setenv("GREENLAB_WATTS_PER_CORE", "7.5")
    pm = PowerModel.from_env()
    assert pm.watts_per_core == 7.5 and pm.origin == "GREENLAB_WATTS_PER_CORE"
    monkeypatch.setenv("GREENLAB_WATTS_PER_CORE", "lots")
    with pytest.raises(ValueError, match="GREENLAB_WATTS_PER_CORE must be a number"):
        PowerModel.from_env()


@given(windows=st.lists(st.tuples(st.floats(0.001, 100), st.floats(0, 200)), min_size=1, max_size=5),
       watts=st.floats(1, 50))
def test_replay_meter_is_deterministic(windows, watts):
    pm = PowerModel(watts, watts, watts, "test")
    meter = ReplayMeter(windows, power_model=pm)
    for i, (time_s, cpu_s) in enumerate(windows):
        with meter.measure(f"w{i}") as r:
            pass
        assert r.time_s == time_s and r.cpu_time_s == cpu_s
        assert r.energy_j == pytest.approx(cpu_s * watts)
        assert r.kind == "estimated"


def test_replay_meter_counter_mode_and_exhaustion():
    meter = ReplayMeter([(2.0, 1.0)], counter_w=30.0)
    with meter.measure("a") as r:
        pass
    assert (r.kind, r.energy_j, r.avg_power_w) == ("measured", 60.0, 30.0)
    assert r.energy_kwh == pytest.approx(60 / 3.6e6)
    assert r.co2e_g(500) == pytest.approx(60 / 3.6e6 * 500)
    with pytest.raises(ValueError, match="grid_g_per_kwh"):
        r.co2e_g(-1)
    meter.begin("b")
    with pytest.raises(ValueError, match="ran out"):
        meter.end("b")


def test_measurement_is_filled_even_when_block_raises(tmp_path):
    m = Meter(powercap_root=tmp_path, sources=("estimate",))
    with pytest.raises(RuntimeError):
        with m.measure("boom") as r:
            raise RuntimeError("learner bug")
    assert r.kind == "estimated" and r.time_s >= 0 and r.source == "estimate"
    assert "boom" in str(r) and "estimated" in str(r)


def expected_kind(parts):
    kinds = {p.kind for p in parts} - {"unavailable"}
    return "mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "unavailable")


def test_module_level_measure_uses_the_default_meter_and_states_its_kind():
    status = meters.available_sources()
    assert set(status) == set(meters.SOURCES)
    with meters.measure("module-level") as r:
        pass
    assert meters.default_meter() is meters.default_meter()
    assert r.kind == expected_kind(r.parts) and r.kind in KINDS
    counters = [s for s in ("rapl", "nvml") if status[s].startswith("readable")]
    assert (r.kind == "estimated") == (not counters), (r.kind, status)  # no counter: an estimate
    d = r.as_dict()
    assert d["name"] == "module-level" and isinstance(d["parts"], list)
    with pytest.raises(TypeError, match="meter must be a greenlab Meter"):
        meters.measure("x", meter="rapl")


def test_overhead_reports_every_figure(tmp_path):
    out = meters.overhead(windows=5)
    assert out["greenlab_windows"] == 5 and out["greenlab_first_start_ms"] > 0
    assert 0 < out["greenlab_median_start_stop_ms"]
    assert out["greenlab_kind"] in KINDS and isinstance(out["torch_imported"], bool)
    assert not any(k.startswith("codecarbon") for k in out)
    for bad, error in ((1, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="windows must be"):
            meters.overhead(windows=bad)
    with pytest.raises(ValueError, match="codecarbon_windows must be 0 or >= 2"):
        meters.overhead(codecarbon_windows=1)


def test_overhead_beside_codecarbon():
    out = meters.overhead(windows=2, codecarbon_windows=2)
    assert out["codecarbon_source"] == "codecarbon" and out["codecarbon_windows"] == 2
    assert out["codecarbon_first_start_ms"] > 0 and out["codecarbon_median_start_stop_ms"] > 0


def test_codecarbon_measure_is_labelled_honestly(capfd):
    for _ in range(2):  # the second tracker in a process warns about "Multiple instances"
        with meters.codecarbon_measure("cc") as r:
            sum(i * i for i in range(200_000))
    noise = capfd.readouterr()
    assert "codecarbon" not in noise.err + noise.out, noise  # no INFO/WARNING lines of its own
    assert r.source == "codecarbon"
    cpu = next(p for p in r.parts if p.name == "cpu")
    measuring = cpu.source.split(":")[1] in ("intel_rapl", "apple_powermetrics",
                                              "intel_power_gadget")
    assert cpu.kind == ("measured" if measuring else "estimated"), cpu
    ram = next(p for p in r.parts if p.name == "ram")
    assert ram.kind == "estimated"  # codecarbon's RAM figure is always a model
    assert r.kind == expected_kind([p for p in r.parts if p.energy_j]), r
    assert r.warnings  # a sub-second block: its 50 ms skip is flagged
