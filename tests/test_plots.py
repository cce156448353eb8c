import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from greenlab import plots  # noqa: E402


def test_pareto_front_keeps_only_undominated_points():
    cost = [1.0, 2.0, 3.0, 2.0, 4.0]
    score = [0.5, 0.8, 0.9, 0.7, 0.85]
    np.testing.assert_array_equal(plots.pareto_front(cost, score), [True, True, True, False, False])
    assert plots.pareto_front([1.0, 1.0], [0.5, 0.5]).all()  # ties dominate no one


def test_pareto_front_bad_input():
    with pytest.raises(ValueError, match="same length"):
        plots.pareto_front([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        plots.pareto_front([1, np.nan], [1, 2])


def _markers(ax) -> dict[str, tuple[str, str]]:
    """``{kind: (marker, fillstyle)}`` of the drawn points."""
    return {line.get_gid()[5:]: (line.get_marker(), line.get_fillstyle())
            for line in ax.get_lines() if (line.get_gid() or "").startswith("kind:")}


def test_plot_pareto_draws_hollow_estimates():
    df = pd.DataFrame({"technique": ["a", "b", "c"], "energy_j": [1.0, 2.0, 3.0],
                       "accuracy": [0.5, 0.9, 0.8],
                       "energy_kind": ["estimated", "measured", "estimated"]})
    ax = plots.plot_pareto(df)
    assert ax.get_xlabel() == "energy (J)" and ax.get_ylabel() == "test accuracy"
    hollow = [line for line in ax.get_lines() if line.get_gid() == "kind:estimated"]
    assert len(hollow) == 2 and all(line.get_fillstyle() == "none" for line in hollow)
    labels = ax.get_legend_handles_labels()[1]
    assert "Pareto front" in labels and "hollow = estimated energy" in labels
    assert "filled = measured energy" in labels and not any("cross" in t for t in labels)
    with pytest.raises(ValueError, match="no column"):
        plots.plot_pareto(df, x="joules")
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_pareto(df.assign(energy_j=np.nan))


def test_every_kind_of_energy_is_drawn_distinctly():
    # before: kind None and "mixed" were drawn filled, exactly like measured
    kinds = ["measured", "mixed", "estimated", "modelled", None, "guessed"]
    df = pd.DataFrame({"technique": list("abcdef"), "energy_j": [1.0, 2, 3, 4, 5, 6],
                       "accuracy": [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], "energy_kind": kinds})
    drawn = _markers(plots.plot_pareto(df))
    assert drawn == {"measured": ("o", "full"), "mixed": ("o", "left"), "estimated": ("o", "none"),
                     "modelled": ("s", "none"), "unknown": ("X", "full")}
    assert len(set(drawn.values())) == 5
    assert _markers(plots.plot_pareto(df.drop(columns="energy_kind"))) == {"unknown": ("X", "full")}
    ax = plots.plot_pareto(df.drop(columns="energy_kind"), x="accuracy", y="energy_j", logx=False)
    assert set(_markers(ax)) == {"plain"}  # not an energy axis: provenance is not the point


def test_plot_pareto_refuses_training_next_to_inference_energy():
    df = pd.DataFrame({"technique": ["a", "b"], "energy_j": [50.0, 0.5], "accuracy": [0.9, 0.9],
                       "energy_phase": ["train", "inference"]})
    with pytest.raises(ValueError, match=r"mixes training and inference energy"):
        plots.plot_pareto(df)
    plots.plot_pareto(df[df.energy_phase == "inference"])  # one phase: drawn
    plots.plot_pareto(df.assign(params=[10, 20]), x="params")  # not energy: phases do not matter


def test_plot_pareto_refuses_energy_of_unknown_phase():
    # before: old rows with energy but no phase slipped past the mixed-phase check
    df = pd.DataFrame({"technique": ["a", "b"], "energy_j": [50.0, 0.5], "accuracy": [0.9, 0.9],
                       "energy_phase": [None, "inference"]})
    with pytest.raises(ValueError, match=r"1 row\(s\) have energy_j but no energy_phase"):
        plots.plot_pareto(df)
    with pytest.raises(ValueError, match="no energy_phase"):
        plots.plot_pareto(df.assign(energy_phase=None))


def test_plot_tradeoff_labels_units():
    df = pd.DataFrame({"sparsity": [0.0, 0.5, 0.9], "accuracy": [0.9, 0.89, 0.85]})
    ax = plots.plot_tradeoff(df, x="sparsity", baseline=0.9)
    assert ax.get_xlabel().startswith("sparsity (fraction")
    with pytest.raises(ValueError, match="no column"):
        plots.plot_tradeoff(df, x="rank")
