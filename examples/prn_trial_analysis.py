"""Refit the PRN trial end to end.

The bundled ``prn`` data set is a simulated practice-research-network trial with the
design of Tasca et al. (2023): 40 community therapists randomised to alliance training
(``condition = 1``) or not, 117 patients, six early sessions in which therapist and
patient both rate the working alliance and the patient reports well-being. This script
answers the trial's three questions with one model each and draws their figures:

1. Does the alliance grow faster with training, and for which rater? (growth model)
2. Do trained therapists track their patient's alliance more closely, increasingly over
   sessions? (truth-and-bias model)
3. Does agreement on a good alliance in one session predict well-being at the next, and
   only for trained therapists? (lagged response surface analysis by condition)

``alliancestats report --out DIR`` runs the same analysis and writes an HTML report.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt

from alliancestats import (
    datasets,
    fit_growth,
    fit_lagged_rsa,
    fit_truth_bias,
    plot_lagged_agreement,
    plot_surface,
    plot_trajectories,
    plot_truth_bias,
    stack_raters,
)

df = datasets.load("prn")
print(df.head())
print(df.groupby("condition")[["therapist", "patient"]].nunique())

# %%
# 1. Growth of the alliance by rater x condition
# ----------------------------------------------
# Ratings are stacked by rater; each rater gets its own intercept and growth rate per
# condition. Random intercepts keep this example fast (the report also fits slopes).
long = stack_raters(df, ratings={"therapist": "alliance_therapist",
                                 "patient": "alliance_patient"})
growth = fit_growth(long, outcome="alliance", time="session", rater="rater",
                    groups=["therapist", "patient"], moderators="condition",
                    random="intercept")
print(growth.growth_rates.round(3))
print(growth.contrasts.round(3))
ax = plot_trajectories(growth, growth_data=df)

# %%
# 2. Truth and bias
# -----------------
# Judgment = therapist's rating, truth = patient's rating, both centred on the truth's
# grand mean. The intercept is the directional bias, the truth slope the truth force;
# both are moderated by condition, session and their product.
tb = fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
                    groups=["therapist", "patient"], moderators=["condition", "session"])
print(tb.summary())
fig = plot_truth_bias(tb, x_values=range(1, 7), hue_values=[0, 1])

# %%
# 3. Lagged response surface by condition
# ---------------------------------------
# Well-being at session t on the surface of both alliance ratings at t - 1, controlling
# for well-being at t - 1 and for session; one surface per condition in one mixed model.
rsa = fit_lagged_rsa(df, outcome="wellbeing", x="alliance_therapist",
                     y="alliance_patient", time="session", unit=["therapist", "patient"],
                     groups=["therapist", "patient"], by="condition",
                     controls=["session"])
print(rsa.surface.round(3))
print(rsa.surface_differences.round(3))
print(rsa.congruence_test(level=1, rng=1))
fig = plot_surface(rsa, kind="contour", points=True)
fig = plot_surface(rsa, kind="3d")

# %%
# The four agreement patterns at the previous session, per condition:
fig, ax = plt.subplots(figsize=(7, 4))
plot_lagged_agreement(rsa, ax=ax)
