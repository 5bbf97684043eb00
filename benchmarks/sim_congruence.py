"""How often the congruence verdict says "consistent with congruence" (seeded simulation).

Two surfaces over x, y ~ N(0, 1) independent, outcome noise SD ``sigma``:

* shifted ridge: ``z = -0.5 (x - y + 0.4)^2 + e``: the ridge runs 0.4 SD off the line of
  congruence (Y = X + 0.4; a3 = -0.8, a4 = -2, a5 = 0). Congruence does not hold;
* congruence: ``z = -0.5 (x - y)^2 + e`` (model SQD; a3 = a5 = 0, a4 = -2).

For each sample the default congruence test is run (``variant="strict"``, equivalence
route, default smallest effects of interest, percentile bootstrap of p10/p11 with
``--n-boot`` replicates) and, for comparison, the rule the library used before: "a3 not
significant, the 95% delta-method CIs of p10 and p11 cover 0 and 1, a4 < 0 one-sided".
The share of samples judged consistent is reported with its Monte-Carlo SE, for the
equivalence route, the model-comparison route (AICc weight of SQD + RR >= 0.5 and a4 < 0
significant) and the old rule, with the share flagged as a ridge and the share meeting
each condition of the equivalence route on its own.

Run (about 0.13 s of CPU time per sample with the default 500 replicates):

    PYTHONPATH=src python benchmarks/sim_congruence.py --reps 400 --n-boot 500
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from alliancestats import fit_rsa


def surface_data(kind: str, n: int, sigma: float, rng: np.random.Generator) -> pd.DataFrame:
    """One sample of the ``kind`` surface ("shifted" or "congruence")."""
    x, y = rng.normal(size=n), rng.normal(size=n)
    shift = 0.4 if kind == "shifted" else 0.0
    z = -0.5 * (x - y + shift) ** 2 + rng.normal(0, sigma, n)
    return pd.DataFrame({"x": x, "y": y, "z": z})


def old_rule(res) -> bool:
    """The former checklist: non-significance and covering CIs counted as met."""
    surf = res.surface
    axes = res.principal_axes
    a4 = surf.loc["a4"]
    from scipy import stats
    p_a4 = stats.t.cdf(a4.estimate / a4.std_error, a4.df)
    covers = (axes.loc["p10", "conf_low"] <= 0 <= axes.loc["p10", "conf_high"]
              and axes.loc["p11", "conf_low"] <= 1 <= axes.loc["p11", "conf_high"])
    return bool(covers and surf.loc["a3", "p_value"] >= 0.05 and p_a4 < 0.05)


def one_sample(kind: str, n: int, sigma: float, n_boot: int,
               seed: np.random.SeedSequence) -> dict[str, bool]:
    data_rng, boot_rng = (np.random.default_rng(s) for s in seed.spawn(2))
    df = surface_data(kind, n, sigma, data_rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_rsa(df, outcome="z", x="x", y="y")
        test = res.congruence_test(n_boot=n_boot, rng=boot_rng)
        old = old_rule(res)
    met = test.table["met"]
    return {"equivalence": test.routes["equivalence"],
            "model comparison": bool(test.routes["model comparison"]),
            "old rule": old, "ridge": test.ridge,
            **{f"met {q}": bool(met[q]) for q in ("p10", "p11", "a3", "a4")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--sigma", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 100, 400])
    args = parser.parse_args()
    root = np.random.SeedSequence(args.seed)
    cells = [("shifted", 40)] + [("congruence", n) for n in args.sizes]
    seeds = root.spawn(len(cells))
    rows = []
    for (kind, n), seed in zip(cells, seeds, strict=True):
        start = time.process_time()
        out = pd.DataFrame([one_sample(kind, n, args.sigma, args.n_boot, s)
                            for s in seed.spawn(args.reps)])
        cpu = time.process_time() - start
        for col in out.columns:
            p = out[col].mean()
            rows.append({"surface": kind, "n": n, "criterion": col, "share": p,
                         "mcse": np.sqrt(p * (1 - p) / len(out)),
                         "cpu_s_per_sample": cpu / len(out)})
    table = pd.DataFrame(rows)
    print(f"reps={args.reps}, n_boot={args.n_boot}, sigma={args.sigma}, seed={args.seed}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
