"""Principal-axis curvatures and eigenvalues against R's RSA package (0.10.8).

Reference values: ``tests/reference/r/rsa_curvature_reference.R`` (``RSA(z ~ x * y,
center = "pooled", out.rm = FALSE, estimator = "ML", se = "standard", models = "full")``,
lavaan ``:=`` parameters PA1.curv, PA2.curv, l1, l2 and their delta-method SEs), frozen in
``tests/reference/results/rsa_curvature_reference.json``.

Tolerances: estimates are closed-form functions of the OLS coefficients (lavaan's ML
estimates equal them to about 1e-7). RSA's standard SEs use the ML residual variance
(divisor n), ours the OLS one (n - 6), so SEs are compared after the factor
sqrt((n - 6) / n); ours differentiate numerically (central differences), lavaan
analytically, hence rtol 1e-4.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_rsa
from alliancestats.rsa.congruence import curvatures

pytestmark = pytest.mark.reference

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "results" / "rsa_curvature_reference.json").read_text())
DATA = {"rsapkg_data": REF_DIR / "data" / "rsapkg_data.csv",
        "rotated": REF_DIR / "data" / "rsa_curvature_rotated.csv"}


@pytest.mark.parametrize("name", list(DATA))
def test_curvatures_and_eigenvalues_match_the_rsa_package(name: str) -> None:
    ref = REF[name]
    res = fit_rsa(pd.read_csv(DATA[name]), outcome="z", x="x", y="y")
    table = res.principal_curvatures
    ml_factor = np.sqrt((ref["n"] - 6) / ref["n"])
    for q in ("PA1.curv", "PA2.curv", "l1", "l2"):
        # RSA: parameterEstimates(fit$models$full) rows PA1.curv, PA2.curv, l1, l2
        assert table.loc[q, "estimate"] == pytest.approx(ref[q]["est"], rel=1e-6,
                                                         abs=1e-8)
        assert table.loc[q, "std_error"] * ml_factor == pytest.approx(ref[q]["se"],
                                                                      rel=1e-4)


def test_curvature_identities() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        b = np.concatenate([[0.0], rng.normal(size=5)])
        c = curvatures(b)
        b3, b4, b5 = b[3:6]
        p11 = (b5 - b3 + np.sqrt((b3 - b5) ** 2 + b4**2)) / b4
        p21 = (b5 - b3 - np.sqrt((b3 - b5) ** 2 + b4**2)) / b4
        # R RSA's := definitions
        assert c["PA1.curv"] == pytest.approx(b3 + b4 * p11 + b5 * p11**2, rel=1e-8,
                                              abs=1e-10)
        assert c["PA2.curv"] == pytest.approx(b3 + b4 * p21 + b5 * p21**2, rel=1e-8,
                                              abs=1e-10)
        # eigenvalues of [[b3, b4/2], [b4/2, b5]], l1 >= l2
        np.testing.assert_allclose([c["l2"], c["l1"]],
                                   np.linalg.eigvalsh([[b3, b4 / 2], [b4 / 2, b5]]),
                                   rtol=1e-10, atol=1e-12)


def test_bootstrap_curvature_table() -> None:
    df = pd.read_csv(DATA["rotated"])
    res = fit_rsa(df, outcome="z", x="x", y="y")
    boot = res.bootstrap(200, rng=5)
    table = res.curvature_table(bootstrap=boot)
    draws = boot.draws["l2"]
    assert table.loc["l2", "std_error"] == pytest.approx(draws.std(ddof=1))
    assert table.loc["l2", "conf_low"] == pytest.approx(draws.quantile(0.025))
    # case resampling estimates the sandwich variance; the same order as the model SE
    delta = res.principal_curvatures.loc["l2", "std_error"]
    assert 0.6 < table.loc["l2", "std_error"] / delta < 1.6


def test_curvatures_need_a_second_order_surface() -> None:
    df = pd.read_csv(DATA["rotated"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_rsa(df, outcome="z", x="x", y="y", model="cubic")
    with pytest.raises(ValueError, match="second-order surface"):
        res.principal_curvatures
