"""The eta(E, Z, depth) network: fits a known function, held-out curves, save/load, reproducibility, shipped net."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.calibration import read_table
from fibsynth.fastsim.network import DEFAULT_TABLE, HIDDEN, TrainSettings, build_net, load_model, split, train
from fibsynth.physics.backscatter import hunger_kuechler_z, kanaya_okayama_range_nm


def analytic_table(energies=(1.0, 2.0, 3.0, 4.0, 5.0), zs=(6, 13, 22, 29, 47, 64, 79), depths=range(0, 200, 10)):
    """eta = HK(Z, E) + (0.1 - HK) (1 - exp(-d / (0.15 R(E)))): bulk at d = 0, epoxy-like 0.1 deep."""
    rows = {k: [] for k in ("energy_kev", "Z", "thickness_nm", "eta", "substrate")}
    for e in energies:
        r = 0.15 * kanaya_okayama_range_nm("epoxy", e)
        for z in zs:
            for d in depths:
                hk = hunger_kuechler_z(z, e)
                rows["energy_kev"].append(e)
                rows["Z"].append(float(z))
                rows["thickness_nm"].append(float(d))
                rows["eta"].append(hk + (0.1 - hk) * (1 - np.exp(-d / r)))
                rows["substrate"].append(f"Z{z}")
    return {k: np.array(v) for k, v in rows.items()}


def test_architecture():
    net = build_net()
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [m.in_features for m in lin] == [3, *HIDDEN] and [m.out_features for m in lin] == [*HIDDEN, 1]


def test_fits_a_known_function_and_interpolates_held_out_curves():
    table = analytic_table()
    s = TrainSettings(max_epochs=100, holdout=["3:Z29", "2:Z47"], seed=1)
    model, rep = train(table, s)
    assert rep["held_out_curves"] == ["2:Z47", "3:Z29"]
    assert rep["rows"]["test"] == 40
    # target spans 0.1..0.48 (std ~0.1); 100 epochs get within a few thousandths on unseen (E, Z) curves
    assert rep["rmse_train"] < 0.006
    assert rep["rmse_test"] < 0.006
    pred = model.predict(3.0, 29, np.array([0.0, 40.0, 400.0]))
    assert pred[0] == pytest.approx(hunger_kuechler_z(29, 3.0), abs=0.03)
    assert pred[2] == pytest.approx(0.1, abs=0.03)


def test_reproducible_and_save_load(tmp_path):
    table = analytic_table(energies=(1.0, 3.0), zs=(6, 79))
    s = TrainSettings(max_epochs=3, seed=7, holdout_fraction=0.0)
    m1, r1 = train(table, s)
    m2, r2 = train(table, s)
    for a, b in zip(m1.net.state_dict().values(), m2.net.state_dict().values()):
        assert torch.equal(a, b)
    assert r1["rmse_train"] == r2["rmse_train"]
    w, j = m1.save(tmp_path / "net.pt")
    assert j.name == "net.json"
    m3 = load_model(w)
    x = (np.array([1.0, 3.0]), np.array([6.0, 79.0]), np.array([0.0, 55.0]))
    assert np.array_equal(m1.predict(*x), m3.predict(*x))
    # the state_dict loads with weights_only=True (no pickled code)
    sd = torch.load(w, weights_only=True)
    assert set(sd) == set(m1.net.state_dict())
    with pytest.raises(FibsynthError, match=".pt"):
        m1.save(tmp_path / "net.bin")
    (tmp_path / "net.json").unlink()
    with pytest.raises(FibsynthError, match="normalisation"):
        load_model(w)


def test_split_errors():
    table = analytic_table(energies=(1.0,), zs=(6,))
    with pytest.raises(FibsynthError, match="no curve"):
        split(table, TrainSettings(holdout=["2:Z6"]))
    with pytest.raises(FibsynthError, match="leaves no curve"):
        split(table, TrainSettings(holdout=["1:Z6"]))


def test_shipped_network_reproduces_the_monte_carlo_table():
    """The packaged net against the packaged calibration table: held-out curves near the MC noise floor."""
    model = load_model()
    table = read_table(DEFAULT_TABLE)
    held = model.info["held_out_curves"]
    assert len(held) >= 3
    mask = np.zeros(table["eta"].size, bool)
    for h in held:
        e, s = h.split(":")
        mask |= (table["energy_kev"] == float(e)) & (table["substrate"] == s)
    pred = model.predict(table["energy_kev"], table["Z"], table["thickness_nm"])
    rmse = np.sqrt(np.mean((pred[mask] - table["eta"][mask]) ** 2))
    noise = np.sqrt(np.mean(table["eta_std"][mask] ** 2))
    assert rmse < 2.0 * noise, (rmse, noise)
    # gold at the surface vs Hunger-Kuechler: within the +-0.05 band of the field at 1-5 keV
    for e in (1.0, 2.0, 4.0, 5.0):
        assert model.predict(e, 79, 0.0) == pytest.approx(hunger_kuechler_z(79, e), abs=0.05)
    # brightness of gold under epoxy falls with depth (coarse grid: no large non-monotone wiggle)
    for e in (1.0, 2.0, 4.0):
        d = np.linspace(0, 0.5 * kanaya_okayama_range_nm("epoxy", e), 30)
        v = model.predict(e, 79, d)
        assert np.all(np.diff(v) < 0.005) and v[0] - v[-1] > 0.2
