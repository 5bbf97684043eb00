"""Residual structures (``residual=``): nlme references, the dense-likelihood identity,
special cases, recovery by simulation, results and bad input."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_growth, fit_truth_bias, stack_raters
from alliancestats._mixed import fit_mixed
from alliancestats._mixed._engine import NestedLMM
from alliancestats.exceptions import BoundaryFitWarning, DataWarning

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "results" / "residual_reference.json").read_text())
TB = {"judgment": "alliance_therapist", "truth": "alliance_patient",
      "groups": ["therapist", "patient"]}
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}


def quietly(func: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        return func(*args, **kwargs)


def data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / "data" / f"tb_{name}.csv")


def r_name(name: str) -> str:
    """nlme coefficient name -> ours (``ratertherapist:time`` -> ``rater[therapist]:session``)."""
    name = "Intercept" if name == "(Intercept)" else name
    name = re.sub(r"rater(therapist|patient)", r"rater[\1]", name)
    return ":".join("session" if part == "time" else part for part in name.split(":"))


def check_nlme(res: Any, ref: dict[str, Any], rename: Any = r_name) -> None:
    """Fixed effects, SEs, logLik, sigma and residual parameters against one lme fit."""
    fixef = {rename(k): v for k, v in ref["fixef"].items()}
    se = {rename(k): v for k, v in ref["se"].items()}
    names = list(fixef)
    assert sorted(names) == sorted(res.params.index)
    # fixef(fit)
    np.testing.assert_allclose(res.params[names], list(fixef.values()), rtol=1e-4, atol=1e-6)
    # sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(res.bse[names], [se[n] for n in names], rtol=1e-3)
    # logLik(fit) (REML fits: the REML log-likelihood)
    assert res.llf == pytest.approx(ref["logLik"], rel=1e-6)
    # fit$sigma (the first rater's residual SD under varIdent)
    vc = res.variance_components.set_index("level")
    assert np.sqrt(vc.loc["Residual", "variance"]) == pytest.approx(ref["sigma"], rel=1e-3)
    # nobs(fit)
    assert res.nobs == ref["nobs"]
    params = res.residual_params["estimate"]
    if "phi" in params.index or "rater_corr" in params.index:
        key = "phi" if "phi" in params.index else "rater_corr"
        # coef(fit$modelStruct$corStruct, unconstrained = FALSE)
        assert params[key] == pytest.approx(ref["residual"]["correlation"], abs=1e-3)
    if "sd_ratio" in ref["residual"]:
        # coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)["patient"]
        assert params["sd_ratio[patient]"] == pytest.approx(
            ref["residual"]["sd_ratio"]["patient"], abs=1e-3)
    # df of logLik(fit): fixed + covariance parameters
    assert res.df_model == ref["df"]


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium"])
def test_truth_bias_ar1_matches_nlme(dataset: str, method: str) -> None:
    # R: lme(J ~ alliance_patient * condition * session, random = ~ 1 | therapist/patient,
    #        correlation = corAR1(form = ~ session | therapist/patient))
    ref = R["datasets"][dataset]["tb_ar1"]
    res = quietly(fit_truth_bias, data(dataset), **TB, moderators=["condition", "session"],
                  time="session", residual="ar1", reml=method == "REML", random="intercept")
    assert res.centering["truth_mean"] == pytest.approx(ref["center"], rel=1e-12)
    check_nlme(res, ref[method])
    # the same model by corCAR1 (continuous time): same likelihood
    car = R["datasets"][dataset]["tb_car1"][method]
    assert res.llf == pytest.approx(car["logLik"], rel=1e-6)


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium"])
@pytest.mark.parametrize("model", ["growth_rater", "growth_ar1"])
def test_growth_residuals_match_nlme(model: str, dataset: str, method: str) -> None:
    # R: lme(alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition,
    #        random = ~ 1 | therapist/patient, weights = varIdent(form = ~ 1 | rater),
    #        correlation = corCompSymm(form = ~ 1 | therapist/patient/session))
    # or correlation = corAR1(form = ~ session | therapist/patient/rater)
    long = stack_raters(data(dataset), ratings=RATINGS)
    res = quietly(fit_growth, long, outcome="alliance", time="session", rater="rater",
                  groups=["therapist", "patient"], moderators="condition",
                  random="intercept", reml=method == "REML",
                  residual="rater" if model == "growth_rater" else "ar1")
    check_nlme(res, R["datasets"][dataset][model][method])


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium"])
def test_fit_mixed_ar1_with_slopes_matches_nlme(dataset: str, method: str) -> None:
    # R: lme(alliance_patient ~ time * condition, random = list(therapist = ~ 1 + time,
    #        patient = ~ 1), correlation = corAR1(form = ~ session | therapist/patient))
    ref = R["datasets"][dataset]["growth_single_ar1"][method]
    d = data(dataset).dropna(subset=["alliance_patient"]).reset_index(drop=True)
    t = d["session"] - 1.0
    c = d["condition"].astype(float)
    X = pd.DataFrame({"Intercept": 1.0, "time": t, "condition": c, "time:condition": t * c})
    fit = quietly(fit_mixed, d["alliance_patient"], X, d[["therapist", "patient"]],
                  {"therapist": ["Intercept", "time"], "patient": ["Intercept"]},
                  reml=method == "REML", residual="ar1", time=d["session"])
    names = ["Intercept" if k == "(Intercept)" else k for k in ref["fixef"]]
    # fixef(fit), sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(fit.fe_params[names], list(ref["fixef"].values()), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_fe.loc[names, names])),
                               list(ref["se"].values()), rtol=1e-3)
    # logLik(fit): nlme stops short on small (singular convergence); ours is not lower
    assert fit.llf == pytest.approx(ref["logLik"], rel=1e-6)
    assert fit.llf >= ref["logLik"] - 1e-7
    # coef(corStruct, unconstrained = FALSE)
    assert fit.residual_params.loc["phi", "estimate"] == pytest.approx(
        ref["residual"]["correlation"], abs=1e-3)
    # as.matrix(fit$modelStruct$reStruct$therapist) * sigma^2
    np.testing.assert_allclose(fit.random_cov["therapist"].to_numpy(),
                               ref["random_cov"]["therapist"], rtol=2e-3, atol=1e-6)


@pytest.mark.reference
@pytest.mark.parametrize("dataset", ["small", "medium"])
def test_rater_correlation_interval_matches_nlme(dataset: str) -> None:
    # R: intervals(fit, which = "var-cov")$corStruct (Wald on nlme's unconstrained scale)
    long = stack_raters(data(dataset), ratings=RATINGS)
    res = quietly(fit_growth, long, outcome="alliance", time="session", rater="rater",
                  groups=["therapist", "patient"], moderators="condition",
                  random="intercept", residual="rater")
    ref = R["datasets"][dataset]["growth_rater"]["REML"]["residual"]
    row = res.residual_params.loc["rater_corr"]
    np.testing.assert_allclose([row["conf_low"], row["conf_high"]], ref["correlation_ci"],
                               atol=2e-3)


def test_reference_file_records_versions() -> None:
    assert R["nlme_version"].startswith("3.1")
    assert R["r_version"].startswith("R version")


# -- the dense likelihood: the oracle for every structure (rater_ar1 has no nlme twin) ----
def _dense_deviance(y: np.ndarray, X: np.ndarray, V0: np.ndarray, reml: bool) -> float:
    """Profiled −2 log-likelihood of y ~ N(Xβ, σ² V0), by dense linear algebra."""
    n, p = X.shape
    Vi = np.linalg.inv(V0)
    A = X.T @ Vi @ X
    beta = np.linalg.solve(A, X.T @ Vi @ y)
    r = y - X @ beta
    rss = float(r @ Vi @ r)
    logdet = np.linalg.slogdet(V0)[1]
    if reml:
        return float((n - p) * (1 + np.log(2 * np.pi * rss / (n - p))) + logdet
                     + np.linalg.slogdet(A)[1])
    return float(n * (1 + np.log(2 * np.pi * rss / n)) + logdet)


def _toy(seed: int = 3) -> dict[str, Any]:
    """Two raters x up to 5 sessions (gaps) per patient, patients in therapists."""
    rng = np.random.default_rng(seed)
    rows = []
    for th in range(6):
        for pa in range(3):
            for s in range(1, 6):
                for r in ("t", "p"):
                    if rng.random() > 0.2:
                        rows.append((th, f"{th}-{pa}", s, r))
    d = pd.DataFrame(rows, columns=["ther", "pat", "time", "rater"])
    d["y"] = rng.normal(size=len(d))
    d["x"] = rng.normal(size=len(d))
    return {"d": d, "X": np.column_stack([np.ones(len(d)), d["x"], d["time"]])}


def _C(d: pd.DataFrame, kind: str, phi: float, ratio: float, rho: float) -> np.ndarray:
    t = d["time"].to_numpy(float)
    rat = d["rater"].to_numpy()
    same_unit = d["pat"].to_numpy()[:, None] == d["pat"].to_numpy()[None, :]
    if kind == "ar1":
        same_unit &= rat[:, None] == rat[None, :]
    dt = np.abs(t[:, None] - t[None, :])
    serial = phi ** dt if kind in ("ar1", "rater_ar1") else (dt == 0).astype(float)
    if kind == "ar1":
        return np.where(same_unit, serial, 0.0)
    s = np.where(rat == "t", 1.0, ratio)
    cross = np.where(rat[:, None] == rat[None, :], 1.0, rho)
    return np.where(same_unit, serial * cross * s[:, None] * s[None, :], 0.0)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("kind", ["ar1", "rater", "rater_ar1"])
def test_deviance_equals_dense_likelihood(kind: str, reml: bool) -> None:
    toy = _toy()
    d, X = toy["d"], toy["X"]
    g = d[["ther", "pat"]]
    fit = quietly(fit_mixed, d["y"], pd.DataFrame(X, columns=["Intercept", "x", "time"]), g,
                  {"ther": ["Intercept"], "pat": ["Intercept"]}, reml=reml, residual=kind,
                  time=d["time"], rater=pd.Categorical(d["rater"], ["t", "p"]))
    res = fit.residual_params["estimate"]
    phi = float(res.get("phi", 0.0))
    ratio = float(res.get("sd_ratio[p]", 1.0))
    rho = float(res.get("rater_corr", 0.0))
    vc = fit.variance_components.set_index("level")["variance"]
    sigma2 = vc["Residual"]
    Zt = (d["ther"].to_numpy()[:, None] == d["ther"].to_numpy()[None, :]).astype(float)
    Zp = (d["pat"].to_numpy()[:, None] == d["pat"].to_numpy()[None, :]).astype(float)
    V0 = vc["ther"] / sigma2 * Zt + vc["pat"] / sigma2 * Zp + _C(d, kind, phi, ratio, rho)
    # the engine's optimum evaluated by dense linear algebra
    assert -2 * fit.llf == pytest.approx(_dense_deviance(d["y"].to_numpy(), X, V0, reml),
                                         rel=1e-9)
    # and the generalised least-squares estimates at that covariance
    Vi = np.linalg.inv(V0)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ d["y"].to_numpy())
    np.testing.assert_allclose(fit.fe_params.to_numpy(), beta, rtol=1e-8, atol=1e-10)


def test_iid_is_the_special_case() -> None:
    # phi = 0, SD ratio 1 and correlation 0 give the iid deviance
    toy = _toy(4)
    d, X = toy["d"], toy["X"]
    g = np.column_stack([d["ther"].to_numpy(), pd.factorize(d["pat"])[0]])
    one = np.ones((len(d), 1))
    iid = NestedLMM(X, g, [one, one])
    theta = np.array([0.7, 0.4])
    base = iid.deviance(d["y"], theta)
    ar1 = NestedLMM(X, g, [one, one], residual="ar1", time=d["time"],
                    residual_units=pd.factorize(d["pat"] + d["rater"])[0])
    assert ar1.deviance(d["y"], np.r_[theta, 0.0]) == pytest.approx(base, rel=1e-12)
    rater = NestedLMM(X, g, [one, one], residual="rater", time=d["time"], rater=d["rater"])
    # psi: log SD ratio 0, rater correlation tanh(psi / 2) = 0
    assert rater.deviance(d["y"], theta, psi=[0.0, 0.0]) == pytest.approx(base, rel=1e-12)


@pytest.mark.parametrize("kind", ["ar1", "rater", "rater_ar1"])
def test_one_model_serves_many_responses(kind: str) -> None:
    # the per-fit sums of a response's cross products belong to that response: one model
    # evaluated on alternating responses gives what a fresh model gives on each
    toy = _toy(5)
    d, X = toy["d"], toy["X"]
    g = np.column_stack([d["ther"].to_numpy(), pd.factorize(d["pat"])[0]])
    one = np.ones((len(d), 1))
    kw = {"residual": kind, "time": d["time"], "rater": d["rater"] if kind != "ar1" else None}
    if kind == "ar1":
        kw["residual_units"] = pd.factorize(d["pat"] + d["rater"])[0]
    ys = [d["y"].to_numpy(), np.random.default_rng(1).normal(size=len(d))]
    model = NestedLMM(X, g, [one, one], **kw)
    params = np.r_[0.7, 0.4, np.full(model.n_psi, 0.3)]
    for y in ys + ys:
        fresh = NestedLMM(X, g, [one, one], **kw)
        assert model.deviance(y, params) == fresh.deviance(y, params)
        np.testing.assert_array_equal(model.gradient(y, params), fresh.gradient(y, params))


def test_fit_is_invariant_to_row_order() -> None:
    toy = _toy(5)
    d, X = toy["d"], toy["X"]
    perm = np.random.default_rng(0).permutation(len(d))

    def fit(idx: np.ndarray) -> Any:
        dd = d.iloc[idx].reset_index(drop=True)
        return quietly(fit_mixed, dd["y"], pd.DataFrame(X[idx], columns=["a", "x", "t"]),
                       dd[["ther", "pat"]], {"ther": ["a"], "pat": ["a"]},
                       residual="rater_ar1", time=dd["time"],
                       rater=pd.Categorical(dd["rater"], ["t", "p"]))

    a, b = fit(np.arange(len(d))), fit(perm)
    assert a.llf == pytest.approx(b.llf, rel=1e-10)
    np.testing.assert_allclose(a.residual_params["estimate"], b.residual_params["estimate"],
                               rtol=1e-5, atol=1e-6)


# -- recovery by simulation --------------------------------------------------------------
def _simulate_ar1(n_ther: int, n_pat: int, n_sess: int, phi: float,
                  rng: np.random.Generator, p_missing: float = 0.15) -> pd.DataFrame:
    ther = np.repeat(np.arange(n_ther), n_pat // n_ther)
    rows = []
    for pat, th in enumerate(ther):
        e = rng.normal()
        u = rng.normal(0, 0.5)
        for s in range(n_sess):
            if s:
                e = phi * e + np.sqrt(1 - phi**2) * rng.normal()
            rows.append((th, pat, s, 1.0 + 0.1 * s + u + e))
    d = pd.DataFrame(rows, columns=["ther", "pat", "session", "y"])
    keep = rng.random(len(d)) > p_missing  # missed sessions: gaps of 2 or more
    return d[keep].reset_index(drop=True)


def test_ar1_recovery() -> None:
    rng = np.random.default_rng(2024)
    d = _simulate_ar1(40, 200, 8, 0.5, rng)
    X = pd.DataFrame({"Intercept": 1.0, "session": d["session"].astype(float)})
    fit = fit_mixed(d["y"], X, d[["ther", "pat"]], {"pat": ["Intercept"]}, residual="ar1",
                    time=d["session"])
    row = fit.residual_params.loc["phi"]
    assert abs(row["estimate"] - 0.5) < 3 * row["std_error"]
    assert row["conf_low"] < 0.5 < row["conf_high"]
    assert abs(fit.fe_params["session"] - 0.1) < 3 * np.sqrt(fit.cov_fe.loc["session",
                                                                             "session"])
    # the residual variance is the AR(1) innovation-free variance, 1
    assert fit.variance_components.iloc[-1]["variance"] == pytest.approx(1.0, abs=0.15)


def test_rater_recovery() -> None:
    rng = np.random.default_rng(7)
    ratio, rho = 1.5, 0.4
    cov = np.array([[1.0, rho * ratio], [rho * ratio, ratio**2]]) * 0.5
    rows = []
    for pat in range(300):
        u = rng.normal(0, 0.6)
        for s in range(6):
            e = rng.multivariate_normal([0, 0], cov)
            rows += [(pat // 3, pat, s, "therapist", 4 + u + e[0]),
                     (pat // 3, pat, s, "patient", 3.5 + 0.1 * s + u + e[1])]
    d = pd.DataFrame(rows, columns=["ther", "pat", "session", "rater", "y"])
    d["rater"] = pd.Categorical(d["rater"], ["therapist", "patient"])
    res = fit_growth(d, outcome="y", time="session", rater="rater", groups=["ther", "pat"],
                     random="intercept", residual="rater")
    est = res.residual_params
    for name, true in (("sd_ratio[patient]", ratio), ("rater_corr", rho)):
        assert abs(est.loc[name, "estimate"] - true) < 3 * est.loc[name, "std_error"]


# -- results and errors ------------------------------------------------------------------
def test_results_report_the_structure() -> None:
    res = quietly(fit_truth_bias, data("small"), **TB, moderators=["condition", "session"],
                  time="session", residual="ar1")
    iid = quietly(fit_truth_bias, data("small"), **TB, moderators=["condition", "session"],
                  time="session")
    assert list(res.residual_params.columns) == ["estimate", "std_error", "conf_low",
                                                 "conf_high"]
    assert list(res.residual_params.index) == ["phi"]
    assert iid.residual_params.empty
    assert res.df_model == iid.df_model + 1
    text = str(res.summary())
    assert "Residual structure (ar1)" in text
    assert "corAR1(form = ~ session" in text
    assert "Residual structure" not in str(iid.summary())


def test_errors_name_the_problem() -> None:
    d = data("small")
    with pytest.raises(ValueError, match="needs `time`"):
        fit_truth_bias(d, **TB, residual="ar1")
    with pytest.raises(ValueError, match="rater-stacked"):
        fit_truth_bias(d, **TB, time="session", residual="rater")
    with pytest.raises(ValueError, match="Did you mean 'ar1'"):
        fit_truth_bias(d, **TB, time="session", residual="ar")
    with pytest.raises(ValueError, match="statsmodels MixedLM cannot fit residual='ar1'"):
        fit_truth_bias(d, **TB, time="session", residual="ar1", engine="statsmodels")
    with pytest.raises(ValueError, match="needs stacked ratings"):
        fit_growth(d, outcome="alliance_patient", time="session",
                   groups=["therapist", "patient"], residual="rater")
    X = pd.DataFrame({"Intercept": np.ones(len(d))})
    with pytest.raises(ValueError, match="duplicated"):
        fit_mixed(d["alliance_patient"], X, d[["therapist"]], {"therapist": ["Intercept"]},
                  residual="ar1", time=d["session"])


def test_inputs_are_not_mutated() -> None:
    d = data("small")
    before = d.copy()
    quietly(fit_truth_bias, d, **TB, time="session", residual="ar1")
    pd.testing.assert_frame_equal(d, before)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(("kind", "raters", "time_scale"), [
    ("ar1", ("t",), 1.0), ("ar1", ("t",), 0.5), ("ar1", ("t", "p"), 1.0),
    ("rater", ("t", "p"), 1.0), ("rater", ("t", "p", "o"), 1.0),
    ("rater_ar1", ("t", "p"), 1.0)])
def test_gradient_is_exact_in_theta_and_psi(kind: str, raters: tuple[str, ...],
                                            time_scale: float, reml: bool) -> None:
    # the analytic gradient (θ and the residual parameters ψ) against central differences
    # of the deviance, at interior and boundary θ, with gaps, per-rater AR(1) units
    # ("ar1" with two raters), three raters (the general block path) and fractional time
    # (0 <= phi < 1)
    rng = np.random.default_rng(5)
    rows = [(th, f"{th}-{pa}", s * time_scale, r) for th in range(5) for pa in range(4)
            for s in range(1, 6) for r in raters if rng.random() > 0.2]
    d = pd.DataFrame(rows, columns=["ther", "pat", "time", "rater"])
    n = len(d)
    X = np.column_stack([np.ones(n), d["time"], rng.normal(size=n)])
    y = rng.normal(size=n) + rng.normal(size=20)[d["pat"].str.split("-").str[1].astype(int)]
    groups = d[["ther", "pat"]].to_numpy()
    units = None
    if kind == "ar1" and len(raters) > 1:
        units = pd.factorize(d["pat"] + "/" + d["rater"])[0]
    model = NestedLMM(X, groups, [X[:, :2], X[:, :1]], residual=kind,
                      time=d["time"].to_numpy(),
                      rater=d["rater"] if kind != "ar1" else None, residual_units=units)
    for theta in ([0.6, 0.2, 0.4, 0.5], [0.6, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]):
        params = np.r_[theta, rng.normal(scale=0.4, size=model.n_psi)]
        grad = model.gradient(y, params, reml=reml)
        h = 1e-5
        numeric = [(model.deviance(y, params + e, reml=reml)
                    - model.deviance(y, params - e, reml=reml)) / (2 * h)
                   for e in np.eye(params.size) * h]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)
