"""Assertions shared by the lme4 reference tests: fixed effects, their SEs and the fit
statistics and the variance components of one ``lmer`` fit frozen by
``tests/reference/r/lme4_common.R``'s ``extract()``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


def assert_fixed_effects(res: Any, ref: dict[str, Any],
                         rename: Callable[[str], Any] = lambda name: name) -> None:
    """Coefficient names, estimates (rtol 1e-4) and SEs (rtol 1e-3) against lme4."""
    fixef = {rename(k): v for k, v in ref["fixef"].items()}
    se = {rename(k): v for k, v in ref["se"].items()}
    names = list(fixef)
    assert sorted(names) == sorted(res.params.index)
    # fixef(fit)
    np.testing.assert_allclose(res.params[names], list(fixef.values()), rtol=1e-4, atol=1e-7)
    # sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(res.bse[names], [se[n] for n in names], rtol=1e-3)


def assert_fit_statistics(res: Any, ref: dict[str, Any]) -> None:
    """Residual variance, log-likelihood, singularity and nobs against lme4."""
    residual = next(row for row in ref["varcorr"].values() if row["grp"] == "Residual")
    vc = res.variance_components.set_index(["level", "term"])
    # sigma(fit)^2 (as.data.frame(VarCorr(fit)) residual row)
    np.testing.assert_allclose(vc.loc[("Residual", ""), "variance"], residual["vcov"],
                               rtol=1e-3)
    # logLik(fit) (REML criterion / -2 for REML fits)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-2)
    # isSingular(fit)
    assert res.is_singular == ref["isSingular"]
    # nobs(fit)
    assert res.nobs == ref["nobs"]


def lme4_level(grp: str) -> str:
    """lme4 group name -> our level name ("therapist:patient.1" -> "patient")."""
    return re.split(r"[:.]", re.sub(r"\.\d+$", "", grp))[-1]


def assert_random_effects(res: Any, ref: dict[str, Any], term: Callable[[str], Any]) -> None:
    """Variances (rtol 1e-3) and intercept-slope correlations (atol 2e-3, where both SDs
    exceed 1e-3) of every random term; ``term`` maps lme4 term names to ours."""
    vc = res.variance_components.set_index(["level", "term"])
    for row in ref["varcorr"].values():
        if row["grp"] == "Residual":
            continue  # checked by assert_fit_statistics
        key = (lme4_level(row["grp"]), term(row["var1"]))
        if row.get("var2") is None:
            # as.data.frame(VarCorr(fit))$vcov: variance of a random term
            np.testing.assert_allclose(vc.loc[key, "variance"], row["vcov"], rtol=1e-3,
                                       atol=1e-6)
            continue
        # as.data.frame(VarCorr(fit))$sdcor: correlation of a random intercept and slope
        other = (key[0], term(row["var2"]))
        if vc.loc[other, "sd"] > 1e-3 and vc.loc[key, "sd"] > 1e-3:
            np.testing.assert_allclose(vc.loc[other, "corr"], row["sdcor"], atol=2e-3)
