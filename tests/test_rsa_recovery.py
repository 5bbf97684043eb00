"""Multilevel and lagged RSA: recovery on simulated PRN data, invariances, bootstrap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import compare_rsa, fit_lagged_rsa, fit_rsa, simulate_prn
from alliancestats._mixed import fit_mixed
from alliancestats.exceptions import DataWarning
from alliancestats.rsa.fit import exog_matrix

ROLES = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient",
         "time": "session", "unit": ["therapist", "patient"],
         "groups": ["therapist", "patient"]}


@pytest.fixture(scope="module")
def prn() -> pd.DataFrame:
    # Twice the trial's size, so that the trained-arm congruence effect is clear.
    return simulate_prn(80, 240, 6, p_missing=0.05, rng=2024)


def test_lagged_rsa_by_condition_recovers_the_simulated_surfaces(prn) -> None:
    params = prn.attrs["params"]
    center = params["alliance_center"]
    res = fit_lagged_rsa(prn, **ROLES, by="condition", center=center)
    surf = res.surface
    truth = {
        1: {"a1": params["b1_trained"] + params["b2_trained"],
            "a2": params["b3_trained"] + params["b4_trained"] + params["b5_trained"],
            "a3": params["b1_trained"] - params["b2_trained"],
            "a4": params["b3_trained"] - params["b4_trained"] + params["b5_trained"],
            "a5": params["b3_trained"] - params["b5_trained"]},
        0: dict.fromkeys(("a1", "a2", "a3", "a4", "a5"), 0.0),
    }
    assert truth[1]["a4"] == pytest.approx(-3.0)  # the documented default
    for level, values in truth.items():
        for name, value in values.items():
            row = surf.loc[(level, name)]
            assert abs(row["estimate"] - value) < 3 * row["std_error"], (level, name, row)
    assert surf.loc[(1, "a4"), "p_value"] < 0.001  # congruence effect in the trained arm
    assert surf.loc[(0, "a4"), "p_value"] > 0.05  # none for the untrained arm
    diff = res.surface_differences.loc[(1, "a4")]
    assert diff["estimate"] < 0
    assert res.lag_info["rows_used"] == res.nobs
    assert res.n_groups["therapist"] == 80


def test_multilevel_invariant_to_row_order_and_group_labels(prn) -> None:
    data = prn[prn.therapist.isin(prn.therapist.unique()[:30])].dropna()
    base = fit_rsa(data, outcome="wellbeing", x="alliance_therapist", y="alliance_patient",
                   groups=["therapist", "patient"])
    rng = np.random.default_rng(5)
    codes = {t: f"T-{rng.integers(1e9)}" for t in data.therapist.unique()}
    moved = data.assign(therapist=data.therapist.map(codes)).sample(frac=1.0, random_state=3)
    res = fit_rsa(moved, outcome="wellbeing", x="alliance_therapist", y="alliance_patient",
                  groups=["therapist", "patient"])
    # Equal up to the optimiser's tolerance (estimates to ~1e-4 of their SE).
    pd.testing.assert_frame_equal(base.surface, res.surface, rtol=1e-4, atol=1e-4)
    assert base.llf == pytest.approx(res.llf, abs=1e-6)


@pytest.mark.slow
def test_multilevel_srrr_maximises_the_profile_likelihood(prn) -> None:
    data = prn[prn.therapist.isin(prn.therapist.unique()[:40]) & (prn.condition == 1)]
    kw = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient",
          "groups": ["patient"], "reml": False}
    srrr = fit_rsa(data, model="SRRR", **kw)
    full = fit_rsa(data, **kw)
    srr = fit_rsa(data, model="SRR", **kw)
    b = srrr.coefs
    assert b["b4"] ** 2 == pytest.approx(4 * b["b3"] * b["b5"], rel=1e-9)
    assert srr.llf <= srrr.llf + 1e-6 <= full.llf + 2e-6  # SRR is SRRR at phi = pi/4
    assert srrr.df_model == full.df_model - 1
    assert "coordinate ascent" in str(srrr.summary())

    # Brute force: a mixed ML fit at angles next to the estimate is never better.
    design, family = srrr._design, srrr._spec.family

    def llf_at(angle: float) -> float:
        X, names, _, _ = exog_matrix(design, family, angle)
        return fit_mixed(pd.Series(design.endog), pd.DataFrame(X, columns=names),
                         design.groups, {"patient": ["Intercept"]}, reml=False).llf

    assert llf_at(srrr.angle) == pytest.approx(srrr.llf, abs=1e-8)
    for delta in (-0.02, 0.02):
        assert llf_at(srrr.angle + delta) <= srrr.llf + 1e-7


def test_compare_rsa_refits_mixed_models_by_ml(prn) -> None:
    data = prn[prn.therapist.isin(prn.therapist.unique()[:20])].dropna()
    table = compare_rsa(data, outcome="wellbeing", x="alliance_therapist",
                        y="alliance_patient", groups=["therapist", "patient"],
                        models=("full", "SQD", "null"))
    assert set(table["method"]) == {"ML"}
    assert table.attrs["notes"] == ["Mixed models refitted by ML (reml=False) for the "
                                    "comparison."]
    assert table["r_squared"].isna().all()
    assert (table["chi2"].dropna() >= 0).all()


@pytest.mark.slow
def test_cluster_bootstrap_resamples_therapists(prn) -> None:
    data = prn[prn.therapist.isin(prn.therapist.unique()[:16])].dropna()
    res = fit_rsa(data, outcome="wellbeing", x="alliance_therapist", y="alliance_patient",
                  groups=["therapist", "patient"])
    boot = res.bootstrap(3, rng=1)
    assert boot.cluster == "therapist"
    assert boot.n_failed + len(boot.draws) == 3
    again = res.bootstrap(3, rng=1)
    pd.testing.assert_frame_equal(boot.draws, again.draws)


@pytest.mark.parametrize("engine", ["fast", "statsmodels"])
def test_multilevel_rank_one_angle_is_profiled_through_the_engine(engine: str) -> None:
    """The angle of SRRR is profiled at fixed covariance parameters by the nested engine's
    deviance. Values frozen from the earlier implementation (GLS on data whitened with a
    separately built marginal covariance), which found the same optimum."""
    data = pd.read_csv(Path(__file__).parent / "reference" / "data" / "rsa_longitudinal.csv")
    with pytest.warns(DataWarning, match="missing"):
        res = fit_rsa(data, outcome="z", x="x", y="y", groups=["therapist", "patient"],
                      model="SRRR", reml=False, engine=engine)
    assert res.llf == pytest.approx(-1459.3098507166, abs=1e-8)
    np.testing.assert_allclose(res.params.to_numpy(),
                               [20.2978565, 0.0460929, 0.3786487, 0.1497169], atol=5e-7)
    assert res.angle == pytest.approx(2.1004022, abs=1e-6)
