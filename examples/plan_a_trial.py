"""Plan a practice-research-network (PRN) trial by Monte-Carlo power.

Question: does alliance training make therapists' judgments of the alliance track their
patients' ratings increasingly well over sessions (the truth-and-bias model's
condition x session moderation of the truth force, gamma13)? How many therapists, each
treating about three patients for six sessions, does a trial need to detect the
simulator's default effect (gamma13 = 0.06 per session) with 80 % power?

The script keeps the number of replicates small so that it runs in seconds; for a real
plan use ``N_SIMS = 1000`` or more (Monte-Carlo SE of a power near 0.8: 0.013) and
``n_jobs=-1``, and give a ``checkpoint`` directory so that a long run can be resumed.
"""

from __future__ import annotations

from alliancestats import null_effects, power
from alliancestats.power import find_size

N_SIMS = 30  # replicates per grid cell; 1000+ for a real plan
SEED = 20230466  # any fixed seed makes the plan reproducible

# 1. Power over a grid of trial sizes (three patients per therapist).
result = power(
    "truth_bias",
    n_therapists=[10, 20, 40],
    patients_per_therapist=3,
    n_sessions=6,
    p_missing=0.1,  # one session in ten missed
    n_sims=N_SIMS,
    rng=SEED,
    progress=False,
)
print(result.summary())

# 2. The smallest simulated size with power >= 0.8 (refine the grid around it), and the
#    conservative answer that requires the lower 95 % Clopper-Pearson bound to reach it.
print(result.required_size(0.8))
print(result.required_size(0.8, conservative=True))

# 3. Type-I error: the same simulation with the tested effect set to 0. The rejection
#    rate should be within Monte-Carlo error of alpha = 0.05.
print("null overrides:", null_effects("truth_bias"))
null = power(
    "truth_bias",
    effects="null",
    n_therapists=20,
    patients_per_therapist=3,
    p_missing=0.1,
    n_sims=N_SIMS,
    rng=SEED,
    progress=False,
)
print(null.power[["n_therapists", "term", "power", "mcse", "ci_low", "ci_high"]])

# 4. Every replicate's estimate, SE and p-value is kept, e.g. to look at the sampling
#    distribution of the estimate or at the fits that failed.
print(result.estimates.groupby(level="n_therapists").describe().round(3))
print(result.failures.head())

# 5. Other questions of the same trial: the training effect on the truth force at the
#    last session, and at the first (any linear contrast of the fixed effects can be
#    named in `targets`).
contrasts = power(
    "truth_bias",
    targets=["truth_force_difference_last", "truth_force_difference_first"],
    n_therapists=40,
    patients_per_therapist=3,
    n_sims=N_SIMS,
    rng=SEED,
    progress=False,
)
print(contrasts.power[["term", "true_value", "power", "ci_low", "ci_high"]])

# 6. Search the number of therapists adaptively instead of over a fixed grid; the
#    answer comes with Monte-Carlo intervals (use n_sims=200 or more for a real plan).
search = find_size("truth_bias", 0.8, patients_per_therapist=3, lower=10, upper=80,
                   n_sims=N_SIMS, rng=SEED)
print(search.summary())
