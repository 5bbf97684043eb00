"""Truth and bias with a new moderator.

The truth-and-bias model (West & Kenny 2011) asks how strongly therapists' alliance
judgments follow their patients' ratings (truth force) and how far they sit above or
below them (directional bias). Moderators change both. Besides condition, a patient
characteristic can be a moderator: here a baseline severity score (simulated for this
example), centred so that the effects refer to a patient of average severity.
"""

# %%
import numpy as np

from alliancestats import datasets, fit_truth_bias, plot_truth_bias

df = datasets.load("prn")
rng = np.random.default_rng(7)
patients = df["patient"].unique()
severity = dict(zip(patients, rng.normal(0, 1, len(patients)), strict=True))
df = df.assign(severity=df["patient"].map(severity))  # a new frame; the data set is kept

# %%
# Fit with condition and severity as moderators (crossed in full with truth)
tb = fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
                    groups=["therapist", "patient"], moderators=["condition", "severity"])
print(tb.summary())

# %%
# Truth force and directional bias for low, average and high severity by condition
effects = tb.effects_at(condition=[0, 1], severity=[-1, 0, 1])
print(effects.round(3))

# %%
# Plot them across severity, one line per condition
fig = plot_truth_bias(tb, x="severity", x_values=np.linspace(-2, 2, 9), hue="condition",
                      hue_values=[0, 1])
