"""
Box score and vote counting for a review of process studies
===========================================================

A systematic review of psychotherapy process research often summarises its studies with a
*box score*: for each outcome, how many studies found a significant positive, a
non-significant or a significant negative association. Reviews of between-session homework
(e.g. Ryum, Bennion & Kazantzis, 2023) tally in-session and session-to-session outcomes
this way, and look at moderators such as how homework was measured.

This example builds a small **made-up** findings table of that shape (the studies, sizes
and p-values are simulated, not taken from any review), tallies it with
:func:`alliancestats.box_score`, and then asks the question a box score cannot answer
well, "how large is the association?", with the Hedges-Olkin vote-counting estimator
:func:`alliancestats.vote_count_estimate`.
"""

# %%
# A made-up findings table
# ------------------------
# One row per finding: study, outcome domain, how homework was measured (the moderator),
# the correlation between homework and the outcome, its two-sided p-value and the sample
# size. Some studies report several findings. The correlations are simulated around a true
# value of 0.20, so we know what a good synthesis should find.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from alliancestats import box_score, vote_count_estimate
from alliancestats.synthesis import VerdictRule

rng = np.random.default_rng(2023)
TRUE_RHO = 0.20
rows = []
for i in range(16):
    study, n = f"Study {i + 1:02d}", int(rng.integers(20, 120))
    outcomes = ["in-session", "session-to-session"]
    for outcome in rng.choice(outcomes, size=rng.integers(1, 3), replace=False):
        for measure in rng.choice(["compliance", "quality"], size=rng.integers(1, 3),
                                  replace=False):
            z = rng.normal(np.arctanh(TRUE_RHO), 1 / np.sqrt(n - 3))
            r = float(np.tanh(z))
            t = r * np.sqrt((n - 2) / (1 - r**2))
            rows.append({"study": study, "outcome": outcome, "measure": measure,
                         "r": round(r, 3), "p": float(2 * stats.t.sf(abs(t), n - 2)),
                         "n": n})
findings = pd.DataFrame(rows)
findings.head()

# %%
# The box score
# -------------
# By default each study casts one vote per outcome; a study with several findings votes
# with its most frequent category (ties count as non-significant). ``alpha`` says that
# ``significant`` holds p-values. The verdict rule is printed in the summary and can be
# changed.
res = box_score(findings, outcome="outcome", effect="r", significant="p", alpha=0.05,
                n="n")
print(res.summary())

# %%
res.plot()
plt.tight_layout()

# %%
# Moderators and other verdict rules
# ----------------------------------
# With ``moderator`` every outcome is tallied per level. A stricter two-thirds rule that
# also names strata "mostly non-significant" when neither direction reaches one third
# (the band often coded "no association"; with small studies it shows their low power,
# not the absence of an effect):
strict = VerdictRule(support=2 / 3, no_association=1 / 3, min_votes=3)
by_measure = box_score(findings, outcome="outcome", effect="r", significant="p",
                       alpha=0.05, moderator="measure", rule=strict)
by_measure.to_frame()[["outcome", "measure", "sig_positive", "nonsignificant",
                       "sig_negative", "votes", "verdict", "sign_p_value"]]

# %%
# Why not stop at the box score?
# ------------------------------
# Most votes above are non-significant although every study was simulated with a true
# correlation of 0.20. With 40 clients a study has less than a one-in-four chance of a
# significant result, so the majority of votes is non-significant, and the chance that a
# majority is significant *falls* as studies are added (Hedges & Olkin, 1980): a box score
# turns "many small studies" into "no consistent evidence". The sign test on the observed
# directions, in the tests table above, already points the other way.
power = stats.norm.sf(stats.norm.ppf(0.975) - np.arctanh(TRUE_RHO) * np.sqrt(40 - 3))
for k in (5, 15, 45):
    p_majority = stats.binom.sf(k // 2, k, power)
    print(f"n = 40, power {power:.2f}: P(majority significant | k = {k:2d}) = "
          f"{p_majority:.3f}")

# %%
# The vote-counting estimate
# --------------------------
# The study-level votes from the box score (one per study and outcome, with the study's
# n) go into the Hedges-Olkin estimator. It models each study's chance of a significant
# positive result as a function of the common correlation and the study's size.
votes = res.votes
session = votes[votes["outcome"] == "session-to-session"].assign(
    sig=lambda v: v["category"] != "nonsignificant"
)
est = vote_count_estimate(session, significant="sig", effect="direction", n="n",
                          metric="r")
print(est.summary())

# %%
# Counting only the observed direction (the Cochrane-style vote count) uses the sign of
# the non-significant results as well; votes without a direction are set aside first.
with_direction = session[session["direction"] != 0]
by_direction = vote_count_estimate(with_direction, significant=None, effect="direction",
                                   n="n", metric="r", direction_only=True)
by_direction.to_frame()

# %%
# The log-likelihood curve behind the profile-likelihood interval:
curve = est.profile()
fig, ax = plt.subplots()
ax.plot(curve["rho"], curve["deviance"])
ax.axhline(stats.chi2.ppf(0.95, 1), ls="--", color="grey")
ax.axvline(TRUE_RHO, color="k", lw=0.8)
ax.set_xlabel("common correlation")
ax.set_ylabel("deviance from the maximum")

# %%
# Combining votes with reported effect sizes (Bushman & Wang)
# -----------------------------------------------------------
# Suppose half of the studies reported their correlation. Those studies enter through the
# normal likelihood of Fisher's z; the rest still count as votes.
reported = findings.groupby(["study", "outcome"], as_index=False).agg(r=("r", "mean"),
                                                                      n=("n", "first"))
session_votes = session.merge(reported, on=["study", "outcome", "n"])
session_votes["r_reported"] = session_votes["r"].where(
    np.arange(len(session_votes)) % 2 == 0
)
combined = vote_count_estimate(session_votes, significant="sig", effect="direction",
                               n="n", effect_size="r_reported", metric="r")
combined.to_frame()
