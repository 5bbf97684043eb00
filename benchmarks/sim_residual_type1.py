"""What modelling AR(1) residuals buys: type-I error of a time-varying predictor.

Session-by-session PRN data (40 therapists, 117 patients, 6 sessions, ~10 % of sessions
missed): the outcome has a therapist and a patient random intercept and AR(1) residuals
over sessions (``phi_e``); a time-varying predictor (e.g. last session's alliance) is itself
serially correlated within patient (AR(1) with ``phi_x`` around a patient mean) and has **no
effect**. Each replicate fits ``y ~ x + session + (1 | therapist) + (1 | therapist:patient)``
twice, REML:

- ``iid``: independent residuals (lme4's model; what ignoring the serial correlation does);
- ``ar1``: ``residual="ar1"`` over the session value (nlme ``corAR1``).

and records whether the Wald z test of ``x`` rejects at 5 %. The rejection rate is the
type-I error (Monte-Carlo SE ``sqrt(p(1-p)/n_sims)``). Fixed seed; plain script::

    python benchmarks/sim_residual_type1.py                 # 1000 replicates per cell
    python benchmarks/sim_residual_type1.py --n-sims 200 --phi-e 0 0.5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from alliancestats._mixed._engine import NestedLMM

N_THER, N_PAT, N_SESS, P_MISSED = 40, 117, 6, 0.10


def design(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Therapist and patient codes and session values of the kept rows (fixed per run)."""
    ther_of = np.sort(np.r_[np.arange(N_THER), rng.integers(0, N_THER, N_PAT - N_THER)])
    pat = np.repeat(np.arange(N_PAT), N_SESS)
    sess = np.tile(np.arange(1.0, N_SESS + 1), N_PAT)
    keep = rng.random(pat.size) > P_MISSED
    return ther_of[pat[keep]], pat[keep], sess[keep]


def ar1_series(rng: np.random.Generator, phi: float) -> np.ndarray:
    """(N_PAT, N_SESS) stationary AR(1) series with unit variance."""
    e = np.empty((N_PAT, N_SESS))
    e[:, 0] = rng.normal(size=N_PAT)
    for s in range(1, N_SESS):
        e[:, s] = phi * e[:, s - 1] + np.sqrt(1 - phi**2) * rng.normal(size=N_PAT)
    return e


def replicate(rng: np.random.Generator, rows: tuple[np.ndarray, ...], phi_e: float,
              phi_x: float) -> tuple[np.ndarray, np.ndarray]:
    ther, pat, sess = rows
    idx = (pat, sess.astype(int) - 1)
    x = (rng.normal(size=N_PAT)[:, None] * 0.7 + ar1_series(rng, phi_x))[idx]
    y = (4.0 + 0.05 * sess + rng.normal(0, 0.3, N_THER)[ther] + rng.normal(0, 0.5, N_PAT)[pat]
         + 0.6 * ar1_series(rng, phi_e)[idx])
    return x, y


def run(n_sims: int, phi_es: list[float], phi_x: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = design(rng)
    ther, pat, sess = rows
    codes = np.column_stack([ther, pat])
    one = np.ones((pat.size, 1))
    out = []
    for phi_e in phi_es:
        reject = {"iid": 0, "ar1": 0}
        phis = []
        t0 = time.perf_counter()
        for _ in range(n_sims):
            x, y = replicate(rng, rows, phi_e, phi_x)
            X = np.column_stack([one[:, 0], x, sess])
            for kind in ("iid", "ar1"):
                model = NestedLMM.from_codes(X, codes, [one, one], residual=kind,
                                             time=None if kind == "iid" else sess)
                fit = model.fit(y, random_effects=False)
                z = fit.beta[1] / fit.bse[1]
                reject[kind] += int(abs(z) > 1.959963984540054)
                if kind == "ar1":
                    phis.append(fit.residual_params["phi"])
        for kind, count in reject.items():
            p = count / n_sims
            out.append({"phi_e": phi_e, "phi_x": phi_x, "residual": kind, "n_sims": n_sims,
                        "type1": p, "mc_se": np.sqrt(p * (1 - p) / n_sims),
                        "mean_phi_hat": np.mean(phis) if kind == "ar1" else np.nan,
                        "seconds": time.perf_counter() - t0})
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-sims", type=int, default=1000)
    ap.add_argument("--phi-e", type=float, nargs="+", default=[0.0, 0.3, 0.6])
    ap.add_argument("--phi-x", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=20261202)
    args = ap.parse_args()
    table = run(args.n_sims, args.phi_e, args.phi_x, args.seed)
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
