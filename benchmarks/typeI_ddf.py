"""Type-I error of Wald z, Satterthwaite and Kenward–Roger tests by simulation.

Truth-and-bias model of a PRN trial with few therapists (default 20; 58 patients, i.e.
the PRN's 117 per 40 therapists, 6 sessions), simulated by :func:`simulate_prn` with
every training effect set to zero (``gamma01 = gamma03 = gamma11 = gamma13 = 0``; other
parameters at their defaults, no missed sessions). Each replicate is fitted by REML with
the model of the PRN analysis (``judgment ~ truth * condition * session``, random
intercepts for therapists and patients: the generating model) and three null hypotheses
are tested at alpha = 0.05:

- ``condition``: the training effect on the directional bias at session 0 (coefficient);
- ``condition effect at session 6``: the contrast ``condition + 6 condition:session``;
- ``truth:condition``: the training effect on the truth force (coefficient).

Each with Wald z, t with Satterthwaite df (lmerTest) and t with Kenward–Roger df and
adjusted SE (pbkrtest). Replicates use the array-level API a power simulation uses
(:class:`NestedLMM` from codes, :func:`~alliancestats._mixed.satterthwaite_df` and
:func:`~alliancestats._mixed._ddf.kenward_roger`), the same numbers as ``fit_truth_bias``
with ``ddf=``. Rejection rates are printed with their Monte-Carlo SE
``sqrt(r (1 - r) / n)``. Fixed seed: rerunning gives the same table. Plain script:

    python benchmarks/typeI_ddf.py                       # 20 therapists, 2000 replicates
    python benchmarks/typeI_ddf.py --therapists 12 20 40 --sims 1000
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from alliancestats import simulate_prn
from alliancestats._mixed._ddf import kenward_roger, satterthwaite
from alliancestats._mixed._engine import NestedLMM

NULL = {"gamma01": 0.0, "gamma03": 0.0, "gamma11": 0.0, "gamma13": 0.0}
NAMES = ["Intercept", "condition", "session", "condition:session", "truth",
         "truth:condition", "truth:session", "truth:condition:session"]
#: tested contrasts: rows over NAMES
TESTS = {
    "condition": {"condition": 1.0},
    "condition effect at session 6": {"condition": 1.0, "condition:session": 6.0},
    "truth:condition": {"truth:condition": 1.0},
}
METHODS = ("z", "satterthwaite", "kenward-roger")


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred response, the design of ``judgment ~ truth * condition * session`` and the
    (therapist, patient) codes, as ``fit_truth_bias`` builds them."""
    m = frame["alliance_patient"].mean()
    y = frame["alliance_therapist"].to_numpy() - m
    t = frame["alliance_patient"].to_numpy() - m
    c = frame["condition"].to_numpy(float)
    s = frame["session"].to_numpy(float)
    X = np.column_stack([np.ones_like(t), c, s, c * s, t, t * c, t * s, t * c * s])
    ther = pd.factorize(frame["therapist"], sort=True)[0]
    pat = pd.MultiIndex.from_arrays([frame["therapist"], frame["patient"]]).factorize(
        sort=True)[0]
    return y, X, np.column_stack([ther, pat])


def one_replicate(frame: pd.DataFrame, L: np.ndarray) -> dict[str, np.ndarray]:
    """p-values of every row of ``L`` by each method."""
    y, X, codes = _arrays(frame)
    one = np.ones((len(y), 1))
    model = NestedLMM.from_codes(X, codes, [one, one], reml=True)
    fit = model.fit(y, random_effects=False)
    est = L @ fit.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, fit.cov_beta, L))
    sat = satterthwaite(model, y, fit.theta)
    kr = kenward_roger(X, [one, one], codes, fit.cov_re, fit.sigma2, fit.cov_beta)
    se_kr = np.sqrt(np.einsum("ij,jk,ik->i", L, kr.cov_adjusted, L))
    return {
        "z": 2 * stats.norm.sf(np.abs(est / se)),
        "satterthwaite": 2 * stats.t.sf(np.abs(est / se), sat.df(L)),
        "kenward-roger": 2 * stats.t.sf(np.abs(est / se_kr), kr.df(L)),
    }


def rejection_rates(n_therapists: int, n_sims: int, *, seed: int = 20240601,
                    alpha: float = 0.05) -> pd.DataFrame:
    """Rejection rates (and Monte-Carlo SE) per test x method under the null."""
    n_patients = round(117 * n_therapists / 40)
    L = np.array([[w.get(n, 0.0) for n in NAMES] for w in TESTS.values()])
    rejected = {m: np.zeros(len(TESTS)) for m in METHODS}
    valid = 0
    for gen in np.random.default_rng(seed).spawn(n_sims):
        frame = simulate_prn(n_therapists, n_patients, 6, params=NULL, rng=gen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pvals = one_replicate(frame, L)
            except (np.linalg.LinAlgError, ValueError):
                continue
        valid += 1
        for m in METHODS:
            rejected[m] += pvals[m] < alpha
    rows: list[dict[str, Any]] = []
    for i, test in enumerate(TESTS):
        row: dict[str, Any] = {"therapists": n_therapists, "test": test}
        for m in METHODS:
            r = rejected[m][i] / valid
            row[m] = r
            row[f"{m} MCSE"] = np.sqrt(r * (1 - r) / valid)
        row["replicates"] = valid
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--therapists", type=int, nargs="+", default=[20])
    parser.add_argument("--sims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    table = pd.concat([rejection_rates(n, args.sims, seed=args.seed)
                       for n in args.therapists], ignore_index=True)
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
