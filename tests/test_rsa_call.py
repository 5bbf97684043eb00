"""The public RSA calls on their array-level path: the lagged fit against lags built by an
independent merge, data sets with ``attrs``, index and dtype variants, the input left
untouched."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_lagged_rsa, fit_rsa
from alliancestats.simulate import simulate_prn

GROUPS = ["therapist", "patient"]
ROLES = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient"}


@pytest.fixture(scope="module")
def prn() -> pd.DataFrame:
    df = simulate_prn(12, 36, 5, p_missing=0.1, rng=11)
    df.attrs["description"] = {"long": ["text"] * 50, "nested": {"a": list(range(50))}}
    return df


def _merged_lags(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with lag-1 values, by an exact merge on (therapist, patient, session - 1)."""
    cols = [*ROLES.values()]
    prev = df[[*GROUPS, "session", *cols]].assign(session=df["session"] + 1)
    prev = prev.rename(columns={c: f"{c}_lag1" for c in cols})
    out = df.merge(prev, on=[*GROUPS, "session"], how="left")
    return out.dropna(subset=[f"{c}_lag1" for c in cols])


def _numbers(res) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    vc = res.variance_components
    return {"params": res.params.to_numpy(), "bse": res.bse.to_numpy(),
            "llf": np.array([res.llf]), "variance": vc["variance"].to_numpy(),
            "surface": res.surface[["estimate", "std_error"]].to_numpy(),
            "pca": res.random_pca["sd"].to_numpy()}


def _fit(df: pd.DataFrame, **kwargs: object):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_lagged_rsa(df, **ROLES, time="session", unit=GROUPS, groups=GROUPS,
                              by="condition", controls=["session"], **kwargs)


def test_lagged_fit_equals_fit_rsa_on_independently_merged_lags(prn: pd.DataFrame) -> None:
    res = _fit(prn)
    merged = _merged_lags(prn).dropna(subset=["wellbeing"])
    merged = merged.assign(prior=merged["wellbeing_lag1"] - merged["wellbeing_lag1"].mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fit_rsa(merged, outcome="wellbeing", x="alliance_therapist_lag1",
                      y="alliance_patient_lag1", groups=GROUPS, by="condition",
                      controls=["session", "prior"])
    assert res.nobs == ref.nobs == len(merged)
    assert res.lag_info["rows_used"] == len(merged)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-8)
    assert res.llf == pytest.approx(ref.llf, abs=1e-8)
    assert res.centering["x_shift"] == pytest.approx(ref.centering["x_shift"], rel=1e-14)


def test_attrs_index_and_dtypes_do_not_change_the_fit(prn: pd.DataFrame) -> None:
    before = prn.copy()
    attrs = copy.deepcopy(prn.attrs)
    res = _fit(prn)
    base = _numbers(res)
    # the input is untouched, attrs included
    pd.testing.assert_frame_equal(prn, before)
    assert prn.attrs == attrs
    variants = {
        "no attrs": pd.DataFrame(prn),  # the constructor drops attrs
        # shuffled rows with a non-default index: lags are looked up by session
        "shuffled": prn.sample(frac=1.0, random_state=3).set_axis(
            np.arange(len(prn))[::-1] * 7),
        # nullable floats: the lags come from the merge path of add_lags
        "nullable": prn.astype({"alliance_therapist": "Float64", "wellbeing": "Float64"}),
        "object labels": prn.astype({"therapist": object, "patient": object}),
    }
    for name, df in variants.items():
        got = _fit(df)
        assert list(got.params.index) == list(res.params.index), name
        for key, value in _numbers(got).items():
            np.testing.assert_allclose(value, base[key], rtol=1e-7, atol=1e-9,
                                       err_msg=f"{name}: {key}")


def test_random_pca_on_use_matches_the_fit(prn: pd.DataFrame) -> None:
    res = _fit(prn)
    pca = res.random_pca
    vc = res.variance_components.set_index("level")
    sigma2 = float(vc.loc["Residual", "variance"])
    for level in GROUPS:
        row = pca[pca["level"] == level].iloc[0]
        # one random intercept per level: its relative SD is sqrt(var / sigma^2)
        assert row["sd"] == pytest.approx(np.sqrt(float(vc.loc[level, "variance"]) / sigma2),
                                          rel=1e-12)
        assert row["proportion"] == 1.0
