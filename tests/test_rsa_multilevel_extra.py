"""Multilevel third-order surfaces and the within/between decomposition against lme4.

Data: ``tests/reference/data/rsa_longitudinal.csv``; values:
``tests/reference/r/rsa_multilevel_extra.R`` (``lme4::lmer`` with tight bobyqa settings),
frozen in ``tests/reference/results/rsa_multilevel_extra.json``.

Tolerances as for the other lmer references (two different optimisers): fixed effects
rtol 1e-4, SEs and variance components rtol 1e-3, logLik atol 1e-2 (observed agreement
is about 1e-6).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_rsa
from alliancestats.exceptions import BoundaryFitWarning, DataWarning

pytestmark = pytest.mark.reference

REF_DIR = Path(__file__).parent / "reference"
LONG = pd.read_csv(REF_DIR / "data" / "rsa_longitudinal.csv")
RM = json.loads((REF_DIR / "results" / "rsa_multilevel_extra.json").read_text())
GROUPS = ["therapist", "patient"]


def _fit(**kw):
    with pytest.warns(DataWarning, match="missing"):
        return fit_rsa(LONG, outcome="z", x="x", y="y", groups=GROUPS, **kw)


def _lmer_checks(res, ref) -> None:
    # fixef(fit)
    np.testing.assert_allclose(res.params.to_numpy(), ref["coef"], rtol=1e-4, atol=1e-6)
    # sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(res.bse.to_numpy(), ref["se"], rtol=1e-3)
    # logLik(fit)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-2)
    assert res.nobs == ref["nobs"]
    # as.data.frame(VarCorr(fit))$vcov: therapist:patient, therapist, Residual
    got = res.variance_components.set_index("level")["variance"]
    np.testing.assert_allclose([got.iloc[1], got.iloc[0], got.loc["Residual"]],
                               ref["vc_var"], rtol=1e-3)


@pytest.mark.parametrize(("reml", "key"), [(True, "cubic_reml"), (False, "cubic_ml")])
def test_multilevel_cubic_matches_lmer(reml: bool, key: str) -> None:
    res = _fit(model="cubic", reml=reml)
    assert res.centering["x_shift"] == pytest.approx(RM["center"], rel=1e-12)
    _lmer_checks(res, RM[key])
    if reml:
        # U %*% fixef(fit): u1..u3, v1..v3 with SEs from vcov(fit)
        uv = res.cubic_surface
        np.testing.assert_allclose(uv["estimate"], RM[key]["uv"]["est"], rtol=1e-4,
                                   atol=1e-6)
        np.testing.assert_allclose(uv["std_error"], RM[key]["uv"]["se"], rtol=1e-3)


def test_multilevel_ca_matches_lmer() -> None:
    # lmer(z ~ I((X - Y)^2) + I((X - Y)^3) + (1 | therapist) + (1 | therapist:patient))
    _lmer_checks(_fit(model="CA", reml=False), RM["ca_ml"])


@pytest.mark.parametrize(("reml", "key"), [(True, "decompose_reml"),
                                           (False, "decompose_ml")])
def test_within_between_decomposition_matches_lmer(reml: bool, key: str) -> None:
    res = _fit(decompose="unit", reml=reml)
    ref = RM[key]
    _lmer_checks(res, ref)
    assert res.levels == ["within", "between"]
    assert res.centering["decompose"]["n_units"] == RM["n_units"]
    surf = res.surface
    for part in ("within", "between"):
        # Lw / Lb %*% fixef(fit), sqrt(diag(L %*% vcov(fit) %*% t(L)))
        np.testing.assert_allclose(surf.loc[part, "estimate"], ref[part]["est"],
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(surf.loc[part, "std_error"], ref[part]["se"],
                                   rtol=1e-3)
    diff = res.surface_differences.loc["between"]  # between minus within
    np.testing.assert_allclose(diff["estimate"], ref["difference"]["est"], rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(diff["std_error"], ref["difference"]["se"], rtol=1e-3)


def test_decompose_needs_groups_and_refuses_by() -> None:
    with pytest.raises(ValueError, match="pass `groups`"):
        fit_rsa(LONG.dropna(), outcome="z", x="x", y="y", decompose="unit")
    with pytest.raises(ValueError, match="together with `by`"):
        fit_rsa(LONG.dropna(), outcome="z", x="x", y="y", groups=GROUPS, by="condition",
                decompose="unit")
    with pytest.raises(ValueError, match="`decompose`"):
        fit_rsa(LONG.dropna(), outcome="z", x="x", y="y", groups=GROUPS, decompose="level")


def test_random_linear_slopes_match_lmer() -> None:
    # lmer(z ~ X + Y + X2 + XY + Y2 + (1 | therapist) + (1 + X + Y | therapist:patient))
    ref = RM["linear_reml"]
    res = _fit(random="linear")
    np.testing.assert_allclose(res.params.to_numpy(), ref["coef"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.bse.to_numpy(), ref["se"], rtol=1e-3)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-2)  # logLik(fit)
    vc = res.variance_components
    # as.data.frame(VarCorr(fit)): patient intercept, x, y variances, therapist, residual
    got = [*vc.loc[vc.level == "patient", "variance"], *vc.loc[vc.level == "therapist",
           "variance"], *vc.loc[vc.level == "Residual", "variance"]]
    np.testing.assert_allclose(got, ref["var"], rtol=1e-3)
    # correlations (Intercept, X), (Intercept, Y), (X, Y) at therapist:patient
    cov = res.variance_components.set_index(["level", "term"])
    corr_int = cov.loc[("patient", "x"), "corr"], cov.loc[("patient", "y"), "corr"]
    np.testing.assert_allclose(corr_int, ref["cor"][:2], atol=2e-3)
    # summary(rePCA(fit))$"therapist:patient"$importance["Proportion of Variance", ]
    pca = res.random_pca.query("level == 'patient'")["proportion"].to_numpy()
    np.testing.assert_allclose(pca, ref["repca_patient"], atol=1e-4)
    assert not res.is_singular


def test_random_quadratic_slopes_reach_lmer_and_say_what_to_drop() -> None:
    """(1 + X + Y + X2 + XY + Y2 | therapist): singular in lme4 and here. The likelihood
    is flat: lme4's bobyqa has ended at a rank-3 covariance (logLik -1451.99923) or a
    rank-2 one (-1452.00620) in different runs; the engine reaches the better one."""
    ref = RM["quadratic_ml"]
    with pytest.warns(BoundaryFitWarning):
        res = _fit(random={"therapist": "quadratic", "patient": "intercept"}, reml=False)
    assert res.is_singular
    assert ref["singular"]  # isSingular(fit)
    assert res.llf >= ref["logLik"] - 1e-6  # logLik(fit)
    assert res.llf == pytest.approx(-1451.99922863949, abs=1e-6)
    np.testing.assert_allclose(res.params.to_numpy(), ref["coef"], rtol=2e-2, atol=1e-2)
    pca = res.random_pca.query("level == 'therapist'")
    null = pca["proportion"] < 1e-4
    assert 0 < null.sum() <= sum(p < 1e-4 for p in ref["repca_therapist"])
    advice = [n for n in res.summary().notes if "are singular" in n]
    assert len(advice) == 1
    # the three null directions are spanned by the quadratic terms: back to "linear"
    assert "Drop ['x^2', 'y^2', 'x:y']" in advice[0]
    assert "random={'therapist': ['Intercept', 'x', 'y']}" in advice[0]


def test_more_random_effects_than_observations_is_refused() -> None:
    # lme4: "number of observations (=540) <= number of random effects (=576)"
    with pytest.raises(ValueError, match="not identified"):
        fit_rsa(LONG.dropna(subset=["z"]), outcome="z", x="x", y="y", groups=GROUPS,
                random="quadratic")


def test_congruence_table_covers_every_surface() -> None:
    res = _fit(decompose="unit")
    table = res.congruence_table(variant="a5")
    assert list(table["surface"].unique()) == ["within", "between"]
    for part in ("within", "between"):
        single = res.congruence_test(variant="a5", level=part)
        rows = table[table["surface"] == part].set_index("quantity")
        np.testing.assert_allclose(rows["estimate"], single.table["estimate"])
        assert rows["verdict"].iloc[0] == single.verdict
