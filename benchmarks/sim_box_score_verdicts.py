"""Box-score verdicts and the significance-count test by simulation (issue 20.9).

1. **Verdicts against the primary studies' power.** A review of ``k`` = 10 independent
   studies of one true correlation rho (0 or 0.2), every study of ``n`` participants
   (20 ... 400), each study testing rho = 0 two-sided at 5 % (Fisher z, the large-sample
   test). Per cell 4000 simulated reviews: the share of each verdict of the default rule
   ``VerdictRule()`` and of the Sallis-type rule ``VerdictRule(no_association=1/3)``, and
   the coverage of the 95 % profile interval of ``vote_count_estimate`` (metric "r").
   A verdict that *rewards low power* would be one that claims something (an effect, or
   its absence) more often when the studies are smaller.
2. **Null probability of a study-level majority vote.** ``m`` findings per study whose z
   statistics are equicorrelated normals (correlation 0 ... 0.99), no effect: the share of
   studies whose majority vote (ties non-significant, as ``box_score``) is significant
   positive, against alpha/2 = 0.025.

Plain script, seeded:

    python benchmarks/sim_box_score_verdicts.py
"""

from __future__ import annotations

import argparse
import platform
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from alliancestats.synthesis import VerdictRule, vote_count_estimate

ALPHA = 0.05
CRIT = float(stats.norm.ppf(1 - ALPHA / 2))


def simulate_votes(rng: np.random.Generator, rho: float, n: int, k: int, reps: int
                   ) -> np.ndarray:
    """reps x k votes: +1 significant positive, 0 non-significant, -1 significant negative."""
    z = np.arctanh(rho) * np.sqrt(n - 3) + rng.standard_normal((reps, k))
    return np.where(z > CRIT, 1, np.where(z < -CRIT, -1, 0))


def verdict_shares(votes: np.ndarray, rule: VerdictRule) -> pd.Series:
    k = votes.shape[1]
    pos, neg = (votes == 1).sum(axis=1) / k, (votes == -1).sum(axis=1) / k
    out = [rule.decide(votes=k, share_positive=p, share_negative=q) for p, q in zip(pos, neg,
                                                                                   strict=True)]
    return pd.Series(out).value_counts(normalize=True)


def coverage(votes: np.ndarray, rho: float, n: int, reps: int) -> float:
    hits, used = 0, 0
    for row in votes[:reps]:
        frame = pd.DataFrame({"sig": row != 0, "effect": np.where(row == 0, 1, row),
                              "n": n})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = vote_count_estimate(frame, significant="sig", effect="effect", n="n",
                                      metric="r", three_category=True)
        used += 1
        hits += res.conf_low <= rho <= res.conf_high
    return hits / used


def verdict_table(seed: int, reps: int, k: int, cover_reps: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rules = {"default": VerdictRule(), "sallis": VerdictRule(no_association=1 / 3)}
    rows = []
    for rho in (0.0, 0.2):
        for n in (20, 40, 80, 150, 400):
            votes = simulate_votes(rng, rho, n, k, reps)
            power = float(stats.norm.sf(CRIT - np.arctanh(rho) * np.sqrt(n - 3))
                          + stats.norm.cdf(-CRIT - np.arctanh(rho) * np.sqrt(n - 3)))
            row = {"rho": rho, "n": n, "power": power}
            for name, rule in rules.items():
                shares = verdict_shares(votes, rule)
                for verdict, share in shares.items():
                    row[f"{name}: {verdict}"] = share
            row["vote-count CI coverage"] = coverage(votes, rho, n, cover_reps)
            rows.append(row)
    return pd.DataFrame(rows).fillna(0.0)


def majority_null(seed: int, n_studies: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m in (1, 2, 3, 5, 8):
        row: dict[str, float] = {"findings per study": m}
        for r in (0.0, 0.3, 0.6, 0.9, 0.99):
            z = (np.sqrt(r) * rng.standard_normal((n_studies, 1))
                 + np.sqrt(1 - r) * rng.standard_normal((n_studies, m)))
            pos, neg = (z > CRIT).sum(axis=1), (z < -CRIT).sum(axis=1)
            ns = m - pos - neg
            row[f"corr {r}"] = float(((pos > ns) & (pos > neg)).mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("findings per study")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--cover-reps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    print(f"{platform.platform()}; Python {platform.python_version()}; seed {args.seed}")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"\nVerdicts of 10-study reviews ({args.reps} per cell; coverage from "
          f"{args.cover_reps}):")
    print(verdict_table(args.seed, args.reps, 10, args.cover_reps).round(3).to_string())
    print("\nNull probability that a study's majority vote is significant positive "
          "(alpha/2 = 0.025; 400000 studies per cell):")
    print(majority_null(args.seed, 400_000).round(4).to_string())


if __name__ == "__main__":
    main()
