"""Single-level response surface analysis on a cross-sectional data set.

One row per dyad: the therapist's and the patient's alliance rating and the patient's
outcome. Here the dyads are the patients of the bundled ``prn`` data set, with ratings
and well-being averaged over their sessions (a cross-sectional summary of the trial).
The polynomial model

    Z = b0 + b1 X + b2 Y + b3 X² + b4 XY + b5 Y² + e

is fitted by OLS (Edwards & Parry 1993; Shanock et al. 2010), the surface parameters
a1..a5 are tested, the congruence hypothesis is checked with all its conditions
(Humberg, Nestler & Back 2019) and the RSA model family is compared, as R's ``RSA()``
and ``compare()`` do.
"""

# %%
import matplotlib.pyplot as plt

from alliancestats import compare_rsa, datasets, fit_rsa, plot_surface

dyads = (datasets.load("prn")
         .groupby(["therapist", "patient"], as_index=False)
         [["alliance_therapist", "alliance_patient", "wellbeing"]].mean())
print(dyads.describe().round(2))

# %%
# Fit and surface parameters
# --------------------------
res = fit_rsa(dyads, outcome="wellbeing", x="alliance_therapist", y="alliance_patient")
print(res.summary())
print(res.discrepancy_table())  # share of dyads with X > Y, X ~ Y, X < Y

# %%
# Congruence: does well-being peak where therapist and patient agree?
print(res.congruence_test(variant="strict", direction="maximum", rng=1))

# %%
# The model family (full, SRR, SRRR, SQD, ..., as R's RSA::compare)
print(compare_rsa(dyads, outcome="wellbeing", x="alliance_therapist",
                  y="alliance_patient").round(3))

# %%
# Figures: contours with the data and their convex hull, and the 3-D surface
fig = plt.figure(figsize=(11, 4.5))
plot_surface(res, kind="contour", points=True, ax=fig.add_subplot(1, 2, 1))
plot_surface(res, kind="3d", ax=fig.add_subplot(1, 2, 2, projection="3d"))
