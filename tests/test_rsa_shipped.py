"""The whole RSA family against R's RSA package 0.10.8 on the data sets it ships
(motcon, motcon2, selfother).

Reference values: ``tests/reference/r/rsapkg_shipped_reference.R``, frozen in
``tests/reference/results/rsapkg_shipped_reference.json``. The data sets belong to the
RSA package and are not part of this project: the tests run when the environment variable
``ALLIANCESTATS_RSA_DATA`` names the ``data`` directory of the package's source (with
``motcon.tab``, ``motcon2.tab``, ``selfother.tab``), and are skipped otherwise.

Tolerances: coefficients rtol 1e-5 (atol 2e-5: lavaan stops at ~1e-6), log-likelihood
1e-6 absolute, except where R's lavaan fit is not on the optimum of the model's
constraint set (each case below says why). RSA's ``b0`` with centred control variables
is not compared (controls enter uncentred here).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_rsa

pytestmark = pytest.mark.reference

REF = json.loads((Path(__file__).parent / "reference" / "results"
                  / "rsapkg_shipped_reference.json").read_text())
DATA_DIR = os.environ.get("ALLIANCESTATS_RSA_DATA")
ROLES = {"motcon": ("postVA", "ePow", "iPow"), "motcon2": ("VA", "IM", "EM"),
         "selfother": ("liking", "IQ_self", "IQ_friend")}
# R's lavaan fit ends off the equality constraint b4^2 = 4 b3 b5 (relative violation
# 3e-6 to 6e-5 on selfother, where x and y are IQ scores), which buys it up to 8e-5 of
# log-likelihood; our fits lie on the constraint.
OFF_CONSTRAINT = {("selfother", "SRRR"), ("selfother", "SRSQD"), ("selfother", "strong")}
# lavaan stops in a worse rank-one point; SRSQD's optimum is on the plane b4 = b5 = 0.
BETTER_THAN_R = {("motcon", "SRSQD")}

CASES = [(name, part, model) for name in ROLES for part in ("second", "third")
         for model in REF[name][part]["models"]]


@pytest.fixture(scope="module")
def shipped() -> dict[str, pd.DataFrame]:
    if not DATA_DIR or not Path(DATA_DIR, "motcon.tab").exists():
        pytest.skip("set ALLIANCESTATS_RSA_DATA to the data directory of the RSA "
                    "package's source to run these tests")
    return {name: pd.read_csv(Path(DATA_DIR, f"{name}.tab"), sep=r"\s+")
            for name in ROLES}


@pytest.mark.parametrize(("name", "part", "model"), CASES)
def test_family_matches_rsa_package_on_its_data(shipped, name: str, part: str,
                                                model: str) -> None:
    ref = REF[name][part]["models"][model]
    z, x, y = ROLES[name]
    controls = REF[name]["controls"] or None
    if model in ("absdiff", "absunc"):
        controls = None  # RSA's model syntax for these has no control variables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_rsa(shipped[name], outcome=z, x=x, y=y, model=model, controls=controls)
    est = {k: v["est"] for k, v in ref["params"].items()
           if k in res.coefs.index and not (controls and k == "b0")}
    logl = ref["fit"]["logl"]  # fitMeasures(fit$models[[model]], "logl")
    if (name, model) in BETTER_THAN_R:
        assert res.llf > logl + 1e-4
        return
    # parameterEstimates(fit$models[[model]])$est
    got = res.coefs[list(est)].to_numpy()
    np.testing.assert_allclose(got, list(est.values()), rtol=1e-5, atol=2e-5)
    if (name, model) in OFF_CONSTRAINT:
        b = [ref["params"][f"b{i}"]["est"] for i in range(6)]
        assert abs(b[4] ** 2 - 4 * b[3] * b[5]) > 1e-6 * b[4] ** 2  # R: off the constraint
        assert logl - 1e-4 < res.llf <= logl
        c = res.coefs
        assert c["b4"] ** 2 == pytest.approx(4 * c["b3"] * c["b5"], rel=1e-10)
    else:
        assert res.llf == pytest.approx(logl, abs=1e-6)
