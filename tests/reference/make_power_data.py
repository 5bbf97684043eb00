"""Simulated trials for the lme4 check of :func:`alliancestats.power`.

Writes one CSV per scenario (every replicate's trial, with a ``replicate`` column) into
the directory given as the only argument (default ``/tmp/alliancestats-power-reference``);
the data are not committed: they are a pure function of the seeds below. Then run::

    python tests/reference/make_power_data.py /tmp/powerref
    Rscript tests/reference/r/power_reference.R /tmp/powerref

which writes ``tests/reference/results/power_reference.json``. Replicate r of a scenario
is exactly the trial :func:`alliancestats.power` simulates for replicate r of that cell
with ``rng=SEED`` (the same ``SeedSequence`` spawn key), so the test can refit the same
data sets with the project's fast path and compare replicate by replicate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from alliancestats import PRNParams, null_effects
from alliancestats.power._designs import Sizes, simulate_panel
from alliancestats.power._run import replicate_seed

SEED = 20240519
DROPOUT = {"dropout_trained": 0.1, "dropout_untrained": 0.1}

#: name -> (design, sizes, effects, p_missing, replicates)
SCENARIOS: dict[str, tuple[str, Sizes, dict[str, float], float, int]] = {
    "tb_alt": ("truth_bias", Sizes(20, 60, 6), {}, 0.1, 300),
    "tb_null": ("truth_bias", Sizes(20, 60, 6), null_effects("truth_bias"), 0.1, 300),
    "growth_dropout_alt": ("growth", Sizes(20, 60, 5), DROPOUT, 0.0, 150),
    "growth_dropout_null": ("growth", Sizes(20, 60, 5),
                            {**null_effects("growth"), **DROPOUT}, 0.0, 150),
}


def scenario_frame(name: str) -> pd.DataFrame:
    """Every replicate's simulated trial of one scenario, stacked."""
    _, sizes, effects, p_missing, n = SCENARIOS[name]
    params = PRNParams(**effects)
    frames = []
    for r in range(n):
        rng = np.random.default_rng(replicate_seed(SEED, (), sizes, r))
        frame = simulate_panel(rng, sizes, params, p_missing).to_frame()
        frames.append(frame.assign(replicate=r))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/alliancestats-power-reference")
    out.mkdir(parents=True, exist_ok=True)
    for name in SCENARIOS:
        scenario_frame(name).to_csv(out / f"{name}.csv", index=False, float_format="%.17g")
        print(f"wrote {out / f'{name}.csv'}")


if __name__ == "__main__":
    main()
