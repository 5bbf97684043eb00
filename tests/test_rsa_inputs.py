"""RSA input handling: names that clash with generated terms, duplicated rows, repeated
units in single-level fits, labels that print alike, the vocabulary (``center``,
``unit``), forwarding of ``fit_lagged_rsa`` to ``fit_rsa``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_lagged_rsa, fit_rsa
from alliancestats.exceptions import DataWarning


def _panel(n_patients: int = 24, n_sessions: int = 4, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        u = rng.normal(scale=0.5)
        for t in range(1, n_sessions + 1):
            x, y = rng.normal(), rng.normal()
            rows.append({"therapist": p // 3, "patient": p % 3 + 1, "session": t, "x": x,
                         "y": y, "z": 1 + 0.5 * x + 0.3 * y - 0.4 * (x - y) ** 2 + u
                         + rng.normal(scale=0.5)})
    return pd.DataFrame(rows)


def _single(n: int = 80, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n),
                       "w": rng.normal(size=n)})
    df["z"] = df.x - (df.x - df.y) ** 2 + 0.2 * df.w + rng.normal(size=n)
    return df


# --------------------------------------------------------- names and generated terms
@pytest.mark.parametrize("role", ["x", "y", "outcome", "controls"])
def test_a_column_named_intercept_never_changes_the_model(role: str) -> None:
    df = _single()
    base = fit_rsa(df, outcome="z", x="x", y="y", controls="w")
    old = {"x": "x", "y": "y", "outcome": "z", "controls": "w"}[role]
    renamed = df.rename(columns={old: "Intercept"})
    kw = {"outcome": "z", "x": "x", "y": "y", "controls": "w", role: "Intercept"}
    if role == "outcome":
        res = fit_rsa(renamed, **kw)
        np.testing.assert_allclose(res.params.to_numpy(), base.params.to_numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(res.bse.to_numpy(), base.bse.to_numpy(), rtol=1e-12)
    else:  # its label would coincide with the intercept's: refused, with a way out
        with pytest.raises(ValueError, match=r"labelled 'Intercept'.*rename the column"):
            fit_rsa(renamed, **kw)


def test_a_column_named_like_a_generated_term_is_refused() -> None:
    df = _single().rename(columns={"w": "x^2"})
    with pytest.raises(ValueError, match=r"labelled 'x\^2'"):
        fit_rsa(df, outcome="z", x="x", y="y", controls="x^2")


def test_multilevel_design_is_positional() -> None:
    df = _panel()
    kw = {"x": "x", "y": "y", "groups": ["therapist", "patient"], "time": "session"}
    base = fit_rsa(df, outcome="z", **kw)
    res = fit_rsa(df.rename(columns={"z": "Intercept"}), outcome="Intercept", **kw)
    np.testing.assert_allclose(res.params.to_numpy(), base.params.to_numpy(), rtol=1e-10)
    assert res.llf == pytest.approx(base.llf, abs=1e-10)


def test_by_labels_that_print_alike_are_refused() -> None:
    df = _single()
    df["g"] = [1 if i % 2 else "1" for i in range(len(df))]
    with pytest.raises(ValueError, match=r"labels '1' and 1.*astype\(str\)"):
        fit_rsa(df, outcome="z", x="x", y="y", by="g")
    df["g"] = [2 if i % 2 else "1" for i in range(len(df))]  # mixed but distinct: works
    res = fit_rsa(df, outcome="z", x="x", y="y", by="g")
    assert len(res.bse) == len(res.params)
    assert set(res.to_frame()["term"]) >= set(res.params.index)


# ------------------------------------------------------------------ duplicated rows
def test_duplicated_unit_time_rows_raise() -> None:
    df = _panel()
    doubled = pd.concat([df, df], ignore_index=True)
    with pytest.raises(ValueError, match="rows share the same"):
        fit_rsa(doubled, outcome="z", x="x", y="y", groups=["therapist", "patient"],
                time="session")
    with pytest.raises(ValueError, match=r"rows share the same.*unit=\['therapist'"):
        fit_lagged_rsa(doubled, outcome="z", x="x", y="y", time="session",
                       unit=["therapist", "patient"], groups=["therapist", "patient"])


def test_ids_restarting_within_therapists_are_caught_by_time() -> None:
    df = _panel()  # patient 1, 2, 3 within every therapist
    with pytest.raises(ValueError, match=r"unit=\['therapist', 'patient'\]"):
        fit_lagged_rsa(df, outcome="z", x="x", y="y", time="session", unit="patient",
                       groups=["therapist", "patient"])


def test_fully_duplicated_rows_warn_without_time() -> None:
    df = _single()
    with pytest.warns(DataWarning, match="exact copies"):
        fit_rsa(pd.concat([df, df.iloc[:5]]), outcome="z", x="x", y="y")


# ------------------------------------------------------- single level, repeated units
def test_single_level_fit_on_repeated_ids_warns() -> None:
    df = _panel().rename(columns={"therapist": "Therapist_ID", "patient": "ClientID"})
    with pytest.warns(DataWarning, match=r"Single-level fit.*\['Therapist_ID', 'ClientID'\]"):
        fit_rsa(df, outcome="z", x="x", y="y")
    with pytest.warns(DataWarning, match="Single-level fit"):
        fit_rsa(df, outcome="z", x="x", y="y", unit=["Therapist_ID", "ClientID"])
    with warnings.catch_warnings():  # a multilevel fit says nothing
        warnings.simplefilter("error")
        fit_rsa(df, outcome="z", x="x", y="y", groups=["Therapist_ID", "ClientID"])


def test_one_row_per_unit_does_not_warn() -> None:
    df = _panel().groupby(["therapist", "patient"], as_index=False)[["x", "y", "z"]].mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_rsa(df, outcome="z", x="x", y="y")


# ---------------------------------------------------------------------- vocabulary
def test_center_none_and_its_old_spelling() -> None:
    df = _single()
    res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    assert res.centering["x_shift"] == 0.0
    with pytest.warns(FutureWarning, match="center=None"):
        old = fit_rsa(df, outcome="z", x="x", y="y", center="none")
    pd.testing.assert_series_equal(old.params, res.params)


def test_bootstrap_cluster_and_the_old_unit_name() -> None:
    boot = fit_rsa(_single(), outcome="z", x="x", y="y").bootstrap(3, rng=1)
    assert boot.cluster == "rows"
    with pytest.warns(FutureWarning, match="cluster"):
        assert boot.unit == "rows"


@pytest.mark.filterwarnings("ignore::alliancestats.exceptions.BoundaryFitWarning")
def test_lagged_forwards_every_fit_rsa_keyword_with_its_defaults() -> None:
    df = _panel()
    kw = {"outcome": "z", "x": "x", "y": "y", "time": "session",
          "unit": ["therapist", "patient"], "groups": ["therapist", "patient"]}
    res = fit_lagged_rsa(df, **kw)
    assert res.method == "REML"
    assert res.engine == "fast"
    ml = fit_lagged_rsa(df, **kw, reml=False, model="SQD", center=None)
    assert ml.method == "ML"
    assert ml.model == "SQD"
    assert ml.centering["x_shift"] == 0.0
    with pytest.raises(TypeError, match=r"fit_lagged_rsa\(\).*colour.*fit_rsa"):
        fit_lagged_rsa(df, **kw, colour="red")
