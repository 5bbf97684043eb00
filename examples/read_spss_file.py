"""Read an SPSS file and run the analysis on it.

Trials are often stored as SPSS ``.sav`` files with their own variable names and value
labels. :func:`alliancestats.read_data` reads them (via pyreadstat), keeps numeric codes
for the models and the labels in ``df.attrs``. Every model function takes the column
names as role keywords, so no renaming is needed. To keep the example self-contained we
first write such a file from the bundled data to a temporary directory.
"""

# %%
import tempfile
from pathlib import Path

import pyreadstat

from alliancestats import datasets, fit_lagged_rsa, read_data

tmp = Path(tempfile.mkdtemp())
spss = datasets.load("prn").rename(columns={
    "therapist": "THER_ID", "patient": "PAT_ID", "session": "SESS", "condition": "GROUP",
    "alliance_therapist": "WAI_T", "alliance_patient": "WAI_P", "wellbeing": "ORS"})
pyreadstat.write_sav(spss, tmp / "trial.sav",
                     column_labels=["Therapist", "Patient", "Session", "Training arm",
                                    "WAI therapist form", "WAI client form",
                                    "Outcome Rating Scale"],
                     variable_value_labels={"GROUP": {0: "control", 1: "trained"}})

# %%
# Read it back: codes stay numeric, labels are kept
df = read_data(tmp / "trial.sav")
print(df.dtypes)
print(df.attrs["value_labels"])

# %%
# Fit a model with the file's own column names
res = fit_lagged_rsa(df, outcome="ORS", x="WAI_T", y="WAI_P", time="SESS",
                     unit=["THER_ID", "PAT_ID"], groups=["THER_ID", "PAT_ID"], by="GROUP")
print(res.surface.round(3))

# %%
# The value labels make readable tables: label the condition codes for printing
labels = df.attrs["value_labels"]["GROUP"]
print(res.surface_differences.rename(index=labels, level="level").round(3))

# %%
# The whole report runs on the same file with the columns mapped to their roles:
#
#     alliancestats report trial.sav --out report --therapist THER_ID --patient PAT_ID \
#         --session SESS --condition GROUP --alliance-therapist WAI_T \
#         --alliance-patient WAI_P --wellbeing ORS
#
# or, in Python, ``alliancestats.report.write_report(df, out="report", roles={...})``.
