"""Direction of the bias of a lagged outcome with patient effects in a short panel
(benchmarks/sim_nickell.py has the full simulation; the RSA guide its numbers)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alliancestats import fit_lagged_rsa, simulate_prn

ROLES = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient",
         "time": "session", "unit": ["therapist", "patient"],
         "groups": ["therapist", "patient"]}
PHI = 0.5


def fit(data: pd.DataFrame, **kwargs: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_lagged_rsa(data, **ROLES, **kwargs)


def stationary_panel(seed: int) -> pd.DataFrame:
    """Six sessions of ``W_t = 11 + 0.5 W_{t−1} + u_j + e_t`` started at its stationary
    distribution (so session 1 carries the patient level ``u_j``), alliance from the
    simulator (no effect on W)."""
    rng = np.random.default_rng(seed)
    data = simulate_prn(40, 117, 6, rng=rng).sort_values(["patient", "session"])
    n_pat = data["patient"].nunique()
    u = 2.0 * rng.standard_normal(n_pat)
    W = np.empty((n_pat, 6))
    W[:, 0] = (11.0 + u) / (1 - PHI) + 4.0 / np.sqrt(1 - PHI**2) * rng.standard_normal(n_pat)
    for t in range(1, 6):
        W[:, t] = 11.0 + PHI * W[:, t - 1] + u + 4.0 * rng.standard_normal(n_pat)
    return data.assign(wellbeing=W.ravel())


def with_lag_columns(data: pd.DataFrame) -> pd.DataFrame:
    d = data.sort_values(["therapist", "patient", "session"]).copy()
    key = [d["therapist"], d["patient"]]
    lag = d.groupby(key)["wellbeing"].shift(1)
    d["w_lag_within"] = lag - lag.groupby(key).transform("mean")
    d["w_first"] = d.groupby(key)["wellbeing"].transform("first")
    return d


def test_within_centring_biases_phi_down_and_a_stationary_start_up() -> None:
    # exogenous start (the simulator's): the default is close to the truth, within-patient
    # centring of the lagged outcome is biased down (Nickell); simulation: 0.489 vs 0.271
    d = with_lag_columns(simulate_prn(40, 117, 6, rng=31))
    default = fit(d, controls=["session"])
    phi, se = default.params["wellbeing_lag1"], default.bse["wellbeing_lag1"]
    assert abs(phi - PHI) < 3 * se
    within = fit(d, prior_outcome=False, controls=["session", "w_lag_within"])
    assert within.params["w_lag_within"] < PHI - 0.1
    # stationary start: the default is biased up (simulation: 0.706); conditioning on the
    # first session's outcome removes most of it (0.468)
    s = with_lag_columns(stationary_panel(32))
    biased = fit(s, controls=["session"])
    assert biased.params["wellbeing_lag1"] > PHI + 0.1
    fixed = fit(s, controls=["session", "w_first"])
    assert abs(fixed.params["wellbeing_lag1"] - PHI) < 3 * fixed.bse["wellbeing_lag1"]
