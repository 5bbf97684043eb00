"""Small-sample inference: Satterthwaite (lmerTest) and Kenward–Roger (pbkrtest) df.

Reference values: ``tests/reference/r/ddf_reference.R`` -> ``results/ddf_reference.json``
(lmerTest 3.1, pbkrtest 0.5, on the frozen ``tb_*.csv`` data).

Tolerances. At lme4's own θ the implementation reproduces lmerTest's df to ~1e-8 and
pbkrtest's to ~1e-13 (``test_*_at_lme4_theta``). Through the full fit the estimate of θ
differs from lme4's bobyqa optimum by ~1e-6 relative (the engine's tolerance), which moves
df by up to ~3e-5 and p-values by up to ~1.5e-6 on the singular growth fits; hence
df ``rtol=1e-4`` and p-values ``rtol=1e-4, atol=1e-6`` (whichever is looser), SEs
``rtol=1e-4``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliancestats import compare_models, fit_growth, fit_truth_bias, simulate_prn, stack_raters
from alliancestats._mixed import satterthwaite_df
from alliancestats._mixed._ddf import kenward_roger
from alliancestats._mixed._engine import NestedLMM
from alliancestats.exceptions import BoundaryFitWarning, DataWarning

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "results" / "ddf_reference.json").read_text())
ROLES = {"judgment": "alliance_therapist", "truth": "alliance_patient",
         "groups": ["therapist", "patient"]}
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}
TB_RANDOM = {"tb_intercept": "intercept", "tb_slopes_uncorrelated": "slopes_uncorrelated",
             "tb_slopes": "slopes"}
KEYS = {"satterthwaite": "satterthwaite", "kenward-roger": "kr"}


def to_python(name: str) -> str:
    """lme4 coefficient name -> ours."""
    name = "Intercept" if name == "(Intercept)" else name
    name = re.sub(r"rater(therapist|patient)", r"rater[\1]", name)
    return ":".join("session" if part == "time" else part for part in name.split(":"))


def fit(dataset: str, model: str, method: str, ddf: str) -> Any:
    data = pd.read_csv(REF / "data" / f"tb_{dataset}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        if model in TB_RANDOM:
            return fit_truth_bias(data, **ROLES, moderators=["condition", "session"],
                                  random=TB_RANDOM[model], reml=method == "REML", ddf=ddf)
        return fit_growth(stack_raters(data, ratings=RATINGS), outcome="alliance",
                          rater="rater", time="session", groups=ROLES["groups"],
                          moderators="condition", random="slopes", reml=method == "REML",
                          ddf=ddf)


def weights_frame(rows: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{to_python(k): v for k, v in row.items()} for row in rows]).fillna(0.0)


CASES = [(ds, model, method, ddf)
         for ds in ("small", "medium", "nearsingular")
         for model in ("tb_intercept", "tb_slopes_uncorrelated", "tb_slopes", "growth_slopes")
         for method in R["datasets"][ds][model]
         for ddf in (("satterthwaite", "kenward-roger") if method == "REML"
                     else ("satterthwaite",))]


def _case_id(case: tuple[str, str, str, str]) -> str:
    return "-".join(case)


@pytest.mark.reference
@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c[1] == "growth_slopes" else c
             for c in CASES], ids=_case_id)
def test_matches_lmertest_and_pbkrtest(case: tuple[str, str, str, str]) -> None:
    dataset, model, method, ddf = case
    ref = R["datasets"][dataset][model][method]
    key = KEYS[ddf]
    res = fit(dataset, model, method, ddf)
    coef = ref[f"coef_{key}"]
    names = [to_python(n) for n in coef]
    # summary(m, ddf = ...)$coefficients[, "df"]
    np.testing.assert_allclose(res.df[names], [c["df"] for c in coef.values()], rtol=1e-4)
    # summary(m, ddf = ...)$coefficients[, "Std. Error"] (KR: sqrt(diag(vcovAdj(m))))
    np.testing.assert_allclose(res.bse[names], [c["std_error"] for c in coef.values()],
                               rtol=1e-4)
    # summary(m, ddf = ...)$coefficients[, "Pr(>|t|)"]
    np.testing.assert_allclose(res.pvalues[names], [c["p_value"] for c in coef.values()],
                               rtol=1e-4, atol=1e-6)
    table = res.to_frame().set_index("term").loc[names]
    np.testing.assert_allclose(table["df"], [c["df"] for c in coef.values()], rtol=1e-4)

    contrasts = ref[f"contrasts_{key}"]
    got = res.contrast(weights_frame([c["weights"] for c in contrasts.values()]))
    # contest1D(m, L, ddf = ...)$df, $`Std. Error`, $`Pr(>|t|)`
    np.testing.assert_allclose(got["df"], [c["df"] for c in contrasts.values()], rtol=1e-4)
    np.testing.assert_allclose(got["std_error"], [c["std_error"] for c in contrasts.values()],
                               rtol=1e-4)
    np.testing.assert_allclose(got["p_value"], [c["p_value"] for c in contrasts.values()],
                               rtol=1e-4, atol=1e-6)

    for ftest in ref[f"ftests_{key}"].values():
        out = res.wald_test(weights_frame(ftest["rows"]))
        # contestMD(m, L, ddf = ...)[, c("F value", "NumDF", "DenDF", "Pr(>F)")]
        assert out["statistic"] == pytest.approx(ftest["statistic"], rel=1e-4)
        assert out["df"] == ftest["df_num"]
        assert out["df_denom"] == pytest.approx(ftest["df_denom"], rel=1e-4)
        assert out["p_value"] == pytest.approx(ftest["p_value"], rel=1e-4, abs=1e-6)


def _tb_intercept_model(dataset: str, reml: bool) -> tuple[NestedLMM, np.ndarray, pd.DataFrame,
                                                           np.ndarray]:
    """The lme4 model of ``tb_intercept`` built directly as arrays (as in the R script)."""
    dat = pd.read_csv(REF / "data" / f"tb_{dataset}.csv").dropna(
        subset=["alliance_therapist", "alliance_patient", "condition", "session"])
    m = dat["alliance_patient"].mean()
    t = (dat["alliance_patient"] - m).to_numpy()
    c = dat["condition"].to_numpy(float)
    s = dat["session"].to_numpy(float)
    X = pd.DataFrame({"(Intercept)": 1.0, "alliance_patient": t, "condition": c,
                      "session": s, "alliance_patient:condition": t * c,
                      "alliance_patient:session": t * s, "condition:session": c * s,
                      "alliance_patient:condition:session": t * c * s})
    groups = np.column_stack([dat["therapist"], dat["therapist"] + ":" + dat["patient"]])
    one = np.ones((len(dat), 1))
    model = NestedLMM(X.to_numpy(float), groups, [one, one], reml=reml)
    return model, (dat["alliance_therapist"] - m).to_numpy(), X, groups


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_satterthwaite_df_at_lme4_theta(dataset: str, method: str) -> None:
    ref = R["datasets"][dataset]["tb_intercept"][method]
    model, y, X, _ = _tb_intercept_model(dataset, method == "REML")
    # lme4 orders the terms by decreasing number of levels: (1 | therapist:patient) first
    theta = np.array(ref["theta"])[::-1]
    df = satterthwaite_df(model, y, theta, np.eye(X.shape[1]))
    # summary(m, ddf = "Satterthwaite")$coefficients[, "df"] at getME(m, "theta")
    np.testing.assert_allclose(df, [ref["coef_satterthwaite"][n]["df"] for n in X.columns],
                               rtol=1e-6)


@pytest.mark.reference
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_kenward_roger_at_lme4_theta(dataset: str) -> None:
    ref = R["datasets"][dataset]["tb_intercept"]["REML"]
    model, y, X, groups = _tb_intercept_model(dataset, True)
    theta = np.array(ref["theta"])[::-1]
    ev = model.evaluate(y, theta)
    codes = np.column_stack([pd.factorize(groups[:, j])[0] for j in range(2)])
    one = np.ones((len(y), 1))
    kr = kenward_roger(X.to_numpy(float), [one, one], codes, ev.cov_re, ev.sigma2,
                       ev.cov_beta)
    # as.matrix(pbkrtest::vcovAdj(m))
    np.testing.assert_allclose(kr.cov_adjusted, ref["vcov_kr"], rtol=1e-8, atol=1e-14)
    # summary(m, ddf = "Kenward-Roger")$coefficients[, "df"]
    np.testing.assert_allclose(kr.df(np.eye(X.shape[1])),
                               [ref["coef_kr"][n]["df"] for n in X.columns], rtol=1e-8)


@pytest.mark.reference
def test_singular_fit_matches_lmertest() -> None:
    # nearsingular, tb_intercept: the therapist variance is 0 (lme4 theta ~ 1e-8); lmerTest
    # gives df without a warning: the deviance is even in that theta, so its Jacobian
    # column vanishes and it drops out of g'Ag
    ref = R["datasets"]["nearsingular"]["tb_intercept"]["REML"]
    assert ref["isSingular"]
    assert ref["satterthwaite_warnings"] == []
    res = fit("nearsingular", "tb_intercept", "REML", "satterthwaite")
    assert res.is_singular
    assert not any("Satterthwaite" in w for w in res.summary().warnings)


# -- analytic identities --------------------------------------------------------------------
def _balanced(n_groups: int = 8, size: int = 10, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    cond = np.repeat(np.arange(n_groups) % 2, size)
    y = 0.3 * cond + rng.normal(size=n_groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"therapist": g, "y": y, "x": y + rng.normal(size=g.size),
                         "condition": cond})


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_balanced_between_effect_has_anova_df(ddf: str) -> None:
    # balanced design, condition constant within therapist, time centred on its mean: the
    # condition effect is a contrast of therapist means, whose exact t test has G - 2 df;
    # Satterthwaite and KR reproduce it
    data = _balanced()
    res = fit_growth(data.assign(session=np.tile(np.arange(10), 8)), outcome="y",
                     time="session", groups="therapist", moderators="condition",
                     random="intercept", time_center="mean", ddf=ddf)
    assert res.df["condition"] == pytest.approx(8 - 2, rel=1e-6)


def test_z_is_wald_z() -> None:
    df = simulate_prn(12, 36, rng=5)
    res = fit_truth_bias(df, **ROLES, moderators="condition", ddf="z")
    assert res.ddf == "z"
    assert np.all(np.isinf(res.df))
    z = res.params / res.bse
    np.testing.assert_allclose(res.pvalues, 2 * stats.norm.sf(np.abs(z)))
    assert np.isinf(res.effects_at(condition=1)["df"]).all()
    test = res.wald_test(pd.DataFrame({"condition": [1.0]}))
    assert test["statistic"] == pytest.approx(z["condition"] ** 2)
    assert np.isinf(test["df_denom"])
    assert "Wald z" in str(res.summary())


def test_satterthwaite_is_default_and_more_conservative() -> None:
    df = simulate_prn(12, 36, rng=5)
    sat = fit_truth_bias(df, **ROLES, moderators="condition")
    z = fit_truth_bias(df, **ROLES, moderators="condition", ddf="z")
    assert sat.ddf == "satterthwaite"
    # condition varies between therapists: df below the number of therapists, not ~n
    assert 1 < sat.df["condition"] < 12
    assert sat.pvalues["condition"] > z.pvalues["condition"]
    ci_s, ci_z = sat.conf_int(), z.conf_int()
    assert (ci_s["conf_high"] - ci_s["conf_low"] > ci_z["conf_high"] - ci_z["conf_low"]).all()
    text = str(sat.summary())
    assert "Satterthwaite df" in text
    assert " df " in text.splitlines()[next(i for i, line in enumerate(text.splitlines())
                                        if line.startswith("Fixed effects")) + 2]


def test_every_derived_quantity_has_its_own_df() -> None:
    df = simulate_prn(16, 48, rng=2)
    res = fit_truth_bias(df, **ROLES, moderators=["condition", "session"])
    eff = res.effects_at(condition=[0, 1], session=[1, 6])
    assert list(eff.columns[-7:]) == ["estimate", "std_error", "df", "statistic", "p_value",
                                      "conf_low", "conf_high"]
    assert eff["df"].nunique() > 1
    # each row is the contrast of its weights: same df as contest1D on that row
    row = eff[(eff["effect"] == "directional_bias") & (eff["condition"] == 1)
              & (eff["session"] == 6)].iloc[0]
    w = pd.DataFrame({"Intercept": [1.0], "condition": [1.0], "session": [6.0],
                      "condition:session": [6.0]})
    assert row["df"] == pytest.approx(res.contrast_df(w)[0])
    t = row["estimate"] / row["std_error"]
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), row["df"]))
    frame = res.to_frame()
    assert list(frame.columns) == ["term", "estimate", "std_error", "df", "statistic",
                                   "p_value", "conf_low", "conf_high", "component"]
    assert frame.loc[frame["component"] == "variance", "df"].isna().all()


def test_growth_rates_and_contrasts_have_df() -> None:
    long = stack_raters(simulate_prn(16, 48, 5, rng=4), ratings=RATINGS)
    res = fit_growth(long, outcome="alliance", time="session", groups=ROLES["groups"],
                     rater="rater", moderators="condition", random="intercept")
    rates = res.growth_rates
    assert (rates["df"] > 1).all()
    assert np.isfinite(rates["df"]).all()
    assert (res.contrasts["df"] > 1).all()
    kr = fit_growth(long, outcome="alliance", time="session", groups=ROLES["groups"],
                    rater="rater", moderators="condition", random="intercept",
                    ddf="kenward-roger")
    assert kr.ddf == "kenward-roger"
    assert "Kenward-Roger" in str(kr.summary())
    # KR's adjusted covariance is never smaller on the diagonal
    assert (kr.bse >= res.bse * (1 - 1e-10)).all()


def test_ddf_validation() -> None:
    df = simulate_prn(8, 24, rng=1)
    with pytest.raises(ValueError, match="`ddf` must be one of"):
        fit_truth_bias(df, **ROLES, ddf="satterthwait")
    with pytest.raises(ValueError, match="needs a REML fit"):
        fit_truth_bias(df, **ROLES, reml=False, ddf="kenward-roger")
    with pytest.raises(ValueError, match="`ddf` must be one of"):
        fit_growth(df, outcome="alliance_patient", time="session", groups="therapist",
                   ddf=None)  # type: ignore[arg-type]


def test_array_level_df_matches_results() -> None:
    df = simulate_prn(12, 36, rng=7)
    res = fit_truth_bias(df, **ROLES, moderators="condition", random="intercept")
    # the same model built directly: same df
    frame = df.dropna(subset=["alliance_therapist", "alliance_patient"])
    m = frame["alliance_patient"].mean()
    t = frame["alliance_patient"].to_numpy() - m
    c = frame["condition"].to_numpy(float)
    X = np.column_stack([np.ones(len(t)), c, t, t * c])
    groups = frame[["therapist", "patient"]].to_numpy()
    one = np.ones((len(t), 1))
    model = NestedLMM(X, groups, [one, one])
    y = frame["alliance_therapist"].to_numpy() - m
    fitted = model.fit(y)
    got = satterthwaite_df(model, y, fitted.theta, np.eye(4))
    np.testing.assert_allclose(
        got, res.df[["Intercept", "condition", "alliance_patient",
                     "alliance_patient:condition"]], rtol=1e-5)


@pytest.mark.slow
def test_satterthwaite_type_one_error_closer_to_nominal_than_z() -> None:
    # benchmarks/typeI_ddf.py at a modest size (seeded): condition effects with 12
    # therapists under the null; z is liberal, Satterthwaite close to 0.05
    spec = importlib.util.spec_from_file_location(
        "typeI_ddf", Path(__file__).resolve().parents[1] / "benchmarks" / "typeI_ddf.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.rejection_rates(12, 400, seed=7).set_index("test")
    for test in ("condition", "condition effect at session 6"):
        row = table.loc[test]
        assert abs(row["satterthwaite"] - 0.05) < abs(row["z"] - 0.05)
        assert row["satterthwaite"] <= row["z"]


def test_statsmodels_engine_gets_the_same_df() -> None:
    df = simulate_prn(12, 36, rng=5)
    fast = fit_truth_bias(df, **ROLES, moderators="condition")
    sm = fit_truth_bias(df, **ROLES, moderators="condition", engine="statsmodels")
    # both evaluate the df at their own estimate of theta (equal to the optimiser's
    # tolerance)
    np.testing.assert_allclose(sm.df, fast.df, rtol=1e-3)


# -- likelihood-ratio tests -----------------------------------------------------------------
LRT = json.loads((REF / "results" / "lrt_reference.json").read_text())


@pytest.mark.reference
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_lrt_matches_lme4_anova(dataset: str) -> None:
    data = pd.read_csv(REF / "data" / f"tb_{dataset}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        # lme4's random intercepts (lrt_reference.R)
        large = fit_truth_bias(data, **ROLES, moderators=["condition", "session"],
                               random="intercept")
        small = fit_truth_bias(data, **ROLES, moderators=["session"], random="intercept")
        no_therapist = fit_truth_bias(data, **{**ROLES, "groups": ["patient"]},
                                      moderators=["condition", "session"],
                                      random="intercept")
    ref = LRT["datasets"][dataset]["fixed"]
    res = compare_models(large, small)  # order does not matter
    assert res.criterion == "ML"
    assert any("Refitted with ML" in n for n in res.notes)
    # anova(m0, m1)$logLik (both refitted by ML), $Chisq, $Df, $`Pr(>Chisq)`
    np.testing.assert_allclose(res.table["llf"], ref["logLik"], rtol=1e-7)
    assert list(res.table["npar"]) == ref["npar"]
    assert res.statistic == pytest.approx(ref["Chisq"], rel=1e-4, abs=1e-6)
    assert res.df == ref["Df"]
    assert res.p_value == pytest.approx(ref["p_value"], rel=1e-4, abs=1e-6)

    ref = LRT["datasets"][dataset]["therapist_variance"]
    res = compare_models(no_therapist, large)
    assert res.criterion == "REML"
    # anova(m0r, m1, refit = FALSE)$logLik, $Chisq, $`Pr(>Chisq)`
    np.testing.assert_allclose(res.table["llf"], ref["logLik"], rtol=1e-7)
    assert res.statistic == pytest.approx(ref["Chisq"], rel=1e-4, abs=1e-6)
    assert res.p_value == pytest.approx(ref["p_value"], rel=1e-4, abs=1e-6)
    assert any("boundary" in n for n in res.notes)


def test_parametric_bootstrap_is_reproducible() -> None:
    df = simulate_prn(10, 30, rng=3)
    roles = {**ROLES, "groups": ["patient"]}
    small = fit_truth_bias(df, **roles)
    large = fit_truth_bias(df, **ROLES)
    a = compare_models(small, large, bootstrap=20, rng=5)
    b = compare_models(small, large, bootstrap=20, rng=5, n_jobs=2)
    np.testing.assert_array_equal(a.bootstrap, b.bootstrap)
    assert 0 < a.p_value_bootstrap <= 1
    assert a.mcse > 0
    assert "p_value_bootstrap" in a.table.columns
    assert "Likelihood-ratio" in str(a)


def test_compare_models_validation() -> None:
    df = simulate_prn(10, 30, rng=3)
    res = fit_truth_bias(df, **ROLES)
    other = fit_truth_bias(simulate_prn(10, 30, rng=4), **ROLES, moderators="condition")
    with pytest.raises(ValueError, match="different responses"):
        compare_models(res, other)
    with pytest.raises(ValueError, match="same number of parameters"):
        compare_models(res, res)
    with pytest.raises(TypeError, match="mixed-model fit"):
        compare_models(res, "model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`bootstrap`"):
        compare_models(res, fit_truth_bias(df, **ROLES, moderators="condition"),
                       bootstrap=-1)


def test_satterthwaite_with_ar1_residuals_and_kr_refuses() -> None:
    df = simulate_prn(12, 36, rng=2)
    res = fit_truth_bias(df, **ROLES, moderators="condition", time="session",
                         residual="ar1")
    # the AR(1) parameter joins the variance parameters: df still below the therapists
    assert 1 < res.df["condition"] < 12
    with pytest.raises(ValueError, match="iid residuals only"):
        fit_truth_bias(df, **ROLES, time="session", residual="ar1", ddf="kenward-roger")


def _ddf_source(residual: str) -> Any:
    """A simulated fit's df source: T&B slopes (iid) or intercepts with AR(1) residuals."""
    options = ({"time": "session", "residual": "ar1"} if residual == "ar1"
               else {"random": "slopes"})
    df = simulate_prn(12, 36, rng=2 if residual == "ar1" else 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_truth_bias(df, **ROLES, moderators="condition", **options)
    return res._fit.mixed.ddf_source


@pytest.mark.parametrize("residual", ["iid", "ar1"])
def test_weighted_gradient_splits_log_determinants_and_r2(residual: str) -> None:
    # the engine's gradient with a weight w on r²: ∇(log-determinants) + w ∇r², each
    # checked against central differences of the evaluated criterion
    src = _ddf_source(residual)
    obj = src.model._objective(src.y, src.reml)
    t0 = src.theta + 0.05  # away from the optimum: the gradient is not zero
    value, f = obj.evaluate(t0)
    k = obj.struct.n - obj.struct.p

    def pieces(t: np.ndarray) -> np.ndarray:
        val, fac = obj.evaluate(t)
        return np.array([val - k * (1.0 + np.log(2.0 * np.pi * fac.pwrss / k)), fac.pwrss])

    fd = np.empty((t0.size, 2))
    for j in range(t0.size):
        e = np.zeros(t0.size)
        e[j] = 1e-5
        fd[j] = (pieces(t0 + e) - pieces(t0 - e)) / 2e-5
    g0 = obj.gradient(t0, value, f, r2_weight=0.0)
    g1 = obj.gradient(t0, value, f, r2_weight=1.0)
    np.testing.assert_allclose(g0, fd[:, 0], rtol=1e-5, atol=1e-5 * np.abs(fd[:, 0]).max())
    np.testing.assert_allclose(g1 - g0, fd[:, 1], rtol=1e-5,
                               atol=1e-5 * np.abs(fd[:, 1]).max())
    # the default weight is N / r²: the deviance's gradient, unchanged
    np.testing.assert_allclose(obj.gradient(t0, value, f),
                               obj.gradient(t0, value, f, r2_weight=k / f.pwrss),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("residual", ["iid", "ar1"])
def test_gradient_path_agrees_with_evaluations_path(residual: str) -> None:
    # the θ Hessian from differences of the exact gradient and from second differences
    # of evaluations (the earlier path, kept as the fallback) agree to the latter's
    # accuracy, and so do the df
    from alliancestats._mixed import _ddf

    src = _ddf_source(residual)
    new = _ddf.satterthwaite(src.model, src.y, src.theta, reml=src.reml)
    old = _ddf._satterthwaite_evaluations(src.model, src.y, src.theta, src.reml)
    scale = np.abs(old.hessian).max()
    np.testing.assert_allclose(new.hessian, old.hessian, rtol=1e-5, atol=1e-7 * scale)
    np.testing.assert_allclose(new.jacobian, old.jacobian, rtol=1e-6,
                               atol=1e-9 * np.abs(old.jacobian).max())
    p = new.cov.shape[0]
    np.testing.assert_allclose(new.df(np.eye(p)), old.df(np.eye(p)), rtol=1e-5)


def test_satterthwaite_falls_back_to_evaluations(monkeypatch: pytest.MonkeyPatch) -> None:
    from alliancestats._mixed import _ddf

    src = _ddf_source("iid")

    def fails(*args: Any) -> Any:
        raise np.linalg.LinAlgError("a step left the parameter space")

    expected = _ddf._satterthwaite_evaluations(src.model, src.y, src.theta, src.reml)
    monkeypatch.setattr(_ddf, "_satterthwaite_gradient", fails)
    got = _ddf.satterthwaite(src.model, src.y, src.theta, reml=src.reml)
    np.testing.assert_array_equal(got.hessian, expected.hessian)
