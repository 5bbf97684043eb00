"""Bias of the lagged outcome in the lagged RSA with unit random effects (Nickell-type).

Well-being follows the simulator's dynamic model (``alliancestats.simulate``):
``W_t = ω + φ W_{t−1} + τ (t − 1) + f_c(X_{t−1}, Y_{t−1}) + v_k + u_jk + e_t``
(``φ = 0.5``, patient level ``u`` SD 2, therapist level ``v`` SD 1; the surface of the
trained arm has ``a1 = b1 + b2 = 1.5``, the untrained arm's is flat, ``a1 = 0``). Six
sessions, so five lagged pairs per patient: a short panel. Two starting conditions:

- ``exogenous``: the simulator's own — session-1 well-being has its own level effects,
  independent of ``u`` (the process starts at the first session);
- ``stationary``: the process ran before the first session, so session-1 well-being
  carries the patient's level, ``W_1 = (ω + v + u) / (1 − φ) + e_1`` with
  ``sd(e_1) = σ_e / sqrt(1 − φ²)`` (patients enter at their own level).

Each simulated trial (40 therapists, 117 patients, 6 sessions, no missed sessions) is
analysed by ``fit_lagged_rsa(..., by="condition", controls=["session"])`` (random
therapist and patient intercepts) in four ways:

- ``lagged``: with the lagged outcome (the default, ``prior_outcome=True``);
- ``no_lag``: without it (``prior_outcome=False``);
- ``within``: the lagged outcome centred on each patient's mean over the analysed
  sessions (the fixed-effects / within estimator of ``φ``);
- ``lagged_baseline``: the lagged outcome and the session-1 outcome as a covariate
  (Wooldridge's 2005 conditioning on the initial value).

It reports the mean estimate of ``φ`` (the lagged-outcome coefficient) and of ``a1`` per
arm, their bias with its Monte-Carlo SE, and the coverage of the 95 % intervals.
Plain script, seeded (replicate ``i`` uses seed ``--seed + i``)::

    python benchmarks/sim_nickell.py --reps 300
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import pandas as pd

from alliancestats import PRNParams, fit_lagged_rsa, simulate_prn

P = PRNParams()
TRUE = {"phi": P.wellbeing_ar, "a1_untrained": P.b1_untrained + P.b2_untrained,
        "a1_trained": P.b1_trained + P.b2_trained}
METHODS = ("lagged", "no_lag", "within", "lagged_baseline")
ROLES = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient",
         "time": "session", "unit": ["therapist", "patient"],
         "groups": ["therapist", "patient"], "by": "condition"}


def stationary_wellbeing(data: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """Well-being of the simulator's model started from its stationary distribution."""
    p = P
    d = data.sort_values(["therapist", "patient", "session"])
    ids = d["patient"].to_numpy()
    _, pat = np.unique(ids, return_inverse=True)
    _, ther = np.unique(d["therapist"].to_numpy(), return_inverse=True)
    n_pat, n_ther = pat.max() + 1, ther.max() + 1
    v = p.sd_wellbeing_therapist * rng.standard_normal(n_ther)
    u = p.sd_wellbeing_patient * rng.standard_normal(n_pat)
    level = (v[ther] + u[pat]).reshape(n_pat, -1)[:, 0]
    trained = d["condition"].to_numpy().reshape(n_pat, -1)[:, 0].astype(bool)
    x = d["alliance_therapist"].to_numpy().reshape(n_pat, -1) - p.alliance_center
    y = d["alliance_patient"].to_numpy().reshape(n_pat, -1) - p.alliance_center
    b = np.where(trained[:, None], list(P.rsa_coefficients(1).values()),
                 list(P.rsa_coefficients(0).values()))
    terms = np.stack([x, y, x * x, x * y, y * y], axis=2)
    surface = np.einsum("jk,jik->ji", b, terms)
    phi, sd_e = p.wellbeing_ar, p.sd_wellbeing_residual
    T = x.shape[1]
    W = np.empty((n_pat, T))
    W[:, 0] = ((p.wellbeing_intercept + level) / (1 - phi)
               + sd_e / np.sqrt(1 - phi**2) * rng.standard_normal(n_pat))
    for t in range(1, T):
        W[:, t] = (p.wellbeing_intercept + phi * W[:, t - 1] + p.wellbeing_time * t
                   + surface[:, t - 1] + level + sd_e * rng.standard_normal(n_pat))
    return pd.Series(W.ravel(), index=d.index).reindex(data.index)


def fits(data: pd.DataFrame) -> dict[str, dict[str, float]]:
    """phi, a1 per arm (estimate, covered) of the four analyses of one data set."""
    d = data.sort_values(["therapist", "patient", "session"]).copy()
    key = [d["therapist"], d["patient"]]
    d["w_lag"] = d.groupby(key)["wellbeing"].shift(1)
    d["w_lag_within"] = d["w_lag"] - d.groupby(key)["w_lag"].transform("mean")
    d["w_first"] = d.groupby(key)["wellbeing"].transform("first")
    calls = {
        "lagged": ({"prior_outcome": True, "controls": ["session"]}, "wellbeing_lag1"),
        "no_lag": ({"prior_outcome": False, "controls": ["session"]}, None),
        "within": ({"prior_outcome": False, "controls": ["session", "w_lag_within"]},
                   "w_lag_within"),
        "lagged_baseline": ({"prior_outcome": True, "controls": ["session", "w_first"]},
                            "wellbeing_lag1"),
    }
    out = {}
    for name, (kwargs, lag_term) in calls.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_lagged_rsa(d, **ROLES, **kwargs)
        ci = res.conf_int()
        row: dict[str, float] = {}
        if lag_term is not None:
            row["phi"] = float(res.params[lag_term])
            row["phi_covers"] = float(ci.loc[lag_term].iloc[0] <= TRUE["phi"]
                                      <= ci.loc[lag_term].iloc[1])
        for level, arm in ((0, "a1_untrained"), (1, "a1_trained")):
            a1 = res.surface.loc[(level, "a1")]
            row[arm] = float(a1["estimate"])
            row[f"{arm}_covers"] = float(a1["conf_low"] <= TRUE[arm] <= a1["conf_high"])
        out[name] = row
    return out


def one(seed: int, start: str) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    data = simulate_prn(40, 117, 6, rng=rng)
    if start == "stationary":
        data = data.assign(wellbeing=stationary_wellbeing(data, rng))
    return [{"seed": seed, "start": start, "method": m, **row}
            for m, row in fits(data).items()]


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (start, method), g in frame.groupby(["start", "method"], sort=False):
        for par in ("phi", "a1_untrained", "a1_trained"):
            if par not in g or g[par].isna().all():
                continue
            est = g[par].dropna()
            rows.append({"start": start, "method": method, "parameter": par,
                         "true": TRUE[par], "mean": est.mean(),
                         "bias": est.mean() - TRUE[par],
                         "mcse": est.std(ddof=1) / np.sqrt(est.size),
                         "coverage": g[f"{par}_covers"].mean(), "reps": est.size})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--starts", nargs="+", default=["exogenous", "stationary"])
    args = parser.parse_args()
    t0 = time.process_time()
    rows = [r for start in args.starts for i in range(args.reps)
            for r in one(args.seed + i, start)]
    print(f"{platform.platform()}; Python {platform.python_version()}; seed {args.seed}; "
          f"{args.reps} replicates per start; {time.process_time() - t0:.0f} s CPU")
    with pd.option_context("display.width", 200):
        print(summarise(pd.DataFrame(rows)).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
