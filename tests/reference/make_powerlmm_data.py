"""The powerlmm comparison: a three-level growth design with therapist random intercepts
and slopes and unequal caseloads, simulated by the project and solved analytically by
powerlmm (``r/powerlmm_reference.R``).

The simulator's therapist-rated alliance with truth force 1 (gamma10 = 1, no truth-force
moderation or random truth force) is powerlmm's model exactly:

    X = b0 + b1 c + (b2 + b3 c) s + v_k + v1_k s + u_jk + u1_jk s + e_tjk,

s = session - 1 = 0..5, therapist intercept SD sqrt(sd_truth_therapist^2 +
sd_judgment_therapist^2), therapist slope SD ``sd_truth_growth_therapist``, patient
intercept SD sqrt(sd_truth_patient^2 + sd_judgment_patient^2), patient slope SD
``sd_truth_growth``, residual SD sqrt(sd_truth_residual^2 + sd_judgment_residual^2),
all independent; the treatment effect on the slope b3 = gamma03. It is fitted with
powerlmm's analysis model, ``X ~ time * condition + (1 + time | therapist) +
(1 + time | therapist:patient)`` (lmerTest's Satterthwaite df), through ``power()`` with
the design below.

Arms are randomised over the therapists in every replicate, so the two arms' caseloads
differ from replicate to replicate; this script writes each replicate's caseloads per
arm, and the R script averages powerlmm's analytic power over them. Run from the
repository root:

    PYTHONPATH=src python tests/reference/make_powerlmm_data.py
    Rscript tests/reference/r/powerlmm_reference.R   # needs powerlmm (see its header)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alliancestats.power._designs import (
    ContrastFit,
    Design,
    ModelArrays,
    Panel,
    Sizes,
    Target,
    nested_groups,
    observed_index,
    simulate_panel,
)
from alliancestats.power._run import replicate_seed
from alliancestats.simulate import PRNParams

SEED = 19
N_SIMS = 400
ARM = (2, 3, 3, 4, 5, 6, 8, 12)  # powerlmm: unequal_clusters(2, 3, 3, 4, 5, 6, 8, 12)
CASELOADS = ARM + ARM
N_SESSIONS = 6
EFFECTS = {"gamma10": 1.0, "gamma11": 0.0, "gamma12": 0.0, "gamma13": 0.0,
           "gamma03": 0.09, "sd_truth_growth_therapist": 0.04}
COLUMNS = ("Intercept", "condition", "session", "session:condition")


def therapist_growth_arrays(panel: Panel) -> ModelArrays:
    """``X ~ time * condition + (1 + time | therapist) + (1 + time | therapist:patient)``."""
    pat, ses = observed_index(panel)
    t = ses.astype(float)
    c = panel.arm(pat)
    X = np.column_stack([np.ones_like(t), c, t, t * c])
    return ModelArrays(panel.alliance_therapist[pat, ses], X, COLUMNS,
                       nested_groups(panel, pat), ("therapist", "patient"),
                       {"therapist": (0, 2), "patient": (0, 2)})


def _gamma03(params: PRNParams, sizes: Sizes) -> np.ndarray:
    return np.array([params.gamma03])


TARGET = Target("time:condition", weights=(("session:condition", 1.0),))
DESIGN = Design(
    name="powerlmm_growth",
    model="X ~ time * condition + (1 + time | therapist) + (1 + time | therapist:patient)",
    terms=("time:condition",),
    descriptions=("treatment effect on the growth of therapist-rated alliance",),
    null={"gamma03": 0.0},
    fit_fast=ContrastFit(therapist_growth_arrays, COLUMNS, (TARGET,), "satterthwaite"),
    fit_public=ContrastFit(therapist_growth_arrays, COLUMNS, (TARGET,)),  # type: ignore[arg-type]
    true_values=_gamma03,
    arrays=therapist_growth_arrays,
    columns=COLUMNS,
)


def allocations() -> list[tuple[list[int], list[int]]]:
    """(control caseloads, treatment caseloads) of each replicate of ``power()``."""
    sizes = Sizes(len(CASELOADS), sum(CASELOADS), N_SESSIONS)
    out = []
    for rep in range(N_SIMS):
        rng = np.random.default_rng(replicate_seed(SEED, (), sizes, rep))
        panel = simulate_panel(rng, sizes, PRNParams(**EFFECTS), 0.0, CASELOADS)
        loads = np.bincount(panel.therapist, minlength=len(CASELOADS))
        out.append((sorted(loads[panel.condition == 0].tolist()),
                    sorted(loads[panel.condition == 1].tolist())))
    return out


if __name__ == "__main__":
    path = Path(__file__).parent / "data" / "powerlmm_allocations.csv"
    lines = ["replicate,control,treatment"]
    for rep, (control, treated) in enumerate(allocations()):
        lines.append(f"{rep},{' '.join(map(str, control))},{' '.join(map(str, treated))}")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")
